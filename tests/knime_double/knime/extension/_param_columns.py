"""Column choices: one column, several columns, or a column filter, of the table at an input port.

`port_index` counts the node's input ports (a model port first and the table second: 1). The
dialog offers the columns of that port's spec that pass `column_filter(column)`; settings
hold column names, which configure must check against the actual table.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable, List, Optional

from knime.api.schema import Column, Schema

from ._param_base import ParameterBase


class _ColumnChoice(ParameterBase):
    def __init__(self, label: str, description: str, default_value: Any, port_index: int,
                 column_filter: Optional[Callable[[Column], bool]], since_version: Optional[str],
                 is_advanced: bool) -> None:
        super().__init__(label, description, default_value, None, since_version, is_advanced)
        if not isinstance(port_index, int) or port_index < 0:
            raise ValueError(f"parameter '{label}': port_index counts input ports from 0, not {port_index!r}")
        if column_filter is not None and not callable(column_filter):
            raise TypeError(f"parameter '{label}': column_filter is a callable(column) -> bool")
        self.port_index, self.column_filter = port_index, column_filter

    def offered(self, ctx: Any) -> List[str]:
        """Columns the dialog offers: those of the spec at port_index that pass the filter."""
        specs = ctx.get_input_specs() if ctx is not None else []
        spec = specs[self.port_index] if self.port_index < len(specs) else None
        if not isinstance(spec, Schema):
            return []
        return [c.name for c in spec if self.column_filter is None or self.column_filter(c)]

    def _names(self, value: Any, what: str) -> List[str]:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise self._type_error(value, what)
        return list(value)


class ColumnParameter(_ColumnChoice):
    """One column name (None: nothing chosen yet). include_none_column offers a 'None' entry;
    include_row_key offers the RowID."""

    def __init__(self, label: str, description: str = "", port_index: int = 0,
                 column_filter: Optional[Callable[[Column], bool]] = None, include_row_key: bool = False,
                 include_none_column: bool = False, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, None, port_index, column_filter, since_version, is_advanced)
        self.include_row_key, self.include_none_column = include_row_key, include_none_column

    def _coerce(self, value: Any) -> Optional[str]:
        if value is not None and not isinstance(value, str):
            raise self._type_error(value, "a column name (str) or None")
        return value

    def ui_options(self, ctx: Any) -> dict:
        names = (["<row-keys>"] if self.include_row_key else []) + (["<none>"] if self.include_none_column else [])
        return {"format": "columnSelection",
                "possibleValues": [{"id": n, "text": n} for n in names + self.offered(ctx)]}


class MultiColumnParameter(_ColumnChoice):
    """Several column names (None: nothing chosen yet)."""

    _json_type = "array"

    def __init__(self, label: str, description: str = "", port_index: int = 0,
                 column_filter: Optional[Callable[[Column], bool]] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, None, port_index, column_filter, since_version, is_advanced)

    def _coerce(self, value: Any) -> Optional[List[str]]:
        return None if value is None else self._names(value, "a list of column names")

    def json_schema(self, ctx: Any) -> dict:
        return {**super().json_schema(ctx), "items": {"type": "string"}}

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "twinList", "possibleValues": [{"id": n, "text": n} for n in self.offered(ctx)]}


class ColumnFilterConfig:
    """Which columns a ColumnFilterParameter keeps: picked by name (MANUAL), by a regular
    expression (REGEX) or a wildcard pattern (WILDCARD)."""

    MODES = ("MANUAL", "REGEX", "WILDCARD")

    def __init__(self, mode: str = "MANUAL", selected: Optional[List[str]] = None, pattern: str = "",
                 case_sensitive: bool = True) -> None:
        if mode not in self.MODES:
            raise ValueError(f"column filter mode must be one of {self.MODES}, not {mode!r}")
        self.mode, self.selected = mode, list(selected or [])
        self.pattern, self.case_sensitive = pattern, case_sensitive

    def keeps(self, name: str) -> bool:
        if self.mode == "MANUAL":
            return name in self.selected
        flags = 0 if self.case_sensitive else re.IGNORECASE
        regex = self.pattern if self.mode == "REGEX" else fnmatch.translate(self.pattern)
        return re.fullmatch(regex, name, flags) is not None

    def apply(self, data: Any) -> Any:
        """The kept columns of a Schema (a Schema) or of a Table (a Table)."""
        schema = data if isinstance(data, Schema) else data.schema
        kept = [c.name for c in schema if self.keeps(c.name)]
        return schema[kept] if isinstance(data, Schema) else data[kept]

    def to_json(self) -> dict:
        return {"mode": self.mode, "selected": list(self.selected), "pattern": self.pattern,
                "case_sensitive": self.case_sensitive}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ColumnFilterConfig) and other.to_json() == self.to_json()


class ColumnFilterParameter(_ColumnChoice):
    """A column filter; the value is a ColumnFilterConfig (`value.apply(table)`)."""

    _json_type = "object"

    def __init__(self, label: str, description: str = "", port_index: int = 0,
                 column_filter: Optional[Callable[[Column], bool]] = None, since_version: Optional[str] = None,
                 is_advanced: bool = False) -> None:
        super().__init__(label, description, ColumnFilterConfig(), port_index, column_filter, since_version,
                         is_advanced)

    def _coerce(self, value: Any) -> ColumnFilterConfig:
        if isinstance(value, ColumnFilterConfig):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"mode", "selected", "pattern", "case_sensitive"}
            if unknown:
                raise ValueError(f"'{self._label}': unknown column filter keys {sorted(unknown)}")
            return ColumnFilterConfig(**value)
        raise self._type_error(value, "a ColumnFilterConfig or its settings dict")

    def to_json(self, value: Any) -> Any:
        return value.to_json()

    def from_json(self, data: Any) -> Any:
        return self._coerce(data)

    def ui_options(self, ctx: Any) -> dict:
        return {"format": "columnFilter", "possibleValues": [{"id": n, "text": n} for n in self.offered(ctx)]}
