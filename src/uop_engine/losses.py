"""Training losses over tinygrad Tensors, plus target preparation and accuracy counting.

Every loss takes the model output (`pred`) and a prepared target and returns a scalar mean,
matching PyTorch's defaults (`nn.CrossEntropyLoss`, `nn.BCEWithLogitsLoss`, `nn.MSELoss`,
`nn.L1Loss`, `nn.HuberLoss`). Targets are turned into arrays of the right dtype and shape by
`prepare_targets`, which names what is wrong when they do not fit the output.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .errors import DataError

# loss name -> task it implies; the task decides metrics and how predictions become columns
LOSS_TASKS: dict[str, str] = {
    "cross_entropy": "classification",        # logits (N, C) or (N, ..., C); integer class ids
    "binary_cross_entropy": "binary",         # logits, targets 0/1 of the same shape
    "mse": "regression",
    "l1": "regression",
    "huber": "regression",
}
LOSSES = tuple(LOSS_TASKS)


def loss_function(name: str, *, huber_delta: float = 1.0, label_smoothing: float = 0.0) -> Callable[[Any, Any], Any]:
    """The loss `name` as `fn(pred, target) -> scalar Tensor` (mean over all elements)."""
    if name == "cross_entropy":
        # tinygrad's class axis is the last one (PyTorch's is axis 1; equal for (N, C))
        return lambda pred, y: pred.sparse_categorical_crossentropy(y, label_smoothing=label_smoothing)
    if name == "binary_cross_entropy":
        return lambda pred, y: pred.binary_crossentropy_logits(y)
    if name == "mse":
        return lambda pred, y: (pred - y).square().mean()
    if name == "l1":
        return lambda pred, y: (pred - y).abs().mean()
    if name == "huber":
        d = float(huber_delta)

        def huber(pred, y):
            a = (pred - y).abs()
            # quadratic near zero, linear beyond delta; continuous with matching slope at |x| = delta
            return (a < d).where(0.5 * a.square(), d * (a - 0.5 * d)).mean()
        return huber
    raise DataError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")


def correct_count(name: str, pred, y):
    """Number of correct predictions in a batch (a Tensor), or None for regression losses."""
    task = LOSS_TASKS[name]
    if task == "classification":
        return (pred.argmax(-1) == y).sum()
    if task == "binary":
        return ((pred > 0) == (y > 0.5)).sum()
    return None


def abs_error_sum(pred, y):
    return (pred - y).abs().sum()


def encode_labels(y: np.ndarray, classes: Sequence | None, n_out: int | None, what: str = "y") -> tuple[np.ndarray, list | None]:
    """Class labels -> integer ids. Integer targets without `classes` are used as ids; other
    labels are sorted into `classes`. Returns (ids, classes)."""
    y = np.asarray(y)
    if classes is not None and y.dtype.kind in "iu" and not all(_key(v) in {_key(c) for c in classes} for v in np.unique(y)):
        classes = list(classes)  # integer targets that are not labels in `classes` are class ids
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"target '{what}' has class ids from {int(y.min())} to {int(y.max())} but there are "
                            f"{len(classes)} classes; ids must lie in [0, {len(classes)})")
        return y.astype(np.int32), classes
    if y.dtype == object or y.dtype.kind in "USb" or (classes is not None and len(classes) > 0):
        if classes is None:
            classes = sorted({v.item() if hasattr(v, "item") else v for v in y.ravel()}, key=lambda v: (str(type(v)), v))
        lookup = {_key(c): i for i, c in enumerate(classes)}
        ids = np.empty(y.shape, np.int32)
        flat = y.ravel()
        out = ids.ravel()
        for i, v in enumerate(flat):
            k = lookup.get(_key(v))
            if k is None:
                raise DataError(f"target '{what}' has the label {v!r}, which is not among the classes "
                                f"{list(classes)[:10]}; add it to the class list or remove those rows")
            out[i] = k
        return ids, list(classes)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"target '{what}' holds non-integer numbers but the loss is cross_entropy; "
                            "use class ids or labels (or a regression loss such as mse)")
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise DataError(f"target '{what}' has dtype {y.dtype}; class ids must be integers or labels")
    if y.size and (y.min() < 0 or (n_out is not None and y.max() >= n_out)):
        raise DataError(f"target '{what}' has class ids from {int(y.min())} to {int(y.max())} but the model "
                        f"outputs {n_out} scores; ids must lie in [0, {n_out})")
    return y.astype(np.int32), None


def _key(v: Any) -> Any:
    """Labels compare by value across numpy/python types (np.int64(3) == 3, np.str_('a') == 'a')."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode()
    return v


def prepare_targets(name: str, y: Any, out_shape: tuple[int, ...], classes: Sequence | None = None,
                    what: str = "y") -> tuple[np.ndarray, list | None]:
    """Check and convert targets for loss `name` against the model output shape (batch first).
    Returns (targets, classes); classes is only set for classification/binary losses."""
    y = np.asarray(y)
    n_out_rest = tuple(out_shape[1:])
    task = LOSS_TASKS.get(name)
    if task is None:
        raise DataError(f"unknown loss '{name}'; choose one of {', '.join(LOSSES)}")
    if task == "classification":
        if len(n_out_rest) < 1:
            raise DataError("cross_entropy needs a model output with a class axis, e.g. (batch, classes); "
                            f"the output has shape {out_shape}")
        ids, classes = encode_labels(y, classes, n_out_rest[-1], what)
        if tuple(ids.shape[1:]) != n_out_rest[:-1]:
            if ids.ndim == 2 and ids.shape[1] == 1 and len(n_out_rest) == 1:
                ids = ids[:, 0]
            else:
                raise DataError(f"target '{what}' has shape {ids.shape}; for an output of shape {out_shape} "
                                f"cross_entropy needs class ids of shape (N, {', '.join(map(str, n_out_rest[:-1]))})")
        if classes is not None and len(classes) != n_out_rest[-1]:
            raise DataError(f"there are {len(classes)} classes {list(classes)[:10]} but the model outputs "
                            f"{n_out_rest[-1]} scores; set the last layer's out_features to {len(classes)}")
        return ids, classes
    if task == "binary" and (y.dtype == object or y.dtype.kind in "USb" or classes is not None):
        ids, classes = encode_labels(y, classes, None, what)
        if len(classes) != 2:
            raise DataError(f"binary_cross_entropy needs exactly 2 classes, target '{what}' has {len(classes)}: "
                            f"{list(classes)[:10]}")
        y = ids
    if y.dtype == object or y.dtype.kind not in "biuf":
        raise DataError(f"target '{what}' has dtype {y.dtype}; the loss {name} needs numbers")
    y = y.astype(np.float32)
    if tuple(y.shape[1:]) != n_out_rest:
        if y.ndim >= 1 and int(np.prod(y.shape[1:], dtype=np.int64)) == int(np.prod(n_out_rest, dtype=np.int64)):
            y = y.reshape((y.shape[0],) + n_out_rest)  # e.g. (N,) targets for an (N, 1) output
        else:
            raise DataError(f"target '{what}' has shape {y.shape} but the model output has shape {out_shape}; "
                            "give one target value per output value")
    if task == "binary" and y.size and not np.all((y == 0) | (y == 1)):
        raise DataError(f"target '{what}' must be 0/1 for binary_cross_entropy (or give 2 class labels)")
    return y, classes
