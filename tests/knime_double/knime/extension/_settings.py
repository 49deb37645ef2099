"""A node's settings as KNIME keeps them (JSON `{"model": {...}}`), its option descriptions, and the
JSON Forms data KNIME builds for its dialog."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._param_base import InvalidParametersError, LayoutDirection, ParameterBase
from ._param_group import assign_values, extract_values, group_info, is_group, parameters_of
from ._version import Version


def extract_settings(node: Any) -> Dict[str, Any]:
    """The node instance's settings JSON: {"model": {parameter: value, group: {...}}}."""
    return {"model": extract_values(node)}


def _defaults_rule(saved: Version):
    """Settings saved by release `saved` may lack parameters added later (since_version newer than
    it; settings without a version count as 0.0.0); those get their defaults."""
    def use_default(desc: Any) -> bool:
        since = desc.since_version if isinstance(desc, ParameterBase) else group_info(desc).since_version
        return since is not None and saved < Version.parse_version(since)
    return use_default


def load_settings(node: Any, settings: Dict[str, Any], version: Optional[str] = None) -> None:
    """Set every parameter from the settings JSON (checks and validators run); `version` is the
    release ('x.y.z') that saved them, None when they carry none."""
    if not isinstance(settings, dict) or not isinstance(settings.get("model"), dict):
        raise ValueError('node settings are JSON of the form {"model": {...}}')
    saved = Version.parse_version(version)
    assign_values(node, settings["model"], _defaults_rule(saved), saved)


def validate_settings(node: Any, settings: Dict[str, Any], version: Optional[str] = None) -> Optional[str]:
    """None when the settings would load, else the message KNIME shows. Nothing is changed."""
    scratch = object.__new__(type(node))
    try:
        load_settings(scratch, settings, version)
    except (ValueError, TypeError, InvalidParametersError) as e:
        return f"Invalid settings: {e}"
    return None


# ---- node description ------------------------------------------------------------------------------
def _option(desc: Any) -> Dict[str, Any]:
    return {"name": desc.label, "description": desc.description, "is_advanced": desc.is_advanced}


def describe_options(node: Any) -> Dict[str, List[Dict[str, Any]]]:
    """What KNIME lists in the node description: plain options, or tabs when the node has groups
    (its ungrouped parameters then form an "Options" tab first)."""
    params = parameters_of(node)
    plain = [_option(d) for d in params.values() if not is_group(d)]
    groups = [d for d in params.values() if is_group(d)]
    if not groups:
        return {"options": plain, "tabs": []}
    tabs = [{"name": "Options", "description": "", "options": plain}] if plain else []
    for g in groups:
        info = group_info(g)
        tabs.append({"name": info.label, "description": info.description,
                     "options": [_option(d) for d in _flatten(g)]})
    return {"options": [], "tabs": tabs}


def _flatten(holder: Any) -> List[Any]:
    out = []
    for d in parameters_of(holder).values():
        out += _flatten(d) if is_group(d) else [d]
    return out


# ---- dialog (JSON Forms) ---------------------------------------------------------------------------
def schema_properties(holder: Any, ctx: Any) -> Dict[str, Any]:
    props: Dict[str, Any] = {}
    for name, d in parameters_of(holder).items():
        if is_group(d):
            props[name] = {"type": "object", "title": group_info(d).label, "properties": schema_properties(d, ctx)}
        else:
            props[name] = d.json_schema(ctx)
    return props


def dialog_schema(node: Any, ctx: Any) -> Dict[str, Any]:
    return {"type": "object", "properties": {"model": {"type": "object", "properties": schema_properties(node, ctx)}}}


def ui_schema(node: Any, ctx: Any) -> Dict[str, Any]:
    return {"type": "VerticalLayout", "elements": _elements(node, ctx, "#/properties/model/properties/")}


def _elements(holder: Any, ctx: Any, prefix: str) -> List[Dict[str, Any]]:
    params = parameters_of(holder)
    names = {id(d): n for n, d in params.items()}
    out = []
    for name, d in params.items():
        scope = prefix + name
        if is_group(d):
            info = group_info(d)
            inner = _elements(d, ctx, scope + "/properties/")
            if info.layout_direction is LayoutDirection.HORIZONTAL:
                inner = [{"type": info.layout_direction.value, "elements": inner}]
            out.append({"type": "Section", "label": info.label, "options": {"isAdvanced": info.is_advanced},
                        "elements": inner})
            continue
        options = {**d.ui_options(ctx), **({"isAdvanced": True} if d.is_advanced else {})}
        element: Dict[str, Any] = {"type": "Control", "scope": scope, "label": d.label, "options": options}
        if d._rule is not None:
            condition, effect = d._rule

            def scope_of(subject: ParameterBase, _name: str = name) -> str:
                if id(subject) not in names:
                    raise ValueError(f"the rule of parameter '{_name}' refers to '{subject.label}', which is not a "
                                     "parameter on the same level (rules work between siblings)")
                return prefix + names[id(subject)]
            element["rule"] = {"effect": effect.value, "condition": condition.to_json(scope_of)}
        out.append(element)
    return out
