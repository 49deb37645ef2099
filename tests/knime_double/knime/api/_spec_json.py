"""KNIME's JSON layout of a table spec, used by Schema.serialize()/deserialize().

KNIME's Java side sees every column as a value-factory logical type with a RowKey column
first; Python shows plain primitive types. These helpers translate between the two.
"""
from __future__ import annotations

from . import schema as ks


def _core(name: str) -> str:
    return '{"value_factory_class":"org.knime.core.data.v2.value.' + name + '"}'


_ROW_KEY = _core("DefaultRowKeyValueFactory")
_LIST = _core("ListValueFactory")
_TYPE_STR = {"int": ks.int32, "long": ks.int64, "string": ks.string, "boolean": ks.bool_,
             "double": ks.double, "variable_width_binary": ks.blob, "void": ks.null}


def _wrappers() -> dict:
    prims = {ks.int32(): "Int", ks.int64(): "Long", ks.string(): "String", ks.bool_(): "Boolean",
             ks.double(): "Double"}
    out = {t: _core(n + "ValueFactory") for t, n in prims.items()}
    out[ks.null()] = _core("VoidValueFactory")
    out.update({ks.list_(t): _core(n + "ListValueFactory") for t, n in prims.items()})
    return out


def _wrap(t):
    w = _wrappers()
    if t in w:
        return ks.LogicalType(w[t], t)
    if isinstance(t, ks.ListType):
        return ks.LogicalType(_LIST, ks.list_(_wrap(t.inner_type)))
    return t


def _unwrap(t):
    if isinstance(t, ks.LogicalType):
        back = {lt: k for k, lt in _wrappers().items()}
        if t.logical_type in back:
            return back[t.logical_type]
        if t.logical_type == _LIST and isinstance(t.storage_type, ks.ListType):
            return ks.list_(_unwrap(t.storage_type.inner_type))
    return t


def _type_to_dict(t):
    traits = {"traits": {}}
    if isinstance(t, ks.LogicalType):
        traits["traits"] = {"logical_type": t.logical_type}
        t = t.storage_type
    if isinstance(t, ks.ListType):
        spec, inner = _type_to_dict(t.inner_type)
        traits.update(type="list", inner=inner)
        return {"type": "list", "inner_type": spec}, traits
    if isinstance(t, ks.StructType):
        pairs = [_type_to_dict(i) for i in t.inner_types]
        traits.update(type="struct", inner=[p[1] for p in pairs])
        return {"type": "struct", "inner_types": [p[0] for p in pairs]}, traits
    traits["type"] = "simple"
    if isinstance(t, ks.PrimitiveType) and t.dict_encoding_key_type is not None:
        traits["traits"]["dict_encoding"] = t.dict_encoding_key_type.value
        t = t.plain_type
    for name, make in _TYPE_STR.items():
        if make() == t:
            return name, traits
    raise KeyError(f"Could not find spec for type: {t}")


def _type_from_dict(spec, traits):
    kind = traits["type"]
    inner_traits = traits.get("traits", {})
    if kind == "simple":
        if "dict_encoding" in inner_traits:
            key = ks.DictEncodingKeyType(inner_traits["dict_encoding"])
            t = ks.string(key) if spec == "string" else ks.blob(key)
        else:
            t = _TYPE_STR[spec]()
    elif kind == "list":
        t = ks.list_(_type_from_dict(spec["inner_type"], traits["inner"]))
    else:
        t = ks.struct(*(_type_from_dict(s, tr) for s, tr in zip(spec["inner_types"], traits["inner"])))
    if "logical_type" in inner_traits:
        return ks.LogicalType(inner_traits["logical_type"], t)
    return t


def schema_to_dict(schema) -> dict:
    cols = [("RowKey", ks.LogicalType(_ROW_KEY, ks.string()), None)]
    cols += [(c.name, _wrap(c.ktype), c.metadata) for c in schema]
    pairs = [_type_to_dict(t) for _, t, _ in cols]
    return {"schema": {"specs": [p[0] for p in pairs], "traits": [p[1] for p in pairs]},
            "columnNames": [n for n, _, _ in cols], "columnMetaData": [m for _, _, m in cols]}


def schema_from_dict(cls, data: dict):
    specs, traits = data["schema"]["specs"], data["schema"]["traits"]
    names, meta = data["columnNames"], data["columnMetaData"]
    types = [_type_from_dict(s, t) for s, t in zip(specs, traits)]
    if types and types[0] == ks.LogicalType(_ROW_KEY, ks.string()):
        types, names, meta = types[1:], names[1:], meta[1:]
    else:
        ks.LOGGER.warning("Did not find RowKey column when creating Schema from KNIME dict")
    return cls([_unwrap(t) for t in types], list(names), list(meta))
