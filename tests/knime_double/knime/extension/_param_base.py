"""The parameter descriptor every dialog setting is built on, plus visibility rules.

A parameter is a class attribute (a descriptor); each node or group instance keeps its own
values in a private dict, so two node instances never share settings. Assigning a value runs
the type check, the built-in checks (ranges, options) and the parameter's validator.
"""
from __future__ import annotations

import copy
import enum
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ._version import Version, current_version

VALUES = "_knime_parameter_values"


def values_of(holder: Any) -> Dict[str, Any]:
    """The per-instance value store of a node or parameter group instance."""
    return holder.__dict__.setdefault(VALUES, {})


def attribute_name(cls: type, descriptor: Any) -> str:
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if value is descriptor:
                return name
    raise AttributeError(f"{descriptor!r} is not a class attribute of {cls.__name__}")


def check_version(version: Any, what: str) -> Any:
    """since_version is 'x.y.z' (or a knext.Version); a wrong one fails where it is declared."""
    if version is not None:
        try:
            Version.parse_version(version)
        except ValueError as e:
            raise ValueError(f"{what}: since_version: {e}") from None
    return version


class InvalidParametersError(Exception):
    """Raise from configure (or a validator) when the settings are invalid: KNIME shows the
    message as the node's invalid-settings error."""


class LayoutDirection(enum.Enum):
    """How a parameter group or array item lays out its parameters in the dialog."""
    VERTICAL = "VerticalLayout"
    HORIZONTAL = "HorizontalLayout"


def check_layout(direction: Any, what: str) -> "LayoutDirection":
    if direction is None:
        return LayoutDirection.VERTICAL
    if not isinstance(direction, LayoutDirection):
        raise TypeError(f"{what}: layout_direction is a knext.LayoutDirection, not {direction!r}")
    return direction


class Effect(enum.Enum):
    SHOW = "SHOW"
    HIDE = "HIDE"
    ENABLE = "ENABLE"
    DISABLE = "DISABLE"


class Condition:
    def subjects(self) -> List["ParameterBase"]:
        raise NotImplementedError

    def to_json(self, scope_of: Callable[["ParameterBase"], str]) -> dict:
        raise NotImplementedError


class OneOf(Condition):
    """True when `subject` (a parameter on the same level) has one of `values`."""

    def __init__(self, subject: "ParameterBase", values: Iterable[Any]) -> None:
        if not isinstance(subject, ParameterBase):
            raise TypeError(f"OneOf needs a parameter as its subject, not {subject!r}")
        self.subject, self.values = subject, list(values)

    def subjects(self) -> List["ParameterBase"]:
        return [self.subject]

    def to_json(self, scope_of: Callable[["ParameterBase"], str]) -> dict:
        return {"scope": scope_of(self.subject),
                "schema": {"oneOf": [{"const": self.subject.to_json(v)} for v in self.values]}}


class Contains(Condition):
    """True when `subject` (a parameter holding a list, e.g. an EnumSetParameter) contains `value`."""

    def __init__(self, subject: "ParameterBase", value: Any) -> None:
        if not isinstance(subject, ParameterBase):
            raise TypeError(f"Contains needs a parameter as its subject, not {subject!r}")
        self.subject, self.value = subject, value

    def subjects(self) -> List["ParameterBase"]:
        return [self.subject]

    def to_json(self, scope_of: Callable[["ParameterBase"], str]) -> dict:
        item = self.value.name if isinstance(self.value, enum.Enum) else self.value
        return {"scope": scope_of(self.subject), "schema": {"contains": {"const": item}}}


class And(Condition):
    def __init__(self, *conditions: Condition) -> None:
        self.conditions = conditions

    def subjects(self) -> List["ParameterBase"]:
        return [s for c in self.conditions for s in c.subjects()]

    def to_json(self, scope_of: Callable[["ParameterBase"], str]) -> dict:
        return {"type": "AND", "conditions": [c.to_json(scope_of) for c in self.conditions]}


class Or(And):
    def to_json(self, scope_of: Callable[["ParameterBase"], str]) -> dict:
        return {"type": "OR", "conditions": [c.to_json(scope_of) for c in self.conditions]}


class ParameterBase:
    """label, description, default_value (or a callable(version) giving it), validator (a callable
    that raises on a bad value; it replaces the built-in checks),
    since_version (the release that added it) and is_advanced (shown under advanced settings)."""

    _json_type = "string"

    def __init__(self, label: str, description: str = "", default_value: Any = None,
                 validator: Optional[Callable[[Any], None]] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        if not isinstance(label, str):
            raise TypeError(f"a parameter's label is a str, not {label!r}")
        if validator is not None and not callable(validator):
            raise TypeError(f"parameter '{label}': validator must be callable")
        check_version(since_version, f"parameter '{label}'")
        self._label, self._description = label, description
        self._default = default_value
        self._custom_validator = validator
        self._since_version, self._is_advanced = since_version, bool(is_advanced)
        self._name: Optional[str] = None
        self._rule: Optional[Tuple[Condition, Effect]] = None

    # -- declaration -----------------------------------------------------------------------------
    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @property
    def label(self) -> str:
        return self._label

    @property
    def description(self) -> str:
        return self._description

    @property
    def default_value(self) -> Any:
        return self.default_for(None)

    def default_for(self, version: Optional[Version]) -> Any:
        """The default; a callable default_value is called with a knext.Version: the release that
        saved the settings being loaded (which lack this parameter), or for a new node (version
        None) the extension's current release from knime.yml (0.0.0 when unknown)."""
        if callable(self._default):
            return copy.deepcopy(self._default(current_version() if version is None else version))
        return copy.deepcopy(self._default)

    @property
    def since_version(self) -> Optional[str]:
        return self._since_version

    @property
    def is_advanced(self) -> bool:
        return self._is_advanced

    def validator(self, func: Callable[[Any], None]) -> Callable[[Any], None]:
        """Decorator: `@param.validator` on a function(value) that raises on a bad value."""
        if not callable(func):
            raise TypeError("@validator decorates a function(value)")
        self._custom_validator = func
        return func

    def rule(self, condition: Condition, effect: Effect) -> "ParameterBase":
        """Show/hide/enable/disable this parameter depending on another one on the same level."""
        if not isinstance(condition, Condition) or not isinstance(effect, Effect):
            raise TypeError("rule(condition, effect) takes e.g. knext.OneOf(param, [values]), knext.Effect.SHOW")
        self._rule = (condition, effect)
        return self

    # -- values ----------------------------------------------------------------------------------
    def __get__(self, holder: Any, owner: Optional[type] = None) -> Any:
        if holder is None:
            return self
        store, key = values_of(holder), self._key(holder)
        if key not in store:
            store[key] = self.default_value
        return store[key]

    def __set__(self, holder: Any, value: Any) -> None:
        values_of(holder)[self._key(holder)] = self.check(value)

    def _key(self, holder: Any) -> str:
        if self._name is None:  # attached with setattr after the class was made: find its attribute name
            self._name = attribute_name(type(holder), self)
        return self._name

    def check(self, value: Any) -> Any:
        """The value as stored: checked by the parameter's own checks (type, ranges, options) or,
        when it has one, by its custom validator instead, which then decides what it accepts."""
        if self._custom_validator is None:
            value = self._coerce(value)
            self._check_value(value)
            return value
        try:
            value = self._coerce(value)  # still normalise (ints to floats, options to names) when it can
        except (TypeError, ValueError):
            pass
        self._custom_validator(value)
        return value

    def _coerce(self, value: Any) -> Any:
        return value

    def _check_value(self, value: Any) -> None:
        pass

    def _type_error(self, value: Any, expected: str) -> TypeError:
        return TypeError(f"'{self._label}' takes {expected}, not {type(value).__name__} {value!r}")

    # -- settings JSON and dialog ----------------------------------------------------------------
    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, data: Any) -> Any:
        return data

    def json_schema(self, ctx: Any) -> dict:
        return {"type": self._json_type, "title": self._label, "description": self._description}

    def ui_options(self, ctx: Any) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self._label}')"
