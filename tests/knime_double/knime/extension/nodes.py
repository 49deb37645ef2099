"""Declaring nodes: categories, `@knext.node`, the port decorators, and the node registry `_nodes`.

Port decorators go below `@knext.node` and are applied bottom-up, so each one puts its port in
front: the ports end up in top-to-bottom order. `@knext.node` instantiates the class once (no
arguments) to check it, registers it and returns a factory in place of the class.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from ._contexts import ConfigurationContext, DialogCreationContext, ExecutionContext  # noqa: F401
from ._param_base import ParameterBase
from ._param_columns import _ColumnChoice
from ._param_group import is_group, parameters_of
from ._ports import (BinaryPortObjectSpec, ConnectionPortObject, ImageFormat, ImagePortObjectSpec, Port,  # noqa: F401
                     PortGroup, PortObject, PortType, port_type)
from ._settings import InvalidParametersError  # noqa: F401


class PythonNode(abc.ABC):
    """Optional base class of a node: a subclass that lacks configure or execute cannot be made,
    so @knext.node fails when the extension loads."""

    @abc.abstractmethod
    def configure(self, config_context: ConfigurationContext, *inputs: Any) -> Any:
        """The output specs (one, or a tuple with one per output port) for the input specs."""

    @abc.abstractmethod
    def execute(self, exec_context: ExecutionContext, *inputs: Any) -> Any:
        """The outputs (one, or a tuple with one per output port, the view last) for the inputs."""


class NodeType(enum.Enum):
    SOURCE = "Source"
    SINK = "Sink"
    LEARNER = "Learner"
    PREDICTOR = "Predictor"
    MANIPULATOR = "Manipulator"
    VISUALIZER = "Visualizer"
    OTHER = "Other"


@dataclass
class Category:
    path: str
    level_id: str
    name: str
    description: str
    icon: str
    after: str = ""
    locked: bool = True


_categories: Dict[str, Category] = {}


def category(path: str, level_id: str, name: str, description: str, icon: str, after: str = "",
             locked: bool = True) -> str:
    """Declare a palette category; returns its path ("<path>/<level_id>") for `@knext.node`."""
    if not level_id or "/" in level_id:
        raise ValueError(f"category '{name}': level_id is one path segment without '/', not {level_id!r}")
    if not isinstance(icon, str) or not icon:
        raise ValueError(f"category '{name}': icon is the path of a 16x16 PNG relative to knime.yml")
    full = f"{str(path).rstrip('/')}/{level_id}"
    _categories[full] = Category(str(path), level_id, name, description, icon, after, locked)
    return full


@dataclass
class ViewDeclaration:
    name: str
    description: str
    static_resources: Optional[str] = None
    index_html_path: Optional[str] = None


@dataclass
class NodeInfo:
    """A registered node: what KNIME lists in the palette and how to make an instance."""
    id: str
    name: str
    node_type: NodeType
    icon_path: str
    category: str
    after: Optional[str]
    keywords: List[str]
    is_deprecated: bool
    is_hidden: bool
    node_factory: Callable[[], Any]
    node_class: type
    input_ports: List[Union[Port, PortGroup]]
    output_ports: List[Union[Port, PortGroup]]
    views: List[ViewDeclaration] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        def ports(ps: List[Union[Port, PortGroup]]) -> List[Dict[str, Any]]:
            return [{"name": p.name, "description": p.description, "type": p.type.id, "type_name": p.type.name,
                     "optional": getattr(p, "optional", False), "group": isinstance(p, PortGroup)} for p in ps]
        return {"id": self.id, "name": self.name, "node_type": self.node_type.value, "icon_path": self.icon_path,
                "category": self.category, "after": self.after, "keywords": list(self.keywords),
                "is_deprecated": self.is_deprecated, "is_hidden": self.is_hidden,
                "input_ports": ports(self.input_ports), "output_ports": ports(self.output_ports),
                "views": [{"name": v.name, "description": v.description} for v in self.views]}


_nodes: Dict[str, NodeInfo] = {}


# ---- port decorators ------------------------------------------------------------------------------
def _declare(attribute: str, port: Union[Port, PortGroup]) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        if not isinstance(cls, type):
            raise TypeError(f"port decorators go below @knext.node, on the class ('{port.name}' got {cls!r})")
        ports = list(cls.__dict__.get(attribute, []))
        ports.insert(0, port)
        setattr(cls, attribute, ports)
        return cls
    return decorate


def _need_port_type(pt: Any, name: str) -> PortType:
    if not isinstance(pt, PortType):
        raise TypeError(f"port '{name}': port_type must be what knext.port_type(...) returned, not {pt!r}")
    return pt


def input_table(name: str, description: str, optional: bool = False):
    return _declare("input_ports", Port(PortType.TABLE, name, description, optional))


def input_port(name: str, description: str, port_type: PortType, optional: bool = False):
    return _declare("input_ports", Port(_need_port_type(port_type, name), name, description, optional))


def input_binary(name: str, description: str, id: str, optional: bool = False):
    return _declare("input_ports", Port(PortType.BINARY, name, description, optional, id))


def input_table_group(name: str, description: str):
    return _declare("input_ports", PortGroup(PortType.TABLE, name, description))


def input_port_group(name: str, description: str, port_type: PortType):
    return _declare("input_ports", PortGroup(_need_port_type(port_type, name), name, description))


def input_binary_group(name: str, description: str, id: str):
    """Any number of binary ports whose bytes are of kind `id` (a list of bytes in execute)."""
    return _declare("input_ports", PortGroup(PortType.BINARY, name, description, id))


def output_table(name: str, description: str):
    return _declare("output_ports", Port(PortType.TABLE, name, description))


def output_port(name: str, description: str, port_type: PortType):
    return _declare("output_ports", Port(_need_port_type(port_type, name), name, description))


def output_binary(name: str, description: str, id: str):
    return _declare("output_ports", Port(PortType.BINARY, name, description, id=id))


def output_image(name: str, description: str):
    """configure returns knext.ImagePortObjectSpec(knext.ImageFormat.PNG); execute returns the bytes."""
    return _declare("output_ports", Port(PortType.IMAGE, name, description))


def output_table_group(name: str, description: str):
    return _declare("output_ports", PortGroup(PortType.TABLE, name, description))


def output_binary_group(name: str, description: str, id: str):
    return _declare("output_ports", PortGroup(PortType.BINARY, name, description, id))


def output_image_group(name: str, description: str):
    """configure returns a list of knext.ImagePortObjectSpec, execute a list of PNG/SVG bytes."""
    return _declare("output_ports", PortGroup(PortType.IMAGE, name, description))


def output_port_group(name: str, description: str, port_type: PortType):
    return _declare("output_ports", PortGroup(_need_port_type(port_type, name), name, description))


def output_view(name: str, description: str, static_resources: Optional[str] = None,
                index_html_path: Optional[str] = None):
    """The node shows a view: execute returns it (a knext view) as its last element."""
    def decorate(cls: type) -> type:
        if not isinstance(cls, type):
            raise TypeError("@knext.output_view goes below @knext.node, on the class")
        if "output_view" in cls.__dict__:
            raise ValueError(f"{cls.__name__}: a node has at most one output view")
        cls.output_view = ViewDeclaration(name, description, static_resources, index_html_path)
        return cls
    return decorate


# ---- @knext.node ----------------------------------------------------------------------------------
def _check_column_ports(cls: type, holder: Any, inputs: List[Union[Port, PortGroup]]) -> None:
    for name, desc in parameters_of(holder).items():
        if is_group(desc):
            _check_column_ports(cls, desc, inputs)
        elif isinstance(desc, _ColumnChoice):
            port = inputs[desc.port_index] if desc.port_index < len(inputs) else None
            if port is None or port.type != PortType.TABLE:
                raise ValueError(f"{cls.__name__}: parameter '{desc.label}' has port_index={desc.port_index}, but input "
                                 f"port {desc.port_index} is {'missing' if port is None else repr(port.name)}; "
                                 "port_index counts all input ports and must point at a table port")


def _refuse_instance_parameters(instance: Any) -> None:
    for name, value in vars(instance).items():
        if isinstance(value, ParameterBase) or is_group(value):
            raise AttributeError(f"{type(instance).__name__}: parameter '{name}' is set on the instance (in __init__); "
                                 "parameters and parameter groups must be class attributes")


def node(name: str, node_type: NodeType, icon_path: str, category: str, after: Optional[str] = None,
         keywords: Optional[List[str]] = None, id: Optional[str] = None, is_deprecated: bool = False,
         is_hidden: bool = False):
    """Register the decorated class as a node; returns a factory that makes node instances."""
    if not isinstance(node_type, NodeType):
        raise TypeError(f"node '{name}': node_type must be a knext.NodeType, not {node_type!r}")

    def decorate(cls: type) -> Callable[[], Any]:
        if not isinstance(cls, type):
            raise TypeError(f"@knext.node('{name}') decorates a class")
        for method in ("configure", "execute"):
            if not callable(getattr(cls, method, None)):
                raise TypeError(f"node '{name}' ({cls.__name__}) must define {method}()")
        inputs, outputs = list(cls.__dict__.get("input_ports", [])), list(cls.__dict__.get("output_ports", []))
        cls.input_ports, cls.output_ports = inputs, outputs
        view = cls.__dict__.get("output_view")
        _check_column_ports(cls, cls, inputs)

        def factory() -> Any:
            instance = cls()
            _refuse_instance_parameters(instance)
            return instance
        factory.__name__, factory.__qualname__ = cls.__name__, cls.__qualname__
        factory.__doc__, factory.__module__ = cls.__doc__, cls.__module__
        factory()  # as KNIME does when it loads the extension: a class that cannot be made fails here
        node_id = id or f"{category}/{name}"
        _nodes[node_id] = NodeInfo(node_id, name, node_type, icon_path, category, after, list(keywords or []),
                                   is_deprecated, is_hidden, factory, cls, inputs, outputs, [view] if view else [])
        return factory
    return decorate
