"""Value parameters of the knime.extension.parameter double: numbers, strings, booleans,
paths, enums, enum sets and date/times. Default validators mirror KNIME's exactly, including
what they do NOT check (StringParameter does not check `enum` membership; a custom validator
on Int/DoubleParameter replaces the min/max check).
"""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Callable, List, Optional

from ._parameter_base import LOGGER, _BaseParameter, _combine_validators


class _NumericParameter(_BaseParameter):
    def __init__(self, label, description, default_value, validator=None, min_value=None, max_value=None,
                 since_version=None, is_advanced=False):
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(label, description, default_value,
                         validator if validator is not None else self._default_validator, since_version, is_advanced)

    def _default_validator(self, value):
        self.check_type(value)
        self.check_range(value)

    def check_range(self, value):
        if self.min_value is not None and value < self.min_value:
            raise ValueError(f"{value} is smaller than the minimal value {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            raise ValueError(f"{value} is > the max value {self.max_value}")

    def _extract_ui_schema(self, dialog_creation_context) -> dict:
        ui = super()._extract_ui_schema(dialog_creation_context)
        validation = {}
        if self.min_value is not None:
            validation["min"] = {"parameters": {"min": self.min_value, "isExclusive": False},
                                 "errorMessage": f"The value must be at least {self.min_value}."}
        if self.max_value is not None:
            validation["max"] = {"parameters": {"max": self.max_value, "isExclusive": False},
                                 "errorMessage": f"The value must be at most {self.max_value}."}
        if validation:
            ui["options"]["validation"] = validation
        return ui


class IntParameter(_NumericParameter):
    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=0,
                 validator: Optional[Callable[[int], None]] = None, min_value: Optional[int] = None,
                 max_value: Optional[int] = None, since_version=None, is_advanced: bool = False):
        super().__init__(label, description, default_value, validator, min_value, max_value, since_version,
                         is_advanced)

    def check_type(self, value):
        if not isinstance(value, int):
            raise TypeError(f"{value} is of type {type(value)}, but should be of type int.")

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "integer", "format": "int32"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "integer"}


class DoubleParameter(_NumericParameter):
    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=0.0,
                 validator: Optional[Callable[[float], None]] = None, min_value: Optional[float] = None,
                 max_value: Optional[float] = None, since_version=None, is_advanced: bool = False):
        super().__init__(label, description, default_value, validator, min_value, max_value, since_version,
                         is_advanced)

    def check_type(self, value):
        if not isinstance(value, numbers.Number):
            raise TypeError(f"{value} is of type {type(value)}, but should be a number.")

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "number", "format": "double"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "number"}


class _BaseMultiChoiceParameter(_BaseParameter):
    _enum = None

    def _get_options(self, dialog_creation_context) -> dict:
        if self._enum is None or len(self._enum) > 4 or callable(getattr(self, "_choices", None)):
            return {"format": "string"}
        return {"format": "radio"}


class StringParameter(_BaseMultiChoiceParameter):
    """A string; `enum` (static list) or `choices` (callable of the DialogCreationContext, or a
    list of str / StringParameter.Choice) only fill the dialog's drop-down."""

    @dataclass(frozen=True)
    class Choice:
        id: str
        label: str
        description: str = ""

        def __post_init__(self):
            if not self.id:
                raise ValueError("Choice id must be non-empty")
            if not all(isinstance(v, str) for v in (self.id, self.label, self.description)):
                raise TypeError("Choice id, label and description must be strings")

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value="",
                 enum: Optional[List[str]] = None, validator: Optional[Callable[[str], None]] = None,
                 since_version=None, is_advanced: bool = False, choices=None):
        if enum is not None and not isinstance(enum, list):
            raise TypeError("The enum parameter must be a list.")
        if enum and choices:
            raise ValueError("Cannot specify both enum and a dynamic choices callable" if callable(choices)
                             else "Cannot specify both enum and static choices sequence")
        self._enum = enum
        self._choices = None
        self._static_choices = None
        if choices is not None:
            if callable(choices):
                self._choices = lru_cache(maxsize=1)(choices)
            elif isinstance(choices, (list, tuple)):
                self._static_choices = self._normalize(choices)
            else:
                raise TypeError("'choices' must be a callable, list, or tuple.")
        if self._static_choices is None and enum is not None:
            self._static_choices = [self.Choice(e, e) for e in enum]
        super().__init__(label, description, default_value,
                         validator if validator is not None else self._default_validator, since_version, is_advanced)
        if self._static_choices and self._default_value in (None, ""):
            self._default_value = self._static_choices[0].id  # no membership check, as in KNIME

    def _default_validator(self, value):
        if not isinstance(value, str):
            raise TypeError(f"{value} is of type {type(value)}, but should be of type string.")

    def _normalize(self, seq) -> List["StringParameter.Choice"]:
        out, seen = [], set()
        for item in seq:
            c = self.Choice(item, item) if isinstance(item, str) else item
            if not isinstance(c, self.Choice):
                raise TypeError("choices elements must be str or StringParameter.Choice")
            if c.id in seen:
                raise ValueError(f"Duplicate choice id '{c.id}'")
            seen.add(c.id)
            out.append(c)
        return out

    def _normalized_choices(self, dialog_ctx):
        if callable(self._choices) and dialog_ctx:
            raw = self._choices(dialog_ctx)
            if not isinstance(raw, (list, tuple)):
                raise TypeError("choices() must return a list or tuple of str or Choice")
            choices = self._normalize(raw)
            if choices and not self._default_value:
                self._default_value = choices[0].id
            return choices
        return self._static_choices

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        schema = super()._extract_schema()
        choices = self._normalized_choices(dialog_creation_context)
        if choices:
            schema["oneOf"] = [{"const": c.id, "title": c.label} for c in choices]
        else:
            schema["type"] = "string"
        return schema

    def _get_options(self, dialog_creation_context) -> dict:
        choices = self._normalized_choices(dialog_creation_context)
        if choices is None or len(choices) > 0:
            return {"format": "string"}
        return {"format": "dropDown", "placeholder": "No values present"}


class LocalPathParameter(StringParameter):
    """A local file path (no default); a non-empty value must exist when it is set, except
    while the dialog loads settings."""

    _skip_validation_in_dialog = True

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, placeholder_text: str = "",
                 validator: Optional[Callable[[str], None]] = None, since_version=None, is_advanced: bool = False):
        super().__init__(label=label, description=description, validator=validator, since_version=since_version,
                         is_advanced=is_advanced)
        self.placeholder_text = placeholder_text

    def _default_validator(self, value):
        if value and not isinstance(value, str):
            raise TypeError(f"{value} is of type {type(value)}, but should be of type string.")
        if value and not os.path.exists(value):
            raise ValueError(f"{value} is not a valid file path.")

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "stringFileChooser", "fileSystem": "LOCAL", "placeholder": self.placeholder_text}


class MultilineStringParameter(_BaseParameter):
    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value="",
                 validator: Optional[Callable[[str], None]] = None, since_version=None, is_advanced: bool = False,
                 number_of_lines: Optional[int] = 3):
        if not isinstance(number_of_lines, int):
            raise TypeError(f"Number of lines is of type {type(number_of_lines)}, but should be of type integer.")
        if number_of_lines <= 0:
            raise ValueError("Number of lines should be of type positive integer.")
        self._number_of_lines = number_of_lines
        super().__init__(label, description, default_value,
                         validator if validator is not None else self._default_validator, since_version, is_advanced)

    def _default_validator(self, value):
        if not isinstance(value, str):
            raise TypeError(f"{value} is of type {type(value)}, but should be of type string.")

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "string"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "textArea", "rows": self._number_of_lines}


class BoolParameter(_BaseParameter):
    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=False,
                 validator: Optional[Callable[[bool], None]] = None, since_version=None, is_advanced: bool = False):
        super().__init__(label, description, default_value,
                         validator if validator is not None else self._default_validator, since_version, is_advanced)

    def _default_validator(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"{value} is not a boolean")

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "boolean"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "boolean"}


class EnumParameterOptions(Enum):
    """Subclass with members `NAME = ("Label", "Description")`; the value stored is the name."""

    def __init__(self, label, description):
        self.label = label
        self.description = description

    @classmethod
    def _get_default_option(cls):
        class DefaultEnumOption(EnumParameterOptions):
            DEFAULT_OPTION = ("Default", "This is the default option, since additional options have not been provided.")
        return DefaultEnumOption

    @classmethod
    def get_all_options(cls):
        return cls._member_names_

    @classmethod
    def _generate_options_description(cls, docstring: str, visible_members=None) -> str:
        names = visible_members if visible_members is not None else cls._member_names_
        return (docstring or "") + "\n\n**Available options:**\n\n" + "".join(
            f"- {cls[n].label}: {cls[n].description}\n" for n in names)


class EnumParameter(_BaseMultiChoiceParameter):
    """One option of an EnumParameterOptions subclass, stored by member name; any value that is
    not a member name fails validation (custom validators run in addition)."""

    class Style(Enum):
        RADIO = "radio"
        VALUE_SWITCH = "valueSwitch"
        DROPDOWN = "string"

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=None,
                 enum=None, validator: Optional[Callable[[str], None]] = None, since_version=None,
                 is_advanced: bool = False, style: Optional["EnumParameter.Style"] = None, hidden_choices=None):
        validator = self._default_validator if validator is None else _combine_validators(validator, self._default_validator)
        if enum is None or len(enum.get_all_options()) == 0:
            self._enum = EnumParameterOptions._get_default_option()
            default_value = self._enum.DEFAULT_OPTION.name
        else:
            self._enum = enum
            if default_value is None:
                # KNIME reads `.name` of the first option *name* (a str) here, so an EnumParameter
                # with an enum but no default_value fails when declared; the double fails alike
                raise AttributeError("'str' object has no attribute 'name' (KNIME's EnumParameter needs an "
                                     "explicit default_value when `enum` is given)")
            elif hasattr(default_value, "name"):
                default_value = default_value.name
        self._style = style
        self._hidden_choices = lru_cache(maxsize=2)(hidden_choices) if hidden_choices is not None else None
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def _default_validator(self, value):
        options = self._enum.get_all_options()
        if value not in options:
            raise ValueError(f"The selection '{value}' for parameter '{self._label}' is not one of the available "
                             "options: '" + "', '".join(options) + "'.")

    def validator(self, func):
        self._validator = _combine_validators(func, self._default_validator)

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": self._style.value} if self._style else super()._get_options(dialog_creation_context)

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        members = list(self._enum)
        if self._hidden_choices is not None:
            hidden = {m.name for m in (self._hidden_choices(dialog_creation_context) or []) if hasattr(m, "name")}
            members = [m for m in members if m.name not in hidden]
        return {**super()._extract_schema(),
                "description": self._enum._generate_options_description(self.__doc__, [m.name for m in members]),
                "oneOf": [{"const": m.name, "title": m.label} for m in members]}

    def _extract_description(self, name, parent_scope) -> dict:
        return {"name": self._label, "description": self._enum._generate_options_description(self.__doc__)}


class EnumSetParameter(_BaseMultiChoiceParameter):
    """A list of option names of an EnumParameterOptions subclass (default: all)."""

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, default_value=None,
                 enum=None, validator: Optional[Callable[[list], None]] = None, since_version=None,
                 is_advanced: bool = False):
        validator = self._default_validator if validator is None else self._add_default_validator(validator)
        if enum is None or len(enum.get_all_options()) == 0:
            self._enum = EnumParameterOptions._get_default_option()
            default_value = [self._enum.DEFAULT_OPTION.name]
        else:
            self._enum = enum
            if default_value is None:
                default_value = list(self._enum.get_all_options())
        super().__init__(label, description, default_value, validator, since_version, is_advanced)

    def _default_validator(self, value):
        if not isinstance(value, list):
            raise TypeError(f"The selection '{value}' for parameter '{self._label}' is not a list")
        options = self._enum.get_all_options()
        if not set(value).issubset(options):
            raise ValueError(f"The selection '{value}' for parameter '{self._label}' is not a subset of the "
                             "available options: '" + "', '".join(options) + "'.")

    def _add_default_validator(self, func):
        def combined(value):
            self._default_validator(value)
            func(value)
        return combined

    def validator(self, func):
        self._validator = self._add_default_validator(func)

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "twinList", "possibleValues": [{"id": o, "text": self._enum[o].label}
                                                         for o in self._enum.get_all_options()]}

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "array", "items": {"type": "string"},
                "description": self._enum._generate_options_description(self.__doc__)}


__all__ = ["IntParameter", "DoubleParameter", "StringParameter", "LocalPathParameter", "MultilineStringParameter",
           "BoolParameter", "EnumParameterOptions", "EnumParameter", "EnumSetParameter", "LOGGER"]
