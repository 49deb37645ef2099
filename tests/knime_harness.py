"""Run KNIME nodes in pytest the way KNIME runs them, against the knime.extension double.

`run_node` does what KNIME does for one node: a fresh instance from the node factory, settings
as JSON ({"model": ...}, validated then loaded, so validators, min/max and group `validate`
run), configure with the input specs after a JSON round trip, then a fresh instance for
execute with the inputs after the transport KNIME uses (tables written to a sink and read
back in batches, custom port objects through `serialize()` bytes, connection ports by
reference). Outputs come back as a downstream node would receive them, so results chain:
`run_node(b, {}, [run_node(a, {}, []).outputs[0]])`. Node exceptions propagate unchanged.

The harness only uses the double's documented objects: the node registry
`knime.extension.nodes._nodes`, the settings functions of `knime.extension.parameter`, and
`knime.extension._double_backend` (JavaContext, NodeProxy, Msg transport, registry).
"""
from __future__ import annotations

import copy
import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

import knime.extension as knext

if not hasattr(knext, "_double_backend"):  # inside a real KNIME environment: the harness needs the double
    pytest.skip("knime_harness runs nodes on the knime.extension test double only", allow_module_level=True)

import knime.api.schema as ks  # noqa: E402
import knime.extension.nodes as kn  # noqa: E402
import knime.extension.parameter as kp  # noqa: E402
from knime.api import _arrow_table as kat  # noqa: E402
from knime.extension import _double_backend as db  # noqa: E402

NodeCanceledError = db.NodeCanceledError


class InvalidSettingsError(knext.InvalidParametersError):
    """KNIME refused the settings (validation failed); the message is what KNIME shows."""


# --- nodes, ports, parameters -------------------------------------------------------------------
def load_extension(module: str = "extension") -> Dict[str, Any]:
    """Import the extension entry module (as KNIME does) and return the node registry."""
    importlib.import_module(module)
    return kn._nodes


def node_info(node: Any):
    """The registered `_Node` (id, name, ports, views, metadata) for a factory, class or node id."""
    if isinstance(node, str):
        return kn._nodes[node]
    for info in kn._nodes.values():
        if info.node_factory is node:
            return info
    raise KeyError(f"{node!r} is not a registered node factory (decorate the class with @knext.node and "
                   "pass what the decorator returned, or the node id)")


def node_factory(node: Any) -> Callable:
    return node_info(node).node_factory


def node_ports(node: Any) -> Tuple[list, list, Optional[kn.ViewDeclaration]]:
    """(input ports, output ports, view declaration) in declaration order."""
    info = node_info(node)
    return list(info.input_ports), list(info.output_ports), info.views[0]


def node_parameters(node: Any) -> Dict[str, Any]:
    """Top-level parameter descriptors (and groups) of a node, by attribute name."""
    return kp._get_parameters(node_factory(node)())


def node_description(node: Any) -> dict:
    """What KNIME lists for a node: short/full description from the docstring (first line /
    the rest), the parameter descriptions (tabs for top-level groups) and the port metadata."""
    info = node_info(node)
    instance = info.node_factory()
    doc = (instance.__doc__ or "").lstrip("\n")
    lines = doc.splitlines()
    options, tabs_used = kp.extract_parameter_descriptions(instance)
    return {**info.to_dict(), "short_description": lines[0].strip() if lines else "",
            "full_description": "\n".join(lines[1:]).strip(), "options": [] if tabs_used else options,
            "tabs": options if tabs_used else []}


def default_settings(node: Any) -> dict:
    """The node's settings JSON with every default: {"model": {...}}."""
    return json.loads(db.NodeProxy(node_factory(node)()).get_parameters())


def settings_with(node: Any, params: Optional[dict] = None) -> dict:
    """Default settings with `params` merged in (a nested dict per parameter group); values are
    given as in the settings JSON (enum option names, ISO date strings, lists of columns)."""
    def merge(base: dict, new: dict, holder, path: str) -> dict:
        declared = kp._get_parameters(holder)
        for key, value in new.items():
            if key not in declared:
                raise KeyError(f"node has no parameter '{path}{key}'; parameters: {sorted(declared)}")
            if kp._is_group(declared[key]) and isinstance(value, dict):
                merge(base[key], value, declared[key], f"{path}{key}.")
            else:
                base[key] = value
        return base
    instance = node_factory(node)()
    return {"model": merge(default_settings(node)["model"], copy.deepcopy(params or {}), instance, "")}


def extract_settings(node_instance) -> dict:
    return kp.extract_parameters(node_instance)


def inject_settings(node_instance, settings: dict, version: Optional[str] = None) -> None:
    """Validate and load settings JSON into an instance (InvalidSettingsError if refused)."""
    _load(db.NodeProxy(node_instance), settings, version)


def _load(proxy: db.NodeProxy, settings: dict, version: Optional[str]) -> None:
    text = json.dumps(settings)  # settings are JSON in KNIME; this also rejects non-JSON values
    error = proxy.validate_parameters(text, version)
    if error is not None:
        raise InvalidSettingsError(error)
    proxy.set_parameters(text, version)


# --- contexts -------------------------------------------------------------------------------------
def make_java_context(node: Any = None, *, cancel_after: Optional[int] = None, workflow_dir: Optional[str] = None,
                      temp_dir: Optional[str] = None, credentials: Optional[Dict[str, Tuple[str, str]]] = None,
                      flow_variables: Optional[dict] = None, node_id: Optional[str] = None) -> db.JavaContext:
    """KNIME's side of a context; `credentials` maps name -> (username, password);
    `cancel_after=n`: is_canceled() is False for n calls, then True (0 = canceled at once)."""
    return db.JavaContext(node_id=node_id or (node_info(node).id if node is not None else "node"),
                          credentials=credentials, flow_variables=flow_variables, workflow_dir=workflow_dir,
                          temp_dir=temp_dir, cancel_after=cancel_after)


def _ports(node: Any) -> Tuple[list, list]:
    return (list(node_info(node).input_ports), list(node_info(node).output_ports)) if node is not None else ([], [])


def make_config_context(node: Any = None, **kwargs) -> kn.ConfigurationContext:
    """A ConfigurationContext (kwargs as make_java_context) for calling configure() directly."""
    java = make_java_context(node, **kwargs)
    return kn.ConfigurationContext(java, db.FlowVariables(java.flow_variables), *_ports(node))


def make_exec_context(node: Any = None, **kwargs) -> kn.ExecutionContext:
    """An ExecutionContext (kwargs as make_java_context) that records progress and warnings;
    pass it to run_node(context=...) or call node.execute(ctx, ...) yourself."""
    java = make_java_context(node, **kwargs)
    return kn.ExecutionContext(java, db.FlowVariables(java.flow_variables), *_ports(node))


def progress(ctx) -> List[Tuple[float, Optional[str]]]:
    """Every set_progress call on a context made here: (fraction, message)."""
    return list(ctx._java_ctx.progress)


def warnings(ctx) -> List[str]:
    return list(ctx._java_ctx.warnings)


# --- tables ---------------------------------------------------------------------------------------
def table_from_pandas(df, batch_size: Optional[int] = None, row_ids: str = "auto"):
    """A table as KNIME passes it to execute (source table; `batch_size` rows per batch)."""
    return as_received(knext.Table.from_pandas(df, row_ids=row_ids), batch_size)


def table_from_pyarrow(table, batch_size: Optional[int] = None, row_ids: str = "auto"):
    return as_received(knext.Table.from_pyarrow(table, row_ids=row_ids), batch_size)


def as_received(table, batch_size: Optional[int] = None):
    """A Table or BatchOutputTable as KNIME stores it and a downstream node receives it
    (batch rules and unique RowIDs checked); `batch_size` re-batches a plain Table."""
    received = kat.write_to_sink(table.get() if isinstance(table, ks._ColumnarView) else table)
    data = received._get_table()
    if batch_size is None or data.num_rows == 0:
        return received
    return kat.ArrowSourceTable([data.slice(i, batch_size).combine_chunks()
                                 for i in range(0, data.num_rows, batch_size)])


# --- transport of inputs --------------------------------------------------------------------------
def _upstream_port(value, receiving: kn.Port) -> kn.Port:
    if isinstance(value, kn.PortObject):
        return kn.Port(db.registry.port_type_for_object(value), "upstream", "")
    return receiving


def _input_msg(value, port, idx: int) -> db.Msg:
    import pandas as pd
    if isinstance(value, pd.DataFrame):
        value = knext.Table.from_pandas(value)
    if port.type == kn.PortType.BINARY and isinstance(value, bytes):
        return db.encode_object(value, port, "upstream", idx)
    return db.encode_object(value, _upstream_port(value, port), f"upstream{idx}", idx)


def _spec_msg(spec, port, idx: int) -> db.Msg:
    import pandas as pd
    if isinstance(spec, pd.DataFrame):
        spec = knext.Table.from_pandas(spec).schema
    if isinstance(spec, ks._ColumnarView):
        spec = spec.get()
    if isinstance(spec, (knext.Schema, knext.Column)):
        return db.encode_spec(spec, kn.Port(kn.PortType.TABLE, "up", ""))
    if isinstance(spec, knext.BinaryPortObjectSpec):
        return db.encode_spec(spec, kn.Port(kn.PortType.BINARY, "up", "", id=spec.id))
    pt = db.registry.get_port_type_for_spec_type(type(spec))
    return db.encode_spec(spec, kn.Port(pt, "upstream", ""), f"upstream{idx}", idx)


def _slots(ports, values: Sequence[Any], encode) -> list:
    values = list(values)
    if len(values) > len(ports):
        raise ValueError(f"node has {len(ports)} input port(s) but {len(values)} inputs were given")
    values += [None] * (len(ports) - len(values))
    return [[encode(v, p, i) for v in (val or [])] if isinstance(p, kn.PortGroup)
            else (None if val is None else encode(val, p, i)) for i, (p, val) in enumerate(zip(ports, values))]


def _java(ctx_or_none, node, input_map, output_ports, output_group_sizes, **kwargs) -> db.JavaContext:
    java = ctx_or_none._java_ctx if ctx_or_none is not None else make_java_context(node, **kwargs)
    java.input_port_map = input_map
    java.output_port_map = {p.name: list(range((output_group_sizes or {}).get(p.name, 1)))
                            for p in output_ports if isinstance(p, kn.PortGroup)}
    return java


def _decode_outputs(msgs, ports, decode) -> list:
    return [[decode(m, p) for m in msg] if isinstance(p, kn.PortGroup) else decode(msg, p)
            for msg, p in zip(msgs, ports)]


# --- configure / execute --------------------------------------------------------------------------
@dataclass
class ConfigureResult:
    specs: list  # per output port, as a downstream node receives them (lists for port groups)
    warnings: List[str]
    flow_variables: dict
    settings: dict
    node: Any
    messages: list = field(repr=False, default_factory=list)


@dataclass
class RunResult:
    outputs: list  # per output port, as a downstream node receives them (lists for port groups)
    specs: list  # configured output specs
    view: Optional[Any]  # knext NodeView when the node declares a view
    progress: List[Tuple[float, Optional[str]]]
    warnings: List[str]
    flow_variables: dict
    settings: dict
    node: Any  # the node instance that executed
    java_context: Any = field(repr=False, default=None)


def configure_node(node: Any, params: Optional[dict] = None, input_specs: Sequence[Any] = (), *,
                   settings: Optional[dict] = None, settings_version: Optional[str] = None,
                   context=None, **context_kwargs) -> ConfigureResult:
    """Configure a node: `input_specs` per input port (Schema/Column/DataFrame, custom spec,
    None for an unconnected optional port, a list for a port group)."""
    factory = node_factory(node)
    settings = settings if settings is not None else settings_with(node, params)
    proxy = db.NodeProxy(factory())
    _load(proxy, settings, settings_version)
    slots = _slots(proxy.node.input_ports, input_specs, _spec_msg)
    input_map, flat = db.port_map(proxy.node.input_ports, slots)
    java = _java(context, node, input_map, proxy.node.output_ports, None, **context_kwargs)
    java.input_specs = flat
    msgs, flow = proxy.configure(flat, java)
    specs = _decode_outputs(msgs, proxy.node.output_ports, db.decode_spec)
    return ConfigureResult(specs, list(java.warnings), flow, settings, proxy.node, msgs)


def run_node(node: Any, params: Optional[dict] = None, inputs: Sequence[Any] = (), *,
             settings: Optional[dict] = None, settings_version: Optional[str] = None, context=None,
             check_specs: bool = True, output_group_sizes: Optional[Dict[str, int]] = None,
             **context_kwargs) -> RunResult:
    """Configure then execute a node like KNIME. `inputs` per input port: a Table (e.g. from
    table_from_pandas or an earlier run), a pandas DataFrame, a PortObject, bytes for binary
    ports, None for an unconnected optional port, a list for a port group. `context`: a
    context from make_exec_context (records progress there); else context_kwargs
    (cancel_after, workflow_dir, temp_dir, credentials, flow_variables) build one.
    check_specs: the executed outputs must match the configured specs (KNIME logs a coding
    problem otherwise)."""
    factory = node_factory(node)
    settings = settings if settings is not None else settings_with(node, params)
    ports = factory().input_ports
    obj_slots = _slots(ports, inputs, _input_msg)
    spec_slots = [[m.spec for m in s] if isinstance(s, list) else (None if s is None else s.spec) for s in obj_slots]
    java = _java(context, node, {}, factory().output_ports, output_group_sizes, **context_kwargs)
    config_java = db.JavaContext(node_id=java.node_id, credentials=java.credentials,
                                 flow_variables=java.flow_variables, workflow_dir=java.workflow_dir,
                                 temp_dir=java.temp_dir)
    proxy = db.NodeProxy(factory())
    _load(proxy, settings, settings_version)
    config_java.input_port_map, flat_specs = db.port_map(ports, spec_slots)
    config_java.output_port_map = java.output_port_map
    config_java.input_specs = flat_specs
    spec_msgs, _ = proxy.configure(flat_specs, config_java)
    proxy = db.NodeProxy(factory())  # KNIME does not keep the configure instance for execute
    _load(proxy, settings, settings_version)
    java.input_port_map, flat_objs = db.port_map(ports, obj_slots)
    obj_msgs, view, flow = proxy.execute(flat_objs, java)
    if check_specs:
        _check_specs(proxy.node, spec_msgs, obj_msgs)
    return RunResult(outputs=_decode_outputs(obj_msgs, proxy.node.output_ports, db.decode_object),
                     specs=_decode_outputs(spec_msgs, proxy.node.output_ports, db.decode_spec), view=view,
                     progress=list(java.progress), warnings=list(config_java.warnings) + list(java.warnings),
                     flow_variables=flow, settings=settings, node=proxy.node, java_context=java)


def _check_specs(node, spec_msgs, obj_msgs) -> None:
    for i, (spec, obj, port) in enumerate(zip(spec_msgs, obj_msgs, node.output_ports)):
        pairs = zip(spec, obj) if isinstance(port, kn.PortGroup) else [(spec, obj)]
        for s, o in pairs:
            if s is None or o is None or o.spec is None:
                continue
            configured, executed = json.loads(s.json), json.loads(o.spec.json)
            if configured != executed:
                raise AssertionError(f"{type(node).__name__}: output port {i} ('{port.name}') spec from configure "
                                     f"differs from the executed output's spec:\n configure: {configured}\n"
                                     f" execute:   {executed}")


def dialog(node: Any, params: Optional[dict] = None, input_specs: Sequence[Any] = (), **context_kwargs) -> dict:
    """What KNIME builds when the dialog opens: {"data", "schema", "ui_schema"} (choices
    callables and rules are evaluated with a DialogCreationContext)."""
    factory = node_factory(node)
    proxy = db.NodeProxy(factory())
    proxy.set_parameters(json.dumps(settings_with(node, params)), exclude_validations=True)
    slots = _slots(proxy.node.input_ports, input_specs, _spec_msg)
    java = make_java_context(node, **context_kwargs)
    java.input_port_map, java.input_specs = db.port_map(proxy.node.input_ports, slots)
    ctx = kn.DialogCreationContext(java, db.FlowVariables(java.flow_variables),
                                   lambda specs, _map: proxy._to_python(java, specs, db.decode_spec))
    return {"data": kp.extract_parameters(proxy.node, for_dialog=True), "schema": proxy.get_schema(ctx),
            "ui_schema": kp.extract_ui_schema(proxy.node, ctx)}
