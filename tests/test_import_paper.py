"""Import Paper on PDFs made here with fpdf2: a paper describing a small CNN becomes a valid
graph with the passage of every node; encrypted, scanned (no text), damaged and non-PDF files
give errors naming the fix; the LLM path (real SDKs over real HTTP to a scripted local server)
repairs a bad graph, checks the model's quotes against the paper and falls back to the rules;
the KNIME node infers the graph's shapes in configure and keeps the key out of its outputs."""
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

pytest.importorskip("fpdf")
pytest.importorskip("pypdf")
from fpdf import FPDF  # noqa: E402

from llm import LLMConfig, LLMService  # noqa: E402
from llm.paper import PaperError, import_paper, read_pdf  # noqa: E402
from llm_server import ScriptedLLMServer  # noqa: E402
from uop_engine.infer import analyze, summarize  # noqa: E402

KEY = "sk-paper-0123456789abcdefghijKLMN"
TITLE = "A Small Convolutional Network for Digits"
CNN_PAPER = [
    ("", TITLE),
    ("Abstract", "We present a compact convolutional neural network for recognising handwritten digits from the "
                 "MNIST dataset."),
    ("1 Introduction", "Handwritten digit recognition is a classic benchmark."),
    ("2 Related Work", "Prior work used LSTM layers for sequence models."),
    ("3 Network Architecture", "The input is a 28x28 grayscale image. The network has two convolutional layers with "
                               "16 and 32 filters of size 3x3, each followed by batch normalization, a ReLU "
                               "activation and 2x2 max pooling. The feature maps are flattened and passed to a fully "
                               "connected layer with 64 hidden units and a dropout of 0.25. The classifier also "
                               "applies local response normalization to the feature maps. The output layer has 10 "
                               "units with softmax over the 10 classes."),
    ("4 Experiments", "We train with Adam for 10 epochs and reach 99.1% accuracy on the test set."),
]


def make_pdf(path, paragraphs, user_password=None, pages=1):
    pdf = FPDF()
    pdf.set_title(paragraphs[0][1] if paragraphs else "")
    for _ in range(pages):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for heading, body in paragraphs:
            if heading:
                pdf.set_font("Helvetica", "B", 12)
                pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
                pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    if user_password:
        pdf.set_encryption(owner_password="owner-pw", user_password=user_password)
    pdf.output(str(path))
    return str(path)


@pytest.fixture
def cnn_pdf(tmp_path):
    return make_pdf(tmp_path / "small_cnn.pdf", CNN_PAPER)


def _row(res, op, i=0):
    return [r for r in res.provenance if r["op"] == op][i]


# ---- the rule-based path (no LLM) ------------------------------------------------------------------
def test_small_cnn_paper_becomes_the_described_graph(cnn_pdf):
    res = import_paper(cnn_pdf)
    assert res.source == "template" and res.rounds == 0 and res.warnings == []
    assert [n.op for n in res.graph.nodes] == ["input", "conv_block", "conv_block", "flatten", "linear", "relu",
                                               "dropout", "linear", "output"]
    convs = [n.params for n in res.graph.nodes if n.op == "conv_block"]
    assert [(p["out_channels"], p["kernel_size"], p["norm"], p["activation"], p["pool"], p["pool_size"])
            for p in convs] == [(16, 3, "batch", "relu", "max", 2), (32, 3, "batch", "relu", "max", 2)]
    assert [n.params.get("out_features") for n in res.graph.nodes if n.op == "linear"] == [64, 10]
    assert [n.params["p"] for n in res.graph.nodes if n.op == "dropout"] == [0.25]
    s = summarize(res.graph)
    assert s.inputs == {"x": (None, 1, 28, 28)} and s.outputs == {"y": (None, 10)}
    # params: conv 1*16*9 (no bias before batch norm) + bn 2*16, conv 16*32*9 + bn 2*32, fc 32*7*7*64+64, fc 64*10+10
    assert s.n_params == (144 + 32) + (4608 + 64) + (1568 * 64 + 64) + 650
    # every node that the paper gave points at its sentence, page and section
    conv = _row(res, "conv_block")
    assert conv["page"] == 1 and conv["section"] == "3 Network Architecture" and conv["source"] == "paper"
    assert "16 and 32 filters of size 3x3" in conv["passage"]
    assert "28x28 grayscale" in _row(res, "input")["passage"]
    assert "64 hidden units" in _row(res, "linear", 0)["passage"]
    assert "10 units with softmax" in _row(res, "linear", 1)["passage"]
    assert _row(res, "flatten")["source"] == "structure"
    # LRN is described but has no op; the LSTM of "prior work" is not this paper's network
    assert [(u["item"], u["section"]) for u in res.unmapped] == [("local response normalization",
                                                                  "3 Network Architecture")]
    assert "Generate Block" in res.unmapped[0]["reason"]
    frame = res.provenance_frame()
    assert list(frame.columns) == list(res.PROVENANCE_COLUMNS) and len(frame) == len(res.graph.nodes)


def test_drafted_graph_compiles_and_runs(cnn_pdf):
    from uop_engine import compile_graph
    res = import_paper(cnn_pdf, name="paper_cnn")
    assert res.graph.name == "paper_cnn"
    model = compile_graph(res.graph, seed=0)
    from tinygrad import Tensor
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    out = model(Tensor(x)).numpy()
    assert out.shape == (3, 10) and np.isfinite(out).all()


def test_named_architecture_without_numbers_uses_the_template(tmp_path):
    paper = [("", "Revisiting LeNet-5"),
             ("2 Model", "We use the classic LeNet-5 architecture with tanh units and average pooling on 32x32 "
                         "grayscale inputs. It predicts 10 classes.")]
    res = import_paper(make_pdf(tmp_path / "lenet.pdf", paper))
    assert res.template == "LeNet-5"
    convs = [n for n in res.graph.nodes if n.op == "conv_block"]
    assert [c.params["out_channels"] for c in convs] == [6, 16]
    assert {c.params["kernel_size"] for c in convs} == {5} and {c.params["activation"] for c in convs} == {"tanh"}
    assert all(r["source"] == "template LeNet-5" for r in res.provenance if r["op"] == "conv_block")
    assert summarize(res.graph).outputs == {"y": (None, 10)}


def test_transformer_paper(tmp_path):
    paper = [("", "Tiny Transformers for Sentiment"),
             ("3 Model Architecture", "The encoder is a stack of N = 2 identical layers, each with 4 attention heads "
                                      "and a model dimension of 32. Sequences of 16 tokens from a 1000-word "
                                      "vocabulary are embedded. The classifier predicts 2 classes.")]
    res = import_paper(make_pdf(tmp_path / "tr.pdf", paper))
    ops = [n.op for n in res.graph.nodes]
    assert ops.count("transformer_encoder") == 2 and "embedding" in ops
    enc = next(n for n in res.graph.nodes if n.op == "transformer_encoder")
    assert enc.params["num_heads"] == 4
    emb = next(n for n in res.graph.nodes if n.op == "embedding")
    assert (emb.params["num_embeddings"], emb.params["embedding_dim"]) == (1000, 32)
    assert summarize(res.graph).outputs == {"y": (None, 2)}


def test_paper_without_a_known_architecture_names_the_fix(tmp_path):
    path = make_pdf(tmp_path / "bio.pdf", [("", "Protein folding in yeast"),
                                           ("Methods", "We measured the folding rate of thirty proteins at room "
                                                       "temperature over several weeks in the laboratory.")])
    with pytest.raises(PaperError, match="found no architecture to draft without an LLM.*Configure an LLM"):
        import_paper(path)


def test_numbers_are_whole_tokens(tmp_path):
    """'often' holds no 'ten' and '5x5 kernels' states a kernel size, not 5 filters: the two layers the
    paper counts get the template's widths (32, then doubled) and the stated kernel."""
    paper = [("", "Filters in Practice"),
             ("2 Network Architecture", "In our experiments the convolutional network uses often filters that are "
                                        "small. The network has two convolutional layers, each with 5x5 kernels, "
                                        "followed by 2x2 max pooling. It predicts 10 classes.")]
    res = import_paper(make_pdf(tmp_path / "often.pdf", paper))
    convs = [n.params for n in res.graph.nodes if n.op == "conv_block"]
    assert [(p["out_channels"], p["kernel_size"]) for p in convs] == [(32, 5), (64, 5)]
    assert all("5x5 kernels" in r["passage"] for r in res.provenance if r["op"] == "conv_block")


def test_channel_less_input_takes_the_templates_channels(tmp_path):
    """A VGG paper with '64x64 input images' and no dataset: VGG's template input is RGB, so 3 channels
    (not 1), with a warning saying so; height and width are the paper's."""
    paper = [("", "A VGG Network for Textures"),
             ("3 Architecture", "We follow the VGG design with max pooling on 64x64 input images and stacks of 3x3 "
                                "convolutions. The classifier predicts 10 classes.")]
    res = import_paper(make_pdf(tmp_path / "vgg.pdf", paper))
    assert res.template == "VGG" and summarize(res.graph).inputs == {"x": (None, 3, 64, 64)}
    assert res.warnings == ["the paper gives a 64x64 input without its channels; 3 assumed"]
    assert _row(res, "input")["source"] == "paper" and "64x64 input images" in _row(res, "input")["passage"]


def test_conv_kernel_before_pooling_is_no_pooling_window(tmp_path):
    """In '3x3 convolutions and max pooling' the 3x3 is the kernel: the pooling window stays the
    template's 2 (a 3x3 window would shrink the 64x64 input to nothing by the fourth stage)."""
    paper = [("", "A VGG Network for Textures"),
             ("3 Architecture", "We follow the VGG design with stacks of 3x3 convolutions and max pooling on 64x64 "
                                "input images. The classifier predicts 10 classes.")]
    res = import_paper(make_pdf(tmp_path / "vgg3.pdf", paper))
    convs = [n.params for n in res.graph.nodes if n.op == "conv_block"]
    assert {(p["kernel_size"], p["pool"], p["pool_size"]) for p in convs} == {(3, "max", 2)}
    assert summarize(res.graph).outputs == {"y": (None, 10)}

def test_resnet_stage_widths_from_the_template_are_labelled_so(tmp_path):
    """The paper counts convolutions per block but gives no widths: the stem and stage widths are the
    template's (16, 32, 64), and their provenance says so instead of claiming the paper."""
    paper = [("", "Residual Learning for Small Images"),
             ("3 Architecture", "We train a ResNet on CIFAR-10. Each residual block holds two convolutional layers "
                                "with a shortcut connection.")]
    res = import_paper(make_pdf(tmp_path / "res.pdf", paper))
    rows = [r for r in res.provenance if r["op"] in ("conv_block", "residual_block")]
    assert [r["params"].split(",")[0] for r in rows] == ["out_channels=16"] * 2 + ["out_channels=32",
                                                                                 "out_channels=64"]
    assert {r["source"] for r in rows} == {"template ResNet"}
    assert _row(res, "input")["source"] == "dataset CIFAR-10"


# ---- files that cannot be read ---------------------------------------------------------------------
def test_encrypted_pdf_asks_for_the_password(tmp_path):
    path = make_pdf(tmp_path / "enc.pdf", CNN_PAPER, user_password="s3cret")
    with pytest.raises(PaperError, match="encrypted with a password: give the password"):
        import_paper(path)
    with pytest.raises(PaperError, match="the given password is wrong"):
        import_paper(path, password="nope")
    res = import_paper(path, password="s3cret")
    assert summarize(res.graph).outputs == {"y": (None, 10)}


def test_pdf_without_text_says_run_ocr(tmp_path):
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 80, 60, style="F")  # a "scanned" page: drawing, no text layer
    pdf.output(str(tmp_path / "scan.pdf"))
    with pytest.raises(PaperError, match=r"no extractable text \(1 page\(s\)\).*Run OCR"):
        read_pdf(tmp_path / "scan.pdf")


def test_damaged_missing_and_non_pdf_files(tmp_path, cnn_pdf):
    data = open(cnn_pdf, "rb").read()
    (tmp_path / "cut.pdf").write_bytes(data[:700])
    with pytest.raises(PaperError, match="damaged and cannot be read.*download it again"):
        read_pdf(tmp_path / "cut.pdf")
    (tmp_path / "page.pdf").write_text("<html><body>Not a paper</body></html>")
    with pytest.raises(PaperError, match=r"is not a PDF \(it starts with '<html>"):
        read_pdf(tmp_path / "page.pdf")
    with pytest.raises(PaperError, match="PDF file not found"):
        read_pdf(tmp_path / "missing.pdf")
    with pytest.raises(PaperError, match="is a folder"):
        read_pdf(tmp_path)
    with pytest.raises(PaperError, match="no PDF given"):
        read_pdf("  ")
    with pytest.raises(PaperError, match="only http:// and https://"):
        read_pdf("ftp://example.invalid/x.pdf")
    assert read_pdf(data).pages[0].startswith(TITLE)  # bytes work too


def test_sentences_keep_page_and_section(tmp_path):
    paper = read_pdf(make_pdf(tmp_path / "two.pdf", CNN_PAPER, pages=2))
    assert paper.title == TITLE and len(paper.pages) == 2
    found = paper.locate("two convolutional layers with 16 and 32 filters")
    assert found is not None and found.page == 1 and found.heading == "3 Network Architecture"
    assert {s.page for s in paper.sentences} == {1, 2}
    assert paper.locate("a sentence that is not in the paper at all") is None


class _PdfServer:
    """Serves one PDF at /paper.pdf on 127.0.0.1 (anything else: 404)."""

    def __init__(self, data: bytes):
        body = data

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                ok = self.path == "/paper.pdf"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/pdf" if ok else "text/plain")
                payload = body if ok else b"not found"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.srv.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.srv.shutdown()
        self.srv.server_close()


def test_pdf_from_a_url(cnn_pdf):
    with _PdfServer(open(cnn_pdf, "rb").read()) as srv:
        res = import_paper(srv.url + "/paper.pdf")
        assert res.paper.source == srv.url + "/paper.pdf" and summarize(res.graph).outputs == {"y": (None, 10)}
        with pytest.raises(PaperError, match="answered HTTP 404"):
            read_pdf(srv.url + "/other.pdf")


# ---- the LLM path ----------------------------------------------------------------------------------
def _graph(second_units=64):
    return {"format": "tinyuop.graph", "version": 1, "name": "digits_cnn", "nodes": [
        {"id": "x", "op": "input", "params": {"name": "x", "shape": [1, 28, 28]}, "inputs": []},
        {"id": "c1", "op": "conv_block", "params": {"out_channels": 16, "kernel_size": 3, "norm": "batch",
                                                    "pool": "max"}, "inputs": ["x"]},
        {"id": "c2", "op": "conv_block", "params": {"out_channels": 32, "kernel_size": 3, "norm": "batch",
                                                    "pool": "max"}, "inputs": ["c1"]},
        {"id": "f", "op": "flatten", "params": {}, "inputs": ["c2"]},
        {"id": "fc1", "op": "linear", "params": {"out_features": second_units}, "inputs": ["f"]},
        {"id": "r", "op": "relu", "params": {}, "inputs": ["fc1"]},
        {"id": "fc2", "op": "linear", "params": {"out_features": 10}, "inputs": ["r"]},
        {"id": "y", "op": "output", "params": {"name": "logits"}, "inputs": ["fc2"]}]}


def _reply(graph, provenance, unmapped=()):
    return "```json\n" + json.dumps({"graph": graph, "provenance": provenance, "unmapped": list(unmapped)}) + "\n```"


PROV = {"x": "The input is a 28x28 grayscale image.",
        "c1": "two convolutional layers with 16 and 32 filters of size 3x3",
        "c2": "two convolutional layers with 16 and 32 filters of size 3x3",
        "fc1": "a fully connected layer with 64 hidden units",
        "fc2": "The output layer has 10 units with softmax over the 10 classes.",
        "r": "Each layer uses a carefully tuned swish activation."}  # made up: not in the paper
UNM = [{"passage": "The classifier also applies local response normalization to the feature maps.",
        "item": "LRN", "reason": "no local response normalization op"}]


def _svc(srv, provider, **kw):
    return LLMService(LLMConfig(provider=provider, model="paper-model", base_url=srv.base_url,
                                backoff_base_s=0.001, **kw), api_key=KEY)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_llm_draft_with_checked_quotes(cnn_pdf, provider):
    broken = _graph()
    broken["nodes"][4]["op"] = "conv2d"  # a 4-D op on the flattened vector: shape inference fails
    with ScriptedLLMServer([_reply(broken, PROV), _reply(_graph(), PROV, UNM)]) as srv:
        res = import_paper(cnn_pdf, _svc(srv, provider))
        prompt = json.dumps(srv.requests[0]["json"])
        repair = json.dumps(srv.requests[1]["json"])
    assert res.source == "llm" and res.rounds == 2 and res.template == "CNN"
    assert "16 and 32 filters of size 3x3" in prompt and "Prior work used LSTM" not in prompt  # architecture passages
    assert "node 'fc1' (conv2d)" in repair  # the validation problem went back to the model
    assert summarize(res.graph).outputs == {"logits": (None, 10)}
    rows = {r["node"]: r for r in res.provenance}
    assert rows["c1"]["page"] == 1 and rows["c1"]["section"] == "3 Network Architecture"
    assert rows["c1"]["source"] == "llm (quote found in the paper)" and "filters of size 3x3" in rows["c1"]["passage"]
    assert rows["r"]["source"] == "llm (quote NOT found in the paper: check)" and rows["r"]["page"] is None
    assert rows["f"]["source"] == "llm (no passage given)"
    assert res.unmapped[0]["source"] == "llm" and res.unmapped[0]["page"] == 1
    # one row per call with the tokens the server reported (its stand-in tokenizer: len(text) // 4)
    replies = [_reply(broken, PROV), _reply(_graph(), PROV, UNM)]
    assert [(c["call"], c["cached"], c["ok"], c["output_tokens"]) for c in res.calls] == \
        [(1, False, True, len(replies[0]) // 4), (2, False, True, len(replies[1]) // 4)]
    assert all(c["input_tokens"] > 0 and c["attempts"] == 1 for c in res.calls)
    assert res.usage == {"input_tokens": sum(c["input_tokens"] for c in res.calls),
                         "output_tokens": sum(c["output_tokens"] for c in res.calls)}


def test_llm_garbage_falls_back_to_the_rules_with_a_warning(cnn_pdf, tmp_path):
    garbage = ["I am sorry, I cannot read papers.", '{"graph": {"nodes": [{"id": "x", "op": "warp"}]}}']
    with ScriptedLLMServer(garbage) as srv:
        res = import_paper(cnn_pdf, _svc(srv, "openai"), max_rounds=2)
    assert res.source == "template" and "the LLM gave no valid graph" in res.warnings[0]
    assert summarize(res.graph).outputs == {"y": (None, 10)}
    bio = make_pdf(tmp_path / "bio.pdf", [("", "Yeast"), ("Methods", "We grew yeast for thirty days in a dark "
                                                                       "room and counted the colonies by hand.")])
    with ScriptedLLMServer(garbage) as srv:
        with pytest.raises(PaperError, match="no valid TinyUOp graph in 2 round.*names no architecture"):
            import_paper(bio, _svc(srv, "anthropic"), max_rounds=2)


MISFIT_TRANSFORMER = [("", "Tiny Transformers for Sentiment"),
                      ("3 Model Architecture", "The encoder is a stack of 2 identical layers, each with 5 attention "
                                               "heads and d_model = 64. Sequences of 16 tokens from a 1000-word "
                                               "vocabulary are embedded. The classifier predicts 2 classes.")]


def _transformer_graph():
    from uop_engine.builder import GraphBuilder
    b = GraphBuilder("tiny_transformer")
    h = b.embedding(b.input((16,), name="tokens", dtype="int32"), num_embeddings=1000, embedding_dim=64)
    h = b.transformer_encoder(b.transformer_encoder(h, num_heads=4), num_heads=4)
    b.output(b.linear(b.mean(h, axis=(1,)), out_features=2), name="logits")
    return b.build().to_dict()


def test_misfit_numbers_do_not_stop_an_llm_import(tmp_path):
    """5 heads do not divide d_model = 64, so no rule-based draft fits; with an LLM the model's graph
    is used, without one the error names the misfit and says to configure an LLM."""
    path = make_pdf(tmp_path / "misfit.pdf", MISFIT_TRANSFORMER)
    with pytest.raises(PaperError, match="does not fit together.*5 heads do not divide embed_dim 64.*Configure an "
                                         "LLM"):
        import_paper(path)
    with ScriptedLLMServer([_reply(_transformer_graph(), {"embedding_1": "1000-word vocabulary"})]) as srv:
        res = import_paper(path, _svc(srv, "anthropic"))
    assert res.source == "llm" and res.template == "" and res.rounds == 1 and res.warnings == []
    assert summarize(res.graph).outputs == {"logits": (None, 2)}
    assert next(r for r in res.provenance if r["op"] == "embedding")["source"] == "llm (quote found in the paper)"
    # neither the model nor the rules give a graph: the error says why for both
    with ScriptedLLMServer(["no graph here", "still none"]) as srv:
        with pytest.raises(PaperError, match="no valid TinyUOp graph in 2 round.*the rule-based draft failed too: "
                                             ".*5 heads do not divide"):
            import_paper(path, _svc(srv, "openai"), max_rounds=2)


def test_unused_rule_draft_warnings_stay_off_llm_results(tmp_path):
    """The rule draft warns that the 28x28 input has no channels; the LLM's graph (1 channel stated) is
    returned without that warning. When the LLM fails, its warning comes first, then the draft's."""
    paper = [(h, t.replace("28x28 grayscale image", "28x28 image").replace(" from the MNIST dataset", ""))
             for h, t in CNN_PAPER]
    path = make_pdf(tmp_path / "nochannels.pdf", paper)
    channels = "the paper gives a 28x28 input without its channels; 1 assumed"
    assert import_paper(path).warnings == [channels]  # the rule draft's own warning
    with ScriptedLLMServer([_reply(_graph(), PROV)]) as srv:
        res = import_paper(path, _svc(srv, "openai"))
    assert res.source == "llm" and res.template == "CNN" and res.warnings == []
    with ScriptedLLMServer(["I cannot help with that."]) as srv:
        res = import_paper(path, _svc(srv, "anthropic"), max_rounds=1)
    assert res.source == "template" and len(res.warnings) == 2
    assert res.warnings[0].startswith("the LLM gave no valid graph") and res.warnings[1] == channels


def test_llm_answer_cached_then_offline(cnn_pdf, tmp_path):
    cache = str(tmp_path / "cache")
    with ScriptedLLMServer([_reply(_graph(), PROV)]) as srv:
        first = import_paper(cnn_pdf, _svc(srv, "anthropic", cache_dir=cache))
        url = srv.base_url
    offline = LLMService(LLMConfig(provider="anthropic", model="paper-model", base_url=url, cache_dir=cache,
                                   offline=True))  # no server, no key: the cache answers
    again = import_paper(cnn_pdf, offline)
    assert again.graph.hash() == first.graph.hash() and again.provenance == first.provenance
    # the cached answer reports the tokens it cost once, but costs nothing now
    assert [c["cached"] for c in again.calls] == [True] and again.calls[0]["output_tokens"] > 0
    assert again.usage == {"input_tokens": 0, "output_tokens": 0} and first.usage["output_tokens"] > 0


# ---- the KNIME node --------------------------------------------------------------------------------
def test_node_without_llm_infers_shapes_in_configure(cnn_pdf):
    import knime_harness as kh
    import nodes.import_paper_node as ipn
    params = {"pdf": cnn_pdf, "graph_name": "from_paper"}
    specs = kh.configure_node(ipn.ImportPaperNode, params).specs
    assert specs[0].data["head_shape"] == [None, 10] and specs[0].graph.name == "from_paper"
    assert specs[1].column_names == ["node", "op", "params", "page", "section", "passage", "source", "note"]
    res = kh.run_node(ipn.ImportPaperNode, params)
    graph_port, prov, unm, calls = res.outputs
    assert graph_port.graph.name == "from_paper" and len(graph_port.graph.nodes) == 9
    assert calls.to_pandas().empty and specs[3].column_names == ["call", "cached", "ok", "input_tokens",
                                                                 "output_tokens", "attempts", "latency_s"]
    prov, unm = prov.to_pandas(), unm.to_pandas()
    assert list(prov["op"])[:3] == ["input", "conv_block", "conv_block"]
    assert prov.loc[prov["op"] == "conv_block", "page"].tolist() == [1, 1]
    assert unm["item"].tolist() == ["local response normalization"]
    # the drafted graph goes on like any graph port: into Train Model / Run Inference / ONNX
    assert graph_port.graph.hash() == import_paper(cnn_pdf, name="from_paper").graph.hash()


def test_node_errors_name_the_setting(tmp_path, cnn_pdf):
    import knime_harness as kh
    import nodes.import_paper_node as ipn
    with pytest.raises(Exception, match="'PDF file or URL' is empty"):
        kh.configure_node(ipn.ImportPaperNode, {})
    with pytest.raises(Exception, match="PDF file not found"):
        kh.configure_node(ipn.ImportPaperNode, {"pdf": str(tmp_path / "none.pdf")})
    enc = make_pdf(tmp_path / "enc.pdf", CNN_PAPER, user_password="pw")
    with pytest.raises(Exception, match="PDF password"):
        kh.configure_node(ipn.ImportPaperNode, {"pdf": enc})
    with pytest.raises(Exception, match="no credential named 'pdfpw'"):
        kh.configure_node(ipn.ImportPaperNode, {"pdf": enc, "password_credential": "pdfpw"})
    res = kh.run_node(ipn.ImportPaperNode, {"pdf": enc, "password_credential": "pdfpw"},
                      credentials={"pdfpw": ("", "pw")})
    assert len(res.outputs[0].graph.nodes) == 9
    with pytest.raises(Exception, match="'Base URL' is required"):
        kh.configure_node(ipn.ImportPaperNode, {"pdf": cnn_pdf, "use_llm": True,
                                                "llm": {"provider": "openai_compatible"}})


def test_node_with_llm_keeps_the_key_out(cnn_pdf, tmp_path, caplog, capfd):
    import knime_harness as kh
    import nodes.import_paper_node as ipn
    caplog.set_level(logging.DEBUG)
    cache = str(tmp_path / "cache")
    creds = {"llm": ("me", KEY)}
    with ScriptedLLMServer([{"status": 429}, _reply(_graph(), PROV, UNM)]) as srv:
        llm = {"provider": "anthropic", "model": "paper-model", "base_url": srv.base_url, "credential": "llm",
               "cache_folder": cache}
        params = {"pdf": cnn_pdf, "use_llm": True, "llm": llm}
        specs = kh.configure_node(ipn.ImportPaperNode, params, credentials=creds).specs
        assert specs[0] is None and len(srv.requests) == 0  # nothing cached yet: no call in configure
        res = kh.run_node(ipn.ImportPaperNode, params, credentials=creds)
        sent = srv.requests[1]["headers"]
        assert len(srv.requests) == 2 and KEY in (sent.get("x-api-key") or sent.get("authorization", ""))  # retried
        # now cached: configure gives the full spec without a request
        specs = kh.configure_node(ipn.ImportPaperNode, params, credentials=creds).specs
        assert specs[0].data["head_shape"] == [None, 10] and len(srv.requests) == 2
    graph_port, prov, unm, calls = res.outputs
    prov, unm, calls = prov.to_pandas(), unm.to_pandas(), calls.to_pandas()
    assert graph_port.graph.name == "digits_cnn"
    # one call, retried once after the 429; its tokens as the server counted them
    assert calls[["call", "cached", "ok", "attempts"]].values.tolist() == [[1, False, True, 2]]
    assert calls["output_tokens"].tolist() == [len(_reply(_graph(), PROV, UNM)) // 4]
    assert calls["input_tokens"].iloc[0] > 0
    assert f"{calls['input_tokens'].iloc[0]} input + {calls['output_tokens'].iloc[0]} output tokens" in \
        res.progress[-1][1]
    assert prov.set_index("node").loc["r", "source"] == "llm (quote NOT found in the paper: check)"
    assert unm["source"].tolist()[0] == "llm"
    out, err = capfd.readouterr()
    blob = out + err + caplog.text + prov.to_csv() + unm.to_csv() + json.dumps(graph_port.graph.to_dict()) + \
        json.dumps(specs[0].data) + "".join(open(p, encoding="utf-8", errors="replace").read()
                                            for p in _files(cache))
    assert caplog.text  # the SDKs did log at DEBUG ...
    assert KEY not in blob  # ... and no log line, output or cache file holds the key


def _files(folder):
    import os
    return [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]


@pytest.mark.parametrize("provider", ["openai_compatible", "anthropic"])
def test_node_sends_temperature_and_max_tokens(cnn_pdf, provider):
    """The node's LLM settings reach the server: max tokens always, temperature for OpenAI-style servers
    (the Anthropic SDK here has no sampling parameters)."""
    import knime_harness as kh
    import nodes.import_paper_node as ipn
    with ScriptedLLMServer([_reply(_graph(), PROV)]) as srv:
        llm = {"provider": provider, "model": "paper-model", "base_url": srv.base_url, "temperature": 0.7,
               "max_tokens": 1234, "credential": "llm"}
        kh.run_node(ipn.ImportPaperNode, {"pdf": cnn_pdf, "use_llm": True, "llm": llm},
                    credentials={"llm": ("me", KEY)})
        body = srv.requests[0]["json"]
    assert body["max_tokens"] == 1234 and body["model"] == "paper-model"
    if provider == "anthropic":
        assert "temperature" not in body
    else:
        assert body["temperature"] == 0.7


def test_node_refuses_temperature_and_max_tokens_out_of_range(cnn_pdf):
    import knime_harness as kh
    import nodes.import_paper_node as ipn
    for bad, msg in (({"temperature": 2.5}, "2.5 is > the max value 2.0"),
                     ({"temperature": -0.1}, "-0.1 is smaller than the minimal value 0.0"),
                     ({"max_tokens": 0}, "0 is smaller than the minimal value 1")):
        with pytest.raises(kh.InvalidSettingsError, match=msg):
            kh.configure_node(ipn.ImportPaperNode, {"pdf": cnn_pdf, "use_llm": True, "llm": bad})
    defaults = kh.default_settings(ipn.ImportPaperNode)["model"]["llm"]
    assert defaults["temperature"] == 0.0 and defaults["max_tokens"] == 4096
