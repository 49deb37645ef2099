"""`category`, `node` and the port decorators of knime.extension (re-exported by nodes.py).

As in KNIME: `@knext.node` registers a `_Node` in `_nodes` (keyed by node id, default the
class name) and returns a *factory function*, not the class. Reading the declared ports
instantiates the class with no arguments (three times: input ports, output ports, view).
Each factory call creates a node, refuses parameters defined on the instance, injects
`input_ports` / `output_ports` / `output_view` and wraps configure/execute so lazy column
views they return are materialised. Port decorators insert at the front, so decorators
listed top to bottom give the port order top to bottom.
"""
from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Callable, List, Optional

import knime.extension.parameter as kp
from knime.api.schema import _ColumnarView

from .nodes import ConnectionPortObject, Port, PortGroup, PortType, ViewDeclaration


class _Category:
    def __init__(self, path, level_id, name, description, icon, after="", locked=True) -> None:
        self._path, self._level_id, self._name = path, level_id, name
        self._description, self._icon, self._after, self._locked = description, icon, after, locked

    def to_dict(self) -> dict:
        return {"path": self._path, "level_id": self._level_id, "name": self._name,
                "description": self._description, "icon": self._icon, "after": self._after, "locked": self._locked}


_categories: List[_Category] = []


def category(path: str, level_id: str, name: str, description: str, icon: str, after: str = "",
             locked: bool = True) -> str:
    """Register a palette category; returns its full path ("<path>/<level_id>")."""
    _categories.append(_Category(path, level_id, name, description, icon, after, locked))
    return path + level_id if path.endswith("/") else f"{path}/{level_id}"


class NodeType(Enum):
    SOURCE = "Source"
    SINK = "Sink"
    LEARNER = "Learner"
    PREDICTOR = "Predictor"
    MANIPULATOR = "Manipulator"
    VISUALIZER = "Visualizer"
    OTHER = "Other"


def _attr_from_instance_or_factory(node_factory, attr):
    instance = node_factory()  # KNIME instantiates the node class here, with no arguments
    if getattr(instance, attr, None) is not None:
        return getattr(instance, attr)
    return getattr(node_factory, attr, None)


def _unwrap_results(func: Callable) -> Callable:
    """Materialise lazy `_ColumnarView`s (e.g. `schema.append(...)`) returned by configure/execute."""
    def wrapper(*args, **kwargs):
        results = func(*args, **kwargs)
        if isinstance(results, (list, tuple)):
            return [r.get() if isinstance(r, _ColumnarView) else r for r in results]
        return results.get() if isinstance(results, _ColumnarView) else results
    return wrapper


class _Node:
    """A registered node: metadata, declared ports and view, and the wrapped factory."""

    def __init__(self, node_factory, id, name, is_deprecated, is_hidden, node_type, icon_path, category, after,
                 keywords) -> None:
        self.id, self.name, self.node_type = id, name, node_type
        self.is_deprecated, self.is_hidden = is_deprecated, is_hidden
        self.icon_path, self.category, self.after, self.keywords = icon_path, category, after, keywords
        self.input_ports = _attr_from_instance_or_factory(node_factory, "input_ports") or []
        self.output_ports = _attr_from_instance_or_factory(node_factory, "output_ports") or []
        self.views = [_attr_from_instance_or_factory(node_factory, "output_view")]

        def port_injector(*args, **kwargs):
            node = node_factory(*args, **kwargs)
            self.assert_no_composed_parameters(node)
            node.input_ports = self.input_ports
            node.output_ports = self.output_ports
            node.output_view = self.views[0]
            node.execute = _unwrap_results(node.execute)
            node.configure = _unwrap_results(node.configure)
            return node

        self.node_factory = port_injector

    def assert_no_composed_parameters(self, node_instance) -> None:
        if any(isinstance(v, kp._BaseParameter) for v in node_instance.__dict__.values()):
            raise AttributeError(
                "Only parameter group composition is allowed at the node-level. Individual parameters need to be "
                "moved out of the node's `__init__` method and be either defined at the class-level or "
                "encapsulated in a parameter group.")

    def to_dict(self) -> dict:
        def ports(port_list):
            out, index = [], 0
            for p in port_list:
                if not isinstance(p.name, str) or not isinstance(p.description, str):
                    raise TypeError(f"port name and description must be str, got {p.name!r}, {p.description!r}")
                out.append({"name": p.name, "type_string": _port_to_str(p), "description": p.description,
                            "description_index": index, "group": isinstance(p, PortGroup),
                            "optional": bool(getattr(p, "optional", False))})
                if isinstance(p, Port) and not p.optional:
                    index += 1
            return out
        return {"id": self.id, "name": self.name, "node_type": self.node_type, "is_deprecated": self.is_deprecated,
                "is_hidden": self.is_hidden, "icon_path": self.icon_path, "category": self.category,
                "after": self.after, "keywords": self.keywords or [],
                "input_port_specifier": ports(self.input_ports), "output_port_specifier": ports(self.output_ports),
                "views": [asdict(v) for v in self.views if v is not None]}


def _port_to_str(port) -> str:
    if port.type == PortType.BINARY:
        return str(port.type)
    if hasattr(port.type, "object_class") and issubclass(port.type.object_class, ConnectionPortObject):
        return "Connection" + str(port.type)
    return port.type.id if isinstance(port.type, PortType) else str(port.type)


_nodes: dict = {}


def node(name: str, node_type: NodeType, icon_path: str, category: str, after: str = None,
         keywords: Optional[List[str]] = None, id: str = None, is_deprecated: bool = False,
         is_hidden: bool = False) -> Callable:
    """Register the decorated class (or factory function) as a node; returns the node factory."""
    def register(node_factory):
        node_id = id if id is not None else node_factory.__name__
        n = _Node(node_factory, node_id, name, is_deprecated, is_hidden,
                  node_type.value if isinstance(node_type, NodeType) else "Unknown",
                  icon_path, category, after, keywords)
        _nodes[node_id] = n
        return n.node_factory
    return register


def _add_port(node_factory, port_slot: str, port):
    marker = "__knime_added_" + port_slot
    if getattr(node_factory, port_slot, None) is None:
        setattr(node_factory, port_slot, [])
        setattr(node_factory, marker, True)
    elif not hasattr(node_factory, marker):
        raise ValueError(f"Cannot use '{port_slot}' decorator on object which has an attribute '{port_slot}' already")
    ports = getattr(node_factory, port_slot)
    if isinstance(port, PortGroup) and any(isinstance(p, PortGroup) and p.name == port.name for p in ports):
        raise ValueError(f"A PortGroup named '{port.name}' already exists in the '{port_slot}' list. "
                         "For Input and Output PortGroups, the name of a PortGroup must be unique.")
    ports.insert(0, port)  # decorators apply bottom-up; inserting first keeps the listed order
    return node_factory


def _adder(slot: str, port):
    return lambda node_factory: _add_port(node_factory, slot, port)


def input_binary(name: str, description: str, id: str, optional: Optional[bool] = False):
    return _adder("input_ports", Port(PortType.BINARY, name, description, id, optional=optional))


def input_table(name: str, description: str, optional: Optional[bool] = False):
    return _adder("input_ports", Port(PortType.TABLE, name, description, optional=optional))


def input_port(name: str, description: str, port_type: PortType, optional: Optional[bool] = False):
    return _adder("input_ports", Port(port_type, name, description, optional=optional))


def output_binary(name: str, description: str, id: str):
    return _adder("output_ports", Port(PortType.BINARY, name, description, id))


def output_table(name: str, description: str):
    return _adder("output_ports", Port(PortType.TABLE, name, description))


def output_port(name: str, description: str, port_type: PortType):
    return _adder("output_ports", Port(port_type, name, description))


def output_image(name: str, description: str):
    """configure returns knext.ImagePortObjectSpec(knext.ImageFormat.PNG/SVG), execute the bytes."""
    return _adder("output_ports", Port(PortType.IMAGE, name, description))


def output_view(name: str, description: str, static_resources: Optional[str] = None,
                index_html_path: Optional[str] = None):
    """Declare the node's view; unless index_html_path is given, execute returns it last."""
    def add_view(node_factory):
        node_factory.output_view = ViewDeclaration(name, description, static_resources, index_html_path)
        return node_factory
    return add_view


def input_port_group(name: str, description: str, port_type: PortType):
    return _adder("input_ports", PortGroup(port_type, name, description))


def input_table_group(name: str, description: str):
    return _adder("input_ports", PortGroup(PortType.TABLE, name, description))


def input_binary_group(name: str, description: str, id: Optional[str] = None):
    return _adder("input_ports", PortGroup(PortType.BINARY, name, description, id=id))


def output_table_group(name: str, description: str):
    return _adder("output_ports", PortGroup(PortType.TABLE, name, description))


def output_binary_group(name: str, description: str, id: Optional[str] = None):
    return _adder("output_ports", PortGroup(PortType.BINARY, name, description, id=id))


def output_image_group(name: str, description: str):
    return _adder("output_ports", PortGroup(PortType.IMAGE, name, description))


def output_port_group(name: str, description: str, port_type: PortType):
    return _adder("output_ports", PortGroup(port_type, name, description))
