"""Fill values an integer input cannot hold (±inf, fractions, out of range) are refused at shape
inference, naming the parameter, for pad and masked_fill (they share the check); float inputs keep
infinities (a -inf pad before max pooling is normal)."""
import numpy as np
import pytest

from uop_engine import GraphBuilder, GraphError, analyze, compile_graph


def _graph(op: str, value: float, dtype: str):
    g = GraphBuilder()
    x = g.input((4,), name="x", dtype=dtype)
    if op == "masked_fill":
        g.masked_fill(x, g.input((4,), name="m", dtype="bool"), value=value)
    else:
        g.pad(x, pads=[1, 1], value=value)
    return g.build()


@pytest.mark.parametrize("op", ["pad", "masked_fill"])
@pytest.mark.parametrize("value", [float("-inf"), float("inf")])
def test_infinite_fill_value_on_an_int_input_is_refused_naming_value(op, value):
    with pytest.raises(GraphError) as e:
        analyze(_graph(op, value, "int32"))
    assert e.value.param == "value" and e.value.node == f"{op}_1"
    assert f"fill value {value:g} does not fit the int32 input (whole numbers -2147483648..2147483647)" in str(e.value)
    assert "cast the input to a float dtype" in str(e.value)


def test_out_of_range_and_fractional_fill_values_are_refused_too():
    with pytest.raises(GraphError, match=r"parameter 'value': fill value 300 does not fit the int8 input"):
        analyze(_graph("pad", 300, "int8"))
    with pytest.raises(GraphError, match=r"parameter 'value': fill value 0.5 does not fit the int16 input"):
        analyze(_graph("masked_fill", 0.5, "int16"))


def test_infinite_fill_value_on_a_float_input_is_kept():
    out = compile_graph(_graph("pad", float("-inf"), "float32"))(np.array([[1, 2, 3, 4]], np.float32)).numpy()
    np.testing.assert_array_equal(out, [[-np.inf, 1, 2, 3, 4, -np.inf]])
    g = _graph("masked_fill", float("-inf"), "float32")
    x, m = np.array([[1, 2, 3, 4]], np.float32), np.array([[True, False, True, False]])
    np.testing.assert_array_equal(compile_graph(g)(x=x, m=m).numpy(), [[-np.inf, 2, -np.inf, 4]])


def test_the_pad_node_refuses_an_infinite_value_on_int_input_in_configure():
    from knime_harness import configure_node, load_extension
    import knime.extension as knext
    load_extension()
    from nodes.graph_nodes import GraphInputNode
    from nodes.op_nodes import OP_NODE_FACTORIES as OPS
    x = configure_node(GraphInputNode, {"shape": "4", "dtype": "int32"}).specs[0]
    with pytest.raises(knext.InvalidParametersError) as e:
        configure_node(OPS["pad"], {"value": float("-inf")}, [x])
    assert "parameter 'value'" in str(e.value) and "fill value -inf does not fit the int32 input" in str(e.value)
