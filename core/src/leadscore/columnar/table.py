"""Scores a CSV or Parquet leads file with the columnar engine: its rows read into DuckDB block by block.

The python reader turns every row of a leads file into a Lead record, and the columnar engine then
turns each record back into a row (most of a run on a CRM export: the reader's per-row code, twice
with the account pass). Here the file is read as the python reader reads it (the csv module's rows,
with the reader's encoding, delimiter and header checks; pyarrow's batches of a Parquet file or of
each part of a directory), in blocks of BLOCK_ROWS rows, and DuckDB tests each row's cells for the
forms the reader takes as they are (as leadscore.columnar.activities does for an activities file)
and makes the leads table's row from them: text with nothing to strip around it, an ASCII email and
domain (lower-cased alike in SQL and in Python), a time in the form lines.STAMP, a whole number of
employees, a revenue written as JSON writes numbers, custom fields as ``cell_value`` reads them.
Any other row (a cell with spaces around it, a time in another form, a CSV row of another width, a
missing id, ...) is read by the python reader's own code, so its lead, its message and its place
are the reader's; the scan then goes on as the JSON Lines scan does (leadscore.columnar.scan: the
account pass, duplicates, parts halved for memory, the python engine for what the SQL does not run).

A row is numbered by its place in the file (the first row under the header is 1, a directory's
parts counted on); a CSV row's messages name its line, a Parquet row's ``part:row N``. An export
read through a column map (``--map``) is read as leadscore.columnar.mapped says: the map's code
writes each block's plain cells (of a Parquet row's cells as the reader writes them as text),
which this SQL reads. An activities file (CSV or Parquet) is read into
DuckDB first (leadscore.columnar.activities) and each block's leads join their rows of it in SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.columnar.activities import (_BLANK, _ODD, _SAFE_INT, _next_batch, _object, _property, _time,
                                          insert_checked)
from leadscore.columnar.engine import ACTIVITY_SCHEMA, LEAD_SCHEMA, WHOLE, with_file_rows
from leadscore.columnar.mapped import MappedHeader, mapped_header
from leadscore.columnar.scan import _Block, _BlockReader, by_block, scan_scorer
from leadscore.errors import InputError
from leadscore.explain import count_unscored
from leadscore.io.maps import ColumnMap
from leadscore.io.parquet import BATCH_ROWS, INTEGER, NUMBER, TEXT, ParquetPart, _kind, _text_cells, plain_column
from leadscore.io.parquet import parts as parquet_parts
from leadscore.io.readers import (ReadReport, _csv_encoding, _CSV_TEXT, _open, _ReadContext, _row_lead,
                                  activities_source, csv_lead_header, csv_row_item, parquet_lead_plan)
from leadscore.model import Lead, Rejection

# Rows a block: DuckDB's work on a block has a fixed part (tens of ms on 2 cores), and a block's
# rows are few bytes beside a JSON Lines block's leads with their activities. With an activities file
# (about 20 rows a generated lead) a block holds as much as a JSON Lines block of as many leads; with
# --explain each lead's full ledger is made at once (see leadscore.columnar.scan's block sizes).
# A million leads with an activities file: 16,384 against 8,192 a block took 73.6 s against 82.0 s
# (firr-base) and 126.6 s against 135.7 s (every installed pack), 4 MB more or less at the peak.
BLOCK_ROWS = 16_384
EXPLAIN_BLOCK_ROWS = 4_096
FILE_BLOCK_ROWS = 16_384
FILE_EXPLAIN_BLOCK_ROWS = 2_048
# A block goes to DuckDB's check as chunks of this many rows (one Arrow chunk is one thread's work).
CHECK_CHUNK = 2_048
# The SQL types of the engine's Arrow schemas' columns (leadscore.columnar.engine.LEAD_SCHEMA, ACTIVITY_SCHEMA).
_SQL_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.float64(): "DOUBLE"}
# The lead's text values by target, and their column in the leads table.
_TEXTS = {"email": "email", "title": "title", "source": "source", "company.name": "c_name",
          "company.domain": "c_domain", "company.industry": "c_industry", "company.country": "c_country",
          "company.tier": "c_tier"}
_LOWERED = ("email", "company.domain")  # lower-cased by the reader: the SQL takes them when ASCII
_ASCII = "[\\x{00}-\\x{7f}]*"
_WHOLE_TEXT = r"[0-9]{1,15}(\.0*)?"  # readers._WHOLE, short enough to be exact
_NUMBER_TEXT = r"-?[0-9]{1,300}(\.[0-9]{1,300})?([eE][+-]?[0-9]{1,4})?"


def scan_table(engine: Any, path: str, label: str, fmt: str, when: datetime, *, explain: bool, top: int,
               render: str | None = None, report: ReadReport | None = None, unknown_types: Any = None,
               misfits: Any = None, delimiter: str | None = None, strict: bool = False,
               block_rows: int | None = None, activities: str | None = None,
               file_acts: Any = None, column_map: ColumnMap | None = None,
               dedupe: bool = False) -> Iterator[Any] | None:
    """Cards and rejections for every row of the CSV or Parquet (``fmt``) leads file or directory at
    ``path`` in order, or None when the columnar engine cannot run this plan or keep the activities
    file in DuckDB; as :func:`leadscore.columnar.scan.scan_jsonl` does for a JSON Lines file (see it
    for ``render``, ``report``, ``unknown_types`` and ``misfits``). ``delimiter`` and ``strict``: the
    reader's. ``activities``: an activities file (CSV or Parquet), read as the python reader reads it
    before the first lead into ``file_acts`` (a leadscore.columnar.activities.SqlActivityTable, given
    with it); its rows for leads the file does not have are rejected after the last lead, and the
    caller counts its activity types (``file_acts.count_types``) and drops it once the run is written.
    ``column_map``: an export's map (``--map``), applied as leadscore.columnar.mapped says; None is
    returned for a header the map's plain columns do not cover. ``dedupe``: the copies of a lead id
    merged, as scan_jsonl merges them."""
    if column_map is not None and not _mapped_columnar(Path(path), label, fmt, delimiter, column_map):
        return None
    scorer = scan_scorer(engine, when, explain=explain, top=top, render=render)
    if scorer is None:
        return None
    report = report if report is not None else ReadReport()
    if activities is not None:
        act_path, _, act_label = activities_source(activities)
        file_acts.attach(scorer)
        act_ctx = _ReadContext(column_map, delimiter, strict, report)
        if act_path is None or file_acts.reader(act_path, act_label, act_ctx) is None:
            return None  # many rows the SQL does not take: the python reader's table reads the file
    if block_rows is None:
        block_rows = ((FILE_EXPLAIN_BLOCK_ROWS if explain else FILE_BLOCK_ROWS) if activities is not None
                      else EXPLAIN_BLOCK_ROWS if explain else BLOCK_ROWS)
    source = _Source(Path(path), label, fmt, delimiter, strict, block_rows, column_map)
    reader = _TableReader(engine, scorer, source, when, report, unknown_types, misfits,
                          file_acts if activities is not None else None, dedupe)
    blocks = reader.blocks()
    first = next(blocks, None)  # the file's own errors (no header, no rows) are raised by its reading
    assert first is not None
    return reader.scored(first, blocks)


def _mapped_columnar(path: Path, label: str, fmt: str, delimiter: str | None, column_map: ColumnMap) -> bool:
    """Whether the CSV's header (each Parquet part's columns), read through ``column_map``, has plain
    columns the SQL reads (leadscore.columnar.mapped); a header the reader refuses is left to the
    scan, which says why."""
    ctx = _ReadContext(column_map, delimiter, False, ReadReport())
    plans = []
    try:
        if fmt == "csv":
            with _open(path, label, mode="r", encoding=_csv_encoding(path, label), **_CSV_TEXT) as handle:
                plans.append(csv_lead_header(handle, label, ctx)[0])
        else:
            for part_path, part_label in parquet_parts(path, label):
                with ParquetPart(part_path, part_label) as part:
                    plans.append(parquet_lead_plan(part, label, ctx))
    except InputError:
        return True
    return all(mapped_header(plan, column_map) is not None for plan in plans)


class _Rows:
    """One block of a leads file: its rows' cells (``raw``: n, c0, c1, ... for the rows the SQL
    tests) and, for the python reader's code, how to make a row's lead (``item``) from its cells;
    ``odd``: rows left to that code from the start (a CSV row unreadable or of another width)."""

    def __init__(self, first: int, count: int, raw: pa.Table, select: str, odd: dict[int, Any],
                 item: Callable[[int, Any, _ReadContext], Lead | Rejection], texts: bool,
                 cells: list[str] | None = None) -> None:
        self.first, self.count, self.raw, self.select, self.odd, self.item = first, count, raw, select, odd, item
        self.texts = texts  # raw's columns are text already (a CSV file's)
        # raw's columns that hold a row's cells for ``item`` (None: all but n; with a map, the
        # file's own cells beside the plain ones the SQL reads).
        self.cells = cells
        self._index: dict[int, int] | None = None

    def __len__(self) -> int:
        return self.count

    def items(self, numbers: Sequence[int], ctx: _ReadContext) -> dict[int, Lead | Rejection]:
        """The python reader's lead or rejection of each row numbered in ``numbers``, by number."""
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.raw.column("n").to_pylist())}
        taken = [k for k in numbers if k not in self.odd]
        cells: dict[int, Any] = {k: self.odd[k] for k in numbers if k in self.odd}
        if taken:
            rows = self.raw.take(pa.array([self._index[k] for k in taken], pa.int64()))
            rows = rows.select(self.cells) if self.cells is not None else rows.drop_columns(["n"])
            columns = [column.to_pylist() if self.texts else _text_cells(column) for column in rows.columns]
            cells.update(zip(taken, (list(row) for row in zip(*columns))))
        return {k: self.item(k, cells[k], ctx) for k in sorted(cells)}


class _TableBlock(_Block):
    file_acts: Any = None

    def read_python(self, label: str, lines: tuple[int, int] | None = None) -> dict[int, Lead | Rejection]:
        """The block's rows (or those numbered ``lines``, first and last) read by the python reader,
        for leads the SQL could not score (see _Block.read_python), with their file activities."""
        low, high = lines if lines is not None else (self.first, self.last)
        numbers = [k for k in range(low, high + 1) if k not in self.by_python]
        read = _joined(self.lines.items(numbers, _row_context(ReadReport(), self.file_acts)), self.file_acts)
        self.by_python.update(read)
        return read


def _row_context(report: ReadReport, file_acts: Any) -> _ReadContext:
    """The python reader's context for one row's lead (its cells are split already), with the
    activities file's table when there is one (its lead is noted as met)."""
    ctx = _ReadContext(None, None, False, report)
    ctx.table = file_acts
    return ctx


def _joined(items: dict[int, Lead | Rejection], file_acts: Any) -> dict[int, Lead | Rejection]:
    """``items`` with each lead's activities of the file in DuckDB, as the python reader hands it on."""
    numbers = [k for k, item in items.items() if isinstance(item, Lead)]
    if file_acts is None or not numbers:
        return items
    return {**items, **dict(zip(numbers, file_acts.joined([items[k] for k in numbers])))}


class _TableReader(_BlockReader):
    def __init__(self, engine: Any, scorer: Any, source: _Source, when: datetime, report: ReadReport | None,
                 unknown_types: Any, misfits: Any, file_acts: Any, dedupe: bool = False) -> None:
        super().__init__(engine, scorer, str(source.path), source.label, when, 0, report, unknown_types, misfits,
                         dedupe)
        self.source = source
        self.kept = None  # the scoring pass reads the file again: DuckDB's reading of its rows is quick
        self.file_acts = file_acts
        self.passes = 0
        # With an activities file, a block's leads the reader's code read with activities of their own,
        # by row number, and the leads its copies were merged into (--dedupe): see _count_types.
        self.own: dict[int, Lead] = {}
        self.merged: list[Lead] = []

    def _block(self, first: int, last: int, by_python: dict[int, Lead | Rejection], lines: Any) -> _Block:
        block = _TableBlock(first, last, by_python, lines)
        block.file_acts = self.file_acts
        return block

    def blocks(self) -> Iterator[_Block]:
        if self.file_acts is not None:
            if self.passes:
                self.file_acts.restart()  # the scoring pass meets the leads again
            else:  # leads whose file rows the python reader read, or the SQL does not take: the python reader's
                special = sorted(self.file_acts.python_ids | set(self.file_acts.held.by_lead))
                self.scorer.con.register("ls_special_in", pa.table({"id": pa.array(special, pa.string())}))
                self.scorer.con.execute("CREATE OR REPLACE TEMP TABLE ls_special AS SELECT id FROM ls_special_in")
                self.scorer.con.unregister("ls_special_in")
        self.passes += 1
        yield from super().blocks()

    def _scored(self, first: _Block, rest: Iterator[_Block]) -> Iterator[Any]:
        yield from super()._scored(first, rest)
        if self.file_acts is not None:
            yield from self.file_acts.unmatched()  # after the last lead, as the python reader gives them

    def _copy_forms(self, first: int, lines: Any, numbers: list[int]) -> dict[int, Any]:
        """A copy's row as the reader's lead without its rows of the activities file (few values:
        the file's rows are read once, at the id's last copy, see _copy_leads)."""
        return lines.items(numbers, _row_context(ReadReport(), None))

    def _copy_leads(self, groups: list[list[tuple[int, Any]]]) -> list[list[Lead | Rejection | None]]:
        """Each group's copies, each with the id's rows of the activities file as the python reader
        joins them to each copy (the merge then keeps their exact repeats once)."""
        if self.file_acts is None:
            return [[lead for _, lead in group] for group in groups]
        joined = iter(self.file_acts.joined([lead for group in groups for _, lead in group if isinstance(lead, Lead)]))
        return [[next(joined) if isinstance(lead, Lead) else lead for _, lead in group] for group in groups]

    def _copy_blocks(self, found: list[tuple[int, bool, str]]) -> Iterator[tuple[int, Any, list[tuple[int, bool, str]]]]:
        """(first row, the block's rows, the copies among them) of each block with copies on
        ``found``'s rows (in order): the file read again, as a pass reads it."""
        ctx = _ReadContext(self.source.column_map, self.source.delimiter, self.source.strict, ReadReport())
        blocks = self.source.blocks(ctx, q.micros(self.when), self.scorer.numeric_fields)
        return by_block(found, ((rows.first, rows.count, rows) for rows in blocks))

    def _merge_copies(self, by_python: dict[int, Lead | Rejection | None], first: int, lines: Any,
                      as_of_us: int) -> tuple[list[int], list[tuple[int, Lead]]]:
        copies, merged = super()._merge_copies(by_python, first, lines, as_of_us)
        if copies and self.file_acts is not None:
            # A merged lead's activities are counted as the merged lead has them (exact repeats once),
            # its copies' and its file rows not (see _count_types).
            for k in copies:
                self.own.pop(k, None)
            self.merged = [lead for _, lead in merged]
        return copies, merged

    def _count_types(self, by_python: dict[int, Lead | Rejection]) -> None:
        """Without an activities file, as the JSON Lines scan counts them. With one, the caller counts
        its rows' types once the run is done (``file_acts.count_types``, by lead id): here, the
        activities of the leads' own that the reader's code read (a map's activity columns), and a
        merged lead's (--dedupe) all, its id then left out of the file's count."""
        if self.file_acts is None:
            super()._count_types(by_python)
            return
        own, merged, self.own, self.merged = self.own, self.merged, {}, []
        if self.unknown_types is None:
            return
        known = frozenset(self.known_types)
        # (A later copy of an id is rejected as a duplicate: not counted.)
        counted = [lead for k, lead in own.items() if not isinstance(by_python.get(k), Rejection)]
        for lead in (*counted, *merged):
            count_unscored(lead, known, None, self.unknown_types, None)
        self.file_acts.counted.update(lead.id for lead in merged)

    def _decoded(self, as_of_us: int) -> Iterator[tuple[int, _Rows, _Rows]]:
        # What a pass notes of the file (unknown columns) goes to the report once: it keeps each line once.
        ctx = _ReadContext(self.source.column_map, self.source.delimiter, self.source.strict,
                           self.report if self.report is not None else ReadReport())
        for rows in self.source.blocks(ctx, as_of_us, self.scorer.numeric_fields):
            yield rows.first, rows, rows
            del rows

    def _tables(self, decoded: _Rows, as_of_us: int) -> list[int]:
        """``leads`` from the block's rows the SQL takes, an empty ``activities``; the numbers of the
        rows left to the python reader."""
        con = self.scorer.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE leads ({_columns(LEAD_SCHEMA)})")
        con.execute(f"CREATE OR REPLACE TEMP TABLE activities ({_columns(ACTIVITY_SCHEMA)})")
        odd = insert_checked(con, "leads", "* EXCLUDE (simple)", decoded.select, decoded.raw, "k", CHECK_CHUNK)
        if self.file_acts is not None:
            odd += self._file_rows()
        return sorted(odd + list(decoded.odd))

    def _file_rows(self) -> list[int]:
        """The block's leads' rows of the activities file into ``activities``; the numbers of the leads
        left to the python reader (see :meth:`blocks`), out of ``leads``."""
        con, file_acts = self.scorer.con, self.file_acts
        moved = [k for (k,) in con.execute("SELECT k FROM leads WHERE id IN (SELECT id FROM ls_special)").fetchall()]
        if moved:
            con.execute("DELETE FROM leads WHERE id IN (SELECT id FROM ls_special)")
        file_acts.join_all("leads")
        con.execute("CREATE OR REPLACE TEMP VIEW b_leads AS SELECT * FROM leads")
        # (``activities`` is empty here: the leads with activities of their own or rows held are the reader's.)
        con.execute(f"INSERT INTO activities {with_file_rows('activities', 'activities', file_acts.file_rows())}")
        return moved

    def _odd_lines(self, first: int, lines: _Rows, numbers: list[int], as_of_us: int) -> dict[int, Lead | Rejection]:
        """The python reader's result for the rows the SQL left to it; leads it makes join the tables."""
        self.own = {}
        if not numbers:
            return {}
        # Activities left out of a lead are reported once, in the pass that scores.
        ctx = _row_context(self.report if self.last_pass and self.report is not None else ReadReport(), self.file_acts)
        items = lines.items(numbers, ctx)
        if self.file_acts is not None and self.last_pass:  # (their file rows are not joined yet)
            self.own = {k: item for k, item in items.items() if isinstance(item, Lead) and item.activities}
        found = self._add_odd(items.items(), as_of_us, self.file_acts)
        return _joined(found, self.file_acts)


class _Source:
    """A CSV or Parquet leads file, read in blocks of rows (:class:`_Rows`)."""

    def __init__(self, path: Path, label: str, fmt: str, delimiter: str | None, strict: bool, block_rows: int,
                 column_map: ColumnMap | None = None) -> None:
        self.path, self.label, self.fmt, self.delimiter, self.strict = path, label, fmt, delimiter, strict
        self.block_rows = block_rows
        self.column_map = column_map  # an export's (leadscore.columnar.mapped)

    def blocks(self, ctx: _ReadContext, as_of_us: int, numeric: dict[str, str]) -> Iterator[_Rows]:
        if self.fmt == "csv":
            yield from self._csv_blocks(ctx, as_of_us, numeric)
        else:
            yield from self._parquet_blocks(ctx, as_of_us, numeric)

    def _csv_blocks(self, ctx: _ReadContext, as_of_us: int, numeric: dict[str, str]) -> Iterator[_Rows]:
        label = self.label
        with _open(self.path, label, mode="r", encoding=_csv_encoding(self.path, label), **_CSV_TEXT) as handle:
            plan, header, rows = csv_lead_header(handle, label, ctx)
            width = len(header)
            mapped = mapped_header(plan, ctx.column_map) if ctx.column_map is not None else None
            assert mapped is not None or ctx.column_map is None  # (scan_table checked the header)
            plain = len(mapped.sources) if mapped is not None else width
            select = lead_query(plan if mapped is None else mapped.plan, [TEXT] * plain, [False] * plain,
                                [False] * plain, numeric, as_of_us)
            originals = None if mapped is None else [f"o{i}" for i in range(width)]
            k = 0
            while True:
                lines: list[int] = []
                numbers: list[int] = []
                whole: list[list[str]] = []
                odd: dict[int, Any] = {}
                for lineno, row in rows:
                    k += 1
                    lines.append(lineno)
                    if type(row) is list and len(row) == width:
                        numbers.append(k)
                        whole.append(row)
                    else:
                        odd[k] = row
                    if len(lines) >= self.block_rows:
                        break
                if not lines:
                    if k == 0:
                        raise InputError(label, "no leads in this file", "write one row per lead under the header")
                    return
                first = k - len(lines) + 1
                columns = [pa.array(cells, pa.string()) for cells in zip(*whole)] or [pa.array([], pa.string())] * width
                raw = pa.table([pa.array(numbers, pa.int64()), *columns], names=["n", *(f"c{i}" for i in range(width))])
                if mapped is not None:
                    raw = _plain_cells(mapped, raw, whole, odd)
                del whole

                def item(k: int, cells: Any, ctx: _ReadContext, lines: list[int] = lines, first: int = first) -> Any:
                    return csv_row_item(plan, width, lines[k - first], cells, label, ctx)

                yield _Rows(first, len(lines), raw, select, odd, item, texts=True, cells=originals)

    def _parquet_blocks(self, ctx: _ReadContext, as_of_us: int, numeric: dict[str, str]) -> Iterator[_Rows]:
        k = 0
        for part_path, part_label in parquet_parts(self.path, self.label):
            with ParquetPart(part_path, part_label) as part:
                plan = parquet_lead_plan(part, self.label, ctx)
                mapped = mapped_header(plan, ctx.column_map) if ctx.column_map is not None else None
                assert mapped is not None or ctx.column_map is None  # (scan_table checked the columns)
                types = [part.types[name] for name in part.columns]
                kinds = [_kind(kind) for kind in types]
                plain = [kind.value_type if pa.types.is_dictionary(kind) else kind for kind in types]
                if mapped is None:
                    select = lead_query(plan, kinds, [pa.types.is_date(kind) for kind in plain],
                                        [pa.types.is_floating(kind) for kind in plain], numeric, as_of_us)
                else:  # the plain cells are text, made of the cells as the reader writes them (_text_cells)
                    width = len(mapped.sources)
                    select = lead_query(mapped.plan, [TEXT] * width, [False] * width, [False] * width, numeric, as_of_us)
                originals = None if mapped is None else [f"o{i}" for i in range(len(part.columns))]
                offset = k  # the rows before this part's first
                # pyarrow's batches of the reader's size, so that a damaged page is named at the row it names.
                batches = part.file.iter_batches(batch_size=BATCH_ROWS, columns=part.columns, use_threads=False)
                while True:
                    taken: list[Any] = []
                    rows = 0
                    while rows < self.block_rows and (
                            batch := _next_batch(batches, f"{part_label}:row {k + rows - offset + 1}")) is not None:
                        taken.append(batch)
                        rows += batch.num_rows
                    if not rows:
                        break
                    first = k + 1
                    k += rows
                    # Each batch's columns plain first: a dictionary-encoded column has a dictionary a batch.
                    columns = [pa.concat_arrays([plain_column(batch.column(i)) for batch in taken])
                               for i in range(len(part.columns))]
                    del taken
                    names = ["n", *(f"c{i}" for i in range(len(part.columns)))]
                    raw = pa.table([pa.array(range(first, k + 1), pa.int64()), *columns], names=names)
                    odd: dict[int, Any] = {}
                    if mapped is not None:
                        raw = _plain_cells(mapped, raw, list(zip(*(_text_cells(column) for column in columns))), odd)
                    del columns

                    def item(n: int, cells: Any, ctx: _ReadContext, plan: Any = plan, part_label: str = part_label,
                             offset: int = offset) -> Any:
                        return _row_lead(plan, cells, f"{part_label}:row {n - offset}", ctx)

                    yield _Rows(first, rows, raw, select, odd, item, texts=False, cells=originals)
        if k == 0:
            raise InputError(self.label, "no leads in this file", "write one row per lead")


def _plain_cells(mapped: MappedHeader, raw: pa.Table, cells: Sequence[Sequence[str]], odd: dict[int, Any]) -> pa.Table:
    """A block's rows read through a map: ``raw`` (n, then the file's own columns c0, c1, ..., whose
    rows' cells as text are ``cells``) with those columns named o0, o1, ... (the python reader's code
    reads a row from them) after the plain cells the map's values write, named c0, c1, ... (the SQL
    reads them). Rows with a value no plain cell writes go to ``odd`` with their cells, out of the table."""
    made, marked = mapped.columns(cells)
    table = pa.table([raw.column("n"), *(pa.array(column, pa.string()) for column in made), *raw.columns[1:]],
                     names=["n", *(f"c{i}" for i in range(len(made))), *(f"o{i}" for i in range(raw.num_columns - 1))])
    if not marked:
        return table
    numbers = raw.column("n").to_pylist()
    odd.update((numbers[i], list(cells[i])) for i in marked)
    return table.filter(pa.array([i not in marked for i in range(len(cells))]))


# --- the SQL that reads a block's rows ---------------------------------------------------


def lead_query(plan: Any, kinds: Sequence[str | None], dates: Sequence[bool], doubles: Sequence[bool],
               numeric: dict[str, str], as_of_us: int) -> str:
    """The query over a block (``ls_rows``: n, c0, c1, ...) that makes each row's leads-table row (as
    leadscore.columnar.engine.Rows makes it of the reader's lead) and tests whether the reader takes
    its cells as they are (``simple``). ``kinds``, ``dates``, ``doubles``: each column's kind
    (leadscore.io.parquet's), whether it is a date and whether it is a float; ``numeric``: the custom
    fields declared as numbers (name -> kind)."""
    values: dict[str, exp.Expression] = {}
    checks: list[exp.Expression] = []
    for index, target in plan.lead:
        column, kind = q.col(f"c{index}"), kinds[index]
        if target in ("id", "account_id"):
            text = column if kind == TEXT else q.cast(column, "VARCHAR") if kind == INTEGER else q.lit(None)
            blank = _blank(text)
            values[target] = q.case([(blank, q.lit(None))], text.copy())
            clean = _clean(text.copy())
            checks.append(q.and_(q.not_(blank.copy()), clean) if target == "id" else q.or_(blank.copy(), clean))
        elif target in _TEXTS:
            blank = _blank(column)
            good = _clean(column.copy())
            value: exp.Expression = column.copy()
            if target in _LOWERED:
                good = q.and_(good, _full(column, _ASCII))
                value = q.fn("lower", value)
            values[_TEXTS[target]] = q.case([(blank, q.lit(None))], value)
            checks.append(q.or_(blank.copy(), good))
        elif target == "created_at":
            us, ok = _time(column, kind, dates[index])
            values["created_at"] = us
            near = exp.LT(this=q.fn("abs", exp.Sub(this=q.lit(as_of_us), expression=us.copy())), expression=q.lit(WHOLE))
            checks.append(q.or_(_blank(column.copy()) if kind == TEXT else q.is_null(column.copy()), q.and_(ok, near)))
        elif target == "company.employees":
            value, ok = _whole(column, kind, doubles[index])
            values["c_employees"] = value
            checks.append(ok)
        elif target == "company.annual_revenue":
            value, ok = _revenue(column, kind, doubles[index])
            values["c_revenue"] = value
            checks.append(ok)
        else:  # first_name, last_name: text the card never shows
            checks.append(q.or_(_blank(column), _clean(column.copy())))
    entries = [(spec.name, index) for index, spec in plan.fields] + [(name, index) for index, name in plan.unknown]
    made: list[tuple[str, exp.Expression]] = []
    for name, index in entries:
        value, ok = _property(q.col(f"c{index}"), kinds[index], doubles[index])
        made.append((name, value))
        checks.append(ok)
    names = [f"v{i}" for i in range(len(made))]
    layer1 = q.select(q.col("n"), *(value.as_(name) for name, value in values.items()),
                      *(value.as_(name) for name, (_, value) in zip(names, made)),
                      q.and_(*(q.coalesce(check, q.lit(False)) for check in checks)).as_("ok")).from_("ls_rows")
    named = [(key, q.col(name)) for name, (key, _) in zip(names, made)]
    simple = [q.col("ok"), *(q.coalesce(exp.NEQ(this=q.col(name), expression=q.lit(_ODD)), q.lit(True)) for name in names)]
    for key, value in named:
        kind = numeric.get(key)
        if kind is not None:  # a value the engine reads as the declared number: the python reader's (Rows._fields)
            plain = _INT_JSON if kind == "int" else _JSON_NUMBER_OR_BOOL
            simple.append(q.or_(q.is_null(value.copy()), _full(value, plain)))
    columns = [q.col("n").as_("k")]
    for field in LEAD_SCHEMA:  # the engine's columns in their order, between k and fields
        if field.name not in ("k", "fields"):
            columns.append(q.cast(q.col(field.name) if field.name in values else q.lit(None),
                                  _SQL_TYPES[field.type]).as_(field.name))
    layer2 = q.select(*columns, _object(named).as_("fields"), q.and_(*simple).as_("simple")).from_(layer1.subquery("r1"))
    return q.sql(layer2)


def _columns(schema: pa.Schema) -> str:
    """An Arrow schema's columns as a CREATE TABLE's column list."""
    return ", ".join(f'"{field.name}" {_SQL_TYPES[field.type]}' for field in schema)


_INT_JSON = r"-?(0|[1-9][0-9]*)|true|false"
_JSON_NUMBER_OR_BOOL = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false"


def _full(column: exp.Expression, pattern: str) -> exp.Expression:
    return q.fn("regexp_full_match", column.copy(), q.lit(pattern))


def _blank(text: exp.Expression) -> exp.Expression:
    """No value to the reader: no cell, or one Python's strip() leaves empty."""
    return q.or_(q.is_null(text), _full(text, _BLANK))


def _clean(text: exp.Expression) -> exp.Expression:
    """Text the reader takes as it is: nothing Python's strip() removes at either end."""
    return q.not_(q.space_around(text.copy()))


def _whole(column: exp.Expression, kind: str | None, double: bool) -> tuple[exp.Expression, exp.Expression]:
    """(the number of employees, whether the reader reads the cell as it: ``readers._whole_number`` of its text)."""
    if kind == TEXT:
        value = q.case([(_full(column, _WHOLE_TEXT), q.cast(q.fn("split_part", column.copy(), q.lit("."), q.lit(1)), "BIGINT"))],
                       q.lit(None))
        return value, q.or_(_blank(column.copy()), _full(column, _WHOLE_TEXT))
    if kind == INTEGER:
        ok = exp.Between(this=q.cast(column, "HUGEINT"), low=q.lit(0), high=q.lit(_SAFE_INT))
        return q.cast(column.copy(), "BIGINT"), q.or_(q.is_null(column.copy()), ok)
    if kind == NUMBER and double:
        # Python's text of a float: "1200.0" is whole; -0.0, fractions and 1e16 and up are not.
        ok = q.and_(q.fn("isfinite", column), exp.GTE(this=column.copy(), expression=q.lit(0)),
                    exp.LT(this=column.copy(), expression=q.lit(1e15)), q.fn("trunc", column.copy()).eq(column.copy()),
                    q.not_(q.fn("signbit", column.copy())))
        return q.case([(ok, q.cast(column.copy(), "BIGINT"))], q.lit(None)), q.or_(q.is_null(column.copy()), ok.copy())
    return q.lit(None), q.is_null(column)


def _revenue(column: exp.Expression, kind: str | None, double: bool) -> tuple[exp.Expression, exp.Expression]:
    """(the annual revenue, whether the reader reads the cell as it: ``readers._number`` of its text)."""
    if kind == TEXT:
        number = exp.TryCast(this=column, to=exp.DataType.build("DOUBLE"))
        ok = q.and_(_full(column, _NUMBER_TEXT), q.fn("isfinite", number.copy()))
        return q.case([(ok, number.copy())], q.lit(None)), q.or_(_blank(column.copy()), ok.copy())
    if kind == INTEGER:
        ok = exp.LTE(this=q.fn("abs", q.cast(column, "HUGEINT")), expression=q.lit(_SAFE_INT))
        return q.cast(column.copy(), "DOUBLE"), q.or_(q.is_null(column.copy()), ok)
    if kind == NUMBER and double:
        return column, q.or_(q.is_null(column.copy()), q.fn("isfinite", column.copy()))
    return q.lit(None), q.is_null(column)


__all__ = ["BLOCK_ROWS", "lead_query", "scan_table"]
