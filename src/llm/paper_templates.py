"""The rule-based draft: pick the architecture template the paper names (or the family its numbers
imply), override the template's values with the numbers stated in the text, and build the graph with
one provenance row per node saying whether each value came from the paper, a template or a default."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .paper_facts import Fact, facts_from_text
from .paper_pdf import PaperError, PaperText, Sentence, architecture_passages
from .paper_result import params_text

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
PRIORITY = ["Transformer encoder", "ResNet", "LeNet-5", "VGG", "CNN", "MLP"]


# ---- choosing a template ------------------------------------------------------------------------------
def _named(all_sents: list[Sentence]) -> tuple[str | None, Sentence | None]:
    counts: dict[str, tuple[int, Sentence]] = {}
    for name in PRIORITY:
        pat = TEMPLATES[name]["pattern"]
        hits = [s for s in all_sents if re.search(pat, s.text, re.I)]
        if hits:
            counts[name] = (sum(len(re.findall(pat, s.text, re.I)) for s in hits), hits[0])
    if not counts:
        return None, None
    best = max(counts, key=lambda n: (counts[n][0], -PRIORITY.index(n)))
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
    f = facts_from_text(sents, paper.sentences)
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

    def get(key: str, default_key: str | None = None, template_only: bool = False) -> Fact:
        if template_only:
            return Fact(t.get(key), tsent, how)
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
        self.rows.append({"node": ref, "op": op, "params": params_text(params), "page": s.page if s else None,
                          "section": s.heading if s else "", "passage": s.text if s else "",
                          "source": how, "note": what})
        return ref

    def finish(self, ref: str) -> Draft:
        self.add("output", ref, fact=None, what="graph output", name="y")
        return Draft(self.b.build(check=False), ref, "", self.rows, self.warnings)


def _image_input(r: _Recorder, get, f) -> tuple[str, tuple]:
    fact = get("input", "dataset_input")
    shape = tuple(fact.value)
    if len(shape) == 3 and shape[0] == 0:  # channels not stated: dataset, template or 1
        templ = get("input", template_only=True).value or ()
        c = f["dataset_input"].value[0] if "dataset_input" in f else templ[0] if len(templ) == 3 else 1
        shape = (c or 1,) + shape[1:]
        r.warnings.append(f"the paper gives a {shape[1]}x{shape[2]} input without its channels; {shape[0]} assumed")
    x = r.add("input", fact=fact, what="per-sample input shape", name="x", shape=shape)
    return x, shape


def _classes(get) -> Fact:
    return get("classes", "dataset_classes")


def _build_cnn(get, f, name: str) -> Draft:
    r = _Recorder(name)
    x, _ = _image_input(r, get, f)
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
    stated = [o for o, _ in f["convs"].value if o] if "convs" in f else []
    if stated:  # channel numbers stated in the text
        stages = Fact(stated, f["convs"].sentence)
    blocks = get("blocks")
    per_stage = max(1, int(blocks.value) // max(1, len(stages.value))) if blocks.how == "paper" else int(blocks.value)
    h = r.add("conv_block", x, fact=stages if stated else get("stem"), what="stem convolution",
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
