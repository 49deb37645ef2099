"""Column-selection parameters of the knime.extension.parameter double.

`port_index` counts the node's input ports (a port group counts as one; use (group index,
index in group) for a table inside a group). Before configure, KNIME checks that the index
points at a table input (ValueError / TypeError otherwise); it does not check that the
selected column exists - node code must.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Any, Callable, Dict, List, Optional

import knime.api.schema as ks

from ._parameter_base import LOGGER, _BaseParameter


def _pick_spec(specs, port_index):
    try:
        if isinstance(port_index, tuple):
            group = specs[port_index[0]]
            if not isinstance(group, list):
                raise TypeError(f"The port at index {port_index[0]} is not a port group. "
                                "Access this port with a single int instead.")
            if port_index[1] >= len(group):
                return ks.Schema.from_columns([])
            spec = group[port_index[1]]
        else:
            if not isinstance(port_index, int):
                raise ValueError(f"Invalid port index, must be int or (int, int), but got {type(port_index)}.")
            spec = specs[port_index]
    except IndexError:
        raise IndexError(f"The port index {port_index} is not contained in the spec list with length {len(specs)}. "
                         "Maybe the port_index does not match the index of the corresponding input table? ") from None
    if spec is None:  # optional input not connected
        return ks.Schema.from_columns([])
    if not isinstance(spec, ks.Schema):
        raise TypeError(f"The port at index {port_index} is not a table. The ColumnFilter can only be used for "
                        f"table ports. Available specs are: {specs}")
    return spec


def _possible_values(spec, column_filter) -> List[Dict[str, Any]]:
    if not isinstance(spec, ks.Schema):
        raise TypeError("The given input is not a table.")
    return [{"id": c.name, "text": c.name} for c in spec if column_filter(c)]


class _BaseColumnParameter(_BaseParameter):
    def __init__(self, label, description, port_index, column_filter=None, default_value=None, since_version=None,
                 is_advanced=False, schema_provider=None):
        super().__init__(label, description, default_value=default_value, since_version=since_version,
                         is_advanced=is_advanced)
        self._column_filter = column_filter if column_filter is not None else (lambda c: True)
        if schema_provider is None:
            self._port_index = port_index
            schema_provider = lambda ctx: _pick_spec(ctx.get_input_specs(), port_index)  # noqa: E731
        else:
            self._port_index = None
        self._schema_provider = schema_provider

    def _validate_specs(self, specs) -> None:
        idx = self._port_index
        if idx is None:
            return
        if isinstance(idx, int) and len(specs) <= idx:
            raise ValueError(f"There are too few input specs. The column selection '{self._name}' requires a "
                             f"table input at index {idx}")
        if isinstance(idx, tuple) and (len(specs) <= idx[0] or len(specs[idx[0]]) < idx[1]):
            raise ValueError(f"There are too few input specs. The column selection '{self._name}' requires a "
                             f"table input at dynamic port index {idx}")
        if not isinstance(_pick_spec(specs, idx), ks.Schema):
            raise TypeError(f"The port index ({idx}) of the column selection '{self._name}' does not point to a "
                            "table input.")


class ColumnParameter(_BaseColumnParameter):
    """One column name (None = no column; stored as "" in the settings)."""

    NONE = "<none>"

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, port_index: int = 0,
                 column_filter: Callable[[ks.Column], bool] = None, include_row_key: bool = False,
                 include_none_column: bool = False, since_version: Optional[str] = None, is_advanced: bool = False,
                 schema_provider=None, default_value=None):
        super().__init__(label, description, port_index, column_filter, default_value, since_version, is_advanced,
                         schema_provider)
        self._include_row_key = include_row_key
        self._include_none_column = include_none_column

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "string"}

    def _get_options(self, dialog_creation_context) -> dict:
        values = _possible_values(self._schema_provider(dialog_creation_context), self._column_filter)
        if self._include_none_column:
            values.append({"id": self.NONE, "text": "None"})
        return {"format": "dropDown", "showRowKeys": self._include_row_key,
                "showNoneColumn": self._include_none_column, "possibleValues": values}

    def _to_dict(self, value):
        return "" if value is None else value

    def _from_dict(self, value):
        return None if value == "" else value


class MultiColumnParameter(_BaseColumnParameter):
    """A list of column names (default: empty list)."""

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, port_index: Optional[int] = 0,
                 column_filter: Optional[Callable[[ks.Column], bool]] = None, since_version=None,
                 is_advanced: bool = False):
        super().__init__(label, description, port_index, column_filter, None, since_version, is_advanced)

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "array", "items": {"type": "string"}}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "twinList",
                "possibleValues": _possible_values(self._schema_provider(dialog_creation_context), self._column_filter)}

    def _get_value(self, obj, name, for_dialog: bool = False):
        value = super()._get_value(obj, name, for_dialog)
        return [] if for_dialog and value is None else value

    def _inject(self, obj, value, name, version=None, exclude_validations: bool = False):
        if value is not None:  # "" is KNIME's placeholder for "no columns"
            value = [c for c in value if c != ""]
        return super()._inject(obj, value, name, version, exclude_validations)

    def _get_default(self, version=None):
        return []


class ColumnFilterMode(Enum):
    MANUAL = "Manual"
    REGEX = "Regex"
    WILDCARD = "Wildcard"
    TYPE = "Type"


class PatternFilterConfig:
    def __init__(self, pattern: str = "", case_sensitive: bool = True, inverted: bool = False):
        self.case_senstive = case_sensitive  # KNIME's attribute name (sic)
        self.inverted = inverted
        self.pattern = pattern

    def _apply(self, schema, regex: bool) -> List[str]:
        pattern = self.pattern if regex else re.escape(self.pattern).replace("\\*", ".*").replace("\\?", ".")
        compiled = re.compile(pattern, 0 if self.case_senstive else re.IGNORECASE)
        return [c.name for c in schema if (compiled.search(c.name) is not None) ^ self.inverted]

    @classmethod
    def _from_dict(cls, value: Dict):
        return cls(value["pattern"], value["isCaseSensitive"], value["isInverted"])

    def _to_dict(self) -> Dict:
        return {"pattern": self.pattern, "isCaseSensitive": self.case_senstive, "isInverted": self.inverted}


class TypeFilterConfig:
    """Selects columns whose metadata "preferred_value_type" is selected (set by KNIME on inputs)."""

    def __init__(self, selected_types=None, type_displays=None):
        self._selected_types = selected_types or []
        self._type_displays = type_displays or []

    def _apply(self, schema) -> List[str]:
        out = []
        for c in schema:
            if not c.metadata or "preferred_value_type" not in c.metadata:
                LOGGER.warning(f"Ignoring column '{c.name}' because it does not have a 'preferred_value_type' set.")
            elif c.metadata["preferred_value_type"] in self._selected_types:
                out.append(c.name)
        return out

    @classmethod
    def _from_dict(cls, value: Dict):
        return cls(value["selectedTypes"], value["typeDisplays"])

    def _to_dict(self) -> Dict:
        return {"selectedTypes": self._selected_types, "typeDisplays": self._type_displays}


class ManualFilterConfig:
    def __init__(self, included: List[str] = None, excluded: List[str] = None, include_unknown_columns=True):
        self.include_unknown_columns = include_unknown_columns
        self.included = included if included is not None else []
        self.excluded = excluded if excluded is not None else []

    def _apply(self, schema) -> List[str]:
        return [c.name for c in schema if c.name in self.included
                or (c.name not in self.excluded and self.include_unknown_columns)]

    @classmethod
    def _from_dict(cls, value: Dict):
        return cls(value["manuallySelected"], value["manuallyDeselected"], value["includeUnknownColumns"])

    def _to_dict(self) -> Dict:
        return {"manuallySelected": self.included, "manuallyDeselected": self.excluded,
                "includeUnknownColumns": self.include_unknown_columns}


class ColumnFilterConfig:
    """Value of a ColumnFilterParameter; `apply(schema_or_table)` returns the selected columns."""

    def __init__(self, mode=ColumnFilterMode.MANUAL, pattern_filter=None, type_filter=None, manual_filter=None,
                 included_column_names: List[str] = None, pre_filter=None):
        self.pattern_filter = pattern_filter if pattern_filter is not None else PatternFilterConfig()
        self.type_filter = type_filter if type_filter is not None else TypeFilterConfig()
        if included_column_names is not None:
            self.manual_filter = ManualFilterConfig(included=included_column_names)
            self.mode = ColumnFilterMode.MANUAL
        else:
            self.manual_filter = manual_filter if manual_filter is not None else ManualFilterConfig()
            self.mode = mode
        self._pre_filter = pre_filter

    @classmethod
    def _from_dict(cls, value, pre_filter=None):
        return cls(mode=ColumnFilterMode[value["mode"]],
                   pattern_filter=PatternFilterConfig._from_dict(value["patternFilter"]),
                   type_filter=TypeFilterConfig._from_dict(value["typeFilter"]),
                   manual_filter=ManualFilterConfig._from_dict(value["manualFilter"]), pre_filter=pre_filter)

    def _to_dict(self) -> Dict:
        return {"mode": self.mode.name, "patternFilter": self.pattern_filter._to_dict(),
                "typeFilter": self.type_filter._to_dict(), "manualFilter": self.manual_filter._to_dict()}

    def __eq__(self, other) -> bool:
        return self._to_dict() == other._to_dict()

    def apply(self, columnar):
        schema = columnar.schema if hasattr(columnar, "schema") else columnar
        if self._pre_filter:
            schema = schema[[c.name for c in schema if self._pre_filter(c)]]
        if self.mode == ColumnFilterMode.MANUAL:
            names = self.manual_filter._apply(schema)
        elif self.mode in (ColumnFilterMode.REGEX, ColumnFilterMode.WILDCARD):
            names = self.pattern_filter._apply(schema, regex=self.mode == ColumnFilterMode.REGEX)
        elif self.mode == ColumnFilterMode.TYPE:
            names = self.type_filter._apply(schema)
        else:
            raise ValueError(f"Unknown column filter mode selected: {self.mode}")
        return columnar[names]


class ColumnFilterParameter(_BaseColumnParameter):
    """A ColumnFilterConfig (manual include/exclude, regex, wildcard or type filter)."""

    def __init__(self, label: Optional[str] = None, description: Optional[str] = None, port_index: Optional[int] = 0,
                 default_value=None, column_filter: Callable[[ks.Column], bool] = None, since_version=None,
                 is_advanced: bool = False, schema_provider=None):
        super().__init__(label, description, port_index, column_filter,
                         default_value if default_value else ColumnFilterConfig(), since_version, is_advanced,
                         schema_provider)

    def _extract_schema(self, extension_version=None, dialog_creation_context=None) -> dict:
        return {**super()._extract_schema(), "type": "object"}

    def _get_options(self, dialog_creation_context) -> dict:
        return {"format": "typedStringFilter", "unknownValuesText": "Any unknown column",
                "emptyStateLabel": "No columns in this list.",
                "possibleValues": _possible_values(self._schema_provider(dialog_creation_context), self._column_filter)}

    def _from_dict(self, value) -> ColumnFilterConfig:
        return ColumnFilterConfig._from_dict(value, self._column_filter)

    def _to_dict(self, value: ColumnFilterConfig) -> Dict:
        return value._to_dict()
