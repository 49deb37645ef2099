"""Double of knime.extension.nodes: port objects and types, contexts, errors, and (re-exported
from _node_decorators.py) `category`, `node`, the port decorators and the node registry
`_nodes` (node id -> _Node, as in KNIME).
"""
from __future__ import annotations

import os.path
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional, Type

import knime.api.table as kt  # noqa: F401  (re-exported names below, as in KNIME)
import knime.extension.parameter as kp
from knime.api.schema import PortObjectSpec


class PortObject(ABC):
    """Base of custom port objects: `serialize() -> bytes`, classmethod `deserialize(spec, storage)`."""

    def __init__(self, spec: PortObjectSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> PortObjectSpec:
        return self._spec

    @abstractmethod
    def serialize(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def deserialize(cls, spec: PortObjectSpec, storage: bytes) -> "PortObject": ...


class ConnectionPortObject(PortObject):
    """A port object that is handed downstream as a live Python object (same process), via
    `to_connection_data()` and classmethod `from_connection_data(spec, data)`."""

    def __init__(self, spec: PortObjectSpec) -> None:
        super().__init__(spec)

    def serialize(self):
        raise NotImplementedError("A connection port object cannot be serialized")

    @classmethod
    def deserialize(cls, spec, storage):
        raise NotImplementedError("A connection port object cannot be deserialized")

    @abstractmethod
    def to_connection_data(self) -> Any: ...

    @classmethod
    @abstractmethod
    def from_connection_data(cls, spec: PortObjectSpec, data: Any) -> "ConnectionPortObject": ...


class FilestorePortObject(PortObject):
    """Experimental KNIME API: port objects written to / read from a file path."""

    def serialize(self) -> bytes:
        raise RuntimeError("Serialize should not be called for FilestorePortObjects.")

    @classmethod
    def deserialize(cls, spec, storage):
        raise RuntimeError("Deserialize should not be called for FilestorePortObjects.")

    @abstractmethod
    def write_to(self, file_path: str) -> None: ...

    @classmethod
    @abstractmethod
    def read_from(cls, spec: PortObjectSpec, file_path: str) -> "FilestorePortObject": ...


@dataclass
class PortType:
    id: str
    name: str
    object_class: type
    spec_class: type

    def is_super_type_of(self, port_type: "PortType") -> bool:
        return (issubclass(port_type.spec_class, self.spec_class)
                and issubclass(port_type.object_class, self.object_class))


# built-in port types are plain strings in KNIME too
PortType.BINARY = "PortType.BINARY"
PortType.CONNECTION = "PortType.CONNECTION"
PortType.TABLE = "PortType.TABLE"
PortType.IMAGE = "PortType.IMAGE"
PortType.CREDENTIAL = "PortType.CREDENTIAL"
PortType.WORKFLOW = "PortType.WORKFLOW"
PortType.HUB_AUTHENTICATION = "PortType.HUB_AUTHENTICATION"


class ImageFormat(Enum):
    PNG = "png"
    SVG = "svg"

    @classmethod
    def available_options(cls) -> str:
        return ", ".join(o.value for o in cls)


class _KnimeNodeBackend(ABC):
    """What KNIME's side provides to this module; the double's is in _double_backend.py."""

    @abstractmethod
    def register_port_type(self, name: str, object_class: type, spec_class: type, id: Optional[str] = None): ...

    @abstractmethod
    def get_port_type_for_spec_type(self, spec_type) -> PortType: ...

    @abstractmethod
    def get_port_type_for_id(self, id: str) -> PortType: ...

    @abstractmethod
    def has_port_type_for_id(self, id: str) -> bool: ...


_backend: Optional[_KnimeNodeBackend] = None


def port_type(name: str, object_class: Type[PortObject], spec_class: Type[PortObjectSpec],
              id: Optional[str] = None) -> PortType:
    """Register a custom port type; the id defaults to "<extension id>.<module>.<qualname>"."""
    return _backend.register_port_type(name, object_class, spec_class, id)


def get_port_type_for_spec_type(spec_type) -> PortType:
    return _backend.get_port_type_for_spec_type(spec_type)


def get_port_type_for_id(id: str) -> PortType:
    return _backend.get_port_type_for_id(id)


def has_port_type_for_id(id: str) -> bool:
    return _backend.has_port_type_for_id(id)


@dataclass
class Port:
    type: Any
    name: str
    description: str
    id: Optional[str] = None
    optional: Optional[bool] = False

    def __post_init__(self):
        if self.type in (PortType.BINARY, PortType.CONNECTION) and self.id is None:
            raise TypeError(f"{type(self)}s of type BINARY or CONNECTION must have a unique 'id' set")


@dataclass
class PortGroup:
    type: Any
    name: str
    description: str
    id: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name must be of type str. Got {type(self.name)}.")
        if not isinstance(self.description, str):
            raise TypeError(f"description must be of type str. Got {type(self.description)}.")


@dataclass
class ViewDeclaration:
    name: str
    description: str
    static_resources: Optional[str] = None
    index_html_path: Optional[str] = None


@dataclass(frozen=True)
class Credential:
    username: str
    password: str
    credential_name: str


class _BaseContext:
    """Shared by all contexts; `java_ctx` is KNIME's side (the double's JavaContext)."""

    def __init__(self, java_ctx, flow_variables) -> None:
        self._flow_variables = flow_variables
        self._java_ctx = java_ctx

    @property
    def flow_variables(self) -> Dict[str, Any]:
        """Editable dict of flow variables (bool, int, float, str and lists of those)."""
        return self._flow_variables

    def get_credential_names(self) -> List[str]:
        return list(self._java_ctx.get_credential_names())

    def get_credentials(self, identifier: str) -> Credential:
        """Credential(username, password, credential_name); KeyError for an unknown name."""
        try:
            values = list(self._java_ctx.get_credentials(identifier))
        except KeyError:
            raise KeyError(f"Error retrieving credentials for identifier: {identifier}") from None
        return Credential(values[0], values[1], values[2])


class DialogCreationContext(_BaseContext):
    """Passed to `choices` callables of StringParameter when the dialog opens."""

    def __init__(self, java_ctx, flow_variables, specs_to_python_converter) -> None:
        super().__init__(java_ctx, flow_variables)
        portmap = {k: list(v) for k, v in self._java_ctx.get_input_port_map().items()}
        self._python_specs = specs_to_python_converter(self._java_ctx.get_input_specs(), portmap)

    def get_input_specs(self) -> List[PortObjectSpec]:
        return self._python_specs

    def get_flow_variables(self):
        return self._flow_variables


class ConfigurationContext(_BaseContext):
    """Given to configure(): flow variables, credentials, warnings, connected ports."""

    def __init__(self, java_ctx, flow_variables, input_ports=None, output_ports=None) -> None:
        super().__init__(java_ctx, flow_variables)
        self._input_ports = input_ports
        self._output_ports = output_ports

    def _connected(self, ports, port_map) -> List[int]:
        return [len(port_map.get(p.name, [])) if isinstance(p, PortGroup) else 1 for p in ports]

    def get_connected_input_port_numbers(self) -> List[int]:
        """Per declared input port: 1 for a plain port, the number of connected ports for a group."""
        assert self._input_ports is not None
        return self._connected(self._input_ports, dict(self._java_ctx.get_input_port_map()))

    def get_connected_output_port_numbers(self) -> List[int]:
        assert self._output_ports is not None
        return self._connected(self._output_ports, dict(self._java_ctx.get_output_port_map()))

    def set_warning(self, message: str) -> None:
        self._java_ctx.set_warning(str(message))


class ExecutionContext(ConfigurationContext):
    """Given to execute(): adds progress, cancellation and workflow folders."""

    def set_progress(self, progress: float, message: str = None) -> None:
        """progress in [0, 1] (ValueError otherwise, TypeError if not a number); optional str message."""
        if isinstance(progress, int):
            progress = float(progress)
        if not isinstance(progress, float):
            raise TypeError(f"progress must be of type float. Got {type(progress)}.")
        if progress < -0.0001 or progress > 1.0001:  # a little slack for float rounding, like KNIME
            raise ValueError("progress must be between 0.0 and 1.0.")
        progress = min(1.0, max(0.0, progress))
        if message is None:
            self._java_ctx.set_progress(progress)
        else:
            if not isinstance(message, str):
                raise TypeError("message must be a str or None.")
            self._java_ctx.set_progress(progress, message)

    def is_canceled(self) -> bool:
        return self._java_ctx.is_canceled()

    def get_workflow_temp_dir(self) -> str:
        return self._java_ctx.get_workflow_temp_dir()

    def get_workflow_data_area_dir(self) -> str:
        """<workflow folder>/data (KNIME does not promise that it exists yet)."""
        return os.path.join(self._java_ctx.get_workflow_dir(), "data")

    def get_knime_home_dir(self) -> str:
        return self._java_ctx.get_knime_home_dir()


class PythonNode(ABC):
    """Optional base class of nodes (decorators or the port attributes declare the ports)."""

    input_ports: List[Port] = None
    output_ports: List[Port] = None
    output_view: ViewDeclaration = None

    @abstractmethod
    def configure(self, config_context: ConfigurationContext, *inputs): ...

    @abstractmethod
    def execute(self, exec_context: ExecutionContext, *inputs): ...


class InvalidParametersError(Exception):
    """Raise when the configured parameters are invalid (KNIME shows it as invalid settings)."""

    def __init__(self, message) -> None:
        super().__init__(message)


class WorkflowExecutionError(RuntimeError):
    def __init__(self, message) -> None:
        super().__init__(message)


IntParameter = kp.IntParameter
DoubleParameter = kp.DoubleParameter
BoolParameter = kp.BoolParameter
StringParameter = kp.StringParameter
MultilineStringParameter = kp.MultilineStringParameter
parameter_group = kp.parameter_group
ColumnParameter = kp.ColumnParameter
MultiColumnParameter = kp.MultiColumnParameter
ColumnFilterParameter = kp.ColumnFilterParameter
ParameterArray = kp.ParameterArray
Table = kt.Table
BatchOutputTable = kt.BatchOutputTable

from ._node_decorators import (  # noqa: E402,F401  (they need the classes above)
    NodeType, _Category, _categories, _Node, _nodes, _unwrap_results, category, input_binary, input_binary_group,
    input_port, input_port_group, input_table, input_table_group, node, output_binary, output_binary_group,
    output_image, output_image_group, output_port, output_port_group, output_table, output_table_group,
    output_view)
