"""Where the trainer's rows come from: `InMemoryRows` (prepared arrays) and the protocol a streamed
source (uop_engine.stream_train.TableStream) follows as well.

A rows object has `n` (rows), `per_row` (target values per row), `fingerprint()` and
`batches(batch_size, order)`: lists [*inputs, targets] of `batch_size` rows (the last one
smaller); order (seed, epoch) shuffles, None keeps the row order. `split(share, seed)` holds out
validation rows: the same rows for every source (`validation_rows`).

The data fingerprint is taken over the prepared rows ([*inputs, targets], all rows in table
order) with `RowsHash`, which gives the same digest however the rows are cut into chunks, so a
table trained in memory and the same table streamed in chunks have one fingerprint;
`data_fingerprint` adds the validation rows (a separate table) or the split (share and seed).
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import numpy as np


class RowsHash:
    """sha256 of row-aligned arrays fed in chunks of rows: one hash per array over its bytes, then
    one over each array's dtype, per-row shape, row count and hash (chunking leaves no trace)."""

    def __init__(self):
        self.parts: list[tuple[Any, Any, Any]] = []  # (dtype, per-row shape, sha256 of the bytes)
        self.rows = 0

    def update(self, arrays: list[np.ndarray]) -> None:
        if not self.parts:
            self.parts = [(a.dtype.str, a.shape[1:], hashlib.sha256()) for a in arrays]
        for (dtype, shape, h), a in zip(self.parts, arrays):
            if (a.dtype.str, a.shape[1:]) != (dtype, shape):
                raise ValueError(f"a chunk of {a.dtype}{a.shape[1:]} rows follows rows of {dtype}{shape}")
            h.update(np.ascontiguousarray(a).tobytes())
        self.rows += int(arrays[-1].shape[0])

    def hexdigest(self) -> str:
        h = hashlib.sha256(f"tinyuop.rows|{self.rows}".encode())
        for dtype, shape, part in self.parts:
            h.update(f"|{dtype}|{shape}|{part.hexdigest()}".encode())
        return h.hexdigest()[:16]


def data_fingerprint(data: Any, val: Any = None, split: tuple[float, int] | None = None) -> str:
    """The run's data fingerprint: the training rows' (before any split), plus the validation
    rows' when given, or the split's share and seed (which decide the held-out rows)."""
    text = f"train {data.fingerprint()}"
    if val is not None:
        text += f"|validation {val.fingerprint()}"
    elif split is not None:
        text += f"|split {float(split[0])!r} seed {int(split[1])}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]

# the generator key of the validation split: its own stream, apart from the per-epoch shuffles
_SPLIT_KEY = 2**31 - 1


def validation_rows(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training row numbers, validation row numbers), both in row order, for a seeded split."""
    from .train_config import ConfigError
    nv = int(round(n * share))
    if nv < 1 or nv >= n:
        raise ConfigError(f"training setting 'validation_split' = {share} leaves {nv} of {n} rows for validation; "
                          "choose a share that keeps rows on both sides")
    perm = np.random.default_rng([seed, _SPLIT_KEY]).permutation(n)
    return np.sort(perm[nv:]), np.sort(perm[:nv])


def epoch_order(n: int, order: tuple[int, int] | None) -> np.ndarray | None:
    """The row order of one epoch: numpy's permutation seeded with (seed, epoch), or None (as stored)."""
    return None if order is None else np.random.default_rng(list(order)).permutation(n)


class InMemoryRows:
    """Prepared inputs and targets held in memory."""

    def __init__(self, xs: list[np.ndarray], t: np.ndarray):
        self.xs, self.t, self.n = xs, t, int(t.shape[0])
        self.per_row = int(np.prod(t.shape[1:], dtype=np.int64)) or 1

    def arrays(self) -> list[np.ndarray]:
        return [*self.xs, self.t]

    def fingerprint(self) -> str:
        h = RowsHash()
        h.update(self.arrays())
        return h.hexdigest()

    def batches(self, batch_size: int, order: tuple[int, int] | None = None) -> Iterator[list[np.ndarray]]:
        perm = epoch_order(self.n, order)
        for i in range(0, self.n, batch_size):
            if perm is None:
                yield [a[i:i + batch_size] for a in self.arrays()]
            else:
                idx = perm[i:i + batch_size]
                yield [a[idx] for a in self.arrays()]

    def split(self, share: float, seed: int) -> tuple["InMemoryRows", "InMemoryRows"]:
        tr, va = validation_rows(self.n, share, seed)
        return InMemoryRows([a[tr] for a in self.xs], self.t[tr]), InMemoryRows([a[va] for a in self.xs], self.t[va])
