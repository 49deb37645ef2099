"""Parameter groups (`@knext.parameter_group` classes used as class attributes), ParameterArray, and
walking the parameters of a node or group.

A group class gets descriptor methods: reading `node.group` gives that node's own instance of
the group, so group values are per node like plain parameter values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ._param_base import (VALUES, InvalidParametersError, LayoutDirection, ParameterBase, attribute_name,
                          check_layout, check_version, values_of)
from ._version import Version

GROUP_INFO = "__knime_parameter_group__"


@dataclass
class GroupInfo:
    label: str
    since_version: Optional[str]
    is_advanced: bool
    description: str
    layout_direction: LayoutDirection = LayoutDirection.VERTICAL


def parameter_group(label: str, since_version: Optional[str] = None, is_advanced: bool = False,
                    layout_direction: Any = None):
    """Class decorator: the class's parameters form a group (a tab or section in the dialog), laid
    out as `layout_direction` (a knext.LayoutDirection) says. A `validate(self, values)` method
    checks the group's settings (a dict) as a whole."""
    check_version(since_version, f"parameter group '{label}'")
    direction = check_layout(layout_direction, f"parameter group '{label}'")

    def decorate(cls: type) -> type:
        if not isinstance(cls, type):
            raise TypeError("@knext.parameter_group decorates a class")
        setattr(cls, GROUP_INFO, GroupInfo(label, since_version, bool(is_advanced), (cls.__doc__ or "").strip(),
                                            direction))
        cls.__set_name__ = _group_set_name
        cls.__get__ = _group_get
        cls.__set__ = _group_set
        return cls
    return decorate


def _group_set_name(self: Any, owner: type, name: str) -> None:
    self.__dict__["_knime_name"] = name


def _group_get(self: Any, holder: Any, owner: Optional[type] = None) -> Any:
    if holder is None:
        return self
    name = self.__dict__.get("_knime_name") or attribute_name(type(holder), self)
    store = values_of(holder)
    if name not in store:
        store[name] = bound_copy(self)
    return store[name]


def _group_set(self: Any, holder: Any, value: Any) -> None:
    raise AttributeError(f"parameter group '{group_info(self).label}' cannot be replaced; set its parameters "
                         "one by one")


def bound_copy(template: Any) -> Any:
    """A fresh instance of a group (defaults) for one node instance or array item."""
    item = object.__new__(type(template))
    item.__dict__.update({k: v for k, v in template.__dict__.items() if k != VALUES})
    return item


def is_group(obj: Any) -> bool:
    return not isinstance(obj, type) and hasattr(type(obj), GROUP_INFO)


def group_info(obj: Any) -> GroupInfo:
    return getattr(type(obj), GROUP_INFO)


def parameters_of(holder: Any) -> Dict[str, Any]:
    """Parameters and groups of a node or group (instance or class), in declaration order."""
    cls = holder if isinstance(holder, type) else type(holder)
    found: Dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, ParameterBase) or is_group(value):
                found[name] = value
    return found


def extract_values(holder: Any) -> Dict[str, Any]:
    """The settings dict of a node or group instance (JSON values; groups as nested dicts)."""
    out: Dict[str, Any] = {}
    for name, desc in parameters_of(holder).items():
        value = getattr(holder, name)
        out[name] = extract_values(value) if is_group(desc) else desc.to_json(value)
    return out


def fill_defaults(holder: Any, version: Optional[Version]) -> None:
    """Every parameter of a node or group instance at its default for `version` (see default_for)."""
    for name, desc in parameters_of(holder).items():
        if is_group(desc):
            fill_defaults(getattr(holder, name), version)
        else:
            values_of(holder)[name] = desc.default_for(version)


def assign_values(holder: Any, data: Dict[str, Any], defaults_for: Any = None, version: Optional[Version] = None,
                  path: str = "") -> None:
    """Set values from a settings dict, each through its checks; a missing key gets the default for
    the saved `version` when `defaults_for(descriptor)` says so, else KNIME's InvalidParametersError
    'Parameter missing for key "<key>".'. Group `validate` runs last."""
    if not isinstance(data, dict):
        raise TypeError(f"settings of '{path or 'the node'}' must be a dict, not {type(data).__name__}")
    for name, desc in parameters_of(holder).items():
        key = f"{path}{name}"
        if name not in data:
            if defaults_for is not None and defaults_for(desc):
                if is_group(desc):
                    fill_defaults(getattr(holder, name), version)
                else:
                    values_of(holder)[name] = desc.default_for(version)
                continue
            raise InvalidParametersError(f'Parameter missing for key "{name}".')
        if is_group(desc):
            assign_values(getattr(holder, name), data[name], defaults_for, version, key + ".")
        else:
            try:
                setattr(holder, name, desc.from_json(data[name]))
            except (ValueError, TypeError) as e:
                kind = TypeError if isinstance(e, TypeError) else ValueError
                raise kind(f"parameter '{desc.label}' ({key}): {e}") from None
    check = getattr(holder, "validate", None)
    if is_group(holder) and callable(check):
        try:
            check(extract_values(holder))
        except Exception as e:  # noqa: BLE001 - any refusal of the group's validate() is invalid settings
            raise ValueError(f"{group_info(holder).label}: {e}") from e


class ParameterArray(ParameterBase):
    """A list of items that each hold the parameters of a group (`parameters`)."""

    _json_type = "array"

    def __init__(self, parameters: Any, label: str, description: str = "", since_version: Optional[str] = None,
                 is_advanced: bool = False, allow_reorder: bool = True, layout_direction: Any = None,
                 button_text: str = "Add", array_title: Optional[str] = None) -> None:
        if not is_group(parameters):
            raise TypeError(f"ParameterArray '{label}': parameters must be an instance of a @knext.parameter_group "
                            "class")
        super().__init__(label, description, [], None, since_version, is_advanced)
        self.layout_direction = check_layout(layout_direction, f"ParameterArray '{label}'")
        self.template, self.allow_reorder = parameters, allow_reorder
        self.button_text, self.array_title = button_text, array_title

    def _coerce(self, value: Any) -> List[Any]:
        if not isinstance(value, (list, tuple)):
            raise self._type_error(value, "a list of items")
        items = []
        for i, v in enumerate(value):
            if isinstance(v, type(self.template)):
                items.append(v)
                continue
            item = bound_copy(self.template)
            assign_values(item, v, lambda d: True, None, f"{self._name or self._label}[{i}].")
            items.append(item)
        return items

    def to_json(self, value: Any) -> Any:
        return [extract_values(item) for item in value]

    def json_schema(self, ctx: Any) -> dict:
        from ._settings import schema_properties
        return {**super().json_schema(ctx), "items": {"type": "object",
                                                      "properties": schema_properties(self.template, ctx)}}
