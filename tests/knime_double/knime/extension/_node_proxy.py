"""NodeProxy: drives one node instance the way KNIME's node backend does (double of its
_PythonNodeProxy). Exceptions from the node propagate unchanged (KNIME shows str(error);
InvalidParametersError is shown as invalid settings).
"""
from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

import knime.api.views as kv
import knime.extension.nodes as kn
import knime.extension.parameter as kp

from . import _double_backend as db


def port_map(ports, slots) -> dict:
    """KNIME's port map for per-port inputs (`slots[i]`: a Msg/None for a port, a list for a
    group) -> ({key: [flat indices]}, flat list)."""
    mapping, flat = {}, []
    for i, (port, slot) in enumerate(zip(ports, slots)):
        items = list(slot) if isinstance(port, kn.PortGroup) else ([] if slot is None else [slot])
        if isinstance(port, kn.Port) and not port.optional and not items:
            raise ValueError(f"input port {i} ('{port.name}') is not optional but nothing is connected")
        idx = list(range(len(flat), len(flat) + len(items)))
        flat += items
        if isinstance(port, kn.PortGroup) or port.optional:
            if idx:
                mapping[port.name] = idx
        else:
            mapping[f"Input {port.name} # {i}"] = idx
    return mapping, flat


class NodeProxy:
    """One node instance created by its factory, with settings, configure and execute."""

    def __init__(self, node) -> None:
        db.ensure_extension_loaded()
        for attr in ("input_ports", "output_ports"):
            if getattr(node, attr, None) is None:
                raise ValueError(f"Attribute {attr} is missing in node {node}")
        self.node = node
        self.version = db.EXTENSION_VERSION

    # settings -------------------------------------------------------------------------------
    def get_parameters(self) -> str:
        return json.dumps(kp.extract_parameters(self.node))

    def validate_parameters(self, parameters: str, saved_version: Optional[str] = None) -> Optional[str]:
        """None when valid, else the message KNIME shows for invalid settings."""
        try:
            kp.validate_parameters(self.node, json.loads(parameters), saved_version or self.version)
            return None
        except BaseException as error:  # noqa: B036  (KNIME reports any error as a message)
            return str(error)

    def set_parameters(self, parameters: str, parameters_version: Optional[str] = None,
                       exclude_validations: bool = False) -> None:
        kp.inject_parameters(self.node, json.loads(parameters), parameters_version or self.version,
                             exclude_validations)

    def get_schema(self, dialog_context=None) -> dict:
        return kp.extract_schema(self.node, self.version, dialog_context)

    # ports ----------------------------------------------------------------------------------
    def _to_python(self, java_ctx, msgs: List[Any], decode) -> list:
        mapping = {k: list(v) for k, v in java_ctx.get_input_port_map().items()}
        out = []
        for i, port in enumerate(self.node.input_ports):
            if isinstance(port, kn.PortGroup):
                out.append([decode(msgs[j], port) for j in mapping.get(port.name, [])])
            elif port.optional:
                idx = mapping.get(port.name, [])
                out.append(decode(msgs[idx[0]], port) if idx else None)
            else:
                out.append(decode(msgs[mapping[f"Input {port.name} # {i}"][0]], port))
        return out

    def _pack(self, outputs) -> list:
        ports = self.node.output_ports
        if isinstance(outputs, list) and len(outputs) != len(ports):
            outputs = [outputs]  # a single port group's list, as in KNIME
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        outputs = [o if isinstance(o, list) else [o] for o in outputs]
        if len(outputs) != len(ports):
            raise ValueError(f"node {type(self.node).__name__} declares {len(ports)} output port(s) but returned "
                             f"{len(outputs)} value(s); return one per output port, in declaration order")
        return outputs

    def configure(self, spec_msgs: List[Any], java_ctx) -> Tuple[list, dict]:
        """-> (per output port: spec Msg or None, or a list for groups; flow variables)."""
        inputs = self._to_python(java_ctx, spec_msgs, db.decode_spec)
        ctx = kn.ConfigurationContext(java_ctx, db.FlowVariables(java_ctx.flow_variables),
                                      self.node.input_ports, self.node.output_ports)
        kp.validate_specs(self.node, inputs)
        outputs = self.node.configure(ctx, *inputs)
        flow = db.check_flow_variables(ctx.flow_variables)
        if outputs is None:  # downstream nodes cannot be configured yet
            outputs = [None] * len(self.node.output_ports)
        packed = self._pack(outputs)
        msgs = [[db.encode_spec(s, self.node.output_ports[i], java_ctx.get_node_id(), i) for s in group]
                for i, group in enumerate(packed)]
        return [m if isinstance(self.node.output_ports[i], kn.PortGroup) else m[0] for i, m in enumerate(msgs)], flow

    def execute(self, obj_msgs: List[Any], java_ctx) -> Tuple[list, Optional[kv.NodeView], dict]:
        """-> (per output port: object Msg, or a list for groups; the view or None; flow variables)."""
        inputs = self._to_python(java_ctx, obj_msgs, db.decode_object)
        ctx = kn.ExecutionContext(java_ctx, db.FlowVariables(java_ctx.flow_variables),
                                  self.node.input_ports, self.node.output_ports)
        outputs = self.node.execute(ctx, *inputs)
        if ctx.is_canceled():
            raise db.NodeCanceledError("Canceled")
        flow = db.check_flow_variables(ctx.flow_variables)
        view = None
        decl = getattr(self.node, "output_view", None)
        if outputs is None:
            outputs = []
        if decl is not None and decl.index_html_path is None:
            if isinstance(outputs, (list, tuple)):
                if len(outputs) == 0:
                    raise ValueError("The node has an output view but no outputs were produced. "
                                     "Return an output view from the execute method.")
                view, outputs = outputs[-1], list(outputs[:-1])
            else:
                view, outputs = outputs, []
            if isinstance(view, list):
                view = view[0]
            view = view if isinstance(view, kv.NodeView) else kv.view(view)
        packed = self._pack(outputs) if self.node.output_ports else []
        msgs = [[db.encode_object(o, self.node.output_ports[i], java_ctx.get_node_id(), i) for o in group
                 if o is not None] for i, group in enumerate(packed)]
        for i, m in enumerate(msgs):
            if not m and not isinstance(self.node.output_ports[i], kn.PortGroup):
                raise ValueError(f"execute of {type(self.node).__name__} returned no object for output port {i} "
                                 f"('{self.node.output_ports[i].name}')")
        return [m if isinstance(self.node.output_ports[i], kn.PortGroup) else m[0]
                for i, m in enumerate(msgs)], view, flow
