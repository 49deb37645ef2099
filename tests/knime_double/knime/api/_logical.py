"""Python value types that KNIME registers out of the box, as KNIME logical column types.

Double of the part of knime.api.schema/knime.api.types behind `knext.logical(...)` and
`knext.datetime(...)`: date/time types and PIL images (PNG image cells).
"""
from __future__ import annotations

from . import schema as ks


def _vf(package: str, name: str) -> str:
    return '{"value_factory_class":"org.knime.core.data.v2.' + package + "." + name + '"}'


_DT = {"LocalDateTimeValueFactory": lambda: ks.struct(ks.int64(), ks.int64()),
       "LocalDateValueFactory": ks.int64, "LocalTimeValueFactory": ks.int64,
       "DurationValueFactory": lambda: ks.struct(ks.int64(), ks.int32()),
       "ZonedDateTimeValueFactory2": lambda: ks.struct(ks.int64(), ks.int64(), ks.int32(), ks.string())}
_PNG = '{"value_factory_class":"org.knime.core.data.image.png.PNGImageValueFactory"}'


def _logical_registry() -> dict:
    """Python value types KNIME registers out of the box (date/time, PIL images), lazily."""
    import datetime as dt
    reg = {dt.datetime: ("LocalDateTimeValueFactory",), dt.date: ("LocalDateValueFactory",),
           dt.time: ("LocalTimeValueFactory",), dt.timedelta: ("DurationValueFactory",)}
    out = {t: (_vf("time", n), _DT[n]()) for t, (n,) in reg.items()}
    try:
        import pandas as pd
        out[pd.Timestamp] = (_vf("time", "ZonedDateTimeValueFactory2"), _DT["ZonedDateTimeValueFactory2"]())
        out[pd.Timedelta] = (_vf("time", "DurationValueFactory"), _DT["DurationValueFactory"]())
    except ImportError:
        pass
    try:
        from PIL import Image
        out[Image.Image] = (_PNG, ks.struct(ks.string(), ks.blob()))
    except ImportError:
        pass
    return out


def logical(value_type) -> "ks.LogicalType":
    """The KNIME logical type for a Python value type registered with KNIME (else TypeError)."""
    reg = _logical_registry()
    for py_type, (lt, storage) in reg.items():
        if value_type is py_type or (isinstance(value_type, type) and py_type.__name__ == "Image"
                                     and issubclass(value_type, py_type)):
            return ks.LogicalType(lt, storage)
    raise TypeError(f"Could not find registered KNIME extension type for Python logical type {value_type}. "
                    "Call knime.api.schema.LogicalType.supported_value_types() to get a list of supported types.")


def datetime(date: bool = True, time: bool = True, timezone: bool = False) -> "ks.LogicalType":
    if not date and not time:
        raise ValueError("Either date or time must be True")
    if timezone and not time:
        raise ValueError("Timezone is only supported if time is True")
    name = ("ZonedDateTimeValueFactory2" if timezone else "LocalDateTimeValueFactory") if date and time \
        else ("LocalDateValueFactory" if date else "LocalTimeValueFactory")
    return ks.LogicalType(_vf("time", name), _DT[name]())
