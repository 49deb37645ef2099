"""Reading a paper's text for the numbers a network needs (layer sizes, kernels, input shape, classes,
activations, ...) and for layer types TinyUOp cannot express. Each value found keeps the sentence it
came from (`Fact`), so the draft built from it can point at its page and section."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from .paper_pdf import PaperText, Sentence

_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "thousand": 1000})
# a number is a whole token: "often" holds no "ten", "3x3 kernels" no "3 kernels", "C1" no "1"
NUM = r"(?:(?<![\w.×-])\d[\d,]*|\b(?:" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b)"
LIST = NUM + r"(?:\s*(?:,\s*and|,|and|/)\s*" + NUM + r")*"


def _n(tok: str) -> int:
    tok = tok.strip().lower().replace(",", "")
    return int(tok) if tok.isdigit() else _WORDS[tok]


def _list(text: str) -> list[int]:
    return [_n(t) for t in re.findall(NUM, text, re.I)]


@dataclass
class Fact:
    value: Any
    sentence: Sentence | None = None
    how: str = "paper"          # "paper", "template <name>", "default", "adjusted"


DATASETS = [  # (pattern, per-sample input shape, classes)
    (r"\bfashion[- ]mnist\b", (1, 28, 28), 10), (r"\bmnist\b", (1, 28, 28), 10), (r"\bcifar[- ]?100\b", (3, 32, 32), 100),
    (r"\bcifar[- ]?10\b", (3, 32, 32), 10), (r"\bsvhn\b", (3, 32, 32), 10), (r"\bimagenet\b", (3, 224, 224), 1000),
]

UNSUPPORTED = [  # things papers describe that have no TinyUOp op or block yet
    (r"\blstms?\b|\blong short-term memory\b", "LSTM"), (r"\bgrus?\b|\bgated recurrent units?\b", "GRU"),
    (r"\brecurrent (?:neural )?(?:networks?|layers?|connections?)\b|\brnns?\b", "recurrent layer"),
    (r"\blocal response normali[sz]ation\b|\blrn\b", "local response normalization"),
    (r"\bcapsules?\b", "capsule layer"), (r"\bdeformable conv\w*", "deformable convolution"),
    (r"\binception modules?\b", "Inception module"), (r"\bspatial transformer\b", "spatial transformer"),
    (r"\bmixture[- ]of[- ]experts\b", "mixture of experts"), (r"\bgraph convolution\w*\b|\bgcns?\b", "graph convolution"),
    (r"\bregion proposal\w*\b", "region proposal network"), (r"\bradial basis function\b|\brbf units?\b", "RBF layer"),
    (r"\bmaxout\b", "maxout unit"), (r"\bconditional random field\b|\bcrfs?\b", "CRF"),
]
_ACTS = [(r"\bleaky[- ]?relus?\b", "leaky_relu"), (r"\bgelus?\b", "gelu"), (r"\bsilus?\b|\bswish\b", "silu"),
         (r"\belus?\b", "elu"), (r"\bmish\b", "mish"), (r"\brelus?\b|\brectified linear\b", "relu"),
         (r"\btanh\b|\bhyperbolic tangent\b", "tanh"), (r"\bsigmoids?\b|\blogistic (?:function|units?)\b", "sigmoid")]


# ---- reading numbers from the text -------------------------------------------------------------------
def _first(sentences: Iterable[Sentence], pattern: str, flags: int = re.I):
    for s in sentences:
        m = re.search(pattern, s.text, flags)
        if m:
            return m, s
    return None, None


# the words between a size and "pooling" may not name a convolution: in "3x3 convolutions and max pooling"
# the 3x3 is the kernel, not the pooling window
_POOL_SPAN = re.compile(r"(?:\d+\s*[x×]\s*\d+|\d+-by-\d+)\s*(?:(?!conv|filter|kernel)\w+\s+){0,2}"
                        r"(?:max|average|avg|mean)?[- ]?"
                        r"(?:pool\w*|subsampl\w*)|(?:pool\w*|subsampl\w*)[^.;]{0,40}?(?:\d+\s*[x×]\s*\d+)", re.I)
_IMAGE_SPAN = re.compile(r"\d+\s*[x×]\s*\d+(?:\s*[x×]\s*\d+)?(?=[^.;]{0,25}\b(?:input|image|pixel|resolution|rgb|"
                         r"gr[ae]y))|(?:input|image|images|pixel|resolution)\w*[^.;]{0,25}?\d+\s*[x×]\s*\d+"
                         r"(?:\s*[x×]\s*\d+)?", re.I)


def facts_from_text(sents: list[Sentence], all_sents: list[Sentence]) -> dict[str, Fact]:
    """What the text states, by key ("input", "convs", "hidden", "classes", "heads", ...): `sents` are
    the architecture passages (layer numbers are read only there), `all_sents` the whole paper (for
    the dataset, the input size and the class count, often stated elsewhere)."""
    f: dict[str, Fact] = {}
    # datasets give an input shape and classes when the text states none
    for pat, shape, classes in DATASETS:
        m, s = _first(all_sents, pat)
        if m:
            f["dataset_input"] = Fact(shape, s, "dataset " + m.group(0))
            f["dataset_classes"] = Fact(classes, s, "dataset " + m.group(0))
            break
    # input shape (architecture passages first, then anywhere: "images are padded to 32x32 pixels")
    for s in sents + [x for x in all_sents if x not in sents]:
        m = re.search(r"(\d+)\s*[x×]\s*(\d+)(?:\s*[x×]\s*(\d+))?", s.text)
        span = _IMAGE_SPAN.search(s.text)
        if m and span and span.start() <= m.start() < span.end() + 1:
            dims = [int(d) for d in m.groups() if d]
            if len(dims) == 3:
                c, h, w = (dims[2], dims[0], dims[1]) if dims[2] <= 4 else (dims[0], dims[1], dims[2])
            else:
                c = 1 if re.search(r"gr[ae]y|monochrome|single[- ]channel|black[- ]and[- ]white|binary", s.text, re.I) \
                    else 3 if re.search(r"\brgb\b|colou?r", s.text, re.I) else 0
                h, w = dims
            f["input"] = Fact((c, h, w), s)
            break
    if "input" not in f:
        m, s = _first(sents, r"(\d+)[- ]dimensional (?:input|feature|vector)|input (?:layer )?(?:of|with) (\d+) "
                             r"(?:units|neurons|features|inputs)|(\d+) input (?:features|units|neurons|variables)")
        if m:
            f["input"] = Fact((int(next(g for g in m.groups() if g)),), s)
    # classes
    m, s = _first(all_sents, rf"({NUM})\s+(?:output\s+|target\s+|object\s+)?(?:classes|categories|class labels)\b|"
                             rf"\b({NUM})-(?:way|class)\b|output layer (?:has|with|of|contains) ({NUM})|"
                             rf"({NUM}) output (?:units|neurons|nodes)")
    if m:
        value = _n(next(g for g in m.groups() if g))
        if value >= 2:
            f["classes"] = Fact(value, s)
    # convolutions
    convs: list[tuple[int, int | None, Sentence]] = []
    for s in sents:
        text = s.text
        if not re.search(r"\bconv\w*", text, re.I):
            continue
        text = _IMAGE_SPAN.sub(" ", _POOL_SPAN.sub(" ", text))
        filt = re.search(rf"({LIST})\s+(?:convolutional\s+|conv\s+|different\s+)?(?:filters|feature maps|kernels|"
                         rf"output channels|channels|filter banks)\b", text, re.I) or \
            re.search(rf"(?:filters|feature maps|channels)\s+(?:of|is|are|=)\s+({LIST})\b", text, re.I)
        kernels = [int(k) for k in re.findall(r"\b(\d+)\s*[x×]\s*\1\b", text)] + \
                  [int(k) for k in re.findall(r"kernel size (?:of |is |= )?(\d+)", text, re.I)] + \
                  [int(k) for k in re.findall(r"\b(\d+)-by-\1\b", text)]
        if filt:
            outs = _list(filt.group(1))
            for j, o in enumerate(outs):
                k = kernels[j] if len(kernels) == len(outs) else (kernels[0] if kernels else None)
                convs.append((o, k, s))
        else:
            cnt = re.search(rf"({NUM})\s+(?:\w+\s+)?convolutional layers\b", text, re.I)
            if cnt:
                for _ in range(_n(cnt.group(1))):
                    convs.append((0, kernels[0] if kernels else None, s))
    if convs:
        f["convs"] = Fact([(o, k) for o, k, _ in convs], convs[0][2])
        f["conv_sentences"] = Fact([s for _, _, s in convs])
    m, s = _first(sents, r"same padding|zero[- ]padd\w*|padding of (?:one|1|2)\b|padded (?:so|to keep)")
    if m:
        f["padding"] = Fact(-1, s)
    m, s = _first(sents, r"no padding|without (?:zero[- ])?padding|valid (?:convolutions?|padding)")
    if m:
        f["padding"] = Fact(0, s)
    m, s = _first([x for x in sents if re.search(r"conv", x.text, re.I)], r"\bstride (?:of |= ?)?(\d+)")
    if m and not re.search(r"pool", s.text, re.I):
        f["stride"] = Fact(int(m.group(1)), s)
    # pooling
    m, s = _first(sents, r"\bmax[- ]?pool\w*")
    m2, s2 = _first(sents, r"\b(?:average|avg|mean)[- ]?pool\w*|\bsubsampl\w*")
    if m2 and re.search(r"global", s2.text[max(0, m2.start() - 12):m2.start()], re.I):
        f["global_pool"] = Fact("avg", s2)
        m2 = None
    if m or m2:
        first = min([x for x in ((m, s, "max"), (m2, s2, "avg")) if x[0]],
                    key=lambda t: (all_sents.index(t[1]) if t[1] in all_sents else 0))
        f["pool"] = Fact(first[2], first[1])
        text = _IMAGE_SPAN.sub(" ", first[1].text)  # "average pooling on 32x32 inputs" is no 32x32 window
        span = _POOL_SPAN.search(text)
        size = re.search(r"(\d+)\s*[x×]\s*\1|\b(\d+)-by-\2", span.group(0)) if span else \
            re.search(r"pool\w* (?:window|region|size)s? (?:of )?(\d+)", text, re.I)
        if size:
            f["pool_size"] = Fact(int(next(g for g in size.groups() if g)), first[1])
    m, s = _first(sents, r"batch[- ]?normali[sz]\w*|\bbatchnorm\b|\bBN\b")
    if m:
        f["norm"] = Fact("batch", s)
    for pat, act in _ACTS:  # the earliest activation mentioned
        m, s = _first(sents, pat)
        if m and ("activation" not in f or sents.index(s) < sents.index(f["activation"].sentence)):
            f["activation"] = Fact(act, s)
    # fully connected layers
    hidden: list[tuple[int, Sentence]] = []
    for s in sents:
        if not re.search(r"fully[- ]connected|\bdense\b|\bhidden\b|\bFC\b|linear layer|perceptron", s.text, re.I):
            continue
        text = _IMAGE_SPAN.sub(" ", s.text)
        found = re.findall(rf"({LIST})\s+(?:hidden\s+)?(?:units|neurons|nodes|hidden units|outputs)\b", text, re.I) + \
            re.findall(rf"hidden layers? (?:of|with) (?:sizes? |widths? )?({LIST})\b", text, re.I)
        for group in found:
            for v in _list(group):
                hidden.append((v, s))
    if hidden:
        cls = f.get("classes")
        if cls is not None and hidden and hidden[-1][0] == cls.value and \
                re.search(r"output|softmax|class", hidden[-1][1].text, re.I):
            hidden = hidden[:-1]
        if hidden:
            f["hidden"] = Fact([v for v, _ in hidden], hidden[0][1])
    m, s = _first(sents, r"dropout\D{0,40}?(0?\.\d+|\d{1,2}\s*%)|(0?\.\d+)\s+dropout")
    if m:
        raw = next(g for g in m.groups() if g)
        p = float(raw.rstrip("% ")) / 100 if raw.endswith("%") else float(raw)
        if 0 < p < 1:
            f["dropout"] = Fact(p, s)
    # transformers
    tr = [s for s in sents if re.search(r"transformer|encoder|attention|heads?\b|d_?model", s.text, re.I)]
    for key, pat in (("layers", rf"({NUM})\s+(?:identical\s+|encoder\s+|transformer\s+|stacked\s+)*(?:layers|blocks)\b|"
                                rf"\bN\s*=\s*(\d+)"),
                     ("heads", rf"({NUM})\s+(?:parallel\s+)?(?:attention\s+)?heads\b|\bh\s*=\s*(\d+)"),
                     ("d_model", r"d_?model\s*=\s*(\d+)|(?:model|hidden|embedding) (?:dimension(?:ality)?|size|width)"
                                 r"\s*(?:of|is|=)?\s*(\d+)"),
                     ("ff_dim", r"(?:feed-?forward|inner[- ]layer|d_?ff)\D{0,30}?(\d{2,})"),
                     ("seq_len", r"(?:sequence|context|maximum) length (?:of |is |= )?(\d+)|sequences? of (\d+) "
                                 r"tokens"),
                     ("vocab", r"vocabular(?:y|ies) (?:size )?(?:of |is )?(?:about )?(\d[\d,]*)|(\d[\d,]*)[- ]"
                               r"(?:token|word) vocabulary")):
        m, s = _first(all_sents if key in ("vocab", "seq_len") else tr, pat)
        if m:
            f[key] = Fact(_n(next(g for g in m.groups() if g)), s)
    m, s = _first(sents, rf"({NUM})\s+residual (?:blocks|units|layers)")
    if m:
        f["blocks"] = Fact(_n(m.group(1)), s)
    return f


# ---- what could not be mapped -------------------------------------------------------------------------
_SKIP_SECTIONS = re.compile(r"^(references|bibliography|related work|prior work|background|introduction|"
                            r"conclusions?|acknowledg)")
_NOT_OURS = re.compile(r"\b(?:et al|prior work|previous(?:ly)?|earlier work|unlike|instead of|rather than|"
                       r"do not|does not|don't|we avoid|replac\w+)\b", re.I)


def unsupported(paper: PaperText) -> list[dict]:
    """Sentences naming layer types without a TinyUOp op or block. Sections about other work
    (introduction, related work, references, ...) and sentences about what the network does
    not use ("unlike [3]", "instead of LSTMs", "we do not use ...") are skipped."""
    rows, seen = [], set()
    for s in paper.sentences:
        if _SKIP_SECTIONS.match(s.heading.lower().lstrip("0123456789. ")) or _NOT_OURS.search(s.text):
            continue
        for pat, what in UNSUPPORTED:
            if re.search(pat, s.text, re.I) and (what, s.text) not in seen:
                seen.add((what, s.text))
                rows.append({"page": s.page, "section": s.heading, "passage": s.text, "item": what,
                             "reason": f"{what} has no TinyUOp op or block: write one with Generate Block, or edit "
                                       "the draft by hand", "source": "rules"})
    return rows
