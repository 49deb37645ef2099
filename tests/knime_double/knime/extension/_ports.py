"""Port types, port objects and the specs of the built-in ports (table, binary, image)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Dict, Optional, Type

from knime.api.schema import PortObjectSpec, Schema
from knime.api.table import Table

from ._version import extension_id


class ImageFormat(enum.Enum):
    PNG = "png"
    SVG = "svg"


class PortObject:
    """What a custom port carries at execute time. KNIME stores it as bytes: `serialize() -> bytes`
    and the classmethod `deserialize(spec, storage)`."""

    def __init__(self, spec: PortObjectSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> PortObjectSpec:
        return self._spec

    def serialize(self) -> bytes:
        raise NotImplementedError(f"{type(self).__name__} must implement serialize() -> bytes")

    @classmethod
    def deserialize(cls, spec: PortObjectSpec, storage: bytes) -> "PortObject":
        raise NotImplementedError(f"{cls.__name__} must implement the classmethod deserialize(spec, storage)")


class ConnectionPortObject(PortObject):
    """A port object that cannot be serialised (a live connection or session): KNIME keeps it in the
    Python process and hands `to_connection_data()` to `from_connection_data(spec, data)` downstream."""

    def to_connection_data(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement to_connection_data()")

    @classmethod
    def from_connection_data(cls, spec: PortObjectSpec, data: Any) -> "ConnectionPortObject":
        raise NotImplementedError(f"{cls.__name__} must implement the classmethod from_connection_data(spec, data)")

    def serialize(self) -> bytes:
        raise TypeError(f"{type(self).__name__} is a connection port object: it is passed by reference, not bytes")


class BinaryPortObjectSpec(PortObjectSpec):
    """Spec of a binary port: the id that says what the bytes are."""

    def __init__(self, id: str) -> None:
        if not isinstance(id, str) or not id:
            raise ValueError("a binary port spec needs a non-empty id string")
        self.id = id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinaryPortObjectSpec) and other.id == self.id

    def serialize(self) -> dict:
        return {"id": self.id}

    @classmethod
    def deserialize(cls, data: dict) -> "BinaryPortObjectSpec":
        return cls(data["id"])


class ImagePortObjectSpec(PortObjectSpec):
    """Spec of an image port: the image format (PNG or SVG)."""

    def __init__(self, format: ImageFormat) -> None:
        if not isinstance(format, ImageFormat):
            raise TypeError(f"ImagePortObjectSpec takes a knext.ImageFormat, not {format!r}")
        self.format = format

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ImagePortObjectSpec) and other.format == self.format

    def serialize(self) -> dict:
        return {"format": self.format.value}

    @classmethod
    def deserialize(cls, data: dict) -> "ImagePortObjectSpec":
        return cls(ImageFormat(data["format"]))


class PortType:
    """A kind of port: its id, display name and the object and spec classes it carries."""

    def __init__(self, id: str, name: str, object_class: type, spec_class: type) -> None:
        self.id, self.name, self.object_class, self.spec_class = id, name, object_class, spec_class

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PortType) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PortType('{self.name}', id='{self.id}')"

    def is_builtin(self) -> bool:
        return self.id in _BUILTIN


PortType.TABLE = PortType("org.knime.core.node.BufferedDataTable", "Table", Table, Schema)
PortType.BINARY = PortType("org.knime.python3.nodes.BinaryPortObject", "Binary", bytes, BinaryPortObjectSpec)
PortType.IMAGE = PortType("org.knime.core.node.port.image.ImagePortObject", "Image", bytes, ImagePortObjectSpec)
_BUILTIN = {PortType.TABLE.id, PortType.BINARY.id, PortType.IMAGE.id}
_registry: Dict[str, PortType] = {}


def port_type(name: str, object_class: Type[PortObject], spec_class: Type[PortObjectSpec],
              id: Optional[str] = None) -> PortType:
    """Register a custom port type; the id defaults to `<extension id>.<module>.<object class name>`
    (so moving or renaming the class changes the id and breaks saved workflows)."""
    if not (isinstance(object_class, type) and issubclass(object_class, PortObject)):
        raise TypeError(f"port_type '{name}': object_class must be a subclass of knext.PortObject, not {object_class!r}")
    if not (isinstance(spec_class, type) and issubclass(spec_class, PortObjectSpec)):
        raise TypeError(f"port_type '{name}': spec_class must be a subclass of knext.PortObjectSpec, not {spec_class!r}")
    pid = id or f"{extension_id()}.{object_class.__module__}.{object_class.__qualname__}"
    known = _registry.get(pid)
    if known is not None and (known.object_class.__qualname__, known.spec_class.__qualname__) != \
            (object_class.__qualname__, spec_class.__qualname__):
        raise ValueError(f"port type id '{pid}' is already registered for {known.object_class.__qualname__}; "
                         "give the new port type its own id")
    pt = PortType(pid, name, object_class, spec_class)
    _registry[pid] = pt
    return pt


def port_type_for(cls: type, attribute: str) -> Optional[PortType]:
    """The registered port type whose object (attribute='object_class') or spec class is `cls`
    or its nearest registered base class."""
    for klass in cls.__mro__:
        for pt in reversed(list(_registry.values())):
            if getattr(pt, attribute) is klass:
                return pt
    return None


@dataclass
class Port:
    """One declared port of a node."""
    type: PortType
    name: str
    description: str
    optional: bool = False
    id: Optional[str] = None  # binary ports: what the bytes are


@dataclass
class PortGroup:
    """A declared port group: any number of ports of one type (a list in configure/execute)."""
    type: PortType
    name: str
    description: str
    id: Optional[str] = None
