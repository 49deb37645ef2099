"""Reading ONNX models from paths or bytes, with errors that say what is wrong with the file.

protobuf reports every unreadable file the same way ("Error parsing message ... Wire format was
corrupt") and parses an empty file as an empty model, which then fails far away ("the graph has
no output"). Here a file is told apart as empty, truncated (it starts like an ONNX model but a
field runs past its end: an interrupted copy or download), damaged, or not an ONNX model at all. Weights kept in external data files are loaded here too, so
that a data file left behind when the model was copied is named, with the model's path.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from .errors import GraphError

# ModelProto's top-level fields and their protobuf wire types (0 varint, 2 length-delimited)
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_FIX = "choose a .onnx file written by an ONNX exporter (ONNX Writer, torch.onnx, tf2onnx, ...)"


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            return None, pos
    return None, pos  # ran off the end


def _layout(data: bytes) -> str:
    """'truncated', 'model' (every top-level field readable: the damage is inside one) or 'other'."""
    pos, fields = 0, 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        if tag is None:
            return "truncated" if fields else "other"
        if _MODEL_FIELDS.get(tag >> 3) != tag & 7:
            return "other"
        value, pos = _varint(data, pos)
        if value is None:
            return "truncated"
        if tag & 7 == 2:
            if pos + value > len(data):
                return "truncated"
            pos += value
        fields += 1
    return "model" if fields else "other"


def _refuse(label: str, data: bytes, error: Exception | None) -> GraphError:
    if not data:
        return GraphError(f"{label} is empty (0 bytes), not an ONNX model", fix="export or copy the model again")
    layout = _layout(data)
    if layout == "truncated":
        return GraphError(f"{label} is truncated: it starts like an ONNX model but ends inside a field after "
                          f"{len(data)} bytes", fix="copy, download or export it again (an interrupted transfer "
                                                    "cuts files short)")
    if layout == "model" and error is not None:
        return GraphError(f"{label} is damaged: it is laid out like an ONNX model but part of it cannot be read "
                          f"({error})", fix="export or copy the model again")
    why = [f"protobuf cannot parse it: {error}" if error is not None else "it holds no graph"]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:64]):
        why.insert(0, "it is text")
    return GraphError(f"{label} is not an ONNX model ({'; '.join(why)})", fix=_FIX)


def load_model(model_or_path: Any):
    """An onnx.ModelProto from a ModelProto, bytes or a path (external data files are loaded too)."""
    import onnx
    from google.protobuf.message import DecodeError
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    if isinstance(model_or_path, (bytes, bytearray)):
        data, label, path = bytes(model_or_path), "the ONNX data", None
    else:
        path = os.fspath(model_or_path)
        if not os.path.exists(path):
            raise GraphError(f"ONNX file {path} does not exist", fix="check the path")
        if os.path.isdir(path):
            raise GraphError(f"{path} is a folder, not an ONNX file", fix="give the path of a .onnx file")
        data, label = b"", path
    try:  # external data is loaded below, where a missing data file can be named
        model = onnx.load_from_string(data) if path is None else onnx.load(path, load_external_data=False)
    except DecodeError as e:
        if path is not None:
            with open(path, "rb") as f:
                data = f.read()
        raise _refuse(label, data, e) from None
    if not model.HasField("graph"):  # an empty file or bytes that happen to parse: not a model
        if path is not None:
            with open(path, "rb") as f:
                data = f.read()
        raise _refuse(label, data, None)
    _load_external(model, label, path)
    return model


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor a graph holds: initializers, constant attributes, and those of subgraphs."""
    yield from graph.initializer
    for s in graph.sparse_initializer:
        yield from (s.values, s.indices)
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _tensors(g)


def _load_external(model: Any, label: str, path: str | None) -> None:
    """Read the weights a model keeps in separate data files (models over 2 GB must). onnx itself
    reports a missing one as a checker ValidationError that names neither the model nor what to do."""
    import onnx
    files: dict[str, list[str]] = {}
    for t in _tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location", "")
            files.setdefault(loc, []).append(t.name)
    if not files:
        return
    if path is None:  # bytes carry no folder to look in
        raise GraphError(f"{label} keeps its weights in external data file(s) {', '.join(sorted(files))}, which "
                         "cannot be found from bytes", fix="load the model from its .onnx file path, next to its "
                                                           "data file(s)")
    base = os.path.dirname(os.path.abspath(path))
    missing = [loc for loc in files if not loc or not os.path.isfile(os.path.join(base, loc))]
    if missing:
        listed = "; ".join(f"{os.path.join(base, loc) if loc else '(no location given)'} (tensors "
                           f"{', '.join(files[loc][:3])}{', ...' if len(files[loc]) > 3 else ''})" for loc in missing)
        raise GraphError(f"ONNX file {path} keeps its weights in external data file(s) that are missing: {listed}",
                         fix="put the data file(s) next to the .onnx file under the names listed (copy them along "
                             "with it), or save the model with its weights inside")
    from onnx.external_data_helper import load_external_data_for_model
    try:
        load_external_data_for_model(model, base)
    except Exception as e:  # a data file cut short, or a location outside the model's folder
        raise GraphError(f"cannot read the external data of ONNX file {path} ({', '.join(sorted(files))}): {e}",
                         fix="copy the .onnx file and its data file(s) again, together") from None
