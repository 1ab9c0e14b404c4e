"""Rows into and out of DuckDB: Python rows appended to a table in one statement, and a folder of
Parquet files a scan writes block by block and reads back whole (the account pass's contacts and
lead ids, each a file a block, written by DuckDB, read with one glob)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadscore.columnar import sql as q


def insert_rows(con: Any, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` (tuples in the order of ``table``'s columns) to DuckDB table ``table`` in one
    statement, as an Arrow table of its column types. (``executemany`` runs an INSERT a row, about a
    millisecond each: a second a block when a thousand of its leads are scored the python way.)"""
    if not rows:
        return
    import pyarrow as pa

    schema = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    columns = [pa.array(values, type=field.type) for values, field in zip(zip(*rows), schema)]
    con.register("inserted_rows", pa.table(columns, schema=schema))
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM inserted_rows")
    finally:
        con.unregister("inserted_rows")


def copy_parquet(con: Any, source: str, path: Path, row_group: int | None = None) -> None:
    """``source`` (a table name or a parenthesised query) written by DuckDB to ``path``, LZ4-compressed
    (with ``row_group``: row groups of that many rows)."""
    size = f", ROW_GROUP_SIZE {int(row_group)}" if row_group else ""
    con.execute(f"COPY {source} TO {q.path_text(path)} (FORMAT parquet, COMPRESSION lz4{size})")


class ParquetFolder:
    """Numbered Parquet files in a folder of their own under ``folder`` (prefixed ``prefix``)."""

    def __init__(self, folder: str, prefix: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
        self.files = 0

    def write(self, con: Any, select: str, row_group: int | None = None) -> None:
        """The rows of ``select`` as the next file; nothing is left of a file that fails half-way."""
        path = self.folder / f"{self.files:06d}.parquet"  # numbered in order: the glob reads them in it
        try:
            copy_parquet(con, f"({select})", path, row_group)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self.files += 1

    def read(self) -> str | None:
        """Every file as one relation (``read_parquet`` over the folder), or None before the first."""
        return f"read_parquet({q.path_text(self.folder / '*.parquet')})" if self.files else None

    def close(self) -> None:
        """Remove the folder and its files (again: nothing)."""
        shutil.rmtree(self.folder, ignore_errors=True)
