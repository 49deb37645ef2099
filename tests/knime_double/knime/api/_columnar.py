"""Lazy column operations shared by Schema and Table (double of knime.api.schema's views).

As in KNIME, slicing (`schema[["a", "b"]]`, `schema["a"]`), `append`, `insert` and `remove`
return a `_ColumnarView`; `.get()` materialises it. Attribute access falls through to the
materialised object, and the node wrapper unwraps views returned from configure/execute.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, List, Sequence, Union


class _Columnar(ABC):
    """Something with named columns: Schema, Table, or a view of either."""

    @property
    @abstractmethod
    def num_columns(self) -> int: ...

    @property
    @abstractmethod
    def column_names(self) -> list: ...

    def insert(self, other: Any, at: int) -> "_ColumnarView":
        """Append `other` (Column or columnar) and move its columns to position `at`."""
        from .schema import Column
        n = self.num_columns
        added = 1 if isinstance(other, Column) else other.num_columns
        order = list(range(n))
        order[at:at] = [n + i for i in range(added)]
        return self.append(other)[order]

    def remove(self, slicing: Union[str, int, List[str]]) -> "_ColumnarView":
        """A view without the column at an index, the first column of a name, or all listed names."""
        names = list(self.column_names)
        if isinstance(slicing, list):
            missing = [s for s in slicing if s not in names]
            if missing:
                raise ValueError(f"The following values ({' '.join(missing)}) did not match any in {type(self)}")
            keep = [c for c in names if c not in slicing]
        elif isinstance(slicing, int):
            if not 0 <= slicing < len(names):
                raise IndexError(f"Index out of bounds. Choose an index between 0,{len(names)}.")
            keep = names[:slicing] + names[slicing + 1:]
        elif isinstance(slicing, str):
            names.remove(slicing)  # ValueError when absent, as in KNIME
            keep = names
        else:
            raise TypeError(f"Could not match input type {type(slicing)}.")
        return _ColumnarView(self, _ColumnSlicingOperation(keep))

    def __getitem__(self, slicing) -> "_ColumnarView":
        # an IndexError for too-large ints ends `for c in schema` style loops
        if isinstance(slicing, int) and slicing >= self.num_columns:
            raise IndexError(f"Index {slicing} is too large for {self.__class__.__name__} "
                             f"with {self.num_columns} columns")
        return _ColumnarView(self, _ColumnSlicingOperation(slicing))

    def append(self, other: Union["_Columnar", Sequence[Any]]) -> "_ColumnarView":
        return _ColumnarView(self, _AppendOperation(other))

    @abstractmethod
    def _select_columns(self, selection): ...

    @abstractmethod
    def _append(self, other): ...


class _ColumnarView(_Columnar):
    """A not-yet-applied operation on a Schema/Table; `.get()` applies it (cached)."""

    def __init__(self, delegate: _Columnar, operation: "_ColumnarOperation"):
        self._delegate = delegate
        self._operation = operation
        self._cache = None

    @property
    def delegate(self) -> _Columnar:
        return self._delegate

    @property
    def operation(self) -> "_ColumnarOperation":
        return self._operation

    @property
    def num_columns(self) -> int:
        return self.get().num_columns

    @property
    def column_names(self) -> list:
        return self.get().column_names

    def get(self, cache: bool = True):
        if self._cache is not None:
            return self._cache
        source = self._delegate.get(cache=False) if isinstance(self._delegate, _ColumnarView) else self._delegate
        out = self._operation.apply(source)
        if cache:
            self._cache = out
        return out

    def _select_columns(self, selection):
        raise NotImplementedError("Cannot execute column selection on a view, do that on real data instead!")

    def _append(self, other):
        raise NotImplementedError("Cannot execute 'append' on a view, do that on real data instead!")

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_delegate", "_operation", "_cache"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __iter__(self):
        return iter(self.get())

    def __contains__(self, key) -> bool:
        return key in self.get()

    def __eq__(self, other) -> bool:
        if isinstance(other, _ColumnarView):
            other = other.get()
        return self.get() == other

    def __str__(self) -> str:
        return f"ColumnarView<delegate={self._delegate}, op={self._operation}>"


class _ColumnarOperation(ABC):
    @abstractmethod
    def apply(self, input: _Columnar) -> _Columnar: ...


class _ColumnSlicingOperation(_ColumnarOperation):
    def __init__(self, col_slice):
        self._col_slice = col_slice

    def apply(self, input):
        return input._select_columns(self._col_slice)

    def __str__(self) -> str:
        return f"ColumnSlicingOp({self._col_slice})"


class _AppendOperation(_ColumnarOperation):
    def __init__(self, other):
        self._other = other

    def apply(self, input):
        other = self._other.get() if isinstance(self._other, _ColumnarView) else self._other
        return input._append(other)

    def __str__(self) -> str:
        return f"AppendOp({self._other})"
