"""Table specs: `Column`, `Schema`, and `PortObjectSpec`, the base of every port's spec."""
from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Union

from .types import (KnimeType, ListType, LogicalType, StructType, blob, bool_, datetime, double,  # noqa: F401
                    int32, int64, list_, logical, string, struct, type_from_json, BlobType, BooleanType,
                    DoubleType, IntType, StringType)


class PortObjectSpec:
    """What a port carries at configure time. KNIME stores it as JSON: subclasses return a dict of
    JSON values from `serialize()` and rebuild themselves in the classmethod `deserialize(data)`."""

    def serialize(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement serialize() -> dict")

    @classmethod
    def deserialize(cls, data: dict) -> "PortObjectSpec":
        raise NotImplementedError(f"{cls.__name__} must implement the classmethod deserialize(data)")


class Column:
    """One column of a table spec: its KNIME type, name and optional metadata dict."""

    def __init__(self, ktype: KnimeType, name: str, metadata: Optional[dict] = None) -> None:
        if not isinstance(ktype, KnimeType):
            raise TypeError(f"Column '{name}': the type must be a KNIME type such as knext.double(), not {ktype!r}")
        if not isinstance(name, str):
            raise TypeError(f"column names are strings, not {name!r}")
        self.ktype, self.name, self.metadata = ktype, name, metadata

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Column) and (self.ktype, self.name, self.metadata or None) == \
            (other.ktype, other.name, other.metadata or None)

    def __hash__(self) -> int:
        return hash((self.ktype, self.name))

    def __repr__(self) -> str:
        return f"Column<'{self.name}', {self.ktype}>"

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.ktype.to_json(), **({"metadata": self.metadata} if self.metadata
                                                                     else {})}

    @classmethod
    def from_json(cls, data: dict) -> "Column":
        return cls(type_from_json(data["type"]), data["name"], data.get("metadata"))


class Schema(PortObjectSpec):
    """The spec of a table: its columns in order (the RowID is not a column)."""

    def __init__(self, columns: Sequence[Column] = ()) -> None:
        self._columns: List[Column] = list(columns)
        for c in self._columns:
            if not isinstance(c, Column):
                raise TypeError(f"a Schema holds knext.Column objects, not {c!r}")

    @classmethod
    def from_columns(cls, columns: Union[Column, Iterable[Column]]) -> "Schema":
        return cls([columns] if isinstance(columns, Column) else list(columns))

    @classmethod
    def from_types(cls, types: Sequence[KnimeType], names: Sequence[str],
                   metadata: Optional[Sequence[Optional[dict]]] = None) -> "Schema":
        if len(types) != len(names) or (metadata is not None and len(metadata) != len(names)):
            raise ValueError(f"Schema.from_types: {len(types)} types for {len(names)} names")
        metas = list(metadata) if metadata is not None else [None] * len(names)
        return cls([Column(t, n, m) for t, n, m in zip(types, names, metas)])

    @property
    def column_names(self) -> List[str]:
        return [c.name for c in self._columns]

    @property
    def num_columns(self) -> int:
        return len(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(list(self._columns))

    def __contains__(self, name: object) -> bool:
        return name in self.column_names

    def __getitem__(self, key: Any) -> Union[Column, "Schema"]:
        """A column by name or position; a Schema for a slice or a list of names/positions."""
        if isinstance(key, slice):
            return Schema(self._columns[key])
        if isinstance(key, (list, tuple)):
            return Schema([self._single(k) for k in key])
        return self._single(key)

    def _single(self, key: Union[int, str]) -> Column:
        if isinstance(key, str):
            for c in self._columns:
                if c.name == key:
                    return c
            raise KeyError(f"no column '{key}' in the schema; columns: {self.column_names}")
        if isinstance(key, int) and not isinstance(key, bool):
            return self._columns[key]
        raise TypeError(f"columns are addressed by name or position, not {key!r}")

    def append(self, columns: Union[Column, Iterable[Column]]) -> "Schema":
        """A new schema with the column(s) added at the end."""
        more = [columns] if isinstance(columns, Column) else list(columns)
        return Schema(self._columns + more)

    def insert(self, column: Column, at: int) -> "Schema":
        cols = list(self._columns)
        cols.insert(at, column)
        return Schema(cols)

    def remove(self, key: Union[int, str]) -> "Schema":
        gone = self._single(key)
        return Schema([c for c in self._columns if c is not gone])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self._columns == other._columns

    def __hash__(self) -> int:
        return hash(tuple(self._columns))

    def __repr__(self) -> str:
        return "Schema(" + ", ".join(f"{c.name}: {c.ktype}" for c in self._columns) + ")"

    def serialize(self) -> Dict[str, Any]:
        seen: set = set()
        dupes = [n for n in self.column_names if n in seen or seen.add(n)]
        if dupes:
            raise RuntimeError(f"KNIME tables need unique column names; duplicated: {sorted(set(dupes))}")
        return {"columns": [c.to_json() for c in self._columns]}

    @classmethod
    def deserialize(cls, data: dict) -> "Schema":
        return cls([Column.from_json(c) for c in data["columns"]])


__all__ = ["PortObjectSpec", "Column", "Schema", "KnimeType", "ListType", "StructType", "LogicalType", "IntType",
           "DoubleType", "BooleanType", "StringType", "BlobType", "int32", "int64", "double", "bool_", "string",
           "blob", "list_", "struct", "logical", "datetime"]
