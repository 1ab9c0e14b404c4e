"""Parquet input: a file, or a directory of part files, read in bounded batches as rows of text cells.

The lead and activity readers (leadscore.io.readers) apply the CSV reader's rules to those cells,
so a lead read from Parquet is the lead read from the same data written as CSV (docs/backends.md).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from leadscore.errors import InputError, first_line

PARQUET_SUFFIX = ".parquet"
# Rows per batch read from a file: memory holds one batch of text cells, whatever the file's size.
BATCH_ROWS = 8_192
# pandas stores a DataFrame's index as a column of this name; it is bookkeeping, not a lead field.
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
_INSTALL_FIX = "install the columnar extra (pip install 'leadscore[columnar]'), which brings pyarrow"

# The Parquet types a column may have, by the lead field it feeds. Everything is read as the text
# a CSV cell would hold, so the CSV reader's rules decide each value; a nested or binary column
# has no such text and stops the read naming the column.
TEXT, INTEGER, NUMBER, BOOLEAN, TIME = "text", "integer", "number", "boolean", "time"
_ID = (frozenset({TEXT, INTEGER}), "text or an integer")
_WHEN = (frozenset({TEXT, TIME}), "a timestamp, a date or text")
_ANY = (frozenset({TEXT, INTEGER, NUMBER, BOOLEAN, TIME}),
        "a single value (text, a number, true/false, a date or a timestamp)")
_EXPECTED = {
    "id": _ID, "account_id": _ID, "lead_id": _ID,
    "created_at": _WHEN, "at": _WHEN,
    "company.employees": (frozenset({TEXT, INTEGER, NUMBER}), "a whole number or text"),
    "company.annual_revenue": (frozenset({TEXT, INTEGER, NUMBER}), "a number or text"),
}
_ONLY_TEXT = (frozenset({TEXT}), "text")
# Lead fields that hold a free value (custom fields, activity properties) take any single value.
FREE = "*"


def expected(target: str) -> tuple[frozenset[str], str]:
    """(the kinds of Parquet column ``target`` accepts, those kinds in words)."""
    if target == FREE:
        return _ANY
    return _EXPECTED.get(target, _ONLY_TEXT)


def is_parquet(path: Path) -> bool:
    """A ``.parquet`` file, or a directory holding ``*.parquet`` part files."""
    if path.suffix.lower() == PARQUET_SUFFIX and not path.is_dir():
        return True
    return path.is_dir() and any(_parts_in(path))


def _parts_in(folder: Path) -> Iterator[Path]:
    # Spark and lakehouse exports put _SUCCESS, _delta_log and .crc files beside the parts.
    for child in folder.iterdir():
        if child.name.startswith(("_", ".")) or child.suffix.lower() != PARQUET_SUFFIX:
            continue
        if child.is_file():
            yield child


def parts(path: Path, label: str) -> list[tuple[Path, str]]:
    """(path, label) of each file to read, in name order: the file itself, or a directory's parts."""
    if not path.is_dir():
        return [(path, label)]
    found = sorted(_parts_in(path), key=lambda part: part.name)
    if not found:
        raise InputError(label, "the directory holds no .parquet files",
                         "name a .parquet file, or a directory of .parquet part files")
    return [(part, str(Path(label) / part.name)) for part in found]


class ParquetPart:
    """One open Parquet file: its column names and types, and its rows as text cells."""

    def __init__(self, path: Path | Any, label: str) -> None:
        """``path``: a file, or an open binary file (the Spark engine hands a part's bytes read by Spark)."""
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(label, "reading Parquet needs pyarrow, which is not installed", _INSTALL_FIX) from None
        self.label = label
        try:
            # Checksums are verified where the writer stored them (leadscore's own output does). With
            # pyarrow's read-ahead (pre_buffer) the bytes of each row group read stayed in memory until the
            # file was done: a 20M-row activities file of 20 row groups held 180 MB of Arrow memory at its
            # end, 13 MB so; a column chunk is read 1 MB at a time instead of whole (a million leads in one
            # row group: 35 MB instead of 62). bench/README.md, twenty-fourth round.
            self.file = pq.ParquetFile(path, page_checksum_verification=True, pre_buffer=False, buffer_size=1 << 20)
        except FileNotFoundError:
            raise InputError(label, "file not found", "check the path") from None
        except PermissionError:
            raise InputError(label, "permission denied", "check that the file is readable") from None
        except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a file that is not Parquet
            raise InputError(label, f"not a readable Parquet file ({first_line(err)})",
                             "write the file with a Parquet writer (pyarrow, DuckDB, Spark, pandas)") from None
        schema = self.file.schema_arrow
        # By position: a name written twice is the header's error to report (plan_header), not a lookup's.
        fields = [field for field in schema if not _PANDAS_INDEX.fullmatch(field.name)]
        self.columns = [field.name for field in fields]
        self.types = {field.name: field.type for field in fields}

    def check(self, targets: Iterable[tuple[int, str]]) -> None:
        """Stop at the first column (by its index in :attr:`columns`) whose Parquet type its target
        does not take, naming the column and the type expected."""
        for index, target in targets:
            name = self.columns[index]
            kinds, words = expected(target)
            found = _kind(self.types[name])
            # A column of nulls only (pandas writes an all-None column so) is empty cells.
            if found != "null" and found not in kinds:
                raise InputError(self.label, f"column {name!r} is of Parquet type {self.types[name]}, "
                                 f"not {words}", f"write {'that field' if target == FREE else target} as {words}")

    def rows(self) -> Iterator[tuple[int, tuple[str, ...]]]:
        """(row number from 1, the row's cells as CSV text: "" for null) in file order."""
        number = 0
        try:
            for batch in self.file.iter_batches(batch_size=BATCH_ROWS, columns=self.columns, use_threads=False):
                cells = [_text_cells(column) for column in batch.columns]
                for row in zip(*cells):
                    number += 1
                    yield number, row
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged page shows only when its batch is read
            raise InputError(f"{self.label}:row {number + 1}", f"cannot read the Parquet data ({first_line(err)})",
                             "write the file again; it is damaged or truncated") from None

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ParquetPart:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _kind(arrow_type: Any) -> str | None:
    """The kind of value a column of ``arrow_type`` holds, or None for one leadscore cannot read."""
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if t.is_null(arrow_type):
        return "null"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or _is_string_view(arrow_type):
        return TEXT
    if t.is_integer(arrow_type):
        return INTEGER
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return NUMBER
    if t.is_boolean(arrow_type):
        return BOOLEAN
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return TIME
    return None


def _is_string_view(arrow_type: Any) -> bool:
    import pyarrow.types as t

    check = getattr(t, "is_string_view", None)
    return bool(check is not None and check(arrow_type))


def plain_column(column: Any) -> Any:
    """A column's values as the reader reads them, before they become text: a dictionary decoded, a
    timestamp in one unit, a float of fewer than 64 bits as a double. Arrow writes an aware time in
    its own zone with a +hhmm offset; in UTC it ends in Z. One unit (microseconds, what a datetime
    holds) gives one text for one instant, whatever unit the writer chose (Spark reads every unit as
    microseconds). (The columnar engine's SQL reads a file's columns in this form too.)"""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(column.type):
        column = column.dictionary_decode()
    if t.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", None if column.type.tz is None else "UTC"), safe=False)
    if t.is_float32(column.type):
        # A float of fewer bits is the double its shortest text reads as: a float32 3.3 is 3.3, as a CSV
        # export of it (pandas, DuckDB, Spark) writes it, not the 3.299999952316284 it widens to.
        column = column.cast(pa.string()).cast(pa.float64())
    elif t.is_float16(column.type):  # (pyarrow writes a half float's exact value as its text)
        column = pa.array([None if value is None else _shortest_half(value) for value in column.to_pylist()],
                          pa.float64())
    return column


def _shortest_half(value: float) -> float:
    """The double of the shortest text that reads back as the half float ``value``."""
    if not math.isfinite(value):
        return value
    for digits in range(1, 6):
        text = f"{value:.{digits}g}"
        try:
            if struct.unpack("e", struct.pack("e", float(text)))[0] == value:
                return float(text)
        except OverflowError:  # rounded past the largest half float
            continue
    return value


def _text_cells(column: Any) -> list[str]:
    """A column's values as the text a CSV export of them holds; "" for null."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    column = plain_column(column)
    kind = column.type
    if t.is_null(kind):
        return [""] * len(column)
    if t.is_floating(kind):
        # Python's shortest text for a float, as pandas' to_csv writes it: 2.0 stays "2.0" (a
        # decimal, not the integer 2), and a message quoting a bad value quotes what a CSV would.
        return ["" if value is None else repr(value) for value in column.to_pylist()]
    if not (t.is_string(kind) or t.is_large_string(kind)):
        column = pc.cast(column, pa.string())
    # Nulls filled in Python: pyarrow's fill_null("") makes a scalar, which imports pandas when it
    # is installed (two seconds of start-up).
    return ["" if value is None else value for value in column.to_pylist()]


__all__ = ["BATCH_ROWS", "FREE", "ParquetPart", "expected", "is_parquet", "parts", "plain_column"]
