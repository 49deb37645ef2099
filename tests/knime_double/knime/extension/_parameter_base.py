"""Core of the knime.extension.parameter double: the parameter descriptor base class, rules,
and the module functions KNIME's backend calls on a node (extract/inject/validate settings,
JSON schema, UI schema, descriptions).

Parameters are class-level descriptors; values live per instance in `obj.__parameters__`
(a dict, nested per parameter group). Settings travel as {"model": {name: value, group: {...}}}.
Assigning an attribute runs the parameter's validator, as in KNIME. Note (also as in KNIME):
a custom `validator` *replaces* the default one (type and min/max checks) of Int/Double/
String/Bool/Multiline parameters, while Enum, EnumSet and ParameterArray keep theirs.
"""
from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Dict, Optional

from knime.extension.version import Version

LOGGER = logging.getLogger("Python backend")
_extension_version: Optional[Version] = None  # set by the backend when the extension is loaded


def set_extension_version(version: str) -> None:
    global _extension_version
    _extension_version = Version.parse_version(version)


def _get_extension_version() -> Version:
    if _extension_version is None:
        raise RuntimeError("The extension version has not been set by the backend.")
    return _extension_version


def _is_parameter_or_group(obj) -> bool:
    return hasattr(obj, "__kind__")


def _is_group(param) -> bool:
    return getattr(param, "__kind__", None) == "parameter_group"


def _is_array(param) -> bool:
    return getattr(param, "__kind__", None) == "parameter_array"


def _get_parameters(obj) -> Dict[str, Any]:
    """Top-level parameters/groups of a node or group: class attributes (MRO order) then
    parameter groups composed on the instance."""
    found: Dict[str, Any] = {}
    for cls in inspect.getmro(type(obj))[:-1]:
        for name, value in cls.__dict__.items():
            if _is_parameter_or_group(value) and name not in found:
                found[name] = value
    inst = {n: v for n, v in obj.__dict__.items() if _is_parameter_or_group(v)}
    return {**found, **inst}


def _create_param_dict_if_not_exists(obj) -> None:
    if not hasattr(obj, "__parameters__"):
        obj.__parameters__ = {}


def _default_validator(value) -> None:
    pass


def _combine_validators(new_validator, old_validator):
    def combined(value):
        old_validator(value)
        new_validator(value)
    return combined


def extract_parameters(obj, for_dialog: bool = False) -> dict:
    """All values as settings JSON: {"model": {...}} (defaults filled in)."""
    return {"model": _extract_parameters(obj, for_dialog)}


def _extract_parameters(obj, for_dialog: bool) -> dict:
    return {name: p._extract_value(obj, name, for_dialog) for name, p in _get_parameters(obj).items()}


def inject_parameters(obj, parameters: dict, parameters_version: str = None, exclude_validations: bool = False) -> None:
    """Load settings JSON into the node; parameters newer than `parameters_version` get the
    default for that version. Every value passes its validator."""
    _inject_parameters(obj, parameters["model"], Version.parse_version(parameters_version), exclude_validations)


def _inject_parameters(obj, parameters: dict, version: Version, exclude_validations: bool = False) -> None:
    if hasattr(obj, "_modify_parameters"):
        parameters = obj._modify_parameters(parameters)
    for name, p in _get_parameters(obj).items():
        if name in parameters:
            p._inject(obj, parameters[name], name, version, exclude_validations)
        elif p._since_version > version:
            p._set_default_for_version(obj, name, version, exclude_validations)


def validate_parameters(obj, parameters: dict, saved_version: str = None) -> None:
    """Validate settings JSON without loading it (parameter validators, then group `validate`);
    a parameter that existed at `saved_version` but is missing raises ValueError."""
    _validate_parameters(obj, parameters["model"], Version.parse_version(saved_version))


def _validate_parameters(obj, parameters: dict, saved_version: Version) -> None:
    for name, p in _get_parameters(obj).items():
        if p._since_version <= saved_version:
            if name not in parameters:
                raise ValueError(f'Parameter missing for key "{name}".')
            p._validate(parameters[name], saved_version)


def validate_specs(obj, specs) -> None:
    """Column parameters check that their `port_index` points at a table input."""
    for p in _get_parameters(obj).values():
        p._validate_specs(specs)


def extract_schema(obj, extension_version: str = None, dialog_creation_context=None) -> dict:
    version = Version.parse_version(extension_version)
    return {"type": "object", "properties": {"model": _extract_schema(obj, version, dialog_creation_context)}}


def _extract_schema(obj, version: Version, dialog_creation_context=None) -> dict:
    return {"type": "object", "properties": {
        name: p._extract_schema(extension_version=version, dialog_creation_context=dialog_creation_context)
        for name, p in _get_parameters(obj).items() if p._since_version <= version}}


class _Scope:
    def __init__(self, scopes) -> None:
        self._scopes = [scopes] if isinstance(scopes, str) else scopes

    def __str__(self) -> str:
        return "/".join(self._scopes)

    def create_child(self, child_name: str, is_group: bool = False) -> "_Scope":
        return _Scope(self._scopes + [child_name + "/properties" if is_group else child_name])

    def level(self) -> int:
        return len(self._scopes) - 1


def extract_ui_schema(obj, dialog_creation_context) -> dict:
    """The dialog layout; rules must reference a parameter of the same node (else ValueError)."""
    root_scope = _Scope("#/properties/model/properties")

    def find_scope(parameter, holder=obj, scope=root_scope):
        for name, p in _get_parameters(holder).items():
            if p is parameter:
                return scope.create_child(name)
            if _is_group(p):
                found = find_scope(parameter, p, scope.create_child(name, True))
                if found:
                    return found
        if holder is obj:
            raise ValueError(f"Can't find scope for parameter {parameter}")
        return None

    def elements(holder, scope):
        out = []
        for name, p in _get_parameters(holder).items():
            child = scope.create_child(name, _is_group(p))
            if _is_group(p):
                el = {"type": "Section", **p._extract_ui_schema(),
                      "elements": [{"type": p._layout_direction, "elements": elements(p, child)}]}
            elif _is_array(p):
                el = {"type": "Section", "label": p._label,
                      "elements": [{"scope": str(child), **p._extract_ui_schema(dialog_creation_context)}]}
            else:
                el = {"scope": str(child), **p._extract_ui_schema(dialog_creation_context)}
            if p._rule:
                el["rule"] = {"effect": p._rule.effect.value,
                              "condition": p._rule.condition.to_dict(find_scope, dialog_creation_context)}
            out.append(el)
        return out

    return {"type": "VerticalLayout", "elements": elements(obj, root_scope)}


def extract_parameter_descriptions(obj):
    """(descriptions, tabs_used): top-level groups become tabs, like KNIME's node description."""
    descriptions = [p._extract_description(n, _Scope("#/properties")) for n, p in _get_parameters(obj).items()]
    if not any(_is_group(p) for p in _get_parameters(obj).values()):
        return descriptions, False
    tabs = [d for d in descriptions if "options" in d]
    top = [d for d in descriptions if "options" not in d]
    if top:
        tabs.insert(0, {"name": "Options", "description": "", "options": top})
    return tabs, True


class Condition(ABC):
    @abstractmethod
    def to_dict(self, find_scope: Callable[[Any], _Scope], ctx) -> dict: ...


class And(Condition):
    def __init__(self, *conditions: Condition) -> None:
        if not conditions:
            raise ValueError("At least one condition is required in And condition.")
        self._conditions = conditions

    def to_dict(self, find_scope, ctx) -> dict:
        return {"type": "AND", "conditions": [c.to_dict(find_scope, ctx) for c in self._conditions]}


class Or(Condition):
    def __init__(self, *conditions: Condition) -> None:
        if not conditions:
            raise ValueError("At least one condition is required in Or condition.")
        self._conditions = conditions

    def to_dict(self, find_scope, ctx) -> dict:
        return {"type": "OR", "conditions": [c.to_dict(find_scope, ctx) for c in self._conditions]}


class OneOf(Condition):
    """True when the `subject` parameter's value is one of `values`."""

    def __init__(self, subject: Any, values: list) -> None:
        self._subject = subject
        self._values = values

    def to_dict(self, find_scope, ctx) -> dict:
        return {"scope": str(find_scope(self._subject)), "schema": {"oneOf": [{"const": v} for v in self._values]}}


class Contains(Condition):
    def __init__(self, subject: Any, value: Any) -> None:
        self._subject = subject
        self._value = value

    def to_dict(self, find_scope, ctx) -> dict:
        return {"scope": str(find_scope(self._subject)), "schema": {"contains": {"const": self._value}}}


class DialogContextCondition(Condition):
    def __init__(self, ctx_predicate: Callable[[Any], bool]) -> None:
        self._ctx_predicate = ctx_predicate

    def to_dict(self, find_scope, ctx) -> dict:
        return {"scope": "#", "schema": {"type": ["object"] if self._ctx_predicate(ctx) else ["null"]}}


class Effect(Enum):
    SHOW = "SHOW"
    HIDE = "HIDE"
    ENABLE = "ENABLE"
    DISABLE = "DISABLE"


@dataclass
class Rule:
    condition: Condition
    effect: Effect


class LayoutDirection(Enum):
    VERTICAL = "VerticalLayout"
    HORIZONTAL = "HorizontalLayout"


class _BaseParameter(ABC):
    """A parameter descriptor: label, description (its __doc__), default (value or a function of
    the settings' Version), validator, since_version, is_advanced, optional visibility rule."""

    __kind__ = "parameter"
    _skip_validation_in_dialog = False

    def __init__(self, label, description, default_value, validator=None, since_version=None, is_advanced=False):
        self._label = label
        self._default_value = default_value
        self._validator = validator if validator is not None else _default_validator
        self.__doc__ = description if description is not None else ""
        self._since_version = Version.parse_version(since_version)
        self._is_advanced = is_advanced
        self._rule = None

    def __set_name__(self, owner, name):
        self._name = name
        if self._label is None:
            self._label = name

    def _get_value(self, obj, name, for_dialog=None):
        if not hasattr(obj, "__kind__"):
            _create_param_dict_if_not_exists(obj)
        if name not in obj.__parameters__:
            obj.__parameters__[name] = self._get_default()  # defaults are not validated, as in KNIME
        return obj.__parameters__[name]

    def _to_dict(self, value):
        return value

    def _from_dict(self, value):
        return value

    def _extract_value(self, obj, name, for_dialog=None):
        return self._to_dict(self._get_value(obj, name, for_dialog))

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return self._get_value(obj, self._name)

    def _get_default(self, version: Version = None):
        if callable(self._default_value):
            return self._default_value(_get_extension_version() if version is None else version)
        return self._default_value

    def _set_default_for_version(self, obj, name, version: Version, exclude_validations: bool = False):
        self._set_value(obj, self._get_default(version), name, exclude_validations)

    def _inject(self, obj, value, name, parameters_version=None, exclude_validations: bool = False):
        self._set_value(obj, self._from_dict(value), name, exclude_validations)

    def _set_value(self, obj, value, name, exclude_validations: bool = False):
        if not hasattr(obj, "__kind__"):
            _create_param_dict_if_not_exists(obj)
        if not exclude_validations or not self._skip_validation_in_dialog:
            self._validate(value)
        obj.__parameters__[name] = value

    def __set__(self, obj, value):
        self._set_value(obj, value, self._name)

    def __str__(self) -> str:
        return f"\n\t - name: {getattr(self, '_name', self._label)}\n\t - label: {self._label}\n\t"

    def _validate(self, value, version=None):
        self._validator(value)

    def _validate_specs(self, specs) -> None:
        pass

    def validator(self, func):
        """Decorator: `func(value)` raises when the value is invalid (replaces the default checks)."""
        self._validator = func

    def rule(self, condition: Condition, effect: Effect):
        """Show/hide/enable/disable this parameter in the dialog depending on another one."""
        self._rule = Rule(condition, effect)
        return self

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {"title": self._label, "description": self.__doc__}

    def _extract_ui_schema(self, dialog_creation_context) -> dict:
        options = self._get_options(dialog_creation_context)
        if self._is_advanced:
            options["isAdvanced"] = True
        return {"type": "Control", "label": self._label, "options": options}

    @abstractmethod
    def _get_options(self, dialog_creation_context) -> dict: ...

    def _extract_description(self, name, parent_scope: _Scope) -> dict:
        return {"name": self._label, "description": self.__doc__}
