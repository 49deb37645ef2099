"""Image columns (PNG or any format Pillow reads, as bytes) to C x H x W float32 in [0, 1].

KNIME hands PNG image cells to Python as binary values (an Arrow binary / large_binary
column, possibly wrapped in an extension or struct type); this module unwraps those and
decodes each row with Pillow. Every image of one input must have the same size and is
converted to the input's mode (L = 1 channel, RGB = 3, RGBA = 4).
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np

from .errors import DataError

MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode


def binary_storage(arr: Any) -> Any:
    """The binary array behind an image column chunk (extension / struct wrappers removed), or None."""
    import pyarrow as pa
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    if pa.types.is_struct(arr.type):  # e.g. (format string, bytes): take the bytes child
        for i in range(arr.type.num_fields):
            if _is_binary(arr.type.field(i).type):
                child = arr.field(i)
                return child if not arr.null_count else _mask_nulls(child, arr)
        return None
    return arr if _is_binary(arr.type) else None


def _mask_nulls(child: Any, parent: Any) -> Any:
    import pyarrow.compute as pc
    return pc.if_else(parent.is_valid(), child, None)


def _is_binary(t: Any) -> bool:
    import pyarrow as pa
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def is_image_type(t: Any) -> bool:
    """True for Arrow types that can hold encoded images (binary, or binary inside extension/struct)."""
    import pyarrow as pa
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if pa.types.is_struct(t):
        return any(_is_binary(t.field(i).type) for i in range(t.num_fields))
    return _is_binary(t)


def open_image(data: bytes, column: str, row: int):
    from PIL import Image, UnidentifiedImageError
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"image column '{column}', row {row}: the bytes are not a readable image "
                        f"({type(e).__name__}: {e}); store PNG images in this column") from None
    return im


def probe(arr: Any, column: str, row0: int = 0) -> tuple[str, tuple[int, int]] | None:
    """(mode, (height, width)) of the first non-missing image in a chunk, or None if all are missing."""
    storage = binary_storage(arr)
    for i, v in enumerate(storage.to_pylist()):
        if v is not None:
            im = open_image(v, column, row0 + i)
            bands = im.getbands()
            if len(bands) == 1 and im.mode != "P":
                mode = "L"
            elif "A" in bands or "transparency" in im.info:
                mode = "RGBA"
            else:
                mode = "RGB"
            return mode, (im.height, im.width)
    return None


def decode_into(arr: Any, out: np.ndarray, missing: np.ndarray, mode: str, column: str, row0: int) -> None:
    """Decode one chunk of images into `out` (rows, C, H, W) float32; mark null rows in `missing`."""
    storage = binary_storage(arr)
    if storage is None:
        raise DataError(f"column '{column}' has type {arr.type}; an image column must hold PNG bytes")
    n, c, h, w = out.shape
    buf = np.empty((n, h, w, c), np.uint8)  # Pillow gives H x W x C bytes; transpose + scale once at the end
    for i, v in enumerate(storage.to_pylist()):
        if v is None:
            missing[i] = True
            buf[i] = 0
            continue
        im = open_image(v, column, row0 + i)
        if im.mode != mode:
            im = im.convert(mode)
        if (im.height, im.width) != (h, w):
            raise DataError(f"image column '{column}', row {row0 + i}: the image is {im.height}x{im.width} pixels "
                            f"(height x width) but the input needs {h}x{w}; resize the images or change the "
                            "input shape")
        buf[i] = np.asarray(im, np.uint8).reshape(h, w, c)
    np.multiply(buf.transpose(0, 3, 1, 2), np.float32(1 / 255), out=out, casting="unsafe")


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG bytes of an H x W (grey) or H x W x C uint8 array; for building image tables."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
