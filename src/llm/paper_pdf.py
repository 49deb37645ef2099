"""A research paper's text: PDF (file, URL or bytes) -> pages -> sections -> sentences.

    paper = read_pdf("lenet.pdf")                  # or an https:// URL, or the PDF's bytes
    paper.pages[0], paper.title, paper.sentences   # Sentence(page, heading, text)
    architecture_passages(paper)                   # the sentences that describe the network

Reading uses pypdf. Problems are PaperError (a ValueError) saying what to do: a missing or
non-PDF file, a damaged PDF, a password-protected one (give the password), a scanned one
without a text layer (run OCR first), a download that failed.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 100 * 1024 * 1024  # larger "papers" are refused rather than read into memory
MIN_TEXT_CHARS = 40            # fewer non-space characters in the whole file: no text layer


class PaperError(ValueError):
    """The paper cannot be read or turned into a graph; the message names the fix."""


@dataclass(frozen=True)
class Sentence:
    page: int       # 1-based
    heading: str    # the section heading it sits under ("" before the first one)
    text: str


@dataclass
class PaperText:
    source: str
    pages: list[str]
    title: str = ""
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(self.pages)

    def locate(self, quote: str) -> Sentence | None:
        """The first sentence holding `quote` (case and spacing ignored), or holding most of it."""
        q = _squash(quote)
        if len(q) < 8:
            return None
        for s in self.sentences:
            if q in _squash(s.text):
                return s
        joined = [(_squash(a.text + " " + b.text), a) for a, b in zip(self.sentences, self.sentences[1:])]
        for text, s in joined:  # a quote spanning a sentence break
            if q in text:
                return s
        return None


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower().replace("×", "x")).strip()


# ---- reading -----------------------------------------------------------------------------------
def _fetch(url: str, timeout_s: float) -> bytes:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, headers={"User-Agent": "TinyUOp-Builder/0.1 (paper import)"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (http/https checked by caller)
            data = resp.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise PaperError(f"cannot download {url}: the server answered HTTP {e.code} ({e.reason}); check the URL, "
                         "or download the PDF and give its file path") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PaperError(f"cannot download {url}: {reason}. Check the URL and that this machine may reach it "
                         "(proxies, firewalls), or download the PDF and give its file path") from None
    if len(data) > MAX_BYTES:
        raise PaperError(f"{url} is larger than {MAX_BYTES // 2**20} MB; that is no paper")
    return data


def load_bytes(source: str | os.PathLike | bytes, timeout_s: float = 30.0) -> tuple[bytes, str]:
    """The PDF's bytes and a printable name of where they came from."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "<bytes>"
    src = str(source).strip()
    if not src:
        raise PaperError("no PDF given: set the PDF file (or URL) of the paper")
    if re.match(r"^[a-z][a-z0-9+.-]*://", src, re.I):
        if not src.lower().startswith(("http://", "https://")):
            raise PaperError(f"{src}: only http:// and https:// URLs can be downloaded; give a file path otherwise")
        return _fetch(src, timeout_s), src
    path = Path(src).expanduser()
    if not path.exists():
        raise PaperError(f"PDF file not found: {path}. Check the path (relative paths start in "
                         f"{Path.cwd()})")
    if path.is_dir():
        raise PaperError(f"{path} is a folder; choose the paper's .pdf file inside it")
    if path.stat().st_size > MAX_BYTES:
        raise PaperError(f"{path} is larger than {MAX_BYTES // 2**20} MB; that is no paper")
    return path.read_bytes(), str(path)


def read_pdf(source: str | os.PathLike | bytes, password: str | None = None, timeout_s: float = 30.0) -> PaperText:
    """Text of every page (see module docs for the errors)."""
    data, name = load_bytes(source, timeout_s)
    if b"%PDF-" not in data[:1024]:
        head = data[:24].decode("latin-1", "replace").strip()
        raise PaperError(f"{name} is not a PDF (it starts with {head!r}); choose the paper's PDF file"
                         + (" — the URL may point to an HTML page rather than the PDF" if "://" in name else ""))
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt(password or "")
            except DependencyError as e:
                raise PaperError(f"{name} is encrypted with a cipher that needs the 'cryptography' package "
                                 f"({e}); install it (pip install cryptography)") from None
            if not ok:
                if password:
                    raise PaperError(f"{name} is encrypted and the given password is wrong; check it, or save an "
                                     "unencrypted copy of the PDF")
                raise PaperError(f"{name} is encrypted with a password: give the password (the node's 'PDF "
                                 "password' setting, or password=...), or save an unencrypted copy of the PDF")
        pages = []
        for i, page in enumerate(reader.pages):
            try:
                pages.append(page.extract_text() or "")
            except (PdfReadError, KeyError, ValueError, TypeError, AttributeError) as e:
                raise PaperError(f"{name}: page {i + 1} cannot be read ({type(e).__name__}: {e}); the PDF is "
                                 "damaged: download it again or re-export it") from None
    except FileNotDecryptedError:
        raise PaperError(f"{name} is encrypted with a password: give the password, or save an unencrypted "
                         "copy") from None
    except PdfReadError as e:
        raise PaperError(f"{name} is damaged and cannot be read (pypdf: {e}); download it again or re-export "
                         "it from the source") from None
    except PaperError:
        raise
    except Exception as e:  # pypdf raises many kinds on garbage (struct errors, recursion, ...)
        raise PaperError(f"{name} is damaged and cannot be read ({type(e).__name__}: {e}); download it again "
                         "or re-export it from the source") from None
    if not pages:
        raise PaperError(f"{name} has no pages")
    if sum(len(re.sub(r"\s", "", p)) for p in pages) < MIN_TEXT_CHARS:
        raise PaperError(f"{name} holds no extractable text ({len(pages)} page(s)): it is probably scanned "
                         "images. Run OCR on it first (e.g. `ocrmypdf in.pdf out.pdf`) and import the result")
    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Exception:  # noqa: BLE001 (metadata is optional)
        title = ""
    paper = PaperText(name, pages, title)
    paper.sentences = split_sentences(pages)
    if not paper.title:
        paper.title = _first_line(pages[0])
    return paper


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if len(line.strip()) > 3:
            return line.strip()[:200]
    return ""


# ---- sections and sentences ----------------------------------------------------------------------
_HEADING = re.compile(r"^\s*(?:(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+)?([A-Z][A-Za-z0-9 ,:&()/-]{2,70})\s*$")
_KNOWN_HEADINGS = re.compile(r"^(abstract|introduction|related work|background|method|methods|methodology|approach|"
                             r"model|models|architecture|network architecture|model architecture|the model|"
                             r"experiments?|experimental setup|results|discussion|conclusions?|references|"
                             r"acknowledg(e)?ments|implementation( details)?|training( details)?|setup|dataset|"
                             r"datasets|evaluation|appendix)$", re.I)
_ABBREV = re.compile(r"\b(?:Fig|Figs|Eq|Eqs|Sec|Tab|et al|e\.g|i\.e|cf|vs|approx|resp|No)\.$", re.I)


def _is_heading(line: str) -> bool:
    s = line.strip()
    if not s or len(s) > 72 or s.endswith((".", ",", ";", ":")):
        return False
    if _KNOWN_HEADINGS.match(re.sub(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+", "", s)):
        return True
    m = _HEADING.match(s)
    return bool(m) and bool(re.match(r"^\s*(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+", s)) and len(s.split()) <= 8


def split_sentences(pages: list[str]) -> list[Sentence]:
    """Sentences in reading order with their page and section heading (hyphenated breaks joined)."""
    out: list[Sentence] = []
    heading = ""
    for pno, page in enumerate(pages, 1):
        buf: list[str] = []

        def flush() -> None:
            text = " ".join(buf)
            text = re.sub(r"(\w)- (\w)", r"\1\2", text)  # "convo- lutional" from a line break
            text = re.sub(r"\s+", " ", text).strip()
            for part in _sentences(text):
                out.append(Sentence(pno, heading, part))
            buf.clear()

        for line in page.splitlines():
            if _is_heading(line):
                flush()
                heading = re.sub(r"\s+", " ", line.strip())
            elif line.strip():
                buf.append(line.strip())
        flush()
    return out


def _sentences(text: str) -> list[str]:
    parts, start = [], 0
    for m in re.finditer(r"[.!?](?=\s+[A-Z(\[])", text):
        if _ABBREV.search(text[start:m.end()]):
            continue
        parts.append(text[start:m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return [p for p in parts if len(p) > 1]


_ARCH_HEADING = re.compile(r"architect|model|network|method|approach|design|implementation|setup|detail|training",
                           re.I)
LAYER_WORDS = re.compile(r"\b(conv\w*|fully[- ]connected|dense|hidden|pool\w*|subsampl\w*|filters?|kernels?|"
                         r"feature maps?|neurons?|units|layers?|dropout|softmax|relu|tanh|sigmoid|attention|heads?|"
                         r"embedding|residual|skip connections?|batch[- ]normali[sz]ation|stride|perceptron|"
                         r"encoder|transformer|channels?|input)\b", re.I)


_OTHER_WORK = re.compile(r"^(references|bibliography|acknowledg|related work|prior work|previous work|background)")


def architecture_passages(paper: PaperText, max_chars: int = 12000) -> list[Sentence]:
    """Sentences that describe the network: those in architecture-like sections holding layer
    words, then layer-word-dense sentences elsewhere (not in related-work, background or
    reference sections), in reading order, within `max_chars`."""
    scored = []
    for i, s in enumerate(paper.sentences):
        if _OTHER_WORK.match(s.heading.lower().lstrip("0123456789. ")):
            continue
        hits = len(LAYER_WORDS.findall(s.text))
        numbers = len(re.findall(r"\d", s.text)) > 0
        score = hits * (2 if _ARCH_HEADING.search(s.heading) else 1) + (1 if numbers and hits else 0)
        if hits:
            scored.append((score, i))
    keep, used = set(), 0
    for score, i in sorted(scored, key=lambda t: (-t[0], t[1])):
        n = len(paper.sentences[i].text) + 8
        if used + n > max_chars:
            continue
        keep.add(i)
        used += n
    return [paper.sentences[i] for i in sorted(keep)]
