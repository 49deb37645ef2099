"""The value parameters: numbers, text, booleans, enums, paths and dates."""
from __future__ import annotations

import datetime as dt
import enum
import numbers
from typing import Any, Callable, List, Optional, Type

from ._param_base import ParameterBase


class _Ranged(ParameterBase):
    def __init__(self, label: str, description: str, default_value: Any, validator: Optional[Callable] = None,
                 min_value: Any = None, max_value: Any = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        self.min_value, self.max_value = min_value, max_value

    def _check_value(self, value: Any) -> None:
        # the wording is what KNIME users see (and this project's tests match on it)
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"'{self._label}': {value} is smaller than the minimal value {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"'{self._label}': {value} is > the max value {self.max_value}")

    def json_schema(self, ctx: Any) -> dict:
        limits = {k: v for k, v in (("minimum", self.min_value), ("maximum", self.max_value)) if v is not None}
        return {**super().json_schema(ctx), **{k: self.to_json(v) for k, v in limits.items()}}


class IntParameter(_Ranged):
    _json_type = "integer"

    def __init__(self, label: str, description: str = "", default_value: int = 0, validator: Optional[Callable] = None,
                 min_value: Optional[int] = None, max_value: Optional[int] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, default_value, validator, min_value, max_value, since_version, is_advanced)

    def _coerce(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self._type_error(value, "an int")
        return int(value)

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "integer"}


class DoubleParameter(_Ranged):
    _json_type = "number"

    def __init__(self, label: str, description: str = "", default_value: float = 0.0,
                 validator: Optional[Callable] = None, min_value: Optional[float] = None,
                 max_value: Optional[float] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, default_value, validator, min_value, max_value, since_version, is_advanced)

    def _coerce(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._type_error(value, "a number")
        return value  # kept as given, as KNIME does: an int stays an int (node code must take both)

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "number"}


class StringParameter(ParameterBase):
    """Text; `enum` lists the offered values (a drop-down), `choices(ctx)` computes them when the
    dialog opens. Neither restricts what the settings may hold: check in configure."""

    def __init__(self, label: str, description: str = "", default_value: str = "",
                 enum: Optional[List[str]] = None, validator: Optional[Callable] = None,
                 since_version: Optional[str] = None, is_advanced: bool = False,
                 choices: Optional[Callable[[Any], List[str]]] = None) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)
        if enum is not None and choices is not None:
            raise ValueError(f"parameter '{label}': give either enum (fixed values) or choices (computed when the "
                             "dialog opens), not both")
        if enum is not None and (not isinstance(enum, list) or not all(isinstance(e, str) for e in enum)):
            raise TypeError(f"parameter '{label}': enum must be a list of strings, not {enum!r}")
        if choices is not None and not callable(choices):
            raise TypeError(f"parameter '{label}': choices is a callable(ctx) returning a list of strings")
        self.enum, self.choices = (list(enum) if enum is not None else None), choices

    def _coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._type_error(value, "a str")
        return value

    def json_schema(self, ctx: Any) -> dict:
        schema = super().json_schema(ctx)
        options = self.enum
        if self.choices is not None and ctx is not None:
            options = list(self.choices(ctx))
        if options is not None:
            schema["oneOf"] = [{"const": o, "title": o} for o in options]
        return schema


class MultilineStringParameter(StringParameter):
    def __init__(self, label: str, description: str = "", default_value: str = "", validator: Optional[Callable] = None,
                 since_version: Optional[str] = None, is_advanced: bool = False, number_of_lines: int = 3) -> None:
        super().__init__(label, description, default_value, None, validator, since_version, is_advanced)
        self.number_of_lines = number_of_lines

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "textArea", "rows": self.number_of_lines}


class BoolParameter(ParameterBase):
    _json_type = "boolean"

    def __init__(self, label: str, description: str = "", default_value: bool = False,
                 validator: Optional[Callable] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def _coerce(self, value: Any) -> bool:
        if type(value).__name__ not in ("bool", "bool_"):
            raise self._type_error(value, "a bool")
        return bool(value)


class EnumParameterOptions(enum.Enum):
    """Options of an EnumParameter: members written as NAME = ("Label", "Description")."""

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def description(self) -> str:
        return self.value[1]

    @classmethod
    def get_all_options(cls) -> List["EnumParameterOptions"]:
        return list(cls)


def _check_options(label: str, enum_class: Any) -> None:
    if not (isinstance(enum_class, type) and issubclass(enum_class, EnumParameterOptions)):
        raise TypeError(f"parameter '{label}': enum must be a subclass of knext.EnumParameterOptions")
    for member in enum_class:
        if not (isinstance(member.value, tuple) and len(member.value) == 2):
            raise ValueError(f"option {enum_class.__name__}.{member.name} must be (\"Label\", \"Description\")")


class EnumParameter(ParameterBase):
    """One option of an EnumParameterOptions class; the value is the option's name."""

    class Style(enum.Enum):
        RADIO = "radio"
        VALUE_SWITCH = "valueSwitch"
        DROPDOWN = "dropdown"

    def __init__(self, label: str, description: str = "", default_value: Any = None,
                 enum: Optional[Type[EnumParameterOptions]] = None, validator: Optional[Callable] = None,
                 since_version: Optional[str] = None, is_advanced: bool = False, style: Optional["Style"] = None) -> None:
        _check_options(label, enum)
        default = default_value.name if isinstance(default_value, EnumParameterOptions) else default_value
        super().__init__(label, description, default if default is not None else next(iter(enum)).name,
                         validator, since_version, is_advanced)
        self.enum, self.style = enum, style
        if not callable(self._default):
            self._coerce(self._default)

    def _names(self) -> List[str]:
        return [m.name for m in self.enum]

    def _coerce(self, value: Any) -> str:
        if isinstance(value, self.enum):
            return value.name
        if not isinstance(value, str):
            raise self._type_error(value, "an option name (str)")
        if value not in self._names():
            raise ValueError(f"'{self._label}': '{value}' is not one of the options " +
                             ", ".join(f"'{n}'" for n in self._names()))
        return value

    def json_schema(self, ctx: Any) -> dict:
        return {**super().json_schema(ctx), "oneOf": [{"const": m.name, "title": m.label,
                                                       "description": m.description} for m in self.enum]}

    def ui_options(self, ctx: Any) -> dict:
        return {"format": (self.style or EnumParameter.Style.DROPDOWN).value}


class EnumSetParameter(ParameterBase):
    """Any subset of the options of an EnumParameterOptions class; the value is a list of names."""

    def __init__(self, label: str, description: str = "", default_value: Optional[List[Any]] = None,
                 enum: Optional[Type[EnumParameterOptions]] = None, validator: Optional[Callable] = None,
                 since_version: Optional[str] = None, is_advanced: bool = False) -> None:
        _check_options(label, enum)
        self.enum = enum
        super().__init__(label, description, [], validator, since_version, is_advanced)
        self._default = default_value if callable(default_value) else self._coerce(default_value or [])

    def _coerce(self, value: Any) -> List[str]:
        if not isinstance(value, (list, tuple)):
            raise self._type_error(value, "a list of option names")
        names = [v.name if isinstance(v, EnumParameterOptions) else v for v in value]
        unknown = [n for n in names if n not in [m.name for m in self.enum]]
        if unknown:
            raise ValueError(f"'{self._label}': {unknown} are not options of {self.enum.__name__} "
                             f"({[m.name for m in self.enum]})")
        return list(names)

    def json_schema(self, ctx: Any) -> dict:
        return {**super().json_schema(ctx), "type": "array",
                "items": {"oneOf": [{"const": m.name, "title": m.label} for m in self.enum]}}


class LocalPathParameter(ParameterBase):
    """A path on the machine running KNIME (typed or picked with a file chooser); no default."""

    def __init__(self, label: str, description: str = "", placeholder_text: str = "",
                 validator: Optional[Callable] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, "", validator, since_version, is_advanced)
        self.placeholder_text = placeholder_text

    def _coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._type_error(value, "a path string")
        return value

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "localFileChooser", "placeholder": self.placeholder_text}


class DateTimeParameter(ParameterBase):
    """A date, time or date-time (shown as the show_* flags say); ISO text in the settings."""

    def __init__(self, label: str, description: str = "", default_value: Any = None,
                 validator: Optional[Callable] = None, min_value: Any = None, max_value: Any = None,
                 since_version: Optional[str] = None, is_advanced: bool = False, show_date: bool = True,
                 show_time: bool = False, timezone: bool = False) -> None:
        if not (show_date or show_time):
            raise ValueError(f"parameter '{label}': show the date, the time or both")
        self.show_date, self.show_time, self.timezone = show_date, show_time, timezone
        super().__init__(label, description, None, validator, since_version, is_advanced)
        self.min_value = None if min_value is None else self._coerce(min_value)
        self.max_value = None if max_value is None else self._coerce(max_value)
        self._default = default_value if default_value is None or callable(default_value) else \
            self._coerce(default_value)

    def _coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = (dt.time.fromisoformat(value) if not self.show_date else dt.datetime.fromisoformat(value))
            except ValueError:
                raise ValueError(f"'{self._label}': {value!r} is not an ISO date/time such as 2024-01-31") from None
        if self.show_date and not self.show_time and isinstance(value, dt.datetime):
            value = value.date()
        if not isinstance(value, (dt.date, dt.time)):
            raise self._type_error(value, "a date, time or ISO string")
        return value

    def _check_value(self, value: Any) -> None:
        if value is not None and self.min_value is not None and value < self.min_value:
            raise ValueError(f"'{self._label}': {value.isoformat()} is before the minimum {self.min_value.isoformat()}")
        if value is not None and self.max_value is not None and value > self.max_value:
            raise ValueError(f"'{self._label}': {value.isoformat()} is after the maximum {self.max_value.isoformat()}")

    def to_json(self, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def json_schema(self, ctx: Any) -> dict:
        return {**super().json_schema(ctx), "format": "date-time" if self.show_time and self.show_date else
                ("date" if self.show_date else "time")}
