"""Built-in composite blocks. Each shows as one node and expands to atomic ops to compile.

`expand(sub, refs, p, types)` adds child ops through `sub.add(op, inputs, name, **params)`
and returns the output refs; shape inference, lowering and ONNX export all go through the
expansion, so a block needs nothing else.
"""
from __future__ import annotations

from ..errors import GraphError
from ..optable import OpDef, register
from ..params import Param, INT, INTS, FLOAT, BOOL, STR

ACTIVATIONS = ("relu", "gelu", "silu", "leaky_relu", "tanh", "sigmoid", "elu", "mish", "hardswish", "none")


def _act(sub, x, act, name="act"):
    return x if act == "none" else sub.add(act, [x], name)


def _infer_via_expand(ts, p):  # replaced by the engine: blocks infer through their expansion
    raise NotImplementedError


def _conv_block(sub, refs, p, types):
    k = p["kernel_size"]
    pad = p["padding"] if p["padding"] >= 0 else k // 2
    x = sub.add("conv2d", refs[:1], "conv", out_channels=p["out_channels"], kernel_size=(k,), stride=(p["stride"],),
                padding=(pad,), bias=p["norm"] == "none")
    if p["norm"] == "batch":
        x = sub.add("batch_norm", [x], "norm")
    elif p["norm"] == "group":
        g = p["groups"]
        if p["out_channels"] % g:
            raise GraphError(f"{g} groups do not divide {p['out_channels']} channels", param="groups")
        x = sub.add("group_norm", [x], "norm", num_groups=g)
    x = _act(sub, x, p["activation"])
    if p["pool"] != "none":
        x = sub.add(f"{p['pool']}_pool2d", [x], "pool", kernel_size=(p["pool_size"],))
    if p["dropout"] > 0:
        x = sub.add("dropout", [x], "dropout", p=p["dropout"])
    return [x]


register(OpDef("conv_block", "Conv Block", "blocks", "Conv2D, normalisation, activation and optional pooling/dropout.",
               (Param("out_channels", INT, 16, "output channels", min=1),
                Param("kernel_size", INT, 3, "square kernel size", min=1),
                Param("stride", INT, 1, "stride", min=1),
                Param("padding", INT, -1, "padding (-1 = 'same' for odd kernels)", min=-1),
                Param("norm", STR, "batch", "normalisation", choices=("batch", "group", "none")),
                Param("groups", INT, 8, "groups for group norm", min=1, advanced=True),
                Param("activation", STR, "relu", "activation", choices=ACTIVATIONS),
                Param("pool", STR, "none", "pooling after the activation", choices=("none", "max", "avg")),
                Param("pool_size", INT, 2, "pooling window", min=1),
                Param("dropout", FLOAT, 0.0, "dropout probability", min=0.0, max=0.99)),
               ("x",), _infer_via_expand, onnx="expand", expand=_conv_block, keywords=("cnn", "convolution")))


def _residual(sub, refs, p, types):
    x = refs[0]
    cin = types[0].shape[1]
    cout = p["out_channels"] or cin
    k = p["kernel_size"]
    h = sub.add("conv2d", [x], "conv1", out_channels=cout, kernel_size=(k,), stride=(p["stride"],), padding=(k // 2,), bias=False)
    h = _act(sub, sub.add("batch_norm", [h], "bn1"), p["activation"], "act1")
    h = sub.add("conv2d", [h], "conv2", out_channels=cout, kernel_size=(k,), padding=(k // 2,), bias=False)
    h = sub.add("batch_norm", [h], "bn2")
    skip = x
    if p["stride"] != 1 or cout != cin:  # projection shortcut when the shape changes
        skip = sub.add("conv2d", [x], "proj", out_channels=cout, kernel_size=(1,), stride=(p["stride"],), bias=False)
        skip = sub.add("batch_norm", [skip], "proj_bn")
    return [_act(sub, sub.add("add", [h, skip], "add"), p["activation"], "act_out")]


register(OpDef("residual_block", "Residual Block", "blocks",
               "Two conv-BN layers plus a (projected) skip connection, ResNet style.",
               (Param("out_channels", INT, 0, "output channels (0 = same as input)", min=0),
                Param("kernel_size", INT, 3, "odd kernel size", min=1, check=lambda v: None if v % 2 else "must be odd"),
                Param("stride", INT, 1, "stride of the first conv", min=1),
                Param("activation", STR, "relu", "activation", choices=ACTIVATIONS)),
               ("x",), _infer_via_expand, onnx="expand", expand=_residual, keywords=("resnet", "skip")))


def _mlp(sub, refs, p, types):
    x = refs[0]
    for i, h in enumerate(p["hidden"]):
        x = sub.add("linear", [x], f"fc{i}", out_features=h)
        if p["norm"] == "layer":
            x = sub.add("layer_norm", [x], f"ln{i}")
        x = _act(sub, x, p["activation"], f"act{i}")
        if p["dropout"] > 0:
            x = sub.add("dropout", [x], f"drop{i}", p=p["dropout"])
    return [sub.add("linear", [x], "out", out_features=p["out_features"])]


register(OpDef("mlp", "MLP", "blocks", "Stack of Linear layers with activations over the last axis.",
               (Param("hidden", INTS, (64,), "hidden layer sizes, e.g. 128,64", min=1),
                Param("out_features", INT, 10, "output features", min=1),
                Param("activation", STR, "relu", "activation", choices=ACTIVATIONS),
                Param("norm", STR, "none", "normalisation after each hidden layer", choices=("none", "layer")),
                Param("dropout", FLOAT, 0.0, "dropout after each hidden layer", min=0.0, max=0.99)),
               ("x",), _infer_via_expand, onnx="expand", expand=_mlp, keywords=("perceptron", "feedforward")))


def _se(sub, refs, p, types):
    x = refs[0]
    c = types[0].shape[1]
    r = max(1, c // p["reduction"])
    s = sub.add("global_avg_pool", [x], "squeeze")
    s = sub.add("relu", [sub.add("linear", [s], "fc1", out_features=r)], "relu")
    s = sub.add("sigmoid", [sub.add("linear", [s], "fc2", out_features=c)], "gate")
    s = sub.add("reshape", [s], "to_map", shape=(0, 0) + (1,) * (len(types[0].shape) - 2))
    return [sub.add("mul", [x, s], "excite")]


register(OpDef("se_block", "Squeeze-Excitation", "blocks", "Reweights channels by a learned gate from their means.",
               (Param("reduction", INT, 16, "channel reduction ratio", min=1),), ("x",), _infer_via_expand,
               expand=_se, onnx="expand", keywords=("squeeze", "excitation", "channel attention")))


def _encoder(sub, refs, p, types):
    x = refs[0]
    e = types[0].shape[-1]
    ff = p["ff_dim"] or 4 * e

    def attn(h):
        h = sub.add("multi_head_attention", [h], "attn", num_heads=p["num_heads"], causal=p["causal"])
        return sub.add("dropout", [h], "attn_drop", p=p["dropout"]) if p["dropout"] > 0 else h

    def ffn(h):
        h = _act(sub, sub.add("linear", [h], "ff1", out_features=ff), p["activation"], "ff_act")
        h = sub.add("linear", [h], "ff2", out_features=e)
        return sub.add("dropout", [h], "ff_drop", p=p["dropout"]) if p["dropout"] > 0 else h

    if p["norm_first"]:
        x = sub.add("add", [x, attn(sub.add("layer_norm", [x], "ln1"))], "res1")
        return [sub.add("add", [x, ffn(sub.add("layer_norm", [x], "ln2"))], "res2")]
    x = sub.add("layer_norm", [sub.add("add", [x, attn(x)], "res1")], "ln1")
    return [sub.add("layer_norm", [sub.add("add", [x, ffn(x)], "res2")], "ln2")]


register(OpDef("transformer_encoder", "Transformer Encoder", "blocks",
               "One encoder layer: multi-head self-attention and a feed-forward net, each with a residual.",
               (Param("num_heads", INT, 4, "attention heads", min=1),
                Param("ff_dim", INT, 0, "feed-forward width (0 = 4 x embed_dim)", min=0),
                Param("dropout", FLOAT, 0.0, "dropout", min=0.0, max=0.99),
                Param("activation", STR, "gelu", "feed-forward activation", choices=ACTIVATIONS),
                Param("norm_first", BOOL, True, "pre-norm (True) or post-norm (False)"),
                Param("causal", BOOL, False, "mask future positions")),
               ("x",), _infer_via_expand, onnx="expand", expand=_encoder, keywords=("transformer", "encoder", "attention")))
