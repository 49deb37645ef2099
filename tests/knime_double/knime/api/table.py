"""Double of knime.api.table: the public Table / BatchOutputTable API.

The data work is done by a backend (`_backend`), as in KNIME; the double installs the Arrow
backend from knime/api/_arrow_table.py when knime.extension is imported.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Iterator, Optional, Tuple, Union

from . import schema as ks


class _Tabular(ks._Columnar):
    """Common interface of Table and its lazy views."""

    @property
    @abstractmethod
    def num_rows(self) -> int: ...

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.num_columns, self.num_rows)

    def __getitem__(self, slicing) -> "_TabularView":
        """`table[cols]` or `table[cols, rows]` (columns first, rows as a slice)."""
        if isinstance(slicing, int) and slicing >= self.num_columns:
            raise IndexError(f"Index {slicing} is too large for {self.__class__.__name__} "
                             f"with {self.num_columns} columns")
        if isinstance(slicing, tuple):
            cols = _TabularView(self, ks._ColumnSlicingOperation(slicing[0]))
            return _TabularView(cols, _RowSlicingOperation(slicing[1]))
        return _TabularView(self, ks._ColumnSlicingOperation(slicing))

    def to_pandas(self, sentinel: Optional[Union[str, int]] = None):
        return self.get().to_pandas(sentinel)

    def to_pyarrow(self, sentinel: Optional[Union[str, int]] = None):
        return self.get().to_pyarrow(sentinel)

    @abstractmethod
    def _select_rows(self, selection): ...

    @property
    @abstractmethod
    def schema(self) -> ks.Schema: ...


class _TabularView(_Tabular, ks._ColumnarView):
    def __init__(self, delegate, operation):
        ks._ColumnarView.__init__(self, delegate, operation)

    @property
    def num_rows(self) -> int:
        return self.get().num_rows

    @property
    def num_columns(self) -> int:
        return self.get().num_columns

    @property
    def column_names(self):
        return self.get().column_names

    @property
    def schema(self) -> ks.Schema:
        return self.get().schema

    def _select_columns(self, selection):
        raise NotImplementedError("Cannot execute column selection on a view, do that on real data instead!")

    def _append(self, other):
        raise NotImplementedError("Cannot execute 'append' on a view, do that on real data instead!")

    def _select_rows(self, selection):
        raise NotImplementedError("Cannot execute row selection on a view, do that on real data instead!")

    def __str__(self) -> str:
        return f"TableView<delegate={self._delegate}, op={self._operation}>"


class _RowSlicingOperation(ks._ColumnarOperation):
    def __init__(self, row_slice):
        self._row_slice = row_slice

    def apply(self, input):
        return input._select_rows(self._row_slice) if isinstance(input, _Tabular) else input

    def __str__(self) -> str:
        return f"RowSlicingOp({self._row_slice})"


class _Backend:
    """What a table backend provides (the double's lives in knime/api/_arrow_table.py)."""

    def create_table_from_pyarrow(self, data, sentinel, row_ids: str = "auto"):
        raise RuntimeError("Not implemented")

    def create_table_from_pandas(self, data, sentinel, row_ids: str = "auto"):
        raise RuntimeError("Not implemented")

    def create_batch_output_table(self, row_ids: str = "keep"):
        raise RuntimeError("Not implemented")

    def close(self) -> None:
        raise RuntimeError("Not implemented")


_backend: Optional[_Backend] = None


class Table(_Tabular):
    """A KNIME table; create with `Table.from_pandas` / `Table.from_pyarrow`."""

    def __init__(self):
        raise RuntimeError("Do not use this constructor directly, use the from_ methods instead")

    @staticmethod
    def from_pyarrow(data, sentinel: Optional[Union[str, int]] = None, row_ids: str = "auto"):
        """row_ids: "auto" (use a first string/int column named "<RowID>", else generate),
        "keep" (first column is the RowID and must be a string) or "generate" ("Row0", ...)."""
        return _backend.create_table_from_pyarrow(data, sentinel, row_ids=row_ids)

    @staticmethod
    def from_pandas(data, sentinel: Optional[Union[str, int]] = None, row_ids: str = "auto"):
        """row_ids: "auto" (integer index -> "Row{i}", else as strings), "keep" (index as
        strings) or "generate" ("Row0", ...)."""
        return _backend.create_table_from_pandas(data, sentinel, row_ids=row_ids)

    def to_batches(self) -> Iterator["Table"]:
        return self.batches()

    def batches(self) -> Iterator["Table"]:
        raise RuntimeError("Retrieving batches is only allowed for unmodified tables, as they are passed to execute()")


class BatchOutputTable:
    """An output table written batch by batch; only meant to be returned from execute()."""

    def __init__(self):
        raise RuntimeError("Do not use this constructor directly, use the create or from_batches methods instead")

    @staticmethod
    def create(row_ids: str = "keep"):
        """row_ids: "keep" (DataFrame index / first Arrow column as RowID) or "generate"."""
        return _backend.create_batch_output_table(row_ids=row_ids)

    @staticmethod
    def from_batches(generator, row_ids: str = "generate"):
        out = _backend.create_batch_output_table(row_ids=row_ids)
        for batch in generator:
            out.append(batch)
        return out

    @abstractmethod
    def append(self, batch) -> None:
        """Append a Table, pandas.DataFrame, pyarrow.Table or pyarrow.RecordBatch."""
        raise RuntimeError("Not implemented")

    @property
    @abstractmethod
    def num_batches(self) -> int:
        raise RuntimeError("Not implemented")
