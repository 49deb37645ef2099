"""Import Paper: a research paper (PDF) becomes a draft TinyUOp graph with its provenance.

    res = import_paper("lenet.pdf")                       # no LLM: templates + numbers in the text
    res = import_paper("paper.pdf", llm=LLMService(cfg))   # the model drafts, uop_engine checks
    res.graph, res.head                                   # a valid graph (shapes inferred)
    res.provenance   # one row per graph node: page, section, the passage it came from, source
    res.unmapped     # what the paper describes that the graph does not express, and why

Without an LLM the paper must name an architecture our templates know (LeNet, VGG,
ResNet, Transformer, MLP, or a "convolutional network") or describe its layers in numbers
("two convolutional layers with 32 and 64 filters of size 3x3"); numbers stated in the text
override the template's, and every value that came from a template or a default rather than
the paper says so in `provenance`. With an LLM the architecture passages (plus what the
rule-based reading found) go to the model, which answers with graph JSON and a verbatim
quote per node; invalid graphs go back for repair (`llm.structured.complete_graph`), and
each quote is looked up in the paper, so a quote the model made up is flagged, not trusted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .paper_pdf import PaperError, PaperText, Sentence, architecture_passages, read_pdf

__all__ = ["PaperError", "PaperImport", "import_paper", "read_pdf", "recognise", "TEMPLATES"]

_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "thousand": 1000})
NUM = r"(?:\d[\d,]*|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
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


# ---- templates the no-LLM path knows ---------------------------------------------------------------
TEMPLATES: dict[str, dict[str, Any]] = {
    "LeNet-5": {"family": "cnn", "pattern": r"\blenet(?:[- ]?5)?\b", "input": (1, 32, 32), "convs": [6, 16],
                "kernel": 5, "padding": 0, "pool": "avg", "pool_size": 2, "activation": "tanh",
                "hidden": [120, 84], "classes": 10, "norm": "none"},
    "VGG": {"family": "cnn", "pattern": r"\bvgg(?:[- ]?(?:11|13|16|19))?(?:[- ]?net)?\b", "input": (3, 32, 32),
            "convs": [64, 128, 256, 512], "kernel": 3, "padding": -1, "pool": "max", "pool_size": 2,
            "activation": "relu", "hidden": [512], "classes": 10, "norm": "none"},
    "ResNet": {"family": "resnet", "pattern": r"\bresnets?(?:[- ]?\d+)?\b|\bresidual (?:networks?|blocks?|learning)\b",
               "input": (3, 32, 32), "stem": 16, "stages": [16, 32, 64], "blocks": 1, "activation": "relu",
               "classes": 10},
    "Transformer encoder": {"family": "transformer", "pattern": r"\btransformers?\b|\bself-attention\b|"
                            r"\bmulti-head(?:ed)? (?:self-)?attention\b", "seq_len": 64, "d_model": 64, "heads": 4,
                            "layers": 2, "ff_dim": 0, "vocab": 0, "activation": "gelu", "classes": 2},
    "CNN": {"family": "cnn", "pattern": r"\bconvolutional (?:neural )?networks?\b|\bCNNs?\b|\bconvnets?\b",
            "input": (1, 28, 28), "convs": [32, 64], "kernel": 3, "padding": -1, "pool": "max", "pool_size": 2,
            "activation": "relu", "hidden": [128], "classes": 10, "norm": "none"},
    "MLP": {"family": "mlp", "pattern": r"\bmulti-?layer perceptrons?\b|\bMLPs?\b|\bfeed-?forward (?:neural )?"
            r"networks?\b|\bfully[- ]connected (?:neural )?networks?\b", "input": (784,), "hidden": [128],
            "activation": "relu", "classes": 10},
}
_PRIORITY = ["Transformer encoder", "ResNet", "LeNet-5", "VGG", "CNN", "MLP"]

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
def _first(sentences: Iterable[Sentence], pattern: str, group: int = 1, flags=re.I):
    for s in sentences:
        m = re.search(pattern, s.text, flags)
        if m:
            return m, s
    return None, None


_POOL_SPAN = re.compile(r"(?:\d+\s*[x×]\s*\d+|\d+-by-\d+)\s*(?:\w+\s+){0,2}(?:max|average|avg|mean)?[- ]?"
                        r"(?:pool\w*|subsampl\w*)|(?:pool\w*|subsampl\w*)[^.;]{0,40}?(?:\d+\s*[x×]\s*\d+)", re.I)
_IMAGE_SPAN = re.compile(r"\d+\s*[x×]\s*\d+(?:\s*[x×]\s*\d+)?(?=[^.;]{0,25}\b(?:input|image|pixel|resolution|rgb|"
                         r"gr[ae]y))|(?:input|image|images|pixel|resolution)\w*[^.;]{0,25}?\d+\s*[x×]\s*\d+"
                         r"(?:\s*[x×]\s*\d+)?", re.I)


def _facts_from_text(sents: list[Sentence], all_sents: list[Sentence]) -> dict[str, Fact]:
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


# ---- choosing a template ------------------------------------------------------------------------------
def _named(all_sents: list[Sentence]) -> tuple[str | None, Sentence | None]:
    counts: dict[str, tuple[int, Sentence]] = {}
    for name in _PRIORITY:
        pat = TEMPLATES[name]["pattern"]
        hits = [s for s in all_sents if re.search(pat, s.text, re.I)]
        if hits:
            counts[name] = (sum(len(re.findall(pat, s.text, re.I)) for s in hits), hits[0])
    if not counts:
        return None, None
    best = max(counts, key=lambda n: (counts[n][0], -_PRIORITY.index(n)))
    if best in ("CNN", "VGG") and "LeNet-5" in counts:
        best = "LeNet-5"  # a LeNet paper speaks of convolutional networks throughout
    return best, counts[best][1]


def _family_from_facts(f: dict[str, Fact]) -> str | None:
    if "heads" in f or "d_model" in f:
        return "transformer"
    if "blocks" in f:
        return "resnet"
    if "convs" in f:
        return "cnn"
    if "hidden" in f:
        return "mlp"
    return None


@dataclass
class Draft:
    graph: Any
    head: str
    template: str
    provenance: list[dict]
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Fact] = field(default_factory=dict)


def recognise(paper: PaperText, name: str | None = None) -> Draft | None:
    """The rule-based draft (see module docs), or None when the paper names no known
    architecture and gives no layer numbers."""
    sents = architecture_passages(paper)
    f = _facts_from_text(sents, paper.sentences)
    tname, tsent = _named(paper.sentences)
    family = TEMPLATES[tname]["family"] if tname else _family_from_facts(f)
    if family is None:
        return None
    if tname is None:
        tname = {"cnn": "CNN", "mlp": "MLP", "resnet": "ResNet", "transformer": "Transformer encoder"}[family]
        how, tsent = f"default ({tname} template)", None
    else:
        how = f"template {tname}"
    t = TEMPLATES[tname]

    def get(key: str, default_key: str | None = None) -> Fact:
        if key in f:
            return f[key]
        if default_key and default_key in f:
            return f[default_key]
        return Fact(t.get(key), tsent, how)

    graph_name = name or re.sub(r"[^a-z0-9]+", "_", (paper.title or tname).lower()).strip("_")[:40] or "paper"
    build = {"cnn": _build_cnn, "mlp": _build_mlp, "resnet": _build_resnet, "transformer": _build_transformer}[family]
    draft = build(get, f, graph_name)
    draft.template, draft.facts = tname, f
    return draft


class _Recorder:
    """GraphBuilder plus one provenance row per node."""

    def __init__(self, name: str):
        from uop_engine.builder import GraphBuilder
        self.b = GraphBuilder(name)
        self.rows: list[dict] = []
        self.warnings: list[str] = []

    def add(self, op: str, *inputs: str, fact: Fact | None = None, what: str = "", **params) -> str:
        ref = self.b.add(op, *inputs, **params)
        s = fact.sentence if fact else None
        how = fact.how if fact else "structure"
        self.rows.append({"node": ref, "op": op, "params": _short(params), "page": s.page if s else None,
                          "section": s.heading if s else "", "passage": s.text if s else "",
                          "source": how, "note": what})
        return ref

    def finish(self, ref: str, template: str = "") -> Draft:
        self.add("output", ref, fact=None, what="graph output", name="y")
        return Draft(self.b.build(check=False), ref, template, self.rows, self.warnings)


def _short(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("name",))


def _image_input(r: _Recorder, get, f, vector_ok: bool = False) -> tuple[str, tuple]:
    fact = get("input", "dataset_input")
    shape = tuple(fact.value)
    if len(shape) == 3 and shape[0] == 0:  # channels not stated: dataset, template or 1
        c = f["dataset_input"].value[0] if "dataset_input" in f else (get("input").value[0] if fact.how != "paper"
                                                                      else 1)
        shape = (c or 1,) + shape[1:]
        r.warnings.append(f"the paper gives a {shape[1]}x{shape[2]} input without its channels; {shape[0]} assumed")
    x = r.add("input", fact=fact, what="per-sample input shape", name="x", shape=shape)
    return x, shape


def _classes(get) -> Fact:
    return get("classes", "dataset_classes")


def _build_cnn(get, f, name: str) -> Draft:
    r = _Recorder(name)
    x, shape = _image_input(r, get, f)
    if len(shape) != 3:
        shape = (1,) + tuple(shape[-2:]) if len(shape) == 2 else shape
    convs = get("convs")
    values = convs.value if convs.how == "paper" else [(o, None) for o in convs.value]
    kernel, padding, act = get("kernel"), get("padding"), get("activation")
    pool, pool_size, norm = get("pool"), get("pool_size"), get("norm")
    stride = f.get("stride", Fact(1, None, "default"))
    sentences = f["conv_sentences"].value if convs.how == "paper" else [convs.sentence] * len(values)
    prev = t_default = 32
    h = x
    for i, ((out, k), s) in enumerate(zip(values, sentences)):
        out = out or (prev * 2 if i else t_default)
        prev = out
        kk = k or (kernel.value if kernel.value else 3)
        fact = Fact(out, s, convs.how)
        h = r.add("conv_block", h, fact=fact, what=f"convolution {i + 1}", out_channels=int(out), kernel_size=int(kk),
                  stride=int(stride.value or 1), padding=int(padding.value if padding.value is not None else -1),
                  norm=norm.value or "none", activation=act.value or "relu", pool=pool.value or "none",
                  pool_size=int(pool_size.value or 2))
    h = r.add("flatten", h, what="to a vector for the classifier")
    drop = f.get("dropout")
    for units in (get("hidden").value or []):
        hidden = get("hidden")
        h = r.add("linear", h, fact=hidden, what="fully connected layer", out_features=int(units))
        h = r.add(act.value or "relu", h, fact=act, what="activation")
        if drop:
            h = r.add("dropout", h, fact=drop, what="dropout", p=float(drop.value))
    cls = _classes(get)
    h = r.add("linear", h, fact=cls, what="classifier (one output per class)", out_features=int(cls.value))
    draft = r.finish(h)
    return _fit_spatial(draft, r)


def _fit_spatial(draft: Draft, r: _Recorder) -> Draft:
    """Valid convolutions shrink small inputs below the kernel (a 32x32 LeNet fed 28x28): pad them."""
    from uop_engine.errors import GraphError
    from uop_engine.infer import analyze
    try:
        analyze(draft.graph)
        return draft
    except GraphError as first:
        g = draft.graph
        for node in g.nodes:
            if node.op == "conv_block" and node.params.get("padding", -1) == 0:
                node.params["padding"] = -1
        try:
            analyze(g)
        except GraphError:
            raise PaperError(f"the draft from the paper's numbers does not fit together: {first}. Configure an LLM "
                             "or build the network by hand") from None
        for row in draft.provenance:
            if row["op"] == "conv_block":
                row["params"] = row["params"].replace("padding=0", "padding=-1")
                row["note"] += " ('same' padding: the paper's valid convolutions do not fit the input size)"
        draft.warnings.append("convolutions use 'same' padding: with the paper's unpadded convolutions the input "
                              f"becomes too small ({first})")
        return draft


def _build_mlp(get, f, name: str) -> Draft:
    r = _Recorder(name)
    x, shape = _image_input(r, get, f)
    h = r.add("flatten", x, what="to a vector") if len(shape) > 1 else x
    act, drop = get("activation"), f.get("dropout")
    for units in get("hidden").value:
        h = r.add("linear", h, fact=get("hidden"), what="hidden layer", out_features=int(units))
        h = r.add(act.value or "relu", h, fact=act, what="activation")
        if drop:
            h = r.add("dropout", h, fact=drop, what="dropout", p=float(drop.value))
    cls = _classes(get)
    h = r.add("linear", h, fact=cls, what="output layer", out_features=int(cls.value))
    return _checked(r.finish(h))


def _build_resnet(get, f, name: str) -> Draft:
    r = _Recorder(name)
    x, shape = _image_input(r, get, f)
    act = get("activation")
    stages = get("stages")
    if "convs" in f:  # channel numbers stated in the text
        stages = Fact([o for o, _ in f["convs"].value if o] or stages.value, f["convs"].sentence)
    blocks = get("blocks")
    per_stage = max(1, int(blocks.value) // max(1, len(stages.value))) if blocks.how == "paper" else int(blocks.value)
    h = r.add("conv_block", x, fact=get("stem") if "convs" not in f else stages, what="stem convolution",
              out_channels=int(stages.value[0]), kernel_size=3, activation=act.value or "relu")
    for i, ch in enumerate(stages.value):
        for j in range(per_stage):
            h = r.add("residual_block", h, fact=blocks if blocks.how == "paper" else stages,
                      what=f"stage {i + 1}, block {j + 1}", out_channels=int(ch), stride=2 if (i and not j) else 1,
                      activation=act.value or "relu")
    h = r.add("global_avg_pool", h, fact=f.get("global_pool"), what="global average pooling")
    cls = _classes(get)
    h = r.add("linear", h, fact=cls, what="classifier", out_features=int(cls.value))
    return _checked(r.finish(h))


def _build_transformer(get, f, name: str) -> Draft:
    r = _Recorder(name)
    seq, d, vocab = get("seq_len"), get("d_model"), get("vocab")
    heads = get("heads")
    if int(d.value) % int(heads.value):
        r.warnings.append(f"model width {d.value} is not divisible by {heads.value} heads")
    if vocab.value:
        x = r.add("input", fact=seq, what="token ids", name="tokens", shape=(int(seq.value),), dtype="int32")
        h = r.add("embedding", x, fact=vocab, what="token embedding", num_embeddings=int(vocab.value),
                  embedding_dim=int(d.value))
    else:
        h = r.add("input", fact=seq, what="sequence of feature vectors", name="x", shape=(int(seq.value), int(d.value)))
    for i in range(int(get("layers").value)):
        h = r.add("transformer_encoder", h, fact=get("layers"), what=f"encoder layer {i + 1}",
                  num_heads=int(heads.value), ff_dim=int(get("ff_dim").value or 0),
                  dropout=float(f["dropout"].value) if "dropout" in f else 0.0,
                  activation=get("activation").value if get("activation").value in ("relu", "gelu") else "gelu")
    h = r.add("mean", h, what="average over the sequence", axis=(1,))
    cls = _classes(get)
    h = r.add("linear", h, fact=cls, what="classifier", out_features=int(cls.value))
    return _checked(r.finish(h))


def _checked(draft: Draft) -> Draft:
    from uop_engine.errors import GraphError
    from uop_engine.infer import analyze
    try:
        analyze(draft.graph)
    except GraphError as e:
        raise PaperError(f"the draft from the paper's numbers does not fit together: {e}. Configure an LLM or build "
                         "the network by hand") from None
    return draft


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


# ---- the LLM path ---------------------------------------------------------------------------------------
LLM_SYSTEM = ("You turn the architecture described in a research paper into a TinyUOp graph. Reproduce the paper's "
              "network (input shape per sample, layers in order, sizes, activations, number of outputs) using only "
              "the listed ops and blocks. Reply with ONE JSON object in a ```json fence, of the form\n"
              '{"graph": <graph in the format below>, "provenance": {"<node id>": "<verbatim quote (at most 200 '
              'characters) from the passages that this node comes from>"}, "unmapped": [{"passage": "<verbatim '
              'quote>", "reason": "<why no listed op expresses it>"}]}\n'
              "Quote the paper exactly: quotes are checked against its text. Put anything the ops cannot express in "
              "\"unmapped\" instead of inventing ops or parameters.")


def _llm_prompt(paper: PaperText, passages: list[Sentence], draft: Draft | None) -> str:
    lines = [f"Paper: {paper.title or paper.source}", "", "Passages that describe the network ([page, section]):"]
    lines += [f"[p.{s.page}{', ' + s.heading if s.heading else ''}] {s.text}" for s in passages]
    if draft is not None:
        facts = {k: v.value for k, v in draft.facts.items() if k != "conv_sentences"}
        lines += ["", f"A rule-based reading matched the template '{draft.template}' and found: {facts}. Use it only "
                      "where the passages agree."]
    lines += ["", "Build the network as a TinyUOp graph."]
    return "\n".join(lines)


def _llm_draft(paper: PaperText, llm: Any, draft: Draft | None, max_rounds: int) -> tuple[Any, list, list, int]:
    from .structured import complete_graph, extract_json
    passages = architecture_passages(paper)
    if not passages:
        passages = paper.sentences[:80]
    graph, rounds, replies = complete_graph(llm, _llm_prompt(paper, passages, draft), system=LLM_SYSTEM,
                                            max_rounds=max_rounds)
    last = replies[-1] if isinstance(replies[-1], str) else getattr(replies[-1], "text", "")
    try:
        value = extract_json(last)
    except ValueError:
        value = {}
    prov = value.get("provenance") if isinstance(value, dict) else None
    prov = prov if isinstance(prov, dict) else {}
    rows = []
    for node in graph.nodes:
        quote = prov.get(node.id)
        quote = quote if isinstance(quote, str) else ""
        s = paper.locate(quote) if quote else None
        if s is not None:
            row = {"page": s.page, "section": s.heading, "passage": s.text, "source": "llm (quote found in the paper)"}
        elif quote:
            row = {"page": None, "section": "", "passage": quote, "source": "llm (quote NOT found in the paper: check)"}
        else:
            row = {"page": None, "section": "", "passage": "", "source": "llm (no passage given)"}
        rows.append({"node": node.id, "op": node.op, "params": _short(node.params), **row, "note": ""})
    unm = value.get("unmapped") if isinstance(value, dict) else None
    unmapped = []
    for item in unm if isinstance(unm, list) else []:
        if isinstance(item, dict) and isinstance(item.get("passage"), str):
            s = paper.locate(item["passage"])
            unmapped.append({"page": s.page if s else None, "section": s.heading if s else "",
                             "passage": s.text if s else item["passage"], "item": str(item.get("item", ""))[:80],
                             "reason": str(item.get("reason") or "the model found no op for it")[:500],
                             "source": "llm"})
    return graph, rows, unmapped, rounds


# ---- the entry point -----------------------------------------------------------------------------------
@dataclass
class PaperImport:
    graph: Any
    head: str
    source: str                      # "llm" or "template"
    template: str                    # the template the rules matched ("" if none)
    provenance: list[dict]
    unmapped: list[dict]
    paper: PaperText
    rounds: int = 0                  # LLM rounds used (0 without an LLM)
    warnings: list[str] = field(default_factory=list)
    usage: dict = field(default_factory=dict)      # tokens of the calls that reached the model (no cache hits)
    calls: list[dict] = field(default_factory=list)  # one row per LLM call: call, cached, ok, tokens, latency

    PROVENANCE_COLUMNS = ("node", "op", "params", "page", "section", "passage", "source", "note")
    UNMAPPED_COLUMNS = ("page", "section", "passage", "item", "reason", "source")

    def provenance_frame(self):
        import pandas as pd
        return pd.DataFrame([{c: r.get(c) for c in self.PROVENANCE_COLUMNS} for r in self.provenance],
                            columns=list(self.PROVENANCE_COLUMNS))

    def unmapped_frame(self):
        import pandas as pd
        return pd.DataFrame([{c: r.get(c) for c in self.UNMAPPED_COLUMNS} for r in self.unmapped],
                            columns=list(self.UNMAPPED_COLUMNS))


def _head(graph) -> str:
    outs = graph.output_refs()
    return outs[-1] if outs else graph.nodes[-1].id


def import_paper(source: Any, llm: Any = None, *, password: str | None = None, max_rounds: int = 3,
                 name: str | None = None, timeout_s: float = 30.0, paper: PaperText | None = None) -> PaperImport:
    """See module docs. `source`: a PDF path, an http(s) URL or the PDF's bytes (or pass `paper`)."""
    from .structured import GraphRepairError
    paper = paper or read_pdf(source, password=password, timeout_s=timeout_s)
    draft = recognise(paper, name)
    unmapped = unsupported(paper)
    warnings = list(draft.warnings) if draft else []
    calls: list[dict] = []
    if llm is not None:
        calls_before = len(getattr(llm, "calls", []))
        try:
            graph, rows, llm_unmapped, rounds = _llm_draft(paper, llm, draft, max_rounds)
        except GraphRepairError as e:
            if draft is None:
                raise PaperError(f"{e}; the paper also names no architecture the templates know") from None
            warnings.append(f"the LLM gave no valid graph ({e}); the rule-based draft from template "
                            f"'{draft.template}' is used instead")
            calls = _call_rows(getattr(llm, "calls", [])[calls_before:])  # paid for even though unused
        else:
            known = {r["passage"] for r in llm_unmapped}
            unmapped = llm_unmapped + [u for u in unmapped if u["passage"] not in known]
            if name:
                graph.name = name
            calls = _call_rows(getattr(llm, "calls", [])[calls_before:])
            return PaperImport(graph, _head(graph), "llm", draft.template if draft else "", rows, unmapped, paper,
                               rounds, warnings, _usage(calls), calls)
    if draft is None:
        raise PaperError(f"{paper.source}: found no architecture to draft without an LLM: the paper names none of "
                         f"{', '.join(_PRIORITY)} and states no layer sizes (e.g. '32 filters of size 3x3', '128 "
                         "hidden units'). Configure an LLM, or build the graph by hand")
    return PaperImport(draft.graph, _head(draft.graph), "template", draft.template, draft.provenance, unmapped, paper,
                       0, warnings, _usage(calls), calls)


def _call_rows(calls: list[dict]) -> list[dict]:
    """LLMService.calls records as table rows: tokens, cache hit, attempts, latency of each call."""
    return [{"call": i + 1, "cached": bool(c.get("cached")), "ok": bool(c.get("ok")),
             "input_tokens": int((c.get("usage") or {}).get("input_tokens", 0)),
             "output_tokens": int((c.get("usage") or {}).get("output_tokens", 0)),
             "attempts": int(c.get("attempts") or 0), "latency_s": float(c.get("latency_s") or 0.0)}
            for i, c in enumerate(calls)]


def _usage(calls: list[dict]) -> dict:
    """Tokens of the calls that reached the model (cache hits cost nothing now)."""
    tot = {"input_tokens": 0, "output_tokens": 0}
    for c in calls:
        if c["ok"] and not c["cached"]:
            for k in tot:
                tot[k] += c[k]
    return tot
