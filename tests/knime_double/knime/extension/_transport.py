"""How port contents travel between nodes, as through KNIME: specs as JSON text, tables as Arrow
IPC batches, custom port objects as `serialize()` bytes, connection objects by reference.

`send_*` checks what a node handed over for a port and encodes it (errors name the port);
`receive_*` decodes it for the receiving port, checking that the port accepts it.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import pyarrow as pa

from knime.api import _arrow
from knime.api.schema import PortObjectSpec, Schema
from knime.api.table import BatchOutputTable, Table
from knime.api.views import NodeView

from ._ports import (BinaryPortObjectSpec, ConnectionPortObject, ImageFormat, ImagePortObjectSpec, PortObject,
                     PortType, port_type_for)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_connections: Dict[int, Any] = {}
_next_key = itertools.count(1)


@dataclass
class SpecWire:
    json: str
    spec_class: type


@dataclass
class Wire:
    kind: str  # table | bytes | object | connection
    spec: Optional[SpecWire]
    payload: Any
    object_class: Optional[type] = None


def _where(port: Any, where: str) -> str:
    return f"{where} port '{port.name}'"


# ---- specs ----------------------------------------------------------------------------------------
def send_spec(spec: Any, port: Any, where: str = "output") -> Optional[SpecWire]:
    if spec is None:
        return None
    pt: PortType = port.type
    if pt == PortType.TABLE:
        expected = Schema
    elif pt == PortType.BINARY:
        expected = BinaryPortObjectSpec
    elif pt == PortType.IMAGE:
        expected = ImagePortObjectSpec
    else:
        expected = pt.spec_class
    if not isinstance(spec, expected):
        raise TypeError(f"{_where(port, where)} ({pt.name}) needs a {expected.__name__} spec, got "
                        f"{type(spec).__name__}")
    if pt == PortType.BINARY and port.id and spec.id != port.id:
        raise ValueError(f"{_where(port, where)} is declared with id '{port.id}' but the spec has id '{spec.id}'")
    data = spec.serialize()
    if not isinstance(data, dict):
        raise TypeError(f"{type(spec).__name__}.serialize() must return a dict of JSON values, got "
                        f"{type(data).__name__}")
    own = port_type_for(type(spec), "spec_class") if not pt.is_builtin() else None
    return SpecWire(json.dumps(data), own.spec_class if own is not None else expected)


def receive_spec(wire: Optional[SpecWire], port: Any, where: str = "input") -> Any:
    if wire is None:
        return None
    if not port.type.is_builtin() and not issubclass(wire.spec_class, port.type.spec_class):
        raise TypeError(f"{_where(port, where)} takes {port.type.name} specs, not {wire.spec_class.__name__}")
    return wire.spec_class.deserialize(json.loads(wire.json))


# ---- objects --------------------------------------------------------------------------------------
def _table_batches(obj: Any, label: str) -> List[pa.Table]:
    if isinstance(obj, BatchOutputTable):
        if not obj._batches:
            raise ValueError(f"{label}: the BatchOutputTable has no batches; append at least one")
        return list(obj._batches)
    if isinstance(obj, Table):
        return list(obj._batches)
    hint = " (wrap it: knext.Table.from_pandas(df))" if type(obj).__name__ == "DataFrame" else ""
    raise TypeError(f"{label} needs a knext.Table or knext.BatchOutputTable, got {type(obj).__name__}{hint}")


def _ipc(batches: List[pa.Table]) -> List[bytes]:
    out = []
    for b in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, b.schema) as writer:
            writer.write_table(b)
        out.append(sink.getvalue().to_pybytes())
    return out


def send(obj: Any, port: Any, where: str = "output") -> Optional[Wire]:
    """Encode what a node produced (or a test hands in) for `port`; None for nothing."""
    if obj is None:
        return None
    label, pt = _where(port, where), port.type
    if pt == PortType.TABLE:
        batches = _table_batches(obj, label)
        _arrow.check_row_ids(batches)
        schema = _arrow.schema_of(batches[0])
        return Wire("table", SpecWire(json.dumps(schema.serialize()), Schema), _ipc(batches))
    if pt in (PortType.BINARY, PortType.IMAGE):
        if not isinstance(obj, (bytes, bytearray)):
            raise TypeError(f"{label} ({pt.name}) needs bytes, got {type(obj).__name__}")
        if pt == PortType.IMAGE and not bytes(obj).startswith(_PNG_MAGIC) and b"<svg" not in bytes(obj)[:1000]:
            raise ValueError(f"{label}: image ports carry PNG (or SVG) bytes")
        spec = BinaryPortObjectSpec(port.id or "binary") if pt == PortType.BINARY else \
            ImagePortObjectSpec(ImageFormat.PNG if bytes(obj).startswith(_PNG_MAGIC) else ImageFormat.SVG)
        return Wire("bytes", send_spec(spec, port, where), bytes(obj))
    if not isinstance(obj, pt.object_class):
        raise TypeError(f"{label} ({pt.name}) needs a {pt.object_class.__name__}, got {type(obj).__name__}")
    own = port_type_for(type(obj), "object_class")
    object_class = own.object_class if own is not None else type(obj)
    spec = send_spec(obj.spec, port, where)
    if isinstance(obj, ConnectionPortObject):
        key = next(_next_key)
        _connections[key] = obj.to_connection_data()
        return Wire("connection", spec, key, object_class)
    data = obj.serialize()
    if not isinstance(data, bytes):
        raise TypeError(f"{label}: {type(obj).__name__}.serialize() must return bytes, got {type(data).__name__}")
    return Wire("object", spec, data, object_class)


def receive(wire: Optional[Wire], port: Any, where: str = "input") -> Any:
    """Decode for the receiving `port`, as the receiving node gets it."""
    if wire is None:
        return None
    label, pt = _where(port, where), port.type
    if wire.kind == "table":
        if pt != PortType.TABLE:
            raise TypeError(f"{label} ({pt.name}) cannot take a table")
        batches = [pa.ipc.open_stream(b).read_all() for b in wire.payload]
        return Table._create(batches, readable=True)
    if wire.kind == "bytes":
        if pt not in (PortType.BINARY, PortType.IMAGE):
            raise TypeError(f"{label} ({pt.name}) cannot take raw bytes")
        return wire.payload
    if pt.is_builtin() or not issubclass(wire.object_class, pt.object_class):
        raise TypeError(f"{label} takes {pt.name} objects ({pt.object_class.__name__}), not "
                        f"{wire.object_class.__name__}")
    spec = receive_spec(wire.spec, port, where)
    if wire.kind == "connection":
        return wire.object_class.from_connection_data(spec, _connections[wire.payload])
    return wire.object_class.deserialize(spec, wire.payload)


def spec_of(obj: Any, port: Any) -> Any:
    """The spec that goes with a port object (what configure of the receiving node sees)."""
    if isinstance(obj, (Table, BatchOutputTable)):
        return obj.schema
    if isinstance(obj, (bytes, bytearray)):
        return BinaryPortObjectSpec(port.id or "binary") if port.type == PortType.BINARY else \
            ImagePortObjectSpec(ImageFormat.PNG)
    if isinstance(obj, PortObject):
        return obj.spec
    if isinstance(obj, PortObjectSpec):
        return obj
    raise TypeError(f"no spec for a {type(obj).__name__} on port '{port.name}'")


def check_view(view: Any, node: str) -> NodeView:
    if not isinstance(view, NodeView):
        raise TypeError(f"{node} declares an output view: execute must return a knext view (e.g. "
                        f"knext.view_png(...)) as its last element, got {type(view).__name__}")
    return view


def check_flow_variables(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, Any]:
    """New or changed flow variables must have plain names and values KNIME can hold."""
    for name, value in after.items():
        if name in before and before[name] == value:
            continue
        if not isinstance(name, str) or name.lower().startswith("knime"):
            raise ValueError(f"flow variable {name!r}: names starting with 'knime' are reserved by KNIME")
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (bool, int, float, str)) for v in items):
            raise TypeError(f"flow variable '{name}': values are bool, int, float, str or lists of them, not "
                            f"{type(value).__name__}")
    return dict(after)


def store_table(table: Any, batch_size: Optional[int] = None) -> Table:
    """A Table or BatchOutputTable as KNIME stores it and the next node receives it (RowIDs and
    types checked); `batch_size` re-cuts it into batches of that many rows."""
    from ._ports import Port
    port = Port(PortType.TABLE, "table", "")
    received = receive(send(table, port, "table"), port)
    if batch_size is None or received.num_rows == 0:
        return received
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
    data = received.to_pyarrow()
    return Table._create([data.slice(i, batch_size) for i in range(0, data.num_rows, batch_size)], readable=True)
