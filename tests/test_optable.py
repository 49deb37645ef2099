"""The op table is complete: every op has every entry the rest of the product reads."""
import json

import pytest

from uop_engine import CATEGORIES, OPS, GraphError, list_ops
from uop_engine.params import KINDS

REQUIRED_OPS = """exp2 log2 sin sqrt reciprocal neg trunc exp log abs relu leaky_relu gelu silu sigmoid tanh softmax
log_softmax add sub mul div pow maximum minimum less less_equal greater greater_equal equal not_equal where cast sum
mean max min prod argmax var reshape permute transpose expand pad slice flip flatten squeeze unsqueeze concat split
matmul linear conv1d conv2d conv_transpose2d batch_norm layer_norm group_norm rms_norm embedding max_pool2d avg_pool2d
adaptive_avg_pool2d global_avg_pool dropout scaled_dot_product_attention multi_head_attention input output
conv_block residual_block mlp se_block transformer_encoder""".split()


def test_required_coverage():
    names = {o.name for o in list_ops()}
    assert not [n for n in REQUIRED_OPS if n not in names]


@pytest.mark.parametrize("op", list_ops(), ids=lambda o: o.name)
def test_every_op_has_every_entry(op):
    assert op.name.isidentifier() and op.label and op.doc.endswith(".")
    assert op.category in CATEGORIES
    assert callable(op.infer)
    assert callable(op.lower) != callable(op.expand), "exactly one of lower/expand"
    assert op.is_block == (op.category in ("blocks", "user"))
    for p in op.params:
        assert p.kind in KINDS and p.doc, f"{op.name}.{p.name} needs a kind and a doc"
        assert p.coerce(p.default) == p.default
        json.dumps(p.default)  # defaults are JSON values
    assert len({p.name for p in op.params}) == len(op.params)
    # ONNX export entry: a function, or "expand" for blocks
    assert op.onnx is not None, f"{op.name} has no ONNX export entry"
    assert callable(op.onnx) or (op.onnx == "expand" and op.is_block)


def test_node_classes_and_docs_come_from_the_table():
    from nodes.op_nodes import OP_NODE_CLASSES
    for op in list_ops():
        if op.name == "input":
            continue  # the Graph Input node has its own class (shape from a table)
        cls = OP_NODE_CLASSES[op.name]
        assert op.doc in cls.__doc__
        for p in op.params:
            assert p.name in cls.__doc__


def test_unknown_op_suggests_names():
    from uop_engine import get_op
    with pytest.raises(GraphError, match="unknown op 'conv'.*conv1d"):
        get_op("conv")


def test_bad_param_values_are_named():
    from uop_engine.params import resolve_params
    with pytest.raises(GraphError, match="parameter 'out_features'.*below the minimum"):
        resolve_params(OPS["linear"].params, {"out_features": 0}, node="fc")
    with pytest.raises(GraphError, match="unknown parameter 'out_feature'.*out_features"):
        resolve_params(OPS["linear"].params, {"out_feature": 3}, node="fc")
    with pytest.raises(GraphError, match="'max' is not one of"):
        resolve_params(OPS["conv_block"].params, {"norm": "max"})


def test_blocks_and_only_blocks_export_through_their_expansion():
    for op in list_ops():
        assert op.is_block == (op.onnx == "expand"), op.name


def test_importing_the_op_table_loads_neither_onnx_nor_tinygrad():
    import subprocess
    import sys
    from pathlib import Path
    src = Path(__file__).resolve().parent.parent / "src"
    code = "import sys, uop_engine.ops, uop_engine.graph, uop_engine.infer; print(sorted(m for m in ('onnx', 'tinygrad', 'torch') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(src)})
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
