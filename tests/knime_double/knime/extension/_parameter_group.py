"""`parameter_group` and `ParameterArray` of the knime.extension.parameter double.

A group declared on a class is a descriptor: reading `node.group` gives a copy of the group
object bound to the node's `__parameters__[name]` sub-dict, so `node.group.x = 3` is stored
(and validated) in the node's settings. A group created in a node's `__init__` (composition)
keeps its own dict. Group-level validation (`validate(self, values)` or
`@group.validator`) runs when settings are validated, not on single assignments.
"""
from __future__ import annotations

import inspect
from copy import deepcopy
from typing import Any, Callable, Dict, Optional

from knime.extension.version import Version

from ._parameter_base import (LOGGER, LayoutDirection, Rule, _BaseParameter, _combine_validators,
                              _create_param_dict_if_not_exists, _extract_schema, _get_parameters,
                              _inject_parameters, _is_array, _is_group, _validate_parameters, validate_specs)


def _attr_from_instance(instance, attr):
    if attr in instance.__dict__:
        return instance.__dict__[attr]
    for cls in inspect.getmro(type(instance))[:-1]:
        if attr in cls.__dict__:
            return cls.__dict__[attr]
    return None


class GetSetBase:
    """Routes attribute access of composed parameters (not descriptors) to get/set with validation."""

    def __getattribute__(self, name):
        obj = super().__getattribute__(name)
        if isinstance(obj, _BaseParameter):
            return obj._get_value(self, name)
        return obj

    def __setattr__(self, name, value):
        if not hasattr(self, name) or name not in self.__parameters__:
            super().__setattr__(name, value)
            return
        obj = super().__getattribute__(name)
        if not isinstance(obj, _BaseParameter):
            obj = _attr_from_instance(self, name)
        obj._set_value(self, value, name)


def parameter_group(label: str, since_version: Optional[str] = None, is_advanced: bool = False,
                    layout_direction: LayoutDirection = LayoutDirection.VERTICAL):
    """Class decorator: the class's parameters form one group (a tab at the top level)."""

    def decorate_class(original_class):
        class ParameterGroupHolder(GetSetBase, original_class):
            __kind__ = "parameter_group"

            def __init__(self, *args, **kwargs):
                reserved = {"since_version", "is_advanced", "validator"}
                if reserved & set(inspect.signature(super().__init__).parameters):
                    raise SyntaxError("Please refrain from declaring reserved keyword arguments in the `__init__` "
                                      "method of your parameter group class.")
                self._since_version = Version.parse_version(kwargs.pop("since_version", since_version))
                self._is_advanced = kwargs.pop("is_advanced", is_advanced)
                self._rule = None
                self._validator = kwargs.pop("validator", None)
                self._override_internal_validator = False
                self._label = label
                self._layout_direction = layout_direction.value
                self.__parameters__ = {}
                self.__doc__ = original_class.__doc__
                super().__init__(*args, **kwargs)

            def __set_name__(self, owner, name):
                self._name = name

            def _is_descriptor(self) -> bool:
                return hasattr(self, "_name")

            def __get__(self, obj, obj_type=None):
                if obj is None:
                    return self
                return self._get_param_holder(obj)

            def _get_param_holder(self, obj):
                return self._copy_and_inject(obj) if self._is_descriptor() else self

            def _copy_and_inject(self, obj):
                copied = deepcopy(self)
                for name, p in _get_parameters(self).items():  # composed children stay shared
                    if _is_group(p) and not hasattr(p, "_name"):
                        copied.__dict__[name] = p
                if not hasattr(obj, "__kind__"):
                    _create_param_dict_if_not_exists(obj)
                if self._name not in obj.__parameters__:
                    obj.__parameters__[self._name] = copied.__parameters__  # values set in __init__ act as defaults
                else:
                    copied.__dict__["__parameters__"] = obj.__parameters__[self._name]
                return copied

            def _get_value(self, obj, name, for_dialog: bool = False) -> Dict[str, Any]:
                holder = self._get_param_holder(obj)
                return {n: p._get_value(holder, n, for_dialog) for n, p in _get_parameters(holder).items()}

            def _extract_value(self, obj, name, for_dialog=False) -> Dict[str, Any]:
                holder = self._get_param_holder(obj)
                return {n: p._extract_value(holder, n, for_dialog) for n, p in _get_parameters(holder).items()}

            def __set__(self, obj, values):
                raise RuntimeError("Cannot set parameter group values directly.")

            def _set_default_for_version(self, obj, name, version, exclude_validations: bool = False):
                holder = self._get_param_holder(obj)
                for n, p in _get_parameters(holder).items():
                    p._set_default_for_version(holder, n, version, exclude_validations)

            def _inject(self, obj, values, name, parameters_version, exclude_validations: bool = False):
                _inject_parameters(self._get_param_holder(obj), values, parameters_version, exclude_validations)

            def _validate(self, values, version=None):
                _validate_parameters(self, values, version)
                if hasattr(self, "validate") and not self._override_internal_validator:
                    self.validate(values)
                if self._validator is not None:
                    self._validator(values)

            _validate_specs = validate_specs

            def validator(self, override=None):
                """`@group.validator` (replaces `validate`) or `@group.validator(override=False)`."""
                if isinstance(override, bool):
                    def decorator(func):
                        self._validator = func
                        self._override_internal_validator = override
                    return decorator
                self._validator = override
                self._override_internal_validator = True

            def _extract_ui_schema(self) -> dict:
                return {"label": self._label, "options": {"isAdvanced": True} if self._is_advanced else {}}

            def _extract_description(self, name, parent_scope):
                scope = parent_scope.create_child(name, is_group=True)
                options = [p._extract_description(n, scope) for n, p in _get_parameters(self).items()]
                flat = []
                for o in options:
                    flat.extend(o if isinstance(o, list) else [o])
                if scope.level() == 1:  # a top-level group is a tab
                    return {"name": self._label, "description": self.__doc__, "options": flat}
                return flat

            def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
                return _extract_schema(self, extension_version, dialog_creation_context)

            def __str__(self) -> str:
                return f"\tGroup name: {getattr(self, '_name', self._label)}\n\tGroup label: {self._label}"

        if hasattr(ParameterGroupHolder, "rule"):
            LOGGER.warning(f"Can't add the rule method to the parameter group {original_class} because it already "
                           "has an attribute named 'rule'.")
        else:
            def rule(self, condition, effect):
                self._rule = Rule(condition, effect)
                return self
            ParameterGroupHolder.rule = rule
        return ParameterGroupHolder

    return decorate_class


class ParameterArray(_BaseParameter):
    """A list of items, each shaped like `parameters` (an instance of a parameter group whose
    members are plain parameters); reading it gives a list of group objects."""

    __kind__ = "parameter_array"

    def __init__(self, parameters, label: Optional[str] = None, description: Optional[str] = None,
                 validator: Optional[Callable[[Any], None]] = None, since_version=None, is_advanced: bool = False,
                 allow_reorder: bool = True, layout_direction: LayoutDirection = LayoutDirection.VERTICAL,
                 button_text: Optional[str] = None, array_title: Optional[str] = None):
        self._allow_reorder = allow_reorder
        self._parameters = parameters
        self._button_text = button_text
        self._layout_direction = layout_direction
        self._array_title = array_title if array_title else "Group"
        validator = _combine_validators(validator, self._default_validator) if validator else self._default_validator
        super().__init__(label, description, None, validator, since_version, is_advanced)
        self._parameter_group_class = type(self._parameters)

    def _holder(self):
        return self._parameters._get_param_holder(self._parameters)

    def _default_validator(self, value):
        for p in _get_parameters(self._holder()).values():
            if _is_array(p):
                raise ValueError("ParameterArray instances cannot be nested within another ParameterArray.")
            if _is_group(p):
                raise ValueError("ParameterGroup instances cannot be nested within another ParameterGroup.")

    def validator(self, func):
        self._validator = _combine_validators(func, self._default_validator)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return [self._create_param_group_instance(v) for v in self._get_value(obj, self._name)]

    def _create_param_group_instance(self, value):
        instance = self._parameter_group_class()
        holder = instance._get_param_holder(instance)
        for n, v in value.items():
            setattr(holder, n, v)
        return holder

    def _get_value(self, obj, name, for_dialog: bool = False):
        values = super()._get_value(obj, name, for_dialog)
        return [] if values is None else values

    def _to_dict(self, values):
        params = _get_parameters(self._holder())
        return [{n: p._to_dict(v[n]) for n, p in params.items() if n in v} for v in values]

    def _from_dict(self, values):
        params = _get_parameters(self._holder())
        for v in values:
            for n, p in params.items():
                if n in v:
                    v[n] = p._from_dict(v[n])
        return values

    def _inject(self, obj, values, name, version=None, exclude_validations: bool = False):
        if values is None:  # the first item takes the group's defaults
            values = [{n: p._to_dict(p._get_default()) for n, p in _get_parameters(self._holder()).items()}]
        return super()._inject(obj, values, name, version, exclude_validations)

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        items = {n: {**p._extract_schema(extension_version, dialog_creation_context),
                     "default": p._to_dict(p._get_default())}
                 for n, p in _get_parameters(self._holder()).items() if not (_is_group(p) or _is_array(p))}
        return {**super()._extract_schema(), "type": "array", "items": {"type": "object", "properties": items}}

    def _get_options(self, dialog_creation_context) -> dict:
        elements = [{"type": "Control", "scope": f"#/properties/{n}", **p._extract_ui_schema(dialog_creation_context)}
                    for n, p in _get_parameters(self._holder()).items()]
        options = {"addButtonText": self._button_text, "arrayElementTitle": self._array_title,
                   "detail": {"layout": {"type": self._layout_direction.value, "elements": elements}}}
        if self._allow_reorder:
            options["showSortButtons"] = True
        return options
