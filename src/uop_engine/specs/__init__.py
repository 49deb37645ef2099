"""Composable specs for every op and block, generated from the op table (see specs/base.py).

    from uop_engine import specs
    net = specs.Sequential([specs.ConvBlock(out_channels=8), specs.Flatten(), specs.Linear(out_features=10)])
    model = net.build(input_shape=(1, 8, 8))          # tinygrad-callable CompiledModel
    graph = net.to_graph(input_shape=(1, 8, 8))       # the graph IR the KNIME nodes use

Op spec classes (`specs.Conv2d`, `specs.ConvBlock`, `specs.ReLU`, ...) are made on first access.
"""
from .base import OpSpec, Spec, SpecError, available, class_names, from_dict, spec_class
from .compose import Parallel, Residual, Sequential
from .model import Model, Ref, model_from

__all__ = ["Spec", "OpSpec", "SpecError", "Sequential", "Residual", "Parallel", "Model", "Ref", "spec_class",
           "class_names", "from_dict", "model_from", "available"]


def __getattr__(name: str):  # PEP 562: op spec classes are generated from the op table on demand
    if name[:1].isupper():
        from .base import spec_by_name
        return spec_by_name(name)
    raise AttributeError(f"module 'uop_engine.specs' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(class_names()))
