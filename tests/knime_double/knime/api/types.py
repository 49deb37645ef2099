"""KNIME column types (`knext.int32()`, `list_(...)`, `logical(...)`, ...) and their Arrow form.

Every type compares by value, prints as a short name and round-trips through JSON (specs
travel to KNIME as JSON). `arrow_to_knime` is the gatekeeper of what KNIME can store: it
names the column and the fix for every Arrow type KNIME refuses.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Optional, Tuple

import pyarrow as pa

ROW_ID = "<RowID>"


class KnimeType:
    """Base of all column types."""

    def _key(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnimeType) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return str(self)

    def to_json(self) -> Any:
        raise NotImplementedError

    def to_arrow(self) -> pa.DataType:
        raise NotImplementedError


class _Simple(KnimeType):
    _name = ""
    _arrow: Any = None

    def _key(self) -> tuple:
        return (self._name,)

    def __str__(self) -> str:
        return self._name

    def to_json(self) -> Any:
        return self._name

    def to_arrow(self) -> pa.DataType:
        return self._arrow()


class IntType(_Simple):
    def __init__(self, bitwidth: int) -> None:
        if bitwidth not in (32, 64):
            raise ValueError(f"KNIME integers have 32 or 64 bits, not {bitwidth}")
        self.bitwidth = bitwidth
        self._name = f"int{bitwidth}"
        self._arrow = pa.int32 if bitwidth == 32 else pa.int64


class DoubleType(_Simple):
    _name, _arrow = "double", pa.float64


class BooleanType(_Simple):
    _name, _arrow = "bool", pa.bool_


class StringType(_Simple):
    _name, _arrow = "string", pa.string


class BlobType(_Simple):
    _name, _arrow = "blob", pa.large_binary


class VoidType(_Simple):
    """A column holding only missing values (Arrow null)."""
    _name, _arrow = "void", pa.null


class ListType(KnimeType):
    def __init__(self, inner_type: KnimeType) -> None:
        _need_type(inner_type, "list_")
        self.inner_type = inner_type

    def _key(self) -> tuple:
        return ("list", self.inner_type._key())

    def __str__(self) -> str:
        return f"list<{self.inner_type}>"

    def to_json(self) -> Any:
        return {"list": self.inner_type.to_json()}

    def to_arrow(self) -> pa.DataType:
        return pa.list_(self.inner_type.to_arrow())


class StructType(KnimeType):
    def __init__(self, *inner_types: KnimeType) -> None:
        for t in inner_types:
            _need_type(t, "struct")
        self.inner_types = tuple(inner_types)

    def _key(self) -> tuple:
        return ("struct",) + tuple(t._key() for t in self.inner_types)

    def __str__(self) -> str:
        return "struct<" + ", ".join(str(t) for t in self.inner_types) + ">"

    def to_json(self) -> Any:
        return {"struct": [t.to_json() for t in self.inner_types]}

    def to_arrow(self) -> pa.DataType:
        return pa.struct([pa.field(str(i), t.to_arrow()) for i, t in enumerate(self.inner_types)])


class LogicalType(KnimeType):
    """A type KNIME knows by its value factory (images, dates, ...), stored as `storage_type`."""

    def __init__(self, logical_type: str, storage_type: KnimeType) -> None:
        self.logical_type = logical_type
        self.storage_type = storage_type

    def _key(self) -> tuple:
        return ("logical", self.logical_type, self.storage_type._key())

    def __str__(self) -> str:
        short = self.logical_type.rsplit(".", 1)[-1].split('"')[0].replace("ValueFactory", "")
        return f"{short}<{self.storage_type}>"

    def to_json(self) -> Any:
        return {"logical": self.logical_type, "storage": self.storage_type.to_json()}

    def to_arrow(self) -> pa.DataType:
        temporal = _TEMPORAL_ARROW.get(self.logical_type)
        return temporal() if temporal else LogicalArrowType(self.storage_type.to_arrow(), self.logical_type)


def _need_type(t: Any, where: str) -> None:
    if not isinstance(t, KnimeType):
        raise TypeError(f"{where}() takes KNIME types such as knext.double(), not {t!r}")


def type_from_json(data: Any) -> KnimeType:
    simple = {"int32": int32, "int64": int64, "double": double, "bool": bool_, "string": string,
              "blob": blob, "void": VoidType}
    if isinstance(data, str) and data in simple:
        return simple[data]()
    if isinstance(data, dict) and "list" in data:
        return ListType(type_from_json(data["list"]))
    if isinstance(data, dict) and "struct" in data:
        return StructType(*[type_from_json(t) for t in data["struct"]])
    if isinstance(data, dict) and "logical" in data:
        return LogicalType(data["logical"], type_from_json(data["storage"]))
    raise ValueError(f"not a serialized KNIME type: {data!r}")


# ---- constructors of the public API ---------------------------------------------------------------
def int32() -> IntType:
    return IntType(32)


def int64() -> IntType:
    return IntType(64)


def double() -> DoubleType:
    return DoubleType()


def bool_() -> BooleanType:
    return BooleanType()


def string() -> StringType:
    return StringType()


def blob() -> BlobType:
    return BlobType()


def list_(inner_type: KnimeType) -> ListType:
    return ListType(inner_type)


def struct(*inner_types: KnimeType) -> StructType:
    return StructType(*inner_types)


def _factory(java_class: str) -> str:
    return '{"value_factory_class":"' + java_class + '"}'


PNG_IMAGE = _factory("org.knime.core.data.image.png.PNGImageValueFactory")
LOCAL_DATE = _factory("org.knime.core.data.v2.time.LocalDateValueFactory")
LOCAL_TIME = _factory("org.knime.core.data.v2.time.LocalTimeValueFactory")
LOCAL_DATE_TIME = _factory("org.knime.core.data.v2.time.LocalDateTimeValueFactory")
ZONED_DATE_TIME = _factory("org.knime.core.data.v2.time.ZonedDateTimeValueFactory2")
DURATION = _factory("org.knime.core.data.v2.time.DurationValueFactory")
_TEMPORAL_ARROW = {LOCAL_DATE: pa.date32, LOCAL_TIME: lambda: pa.time64("us"),
                   LOCAL_DATE_TIME: lambda: pa.timestamp("us"), ZONED_DATE_TIME: lambda: pa.timestamp("us", "UTC"),
                   DURATION: lambda: pa.duration("us")}


def logical(value_type: type) -> LogicalType:
    """The KNIME type registered for a Python value type (PIL images, dates, times, durations)."""
    known = {_dt.date: LOCAL_DATE, _dt.time: LOCAL_TIME, _dt.datetime: LOCAL_DATE_TIME, _dt.timedelta: DURATION}
    if value_type in known:
        return LogicalType(known[value_type], int64())
    if getattr(value_type, "__module__", "") == "PIL.Image" and getattr(value_type, "__name__", "") == "Image":
        return LogicalType(PNG_IMAGE, blob())
    raise TypeError(f"no KNIME logical type is registered for the Python type {value_type!r}; known: PIL.Image.Image, "
                    "datetime.date, datetime.time, datetime.datetime, datetime.timedelta")


def datetime(date: bool = True, time: bool = True, timezone: bool = False) -> LogicalType:
    """KNIME's date&time types: a date, a time of day, a local or a zoned date-time."""
    if timezone and date and time:
        return LogicalType(ZONED_DATE_TIME, int64())
    if date and time and not timezone:
        return LogicalType(LOCAL_DATE_TIME, int64())
    if date and not time and not timezone:
        return LogicalType(LOCAL_DATE, int64())
    if time and not date and not timezone:
        return LogicalType(LOCAL_TIME, int64())
    raise ValueError(f"no KNIME date&time type with date={date}, time={time}, timezone={timezone}")


def is_image(ktype: KnimeType) -> bool:
    return isinstance(ktype, LogicalType) and ktype.logical_type == PNG_IMAGE


class LogicalArrowType(pa.ExtensionType):
    """How a logical column sits in Arrow: its storage plus the value factory as metadata."""

    def __init__(self, storage_type: pa.DataType, logical_type: str) -> None:
        self.logical_type = logical_type
        super().__init__(storage_type, "knime.logical_type")

    def __arrow_ext_serialize__(self) -> bytes:
        return self.logical_type.encode()

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> "LogicalArrowType":
        return cls(storage_type, serialized.decode())


try:  # once per process, even if this module is imported again under another name
    pa.register_extension_type(LogicalArrowType(pa.large_binary(), PNG_IMAGE))
except pa.ArrowKeyError:
    pass


# ---- Arrow -> KNIME: what KNIME stores, and the Arrow type each column is cast to ---------------------
def arrow_to_knime(t: pa.DataType, column: str) -> Tuple[KnimeType, pa.DataType]:
    """(KNIME type, Arrow type to store) of an Arrow column; ValueError naming the column and the fix
    for types KNIME does not support."""
    types = pa.types
    if isinstance(t, LogicalArrowType):
        storage, stored = arrow_to_knime(t.storage_type, column)
        return LogicalType(t.logical_type, storage), LogicalArrowType(stored, t.logical_type)
    if types.is_boolean(t):
        return bool_(), t
    if types.is_int8(t) or types.is_int16(t) or types.is_int32(t):
        return int32(), pa.int32()
    if types.is_int64(t):
        return int64(), t
    if types.is_float32(t) or types.is_float64(t):
        return double(), pa.float64()
    if types.is_string(t):
        return string(), t
    if types.is_binary(t) or types.is_large_binary(t):
        return blob(), pa.large_binary()
    if types.is_null(t):
        return VoidType(), t
    if types.is_dictionary(t) and types.is_string(t.value_type):
        return string(), pa.string()
    if types.is_list(t) or types.is_large_list(t) or types.is_fixed_size_list(t):
        inner, stored = arrow_to_knime(t.value_type, column)
        return ListType(inner), pa.list_(stored)
    if types.is_struct(t):
        pairs = [(f.name, arrow_to_knime(f.type, column)) for f in t]
        return StructType(*[k for _, (k, _) in pairs]), pa.struct([pa.field(n, s) for n, (_, s) in pairs])
    temporal = _temporal(t)
    if temporal is not None:
        return LogicalType(temporal, int64()), _TEMPORAL_ARROW[temporal]() if temporal != ZONED_DATE_TIME \
            else pa.timestamp("us", t.tz)
    raise ValueError(_refusal(t, column))


def _temporal(t: pa.DataType) -> Optional[str]:
    types = pa.types
    if types.is_timestamp(t):
        return ZONED_DATE_TIME if t.tz else LOCAL_DATE_TIME
    if types.is_date(t):
        return LOCAL_DATE
    if types.is_time(t):
        return LOCAL_TIME
    if types.is_duration(t):
        return DURATION
    return None


def _refusal(t: pa.DataType, column: str) -> str:
    fix = {"large_string": "cast it to pa.string() (pandas 'string[pyarrow]' columns are large_string: use "
                           "object or 'string[python]' columns)",
           "uint": "cast it to a signed type (int32 or int64)", "float16": "cast it to float64 (double)"}
    key = "uint" if pa.types.is_unsigned_integer(t) else str(t)
    return (f"Arrow type '{t}' of column '{column}' is not supported by KNIME; "
            + fix.get(key, "use bool, int32, int64, float64, string, binary, list, struct or date/time types"))
