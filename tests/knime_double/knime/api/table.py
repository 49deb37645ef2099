"""`Table` (created from pandas/pyarrow, or handed to execute in batches) and `BatchOutputTable`.

A table is a list of Arrow batches, each with the "<RowID>" column first. Only tables KNIME
hands to `execute` ("input tables") can be read batch by batch, as in KNIME.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Union

import pyarrow as pa

from . import _arrow
from .schema import Schema
from .types import ROW_ID


class Table:
    """A KNIME table. Make one with `Table.from_pandas` or `Table.from_pyarrow`."""

    def __init__(self) -> None:
        raise RuntimeError("do not construct knext.Table directly: use Table.from_pandas() or Table.from_pyarrow()")

    @classmethod
    def _create(cls, batches: List[pa.Table], readable: bool) -> "Table":
        table = cls.__new__(cls)
        table._batches = list(batches)
        table._readable = readable
        return table

    @staticmethod
    def from_pyarrow(data: Union[pa.Table, pa.RecordBatch], sentinel: Any = None, row_ids: str = "auto") -> "Table":
        """row_ids: 'auto' uses a first column named "<RowID>" (strings as they are, integers n as
        'Row<n>') and generates 'Row0', 'Row1', ... otherwise; 'keep' takes the first column (it must
        be pa.string()); 'generate' always generates. sentinel: integers equal to it are missing."""
        return Table._create([_arrow.normalize(data, row_ids, sentinel)], readable=False)

    @staticmethod
    def from_pandas(data: Any, sentinel: Any = None, row_ids: str = "auto") -> "Table":
        """row_ids: 'auto' makes an integer index 'Row<n>' and uses other indexes as text; 'keep'
        uses the index as text; 'generate' numbers the rows."""
        return Table._create([_arrow.from_pandas(data, row_ids, sentinel)], readable=False)

    def _data(self) -> pa.Table:
        return pa.concat_tables(self._batches) if len(self._batches) != 1 else self._batches[0]

    def to_pyarrow(self, sentinel: Any = None) -> pa.Table:
        """The data with the "<RowID>" column first; sentinel: missing integers become this value."""
        data = self._data()
        if sentinel is None:
            return data
        cols = [c.fill_null(_arrow._sentinel_value(sentinel, c.type)) if pa.types.is_integer(c.type) else c
                for c in data.columns]
        return pa.Table.from_arrays(cols, schema=data.schema)

    def to_pandas(self, sentinel: Any = None) -> Any:
        """A DataFrame indexed by RowID; PNG image cells come as PIL images."""
        return _arrow.to_pandas(self._data(), sentinel)

    @property
    def schema(self) -> Schema:
        return _arrow.schema_of(self._batches[0])

    @property
    def column_names(self) -> List[str]:
        return self.schema.column_names

    @property
    def num_columns(self) -> int:
        return self._batches[0].num_columns - 1

    @property
    def num_rows(self) -> int:
        return sum(b.num_rows for b in self._batches)

    @property
    def num_batches(self) -> int:
        return len(self._batches)

    def batches(self) -> Iterator["Table"]:
        """The table batch by batch (each a Table with to_pandas/to_pyarrow); input tables only."""
        if not self._readable:
            raise RuntimeError("batches() is only available on tables KNIME passes to execute (input tables), not "
                               "on tables created with from_pandas/from_pyarrow")
        for b in self._batches:
            if b.num_rows:
                yield Table._create([b], readable=False)

    def __getitem__(self, slicing: Any) -> "Table":
        """table[columns] or table[columns, rows]: columns by position, name, slice or list; rows
        by slice."""
        cols, rows = slicing if isinstance(slicing, tuple) else (slicing, slice(None))
        if not isinstance(rows, slice):
            raise TypeError("rows are selected with a slice, e.g. table[:, 10:20]")
        names = self.column_names
        if isinstance(cols, slice):
            picked = names[cols]
        elif isinstance(cols, (list, tuple)):
            picked = [names[c] if isinstance(c, int) else c for c in cols]
        else:
            picked = [names[cols] if isinstance(cols, int) else cols]
        missing = [c for c in picked if c not in names]
        if missing:
            raise KeyError(f"no column(s) {missing} in the table; columns: {names}")
        data = self._data().select([ROW_ID] + picked)
        start, stop, step = rows.indices(data.num_rows)
        if step != 1:
            data = data.take(list(range(start, stop, step)))
        else:
            data = data.slice(start, max(0, stop - start))
        return Table._create([data], readable=False)

    def __repr__(self) -> str:
        return f"Table({self.num_rows} rows, {self.schema})"


class BatchOutputTable:
    """An output table written batch by batch. Every batch has the same columns; no batch may have
    more rows than the first, and only the last may have fewer."""

    def __init__(self) -> None:
        raise RuntimeError("use knext.BatchOutputTable.create() or BatchOutputTable.from_batches()")

    @staticmethod
    def create(row_ids: str = "keep") -> "BatchOutputTable":
        _arrow._check_mode(row_ids)
        out = BatchOutputTable.__new__(BatchOutputTable)
        out._row_ids, out._batches = row_ids, []
        return out

    @staticmethod
    def from_batches(generator: Iterable[Any], row_ids: str = "generate") -> "BatchOutputTable":
        out = BatchOutputTable.create(row_ids)
        for batch in generator:
            out.append(batch)
        return out

    @property
    def num_batches(self) -> int:
        return len(self._batches)

    @property
    def schema(self) -> Optional[Schema]:
        return _arrow.schema_of(self._batches[0]) if self._batches else None

    def append(self, batch: Any) -> None:
        """Add a pandas DataFrame, pyarrow Table/RecordBatch or knext.Table as the next batch."""
        import pandas as pd
        start = sum(b.num_rows for b in self._batches)
        if isinstance(batch, Table):
            data = batch._data()
        elif isinstance(batch, pd.DataFrame):
            data = _arrow.from_pandas(batch, self._row_ids, first_row=start)
        elif isinstance(batch, (pa.Table, pa.RecordBatch)):
            data = _arrow.normalize(batch, self._row_ids, first_row=start)
        else:
            raise TypeError(f"BatchOutputTable.append takes a DataFrame, pyarrow Table/RecordBatch or knext.Table, "
                            f"not {type(batch).__name__}")
        if self._batches:
            first, prev = self._batches[0], self._batches[-1]
            if _arrow.schema_of(data) != _arrow.schema_of(first):
                raise ValueError(f"batch {len(self._batches)} has columns {_arrow.schema_of(data)} but the first batch "
                                 f"had {_arrow.schema_of(first)}; every batch needs the same columns and types")
            if data.num_rows > first.num_rows:
                raise ValueError(f"batch {len(self._batches)} has {data.num_rows} rows: a batch must not have more "
                                 f"rows than the first batch ({first.num_rows})")
            if prev.num_rows < first.num_rows:
                raise ValueError(f"batch {len(self._batches) - 1} had {prev.num_rows} rows, fewer than the first "
                                 f"batch ({first.num_rows}): only the last batch may be smaller")
        self._batches.append(data)

    def __repr__(self) -> str:
        return f"BatchOutputTable({self.num_batches} batches)"
