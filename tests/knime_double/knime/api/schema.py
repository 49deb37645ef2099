"""Double of knime.api.schema: KNIME column types, Column, Schema and the built-in port specs.

Schema.serialize()/deserialize() use KNIME's JSON table-spec layout (a RowKey column first,
primitive types wrapped in their KNIME value-factory logical types) so a spec survives the
same JSON round trip between nodes that KNIME performs.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from enum import Enum, unique
from typing import Dict, Iterator, List, Optional, Sequence, Union

from ._columnar import (_AppendOperation, _Columnar, _ColumnarOperation, _ColumnarView,  # noqa: F401
                        _ColumnSlicingOperation)

LOGGER = logging.getLogger(__name__)


class KnimeType:
    """Base of all KNIME column types (not instantiated directly)."""

    def __init__(self):
        if type(self) is KnimeType:
            raise TypeError(f"{type(self)} is not supposed to be created directly")

    def __repr__(self) -> str:
        return str(self)


@unique
class PrimitiveTypeId(Enum):
    INT = "Number (Integer)"
    LONG = "Number (Long Integer)"
    STRING = "String"
    DOUBLE = "Number (Float)"
    BOOL = "Boolean"
    BLOB = "blob"
    NULL = "null"


@unique
class DictEncodingKeyType(Enum):
    INT = "INT_KEY"
    LONG = "LONG_KEY"
    BYTE = "BYTE_KEY"


class _Singletons(type):
    """One PrimitiveType instance per (type id, dict-encoding key), so `is` and `==` agree."""
    _instances: dict = {}

    def __call__(cls, type_id, key_type=None):
        key = (type_id, key_type)
        if key not in cls._instances:
            obj = cls.__new__(cls)
            obj.__init__(type_id, key_type)
            cls._instances[key] = obj
        return cls._instances[key]


class PrimitiveType(KnimeType, metaclass=_Singletons):
    def __init__(self, type_id: PrimitiveTypeId, key_type: Optional[DictEncodingKeyType] = None):
        if not isinstance(type_id, PrimitiveTypeId):
            raise TypeError(f"{self.__class__.__name__} expected a {PrimitiveTypeId} instance but got {type_id}")
        if key_type is not None and not isinstance(key_type, DictEncodingKeyType):
            raise TypeError(f"key_type must be a valid DictEncodingKeyType, got {key_type}")
        if key_type is not None and type_id not in (PrimitiveTypeId.STRING, PrimitiveTypeId.BLOB):
            raise TypeError(f"Dictionary only works for strings and binary blobs, not {type_id.value}")
        self._type_id = type_id
        self._key_type = key_type

    @property
    def dict_encoding_key_type(self) -> Optional[DictEncodingKeyType]:
        return self._key_type

    @property
    def plain_type(self) -> "PrimitiveType":
        return PrimitiveType(self._type_id)

    def __str__(self) -> str:
        if self._key_type is not None:
            return f"{self._type_id.value}[dict_encoding={self._key_type.value}]"
        return self._type_id.value


class ListType(KnimeType):
    def __init__(self, inner_type: KnimeType):
        if not isinstance(inner_type, KnimeType):
            raise TypeError(f"Cannot create list type with inner type {inner_type}, must be a KnimeType")
        self._inner_type = inner_type

    @property
    def inner_type(self) -> KnimeType:
        return self._inner_type

    def __eq__(self, other) -> bool:
        return other.__class__ == self.__class__ and self._inner_type == other._inner_type

    def __hash__(self):
        return hash(str(self))

    def __str__(self) -> str:
        return f"List (Collection of: {self._inner_type})"


class StructType(KnimeType):
    def __init__(self, inner_types):
        inner_types = list(inner_types)
        for t in inner_types:
            if not isinstance(t, KnimeType):
                raise TypeError(f"Cannot create struct type with inner type {t}, must be a KnimeType")
        self._inner_types = inner_types

    @property
    def inner_types(self):
        return self._inner_types

    def __eq__(self, other) -> bool:
        return (other.__class__ == self.__class__ and len(self._inner_types) == len(other._inner_types)
                and all(a == b for a, b in zip(self._inner_types, other._inner_types)))

    def __hash__(self):
        return hash(str(self))

    def __str__(self) -> str:
        return f"struct<{', '.join(str(t) for t in self._inner_types)}>"


class LogicalType(KnimeType):
    """A KNIME value type (JSON value-factory string) stored in a physical storage type."""

    def __init__(self, logical_type: str, storage_type: KnimeType, proxy_type_converter=None):
        self._logical_type = logical_type
        self._storage_type = storage_type
        self._proxy_type_converter = proxy_type_converter

    @property
    def logical_type(self) -> str:
        return self._logical_type

    @property
    def storage_type(self) -> KnimeType:
        return self._storage_type

    @property
    def value_type(self):
        for py_type, (lt, _) in _logical_registry().items():
            if lt == self._logical_type:
                return py_type
        raise ValueError(f"No PythonValueFactory registered for {self._logical_type}")

    @property
    def proxy_type(self):
        return None

    def __eq__(self, other) -> bool:
        return (other.__class__ == self.__class__ and other.logical_type == self.logical_type
                and other.storage_type == self.storage_type)

    def __hash__(self):
        return hash(str(self))

    def __str__(self) -> str:
        return f"extension<logical={self._logical_type}, storage={self._storage_type}>"

    @staticmethod
    def supported_value_types() -> str:
        return "Value types known to this test double: " + ", ".join(str(t) for t in _logical_registry())


def int32() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.INT)


def int64() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.LONG)


def double() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.DOUBLE)


def bool_() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.BOOL)


def null() -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.NULL)


def string(dict_encoding_key_type: Optional[DictEncodingKeyType] = None) -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.STRING, dict_encoding_key_type)


def blob(dict_encoding_key_type: Optional[DictEncodingKeyType] = None) -> PrimitiveType:
    return PrimitiveType(PrimitiveTypeId.BLOB, dict_encoding_key_type)


def list_(inner_type: KnimeType) -> ListType:
    return ListType(inner_type)


def struct(*inner_types) -> StructType:
    return StructType(inner_types)


class PortObjectSpec(ABC):
    """Base of port specs: `serialize()` gives a JSON-able dict, `deserialize(data)` rebuilds it."""

    @abstractmethod
    def serialize(self) -> dict: ...

    @classmethod
    @abstractmethod
    def deserialize(cls, data: Dict, java_callback=None): ...


class BinaryPortObjectSpec(PortObjectSpec):
    def __init__(self, id: str) -> None:
        self._id = id

    @property
    def id(self) -> str:
        return self._id

    def serialize(self) -> dict:
        return {"id": self._id}

    @classmethod
    def deserialize(cls, data):
        return cls(data["id"])


class ImagePortObjectSpec(PortObjectSpec):
    """Spec of an image output port; `format` is a knext.ImageFormat or its value ("png"/"svg")."""

    def __init__(self, format: Union[str, Enum]) -> None:
        self._format = format if isinstance(format, str) else format.value

    @property
    def format(self) -> str:
        return self._format

    def serialize(self) -> dict:
        return {"format": self._format}

    @classmethod
    def deserialize(cls, data):
        return cls(data["format"])


class Column:
    """A column of a Schema: KNIME type, non-empty name and optional metadata dict."""

    def __init__(self, ktype, name: str, metadata: Optional[dict] = None):
        if not isinstance(ktype, KnimeType):
            try:
                ktype = logical(ktype)
            except TypeError as e:
                raise TypeError(f"Could not create column with type {ktype}, please use a supported column type", e)
        if not isinstance(name, str):
            raise TypeError(f"Column name must be of type string, but got {type(name)}")
        if name.strip() == "":
            raise ValueError("Column name may not be empty")
        self.ktype = ktype
        self.name = name
        self.metadata = metadata

    def __str__(self) -> str:
        meta = "" if self.metadata is None else f", {self.metadata}"
        return f"{self.__class__.__name__}<'{self.name}', {self.ktype}{meta}>"

    __repr__ = __str__

    def __eq__(self, other) -> bool:
        return self.ktype == other.ktype and self.name == other.name and self.metadata == other.metadata


class Schema(_Columnar, PortObjectSpec):
    """Column types, names and metadata of a table; the spec of table ports."""

    @classmethod
    def from_columns(cls, columns: Union[Sequence[Column], Column]) -> "Schema":
        if isinstance(columns, Column):
            columns = [columns]
        try:
            columns = list(columns)
        except TypeError:
            raise TypeError(f"Columns needs to be an iterable, but is {type(columns)}") from None
        for c in columns:
            if not isinstance(c, Column):
                raise TypeError(f"Can only instantiate a schema from columns, not {type(c)}")
        return cls([c.ktype for c in columns], [c.name for c in columns], [c.metadata for c in columns])

    @classmethod
    def from_types(cls, ktypes, names, metadata=None) -> "Schema":
        return cls(ktypes, names, metadata)

    def __init__(self, ktypes, names, metadata=None):
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"Schema expected names to be a sequence of strings, but got {type(names)}")
        if len(ktypes) != len(names):
            raise ValueError(f"Number of types must match number of names, but {len(ktypes)} != {len(names)}")
        metadata = [None] * len(ktypes) if metadata is None else list(metadata)
        if len(metadata) != len(ktypes):
            raise ValueError(f"Number of types must match number of metadata fields, "
                             f"but {len(ktypes)} != {len(metadata)}")
        self._columns = [Column(t, n, m) for t, n, m in zip(ktypes, names, metadata)]

    @property
    def column_names(self) -> List[str]:
        return [c.name for c in self._columns]

    @property
    def num_columns(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[Column]:
        yield from self._columns

    def __contains__(self, key) -> bool:
        if isinstance(key, Column):
            key = key.name
        return isinstance(key, str) and key in self.column_names

    def __eq__(self, other) -> bool:
        if isinstance(other, _ColumnarView):
            other = other.get()
        return (other.__class__ == self.__class__ and len(self._columns) == len(other._columns)
                and all(a == b for a, b in zip(self._columns, other._columns)))

    def _select_columns(self, index):
        cols = self._columns
        if isinstance(index, int):
            if index < 0:
                index += len(cols)
            if not 0 <= index < len(cols):
                raise IndexError(f"Index {index} does not exist in schema with {len(cols)} columns")
            return cols[index]
        if isinstance(index, str):
            for c in cols:
                if c.name == index:
                    return c
            raise IndexError(f"Schema has no column named '{index}'")
        if isinstance(index, slice):
            return self.__class__.from_columns(cols[index])
        if isinstance(index, list):
            picked = []
            for key in index:
                if isinstance(key, str):
                    if key not in self.column_names:
                        raise IndexError(f"Invalid column selection, '{key}' is not available in {self}")
                    picked.append(cols[self.column_names.index(key)])
                elif isinstance(key, int) and 0 <= key < len(cols):
                    picked.append(cols[key])
                else:
                    raise IndexError(f"Invalid column index {key}")
            return self.__class__.from_columns(picked)
        raise TypeError(f"{self.__class__.__name__} can only be indexed by int, string, slice, list of int, "
                        f"or list of string, not {type(index)}")

    def _append(self, other) -> "Schema":
        cols = list(self._columns)
        if isinstance(other, Schema):
            cols += other._columns
        elif isinstance(other, Column):
            cols.append(other)
        elif isinstance(other, Sequence):
            for c in other:
                if not isinstance(c, Column):
                    raise TypeError(f"A column list to append can only contain columns, not {type(c)}")
            cols += list(other)
        else:
            raise TypeError(f"Can only append columns, column lists or schemas to this schema, not {type(other)}")
        return self.__class__.from_columns(cols)

    def __str__(self) -> str:
        return f"{self.__class__.__name__}<\n\t" + ",\n\t".join(str(c) for c in self._columns) + ">"

    __repr__ = __str__

    def serialize(self) -> Dict:
        """KNIME's JSON table spec; duplicate column names are refused as KNIME refuses them."""
        from ._spec_json import schema_to_dict
        if len(set(self.column_names)) != len(self.column_names):
            raise RuntimeError("Duplicate column names detected, please make sure all columns have unique names")
        return schema_to_dict(self)

    @classmethod
    def deserialize(cls, table_schema: dict, java_callback=None) -> "Schema":
        from ._spec_json import schema_from_dict
        return schema_from_dict(cls, table_schema)


# value types KNIME registers (date/time, PIL images); imported last as it builds on the above
from ._logical import _DT, _logical_registry, _vf, datetime, logical  # noqa: E402,F401
