"""Run KNIME nodes in pytest as KNIME runs them, on the knime.extension test double.

`run_node` does what KNIME does for one node: the settings JSON ({"model": ...}) is validated,
then loaded into a fresh node instance (validators, ranges and group `validate` run);
configure gets the input specs after a JSON round trip; then another fresh instance executes
with the inputs after KNIME's transport (tables as Arrow IPC batches, custom port objects as
`serialize()` bytes, connection objects by reference). Outputs come back as the next node
receives them, so runs chain: `run_node(b, {}, [run_node(a).outputs[0]])`. Exceptions raised
by a node propagate unchanged.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

import knime.extension as knext

try:  # inside a real KNIME Python environment there is no double to drive
    from knime.extension import _transport as wire
except ImportError:
    pytest.skip("knime_harness runs nodes on the knime.extension test double only", allow_module_level=True)

import knime.extension.nodes as kn  # noqa: E402
import knime.extension.parameter as kp  # noqa: E402
from knime.extension._contexts import ConfigurationContext, DialogCreationContext, ExecutionContext  # noqa: E402
from knime.extension._host import HostContext  # noqa: E402
from knime.extension._ports import PortGroup  # noqa: E402


class InvalidSettingsError(knext.InvalidParametersError):
    """KNIME refused the settings (validation failed); the message is what KNIME shows."""


class NodeCanceledError(RuntimeError):
    """The user cancelled, the node did not stop, and KNIME discarded what it returned."""


# ---- nodes, parameters, settings ------------------------------------------------------------------
def load_extension(module: str = "extension") -> Dict[str, Any]:
    """Import the extension's entry module (as KNIME does) and return the node registry."""
    importlib.import_module(module)
    return kn._nodes


def node_info(node: Any) -> kn.NodeInfo:
    """The registry entry of a node given by its factory, class or id."""
    if isinstance(node, str):
        return kn._nodes[node]
    for info in kn._nodes.values():
        if node is info.node_factory or node is info.node_class:
            return info
    raise KeyError(f"{node!r} is not a registered node: pass what @knext.node returned, or the node id")


def node_factory(node: Any):
    return node_info(node).node_factory


def node_ports(node: Any) -> Tuple[list, list, Optional[kn.ViewDeclaration]]:
    """(input ports, output ports, view declaration or None) in declaration order."""
    info = node_info(node)
    return list(info.input_ports), list(info.output_ports), (info.views[0] if info.views else None)


def node_parameters(node: Any) -> Dict[str, Any]:
    """Top-level parameters and groups of a node, by attribute name."""
    return kp.parameters_of(node_info(node).node_class)


def node_description(node: Any) -> Dict[str, Any]:
    """What KNIME lists: registry fields, the docstring's first line and the rest, the options
    (or tabs, when the node has parameter groups)."""
    info = node_info(node)
    lines = (info.node_class.__doc__ or "").strip("\n").splitlines()
    return {**info.to_dict(), "short_description": lines[0].strip() if lines else "",
            "full_description": "\n".join(lines[1:]).strip(), **kp.describe_options(info.node_factory())}


def default_settings(node: Any) -> Dict[str, Any]:
    """The node's settings JSON with every default: {"model": {...}}."""
    return json.loads(json.dumps(kp.extract_settings(node_factory(node)())))


def settings_with(node: Any, params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Defaults with `params` merged in (a nested dict per group), values as in the settings JSON
    (enum option names, ISO dates, lists of column names). Unknown names: KeyError."""
    settings = default_settings(node)

    def merge(base: dict, new: dict, holder: Any, path: str) -> None:
        declared = kp.parameters_of(holder)
        for key, value in new.items():
            if key not in declared:
                raise KeyError(f"node has no parameter '{path}{key}'; parameters here: {sorted(declared)}")
            if kp.is_group(declared[key]) and isinstance(value, dict):
                merge(base[key], value, declared[key], f"{path}{key}.")
            else:
                base[key] = value
    merge(settings["model"], json.loads(json.dumps(params or {})), node_info(node).node_class, "")
    return settings


def extract_settings(node_instance: Any) -> Dict[str, Any]:
    return kp.extract_settings(node_instance)


def inject_settings(node_instance: Any, settings: Dict[str, Any], version: Optional[str] = None) -> None:
    """Validate, then load settings JSON into a node instance (InvalidSettingsError if refused)."""
    data = json.loads(json.dumps(settings))  # settings are JSON in KNIME: non-JSON values fail here
    error = kp.validate_settings(node_instance, data, version)
    if error is not None:
        raise InvalidSettingsError(error)
    kp.load_settings(node_instance, data, version)


def _instance(node: Any, settings: Dict[str, Any], version: Optional[str]) -> Any:
    instance = node_factory(node)()  # KNIME never reuses an instance between configure and execute
    inject_settings(instance, settings, version)
    return instance


# ---- contexts ------------------------------------------------------------------------------------
def make_host_context(node: Any = None, *, cancel_after: Optional[int] = None, workflow_dir: Optional[str] = None,
                      temp_dir: Optional[str] = None, credentials: Optional[Dict[str, Tuple[str, str]]] = None,
                      flow_variables: Optional[dict] = None) -> HostContext:
    """KNIME's side of a context. credentials: name -> (username, password); cancel_after=n: the
    user cancels after the node asked is_canceled() n times (0: before it starts). Until a run
    connects the ports, every single port counts as connected (1) and every port group as empty (0)."""
    host = HostContext(credentials, flow_variables, workflow_dir, temp_dir, cancel_after)
    if node is not None:
        info = node_info(node)
        host.input_connected = [0 if isinstance(p, PortGroup) else 1 for p in info.input_ports]
        host.output_connected = [0 if isinstance(p, PortGroup) else 1 for p in info.output_ports]
    return host


make_java_context = make_host_context


def make_config_context(node: Any = None, **kwargs: Any) -> ConfigurationContext:
    """A ConfigurationContext (kwargs as make_host_context) for calling configure() directly."""
    return ConfigurationContext(make_host_context(node, **kwargs))


def make_exec_context(node: Any = None, **kwargs: Any) -> ExecutionContext:
    """An ExecutionContext that records progress and warnings: pass it to run_node(context=...)."""
    return ExecutionContext(make_host_context(node, **kwargs))


def progress(ctx: Any) -> List[Tuple[float, Optional[str]]]:
    """Every set_progress call on a context from make_exec_context: (fraction, message)."""
    return list(ctx._host.progress)


def warnings(ctx: Any) -> List[str]:
    return list(ctx._host.warnings)


def cancel_checks(ctx: Any) -> int:
    """How often the node asked is_canceled() on a context from make_exec_context."""
    return ctx._host.cancel_checks


# ---- tables --------------------------------------------------------------------------------------
def as_received(table: Any, batch_size: Optional[int] = None) -> knext.Table:
    """A Table or BatchOutputTable as the next node receives it (RowIDs and types checked by
    KNIME's storage); batch_size re-cuts it into batches of that many rows."""
    return wire.store_table(table, batch_size)


def table_from_pandas(df: Any, batch_size: Optional[int] = None, row_ids: str = "auto") -> knext.Table:
    """A DataFrame as KNIME hands a table to execute (batch_size rows per batch)."""
    return as_received(knext.Table.from_pandas(df, row_ids=row_ids), batch_size)


def table_from_pyarrow(table: Any, batch_size: Optional[int] = None, row_ids: str = "auto") -> knext.Table:
    return as_received(knext.Table.from_pyarrow(table, row_ids=row_ids), batch_size)


# ---- port plumbing -------------------------------------------------------------------------------
def _per_port(ports: list, values: Sequence[Any], what: str) -> list:
    values = list(values)
    if len(values) > len(ports):
        raise ValueError(f"the node has {len(ports)} input port(s) but {len(values)} {what} were given")
    values += [None] * (len(ports) - len(values))
    for p, v in zip(ports, values):
        if isinstance(p, PortGroup) and v is not None and not isinstance(v, list):
            raise TypeError(f"input port group '{p.name}' takes a list, got {type(v).__name__}")
    return values


def _each(port: Any, value: Any, fn) -> Any:
    """fn per value: a list for a port group, one value (None stays None) otherwise."""
    if isinstance(port, PortGroup):
        return [fn(v) for v in (value or [])]
    return None if value is None else fn(value)


def _as_knime(value: Any) -> Any:
    import pandas as pd
    import pyarrow as pa
    if isinstance(value, pd.DataFrame):
        return knext.Table.from_pandas(value)
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return knext.Table.from_pyarrow(value)
    return value


def _spec_through_json(port: Any, spec: Any) -> Any:
    spec = _as_knime(spec)
    spec = spec.schema if isinstance(spec, knext.Table) else spec
    if isinstance(spec, knext.PortObject):
        spec = spec.spec
    return wire.receive_spec(wire.send_spec(spec, port, "input"), port)


def _connect(host: HostContext, in_ports: list, values: list, out_ports: list, group_sizes: Optional[dict]) -> None:
    host.input_connected = [len(v or []) if isinstance(p, PortGroup) else int(v is not None)
                            for p, v in zip(in_ports, values)]
    host.output_connected = [(group_sizes or {}).get(p.name, 1) if isinstance(p, PortGroup) else 1
                             for p in out_ports]


def _one_per_port(result: Any, n: int, what: str) -> list:
    if n == 0:
        return []
    if n == 1:
        return [result]
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        raise TypeError(f"{what} must return {n} values (one per output port), got {got}")
    return list(result)


# ---- configure / execute -------------------------------------------------------------------------
@dataclass
class ConfigureResult:
    specs: list  # per output port, as the next node receives them (lists for port groups)
    warnings: List[str]
    flow_variables: dict
    settings: dict
    node: Any
    wires: list = field(repr=False, default_factory=list)


@dataclass
class RunResult:
    outputs: list  # per output port, as the next node receives them (lists for port groups)
    specs: list  # the configured output specs
    view: Optional[Any]  # the NodeView when the node declares a view
    progress: List[Tuple[float, Optional[str]]]
    warnings: List[str]
    flow_variables: dict
    settings: dict
    node: Any  # the instance that executed
    host: Any = field(repr=False, default=None)


def _configure(node: Any, settings: dict, version: Optional[str], specs: list, host: HostContext) -> ConfigureResult:
    info = node_info(node)
    instance = _instance(node, settings, version)
    before = dict(host.flow_variables)
    result = instance.configure(ConfigurationContext(host), *specs)
    flow = wire.check_flow_variables(before, host.flow_variables)
    out = _one_per_port(result, len(info.output_ports), f"{info.node_class.__name__}.configure")
    wires = [_each(p, s, lambda v, p=p: wire.send_spec(v, p)) for p, s in zip(info.output_ports, out)]
    received = [_each(p, w, lambda v, p=p: wire.receive_spec(v, p)) for p, w in zip(info.output_ports, wires)]
    return ConfigureResult(received, list(host.warnings), flow, settings, instance, wires)


def configure_node(node: Any, params: Optional[dict] = None, input_specs: Sequence[Any] = (), *,
                   settings: Optional[dict] = None, settings_version: Optional[str] = None,
                   context: Any = None, **context_kwargs: Any) -> ConfigureResult:
    """Configure a node. input_specs per input port: a Schema, Table or DataFrame (its schema), a
    custom spec, None for an unconnected optional port, a list for a port group."""
    info = node_info(node)
    settings = settings if settings is not None else settings_with(node, params)
    values = _per_port(info.input_ports, input_specs, "input specs")
    specs = [_each(p, v, lambda s, p=p: _spec_through_json(p, s)) for p, v in zip(info.input_ports, values)]
    host = context._host if context is not None else make_host_context(node, **context_kwargs)
    _connect(host, info.input_ports, specs, info.output_ports, None)
    return _configure(node, settings, settings_version, specs, host)


def run_node(node: Any, params: Optional[dict] = None, inputs: Sequence[Any] = (), *,
             settings: Optional[dict] = None, settings_version: Optional[str] = None, context: Any = None,
             check_specs: bool = True, output_group_sizes: Optional[Dict[str, int]] = None,
             **context_kwargs: Any) -> RunResult:
    """Configure, then execute a node like KNIME. inputs per input port: a Table (e.g. from
    table_from_pandas or an earlier run), a DataFrame, a port object, bytes for binary ports, None
    for an unconnected optional port, a list for a port group. context: from make_exec_context
    (progress is recorded there); else context_kwargs (cancel_after, workflow_dir, temp_dir,
    credentials, flow_variables) make one. check_specs: executed outputs must have the configured
    specs. output_group_sizes: connected ports per output group name."""
    info = node_info(node)
    settings = settings if settings is not None else settings_with(node, params)
    values = _per_port(info.input_ports, inputs, "inputs")
    wires = [_each(p, v, lambda o, p=p: wire.send(_as_knime(o), p, "input")) for p, v in zip(info.input_ports, values)]
    objects = [_each(p, w, lambda o, p=p: wire.receive(o, p)) for p, w in zip(info.input_ports, wires)]
    specs = [_each(p, o, lambda x, p=p: _spec_through_json(p, wire.spec_of(x, p))) for p, o in
             zip(info.input_ports, objects)]
    host = context._host if context is not None else make_host_context(node, **context_kwargs)
    config_host = host.sibling()
    _connect(config_host, info.input_ports, specs, info.output_ports, output_group_sizes)
    conf = _configure(node, settings, settings_version, specs, config_host)

    instance = _instance(node, settings, settings_version)
    _connect(host, info.input_ports, objects, info.output_ports, output_group_sizes)
    before = dict(host.flow_variables)
    result = instance.execute(ExecutionContext(host), *objects)
    if host.canceled:
        raise NodeCanceledError(f"{info.name}: cancelled after {host.cancel_after} is_canceled() call(s) but execute "
                                "returned normally; KNIME discards the outputs (check is_canceled() and raise)")
    flow = wire.check_flow_variables(before, host.flow_variables)
    n = len(info.output_ports)
    view = None
    if info.views:
        parts = list(result) if n and isinstance(result, (tuple, list)) else [result]
        if len(parts) != n + 1:
            raise TypeError(f"{info.node_class.__name__}.execute must return {n} output(s) and the view last, got "
                            f"{len(parts)} value(s)")
        view, result = wire.check_view(parts[-1], info.name), (parts[0] if n == 1 else tuple(parts[:-1]))
    out = _one_per_port(result, n, f"{info.node_class.__name__}.execute")
    sent = [_each(p, o, lambda v, p=p: wire.send(v, p)) for p, o in zip(info.output_ports, out)]
    if check_specs:
        _check_specs(info, conf.wires, sent)
    outputs = [_each(p, w, lambda v, p=p: wire.receive(v, p, "output")) for p, w in zip(info.output_ports, sent)]
    return RunResult(outputs, conf.specs, view, list(host.progress), conf.warnings + list(host.warnings), flow,
                     settings, instance, host)


def _check_specs(info: kn.NodeInfo, spec_wires: list, object_wires: list) -> None:
    for i, (port, specs, objs) in enumerate(zip(info.output_ports, spec_wires, object_wires)):
        pairs = zip(specs or [], objs or []) if isinstance(port, PortGroup) else [(specs, objs)]
        for s, o in pairs:
            if s is None or o is None or o.spec is None:
                continue
            configured, executed = json.loads(s.json), json.loads(o.spec.json)
            if configured != executed:
                raise AssertionError(f"{info.node_class.__name__}: output port {i} ('{port.name}') differs from the "
                                     f"spec configure gave (KNIME reports a coding problem):\n configure: "
                                     f"{configured}\n execute:   {executed}")


def dialog(node: Any, params: Optional[dict] = None, input_specs: Sequence[Any] = (), **context_kwargs: Any) -> dict:
    """What KNIME builds when the dialog opens: {"data", "schema", "ui_schema"}; choices callables
    and column lists are evaluated against the input specs."""
    info = node_info(node)
    values = _per_port(info.input_ports, input_specs, "input specs")
    host = make_host_context(node, **context_kwargs)
    host.input_specs = [_each(p, v, lambda s, p=p: _spec_through_json(p, s)) for p, v in zip(info.input_ports, values)]
    ctx, instance = DialogCreationContext(host), info.node_factory()
    return {"data": settings_with(node, params)["model"], "schema": kp.dialog_schema(instance, ctx),
            "ui_schema": kp.ui_schema(instance, ctx)}
