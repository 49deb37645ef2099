"""KNIME's side of the double: what the real node backend and the Java host do around a node.

Documented objects the test harness uses:
- `EXTENSION_ID`, `EXTENSION_VERSION`: read from the repository's knime.yml (group_id.name,
  version), or the file named by $KNIME_DOUBLE_EXTENSION_YML, as KNIME reads knime.yml.
- `registry`: the PortTypeRegistry behind `knext.port_type` (default ids
  "<extension id>.<module>.<qualname>"; duplicate classes or ids are refused).
- `JavaContext`: the host side of the contexts (credentials, flow variables, warnings,
  progress records, cancellation, workflow folders, port maps).
- `NodeProxy(node)`: settings JSON in/out and validation, `configure(spec_msgs, java_ctx)`,
  `execute(obj_msgs, java_ctx)`; inputs and outputs cross as `Msg`s (a spec as its JSON text,
  an object as bytes / a written table / a connection key), never as the Python objects,
  so what KNIME cannot serialise fails here too.
- `encode_spec`, `decode_spec`, `encode_object`, `decode_object`: that transport.
- `NodeCanceledError`: execute finished while the context reported cancellation.
"""
from __future__ import annotations

import collections
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import knime.api.schema as ks
import knime.api.table as kt
import knime.extension.nodes as kn
import knime.extension.parameter as kp
from knime.api import _arrow_table as kat

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))


def _read_knime_yml() -> tuple:
    path = os.environ.get("KNIME_DOUBLE_EXTENSION_YML", os.path.join(_ROOT, "knime.yml"))
    keys = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^(name|group_id|version):\s*(\S+)\s*$", line)
                if m:
                    keys[m.group(1)] = m.group(2).strip("'\"")
    return f"{keys.get('group_id', 'org.knime.double')}.{keys.get('name', 'extension')}", keys.get("version", "0.0.1")


EXTENSION_ID, EXTENSION_VERSION = _read_knime_yml()


class NodeCanceledError(RuntimeError):
    """The execution context was canceled; KNIME discards the node's outputs."""


class PortTypeRegistry:
    def __init__(self, extension_id: str) -> None:
        self._extension_id = extension_id
        self._by_object: dict = {}
        self._by_spec: dict = {}
        self._by_id: dict = {}
        self.connection_data: Dict[str, Any] = {}  # "<node id>:<port index>" -> live object

    def register_port_type(self, name, object_class, spec_class, id=None) -> kn.PortType:
        if object_class in self._by_object:
            raise ValueError(f"There is already a port type with the provided object class '{object_class}' registered.")
        if spec_class in self._by_spec:
            raise ValueError(f"There is already a port type with the provided spec class '{spec_class}' registered.")
        if id is None:
            id = f"{self._extension_id}.{object_class.__module__}.{object_class.__qualname__}"
        if id in self._by_id:
            raise ValueError(f"There is already a port type with the provided id '{id}' registered.")
        pt = kn.PortType(id, name, object_class, spec_class)
        self._by_object[object_class] = self._by_spec[spec_class] = self._by_id[id] = pt
        return pt

    def get_port_type_for_spec_type(self, spec_type) -> kn.PortType:
        if spec_type in self._by_spec:
            return self._by_spec[spec_type]
        raise KeyError(f"The PortObjectSpec type {spec_type} is not registered.")

    def get_port_type_for_id(self, id: str) -> kn.PortType:
        if id in self._by_id:
            return self._by_id[id]
        raise KeyError(f"No PortType for id '{id}' registered.")

    def has_port_type_for_id(self, id: str) -> bool:
        return id in self._by_id

    def port_type_for_object(self, obj) -> kn.PortType:
        for cls in type(obj).__mro__:
            if cls in self._by_object:
                return self._by_object[cls]
        raise KeyError(f"{type(obj).__name__} is not the object class of a registered port type "
                       "(register it with knext.port_type)")

    def incoming_type(self, spec_id: str, port) -> kn.PortType:
        """The registered type of an incoming spec, checked against the receiving port."""
        if spec_id not in self._by_id:
            raise kn.InvalidParametersError(f"The provided input is unknown and therefore incompatible with the "
                                            f"expected type {port.type.name} (got {spec_id}).")
        incoming = self._by_id[spec_id]
        if not port.type.is_super_type_of(incoming):
            raise kn.InvalidParametersError(f"The provided {incoming.name} is incompatible with the expected type "
                                            f"{port.type.name}.")
        return incoming


class _Backend(kn._KnimeNodeBackend):
    def __init__(self, registry: PortTypeRegistry) -> None:
        self.registry = registry

    def register_port_type(self, name, object_class, spec_class, id=None):
        return self.registry.register_port_type(name, object_class, spec_class, id)

    def get_port_type_for_spec_type(self, spec_type):
        return self.registry.get_port_type_for_spec_type(spec_type)

    def get_port_type_for_id(self, id):
        return self.registry.get_port_type_for_id(id)

    def has_port_type_for_id(self, id):
        return self.registry.has_port_type_for_id(id)


registry = PortTypeRegistry(EXTENSION_ID)
kn._backend = _Backend(registry)
kt._backend = kat.ArrowBackend()


def ensure_extension_loaded() -> None:
    """KNIME sets the extension version after importing the extension module; the double does
    it when the first node is created, so callable defaults evaluated at import fail alike."""
    from . import _parameter_base
    if _parameter_base._extension_version is None:
        kp.set_extension_version(EXTENSION_VERSION)


class JavaContext:
    """The host side of Configuration/Execution/DialogCreationContext, recording what nodes do."""

    def __init__(self, node_id: str = "node", credentials: Optional[Dict[str, tuple]] = None,
                 flow_variables: Optional[dict] = None, workflow_dir: Optional[str] = None,
                 temp_dir: Optional[str] = None, knime_home: Optional[str] = None, cancel_after: Optional[int] = None,
                 input_port_map: Optional[dict] = None, output_port_map: Optional[dict] = None,
                 input_specs: Optional[list] = None) -> None:
        self.node_id = node_id
        self.credentials = {k: tuple(v) for k, v in (credentials or {}).items()}
        self.flow_variables = dict(flow_variables or {})
        self.workflow_dir = workflow_dir or tempfile.mkdtemp(prefix="knime_double_workflow_")
        self.temp_dir = temp_dir or tempfile.mkdtemp(prefix="knime_double_tmp_")
        self.knime_home = knime_home or tempfile.mkdtemp(prefix="knime_double_home_")
        self.cancel_after = cancel_after  # is_canceled() turns True after this many calls
        self.canceled = cancel_after == 0
        self.cancel_checks = 0
        self.progress: List[tuple] = []  # (fraction, message or None)
        self.warnings: List[str] = []
        self.input_port_map = dict(input_port_map or {})
        self.output_port_map = dict(output_port_map or {})
        self.input_specs = list(input_specs or [])

    def get_credential_names(self) -> List[str]:
        return list(self.credentials)

    def get_credentials(self, identifier: str) -> list:
        if identifier not in self.credentials:
            raise KeyError(identifier)
        user, password = self.credentials[identifier][:2]
        return [user, password, identifier]

    def set_warning(self, message: str) -> None:
        self.warnings.append(message)

    def set_progress(self, progress: float, message: Optional[str] = None) -> None:
        self.progress.append((progress, message))

    def cancel(self) -> None:
        self.canceled = True

    def is_canceled(self) -> bool:
        self.cancel_checks += 1
        if self.cancel_after is not None and self.cancel_checks > self.cancel_after:
            self.canceled = True
        return self.canceled

    def get_workflow_temp_dir(self) -> str:
        return self.temp_dir

    def get_workflow_dir(self) -> str:
        return self.workflow_dir

    def get_knime_home_dir(self) -> str:
        return self.knime_home

    def get_node_id(self) -> str:
        return self.node_id

    def get_input_port_map(self) -> dict:
        return self.input_port_map

    def get_output_port_map(self) -> dict:
        return self.output_port_map

    def get_input_specs(self) -> list:
        return self.input_specs


class FlowVariables(collections.UserDict):
    """Flow variables as KNIME hands them to a node: no deleting, no setting "knime*" names."""

    def __init__(self, values: Optional[dict] = None) -> None:
        super().__init__({})
        self._locked = False
        for k, v in (values or {}).items():
            self[k] = v
        self._locked = True

    def __setitem__(self, key, value) -> None:
        if not isinstance(key, str):
            raise TypeError("the flow variable name must be a string")
        if self._locked and key.startswith("knime"):
            raise ValueError("setting or changing a flow variable that starts with 'knime' is not allowed")
        super().__setitem__(key, value)

    def __delitem__(self, _) -> None:
        raise RuntimeError("deleting flow variables is not allowed")


def check_flow_variables(flow_variables) -> dict:
    """Only bool/int/float/str and lists of one of them can go back to KNIME."""
    out = {}
    for key, value in flow_variables.items():
        items = value if isinstance(value, list) else [value]
        kinds = {type(v) for v in items}
        if not kinds <= {bool, int, float, str} or (isinstance(value, list) and len(kinds) > 1):
            raise TypeError(f"Flow variable '{key}' of type '{type(value)}' cannot be translated to a valid KNIME "
                            "flow variable. Please remove the flow variable or change its type to something that "
                            "can be translated.")
        out[key] = value
    return out


@dataclass
class Msg:
    """A spec or port object as it crosses to/from KNIME (never a live Python object, except
    the connection data that KNIME itself keeps in the Python process)."""
    class_name: str
    json: Optional[str] = None  # spec JSON text
    payload: Any = None  # bytes, kat.ArrowSourceTable or connection key
    spec: Optional["Msg"] = None  # the spec message of a port object


_TABLE, _BLOB, _CONN, _IMAGE = "DataTableSpec", "PythonBinaryBlob", "PythonTransientConnection", "Image"


def encode_spec(spec, port, node_id: str = "node", port_idx: int = 0) -> Optional[Msg]:
    if spec is None:
        return None
    if port.type == kn.PortType.TABLE:
        if isinstance(spec, ks.Column):
            spec = ks.Schema.from_columns(spec)
        assert isinstance(spec, ks.Schema), f"Output port '{port.name}' is a table: configure must return a " \
                                            f"knext.Schema (or Column), got {type(spec).__name__}"
        return Msg(_TABLE, json.dumps(spec.serialize()))
    if port.type == kn.PortType.BINARY:
        assert isinstance(spec, ks.BinaryPortObjectSpec) and spec.id == port.id, \
            f"Expected binary output port ID {port.id} but got {getattr(spec, 'id', spec)}"
        return Msg(_BLOB, json.dumps(spec.serialize()))
    if port.type == kn.PortType.IMAGE:
        assert isinstance(spec, ks.ImagePortObjectSpec) and spec.format in [f.value for f in kn.ImageFormat], \
            f"Expected image formats are: {kn.ImageFormat.available_options()}."
        return Msg(_IMAGE, json.dumps(spec.serialize()))
    assert registry.has_port_type_for_id(port.type.id), \
        f"Invalid output spec, no port type with id '{port.type.id}' registered. Please register the port type."
    assert isinstance(spec, port.type.spec_class), \
        f"Expected output spec of type {port.type.spec_class} but got spec of type {type(spec)}"
    data = {"id": port.type.id, "data": spec.serialize()}
    if issubclass(port.type.object_class, kn.ConnectionPortObject):
        data.update(node_id=node_id, port_idx=port_idx)
        return Msg(_CONN, json.dumps(data))
    return Msg(_BLOB, json.dumps(data))


def decode_spec(msg: Optional[Msg], port):
    if msg is None:
        return None
    data = json.loads(msg.json)
    if msg.class_name == _TABLE:
        assert port.type == kn.PortType.TABLE, f"port '{port.name}' does not take a table"
        return ks.Schema.deserialize(data)
    if msg.class_name == _BLOB and port.type == kn.PortType.BINARY:
        spec = ks.BinaryPortObjectSpec.deserialize(data)
        assert spec.id == port.id, f"Expected binary input port ID {port.id} but got {spec.id}"
        return spec
    if msg.class_name in (_BLOB, _CONN) and isinstance(port.type, kn.PortType):
        return registry.incoming_type(data["id"], port).spec_class.deserialize(data["data"])
    if msg.class_name == _IMAGE:
        return ks.ImagePortObjectSpec.deserialize(data)
    raise TypeError(f"Unsupported PortObjectSpec found in Python, got {msg.class_name} for port '{port.name}'")


def encode_object(obj, port, node_id: str = "node", port_idx: int = 0) -> Msg:
    if port.type == kn.PortType.TABLE:
        if isinstance(obj, kt._TabularView):
            obj = obj.get()
        if not isinstance(obj, (kat.ArrowTable, kat.ArrowBatchOutputTable)):
            raise TypeError(f"Object for port {port} should be of type Table or BatchOutputTable, but got {type(obj)}")
        source = kat.write_to_sink(obj)
        return Msg(_TABLE, payload=source, spec=Msg(_TABLE, json.dumps(source.schema.serialize())))
    if port.type == kn.PortType.BINARY:
        if not isinstance(obj, bytes):
            raise TypeError(f"Binary Port can only process objects of type bytes, not {type(obj)}")
        return Msg(_BLOB, payload=obj, spec=Msg(_BLOB, json.dumps({"id": port.id})))
    if port.type == kn.PortType.IMAGE:
        if not isinstance(obj, bytes):
            raise TypeError(f"Image port '{port.name}' needs the image as bytes, got {type(obj)}")
        return Msg(_IMAGE, payload=obj)
    assert registry.has_port_type_for_id(port.type.id), \
        f"Invalid output port value, no port type with id '{port.type.id}' registered. Please register the port type."
    assert isinstance(obj, port.type.object_class), \
        f"Expected output object of type {port.type.object_class}, got object of type {type(obj)}"
    spec = encode_spec(obj.spec, port, node_id, port_idx)
    if issubclass(port.type.object_class, kn.ConnectionPortObject):
        key = f"{node_id}:{port_idx}"
        registry.connection_data[key] = obj.to_connection_data()
        return Msg(_CONN, payload=key, spec=spec)
    if isinstance(obj, kn.FilestorePortObject):
        path = os.path.join(tempfile.mkdtemp(prefix="knime_double_filestore_"), "port_object")
        obj.write_to(path)
        return Msg(_BLOB, payload=("file", path), spec=spec)
    data = obj.serialize()
    if not isinstance(data, (bytes, bytearray, memoryview)):  # KNIME writes it to a binary file
        raise TypeError(f"{type(obj).__name__}.serialize() must return bytes, got {type(data).__name__} "
                        "(KNIME: a bytes-like object is required)")
    return Msg(_BLOB, payload=bytes(data), spec=spec)


def decode_object(msg: Optional[Msg], port):
    if msg is None:
        return None
    if msg.class_name == _TABLE:
        assert port.type == kn.PortType.TABLE, f"port '{port.name}' does not take a table"
        return msg.payload
    if msg.class_name == _IMAGE:
        return msg.payload
    if msg.class_name == _BLOB and port.type == kn.PortType.BINARY:
        return msg.payload
    spec = decode_spec(msg.spec, port)
    incoming = registry.incoming_type(json.loads(msg.spec.json)["id"], port)
    if msg.class_name == _CONN:
        if msg.payload not in registry.connection_data:
            raise KeyError(f"No connection data found for {msg.payload}. Please re-execute the upstream node "
                           "providing the connection.")
        return port.type.object_class.from_connection_data(spec, registry.connection_data[msg.payload])
    if isinstance(msg.payload, tuple):
        return incoming.object_class.read_from(spec, msg.payload[1])
    return incoming.object_class.deserialize(spec, msg.payload)


from ._node_proxy import NodeProxy, port_map  # noqa: E402,F401  (it builds on the transport above)
