"""An activities file (CSV or Parquet) read into DuckDB for the columnar engine, instead of into Python records.

The python reader turns every row of an activities file into an Activity record joined to its lead,
and the columnar engine then turns each record back into a row (about 40 us an activity, most of a
run on a CRM export with an activities file). Here the file is read batch by batch as the python
reader reads it (pyarrow's batches of a Parquet file; the csv module's rows of a CSV file, with the
reader's encoding, delimiter and header checks), and DuckDB tests each row's cells for the forms the
reader takes unchanged (a lead id and a type without surrounding spaces, a time as the reader
parses it, properties that are text, whole numbers or true/false as ``cell_value`` reads them) and
keeps the rows that pass in a table, with each activity's properties as JSON, its evidence place and
its row number. Any other row (an empty lead id, a bad time, a float, a cell with spaces around it,
a CSV row of another width, ...) goes through the python reader's own code by its row number, so
its activity, its message and its place are the reader's.

The leads come from the python reader as usual, with this table in the place of its activities
table (:class:`SqlActivityTable` has the reader's table methods): ``join`` notes the lead and leaves
its file activities in DuckDB, where each batch's SQL joins them by lead id; a lead the python
engine scores gets its activities as Activity records from the table (:meth:`~SqlActivityTable.activities_of`),
the same records the reader makes. Rows whose lead id no lead has are reported after the last lead,
as the reader reports them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import islice
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.columnar.engine import WHOLE, quiet
from leadscore.columnar.files import insert_rows
from leadscore.columnar.lines import STAMP, collector_paused, evidence_sql, stamp_us
from leadscore.errors import InputError, first_line
from leadscore.io.parquet import BOOLEAN, INTEGER, NUMBER, TEXT, TIME, ParquetPart, _kind, _text_cells, plain_column
from leadscore.io.parquet import parts as parquet_parts
from leadscore.io.parquet import is_parquet
from leadscore.io.readers import (_ActivityPlan, _ActivityTable, _HeldActivities, activity_csv, activity_csv_row, join_activities,
                                  open_activity_csv)
from leadscore.model import EMPTY, Activity, Lead, Rejection

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The first and last microsecond Python's datetime holds.
_FIRST_US = q.micros(datetime.min.replace(tzinfo=timezone.utc))
_LAST_US = q.micros(datetime.max.replace(tzinfo=timezone.utc))
# The file's rows are kept in a database of their own, in memory and compressed once read (CHECKPOINT):
# a million generated activity rows take about 10 MB of DuckDB's memory there against about 105 MB in
# the connection's own, where the scoring's queries pushed them out to the temporary directory and
# read them back, block after block (bench/README.md, twenty-third round).
_FILE_DB = "ls_file"
# The rows DuckDB keeps (lead id, row number, type, time, properties as JSON, activity id, evidence place).
_TABLE = f"{_FILE_DB}.ls_file_acts"
_MATCHED = "ls_file_matched"  # lead ids a lead of the input has (its own, or a rejected row's)
_JOINED = "ls_file_joined"  # lead ids of the leads handed on (their activity types are counted)
_FIRSTS = "ls_file_firsts"  # the first row of each lead id among the rows the python reader read
_SPANS = f"{_FILE_DB}.ls_file_spans"  # each lead id's first and last row in the table
# Rows a batch of the file: DuckDB's work on a batch has a fixed part (about 50 ms on 2 cores), so with
# the python reader's 8,192 a row cost 9 us against about 4.
BATCH = 65_536
# A batch goes to DuckDB as chunks of this many rows, so that both its threads check it (one Arrow
# chunk is one thread's work): 200,000 leads' activities file, 4M rows, read in 4.5-5.0 s against 6.0.
CHECK_CHUNK = 8_192
# Ids noted are written to DuckDB in chunks of this many.
_FLUSH = 10_000
# Whole numbers in this range are exact in the SQL's doubles and in JSON readers.
_SAFE_INT = 2**53
# cell_value's whole numbers and decimals (maps._CELL_INT, _CELL_FLOAT) in RE2, which has no lookahead.
_CELL_INT = r"[+-]?(0|[1-9][0-9]*)"
_SHORT_INT = r"[+-]?(0|[1-9][0-9]{0,14})"
_JSON_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
_CELL_FLOAT = r"[+-]?((((0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)|((0|[1-9][0-9]*)[eE][+-]?[0-9]+))"
_BLANK = f"{q.PY_SPACE}*"
# Text that is its own property value: it starts with no space, digit, sign, dot, t or f and ends with
# no space (so no number, boolean or text with spaces around it); _plain tests its two ends.
_PLAIN_FIRST = f"^[^0-9+.TtFf{q.PY_SPACE[1:-1]}-]"
# A property value the SQL does not make (not JSON, so no cell's value is ever taken for it).
_ODD = "?"


# Past this many rows read by the python reader's code (held as records), the file is read again by
# the python reader's own table, which moves to disk past as many rows (readers._ActivityTable.SPILL_ROWS).
ODD_ROWS = _ActivityTable.SPILL_ROWS


class _ManyOdd(Exception):
    pass


class SqlActivityTable:
    """An activities file in DuckDB, with the python reader's activities table methods.

    Made before the read and handed to it (``read_leads(activity_reader=table.reader)``); the run's
    scorer is attached before the first lead is read (:meth:`attach`), and the file is read into its
    connection then. Not attached (the run's plan has no columnar form), or with more rows than
    ODD_ROWS the SQL does not take, :meth:`reader` leaves the file to the python reader's own table
    (the table is then detached: ``con`` is None). The reader's calls use a cursor of the scorer's connection, so a read
    ahead in another thread does not share a connection with the scoring.
    """

    def __init__(self) -> None:
        self.con: Any = None
        self.cur: Any = None
        self.as_of_us = 0
        self.explain = False
        self.held = _HeldActivities()  # rows the python reader read, by lead id
        self.parts: list[tuple[int, str]] = []  # (row number before the part's first, the part's label)
        self.python_ids: set[str] = set()  # leads whose file activities the SQL does not take exactly
        self.rows = 0
        self.sql_rows = 0
        self.lines: str | None = None  # a CSV file's label: its rows are named by line
        # Once read: its path and label, and the warnings, left-out rows and their count the read noted.
        self.read: tuple[Path, str, list[str], list[Rejection], int] | None = None
        self._matched: list[str] = []
        self._joined: list[str] = []
        # Leads whose activities the scan counted itself (merged with --dedupe): see count_types.
        self.counted: set[str] = set()

    def attach(self, scorer: Any) -> None:
        """Keep the file in ``scorer``'s DuckDB; ``scorer.explain``: the run makes each activity's evidence text.
        Attached to it already (the account pass read the leads first): nothing to do."""
        if self.con is not None and self.con is scorer.con:
            return
        self.con, self.cur = scorer.con, quiet(scorer.con.cursor())
        self.as_of_us, self.explain = q.micros(scorer.as_of), scorer.explain
        self.cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_FILE_DB} (COMPRESS)")
        for name, columns in ((_TABLE, "lead_id VARCHAR, n BIGINT, type VARCHAR, \"at\" BIGINT, props VARCHAR, "
                                       "id VARCHAR, place VARCHAR, odd_place BOOLEAN"),
                              (_MATCHED, "lead_id VARCHAR"), (_JOINED, "lead_id VARCHAR"),
                              (_FIRSTS, "lead_id VARCHAR, n BIGINT")):
            self.cur.execute(f"CREATE OR REPLACE TABLE {name} ({columns})")

    # --- reading -------------------------------------------------------------------------

    def reader(self, path: Path, label: str, ctx: Any) -> SqlActivityTable | None:
        """Read the file at ``path`` (a CSV file, a .parquet file or a directory of parts) as the python
        reader does, with its checks, warnings and messages; None when not attached (the python
        reader then reads it into its own table)."""
        if self.con is None:
            return None
        report = ctx.report
        if self.read is not None:
            return self._again(path, label, report)
        noted = (list(report.warnings), len(report.skipped), report.skipped_count)
        try:
            if is_parquet(path):
                self._read_parquet(path, label, ctx)
            else:
                self._read_csv(path, label, ctx)
        except _ManyOdd:
            # Held as records these rows would grow with the file: the python reader's table (which
            # moves to disk past SPILL_ROWS rows) reads it again, and what was noted of it goes.
            report.warnings[:], report.skipped[noted[1]:], report.skipped_count = noted[0], [], noted[2]
            self.detach()
            return None
        renames = self._renames(ctx.column_map)
        if renames:  # the map's activity type renames, as the reader applies them to each activity
            self.cur.register("ls_renames", pa.table({"old": list(renames), "new": list(renames.values())}))
            self.cur.execute(f"UPDATE {_TABLE} AS f SET type = r.new FROM ls_renames r WHERE f.type = r.old")
            self.cur.unregister("ls_renames")
        # Each lead id's first and last row: a batch of leads reads only the rows between its leads'
        # least and greatest (the table is in row order, so DuckDB skips the row groups outside), a
        # few row groups when the leads come in the activities' order, as exports usually do.
        self.cur.execute(f"CREATE OR REPLACE TABLE {_SPANS} AS SELECT lead_id, min(n) AS lo, max(n) AS hi "
                         f"FROM {_TABLE} GROUP BY lead_id")
        self.cur.execute(f"CHECKPOINT {_FILE_DB}")  # compressed from here on
        firsts = [(lead_id, order) for lead_id, (order, _) in self.held.first_row.items()]
        insert_rows(self.cur, _FIRSTS, firsts)
        found = self.cur.execute(f"SELECT DISTINCT lead_id FROM {_TABLE} WHERE abs({int(self.as_of_us)} - \"at\") >= "
                                 f"{WHOLE}" + (" OR odd_place" if self.explain else "")).fetchall()
        self.python_ids.update(lead_id for (lead_id,) in found)
        self.read = (path, label, [w for w in report.warnings if w not in noted[0]], report.skipped[noted[1]:],
                     report.skipped_count - noted[2])
        return self

    def _again(self, path: Path, label: str, report: Any) -> SqlActivityTable:
        """The file read again (the scoring pass after the account pass's): the table as it is, with what
        the first read noted in ``report`` again, and the leads met counted afresh."""
        read_path, read_label, warnings, skipped, count = self.read
        if (read_path, read_label) != (path, label):
            raise ValueError(f"{label}: this activities table holds {read_label}")
        for line in warnings:
            report.warn(line)
        for rejection in skipped:
            report.skip(rejection)
        report.skipped_count += count - len(skipped)
        self.restart()
        return self

    def restart(self) -> None:
        """The leads met counted afresh (a second pass over the same leads)."""
        self._matched, self._joined = [], []
        for name in (_MATCHED, _JOINED):
            self.cur.execute(f"DELETE FROM {name}")

    def _renames(self, cmap: Any) -> dict[str, str]:
        """The map's renames of the table's activity types (``ColumnMap.activity_type``)."""
        if cmap is None or not cmap.activity_types:
            return {}
        kinds = [kind for (kind,) in self.cur.execute(f"SELECT DISTINCT type FROM {_TABLE}").fetchall()]
        renamed = {kind: cmap.activity_type(kind) for kind in kinds}
        return {kind: new for kind, new in renamed.items() if new != kind}

    def _read_parquet(self, path: Path, label: str, ctx: Any) -> None:
        """As the python reader's ``_parquet_activity_table``: a row is at ``part:row N``."""
        for part_path, part_label in parquet_parts(path, label):
            self.parts.append((self.rows, part_label))
            with ParquetPart(part_path, part_label) as part:
                plan = _ActivityPlan(part.columns, part_label, label, ctx)
                part.check(plan.targets())
                kinds = [_kind(part.types[name]) for name in part.columns]
                dates = [pa.types.is_date(part.types[name]) for name in part.columns]
                doubles = [pa.types.is_floating(_value_type(part.types[name])) for name in part.columns]
                select = _row_query(kinds, dates, plan, doubles)
                batches = part.file.iter_batches(batch_size=BATCH, columns=part.columns, use_threads=False)
                while (batch := _next_batch(batches, f"{part_label}:row {self.rows - self.parts[-1][0] + 1}")) is not None:
                    first = self.rows + 1
                    self.rows += batch.num_rows
                    odd = self._checked(list(range(first, first + batch.num_rows)), list(batch.columns), select)
                    if not odd:
                        continue
                    # The python reader's own code for these rows, in row order, as their text cells.
                    taken = batch.take(pa.array([n - first for n in odd], pa.int64()))
                    cells = [_text_cells(column) for column in taken.columns]
                    offset = self.parts[-1][0]
                    for order, row in zip(odd, zip(*cells)):
                        where = f"{part_label}:row {order - offset}"
                        lead_id = plan.lead_id(row, order, where, self.held)
                        if lead_id is not None:
                            plan.add(row, lead_id, order, where, self.held)
                    self._held_within_bounds()

    def _read_csv(self, path: Path, label: str, ctx: Any) -> None:
        """As the python reader's ``_activity_table``: a row is at ``file:line``, its line number."""
        self.lines = label
        with open_activity_csv(path, label) as handle:
            plan, width, rows = activity_csv(handle, label, ctx)
            select = _row_query([TEXT] * width, [False] * width, plan)
            while True:
                # The cycle collector paused while a batch's rows are made: they hold no cycles, and its
                # passes over them cost more than the reading (1M rows: 16 s against 9).
                with collector_paused():
                    batch = list(islice(rows, BATCH))
                    whole = [(lineno, row) for lineno, row in batch if type(row) is list and len(row) == width]
                    columns = [pa.array(cells, pa.string()) for cells in zip(*(row for _, row in whole))] or \
                        [pa.array([], pa.string())] * width
                if not batch:
                    break
                self.rows += len(batch)
                odd = set(self._checked([lineno for lineno, _ in whole], columns, select))
                taken = {lineno for lineno, _ in whole} - odd
                for lineno, row in batch:
                    if lineno not in taken:
                        activity_csv_row(plan, width, label, lineno, row, self.held, ctx)
                self._held_within_bounds()

    def _held_within_bounds(self) -> None:
        """Raise _ManyOdd past ODD_ROWS rows the python reader's code read (see :meth:`reader`)."""
        if self.rows - self.sql_rows > ODD_ROWS:
            raise _ManyOdd

    def detach(self) -> None:
        """Not used after all: the tables dropped and the rows held let go (the python reader reads the file)."""
        self.drop()
        self.con = None
        self.held = _HeldActivities()
        self.python_ids = set()

    def _checked(self, numbers: list[int], columns: list[Any], select: str) -> list[int]:
        """The rows (row numbers ``numbers``, cells ``columns``) tested in SQL: those the reader
        takes as they are go into the table; the numbers of the others, in order."""
        names = [f"c{i}" for i in range(len(columns))]
        table = pa.table([pa.array(numbers, pa.int64()), *(plain_column(column) for column in columns)], names=["n", *names])
        odd = insert_checked(self.cur, _TABLE, 'lead_id, n, type, "at", props, id, place, odd_place', select, table,
                             "n", CHECK_CHUNK)
        self.sql_rows += len(numbers) - len(odd)
        return odd

    # --- the reader's table methods --------------------------------------------------------

    def join(self, lead: Lead) -> Lead:
        """The lead as it is: its file activities stay in DuckDB (see :meth:`activities_of`)."""
        self.match(lead.id)
        self._joined.append(lead.id)
        if len(self._joined) >= _FLUSH:
            self._flush()
        return lead

    def join_all(self, relation: str) -> None:
        """:meth:`join` for the leads of a relation on the scorer's connection (its ``id`` column)."""
        for name in (_MATCHED, _JOINED):
            self.con.execute(f"INSERT INTO {name} SELECT id FROM {relation}")

    def match(self, lead_id: str) -> None:
        self._matched.append(lead_id)
        if len(self._matched) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        insert_rows(self.cur, _MATCHED, [(lead_id,) for lead_id in self._matched])
        insert_rows(self.cur, _JOINED, [(lead_id,) for lead_id in self._joined])
        self._matched, self._joined = [], []

    def unmatched(self) -> Iterator[Rejection]:
        """The rows the reader rejects after the last lead, in row order: the first row of each lead id
        no lead has, and the rows that name no lead."""
        self._flush()
        # Each lead id's first row in the table is its span's ``lo`` (the table is not changed once the
        # spans are made): a row an id, not every row of the file (200M rows at ten million leads).
        found: list[tuple[int, str | None, tuple[str, str] | None]] = [
            (n, lead_id, None) for lead_id, n in self.cur.execute(
                f"SELECT lead_id, min(n) FROM (SELECT lead_id, lo AS n FROM {_SPANS} UNION ALL SELECT lead_id, n FROM {_FIRSTS}) "
                f"WHERE lead_id NOT IN (SELECT lead_id FROM {_MATCHED}) GROUP BY lead_id").fetchall()]
        found.extend((order, None, (where, reason)) for order, where, reason in self.held.orphans)
        found.sort(key=lambda item: item[0])
        for order, lead_id, orphan in found:
            if orphan is not None:
                yield Rejection(*orphan)
            else:
                yield Rejection(self._where(order), f"activity for unknown lead {lead_id!r}; every activity's "
                                "lead_id must match an id in the leads file", lead_id)

    def _where(self, order: int) -> str:
        if self.lines is not None:  # a CSV file: rows are at their line numbers
            return f"{self.lines}:{order}"
        offset, label = next((offset, label) for offset, label in reversed(self.parts) if offset < order)
        return f"{label}:row {order - offset}"

    def close(self) -> None:
        """Nothing to drop when the read ends: the scoring still joins the table (see :meth:`drop`)."""

    def drop(self) -> None:
        """The tables dropped, once the run is scored."""
        if self.cur is not None and self.con is not None:
            for name in (_TABLE, _MATCHED, _JOINED, _FIRSTS, _SPANS):
                self.cur.execute(f"DROP TABLE IF EXISTS {name}")
            self.cur.close()
            self.cur = None

    # --- what the scoring reads ------------------------------------------------------------

    def held_of(self, lead_id: str) -> list[tuple[int, Activity]]:
        """(row number, activity) of the lead's rows the python reader read."""
        return self.held.by_lead.get(lead_id, [])

    def activities_of(self, lead_id: str) -> list[Activity]:
        """The lead's usable activities, in row order: the records the python reader makes of them."""
        return self.activities_of_leads([lead_id]).get(lead_id, [])

    def activities_of_leads(self, lead_ids: Sequence[str]) -> dict[str, list[Activity]]:
        """:meth:`activities_of` for several leads, with one query (each query reads the whole table)."""
        found: dict[str, list[tuple[int, Activity]]] = {lead_id: list(self.held_of(lead_id)) for lead_id in lead_ids}
        if not found:
            return {}
        rows = self.con.execute(f"SELECT lead_id, n, type, \"at\", props, id FROM {_TABLE} "
                                "WHERE lead_id IN (SELECT unnest(?::VARCHAR[]))", [list(lead_ids)]).fetchall()
        for lead_id, n, kind, at, props, ident in rows:
            properties = EMPTY if props is None else orjson.loads(props)
            found[lead_id].append((n, Activity(kind, _EPOCH + timedelta(microseconds=at), properties, ident)))
        return {lead_id: [activity for _, activity in sorted(acts, key=lambda item: item[0])]
                for lead_id, acts in found.items()}

    def joined(self, leads: Sequence[Lead]) -> list[Lead]:
        """``leads`` with their file activities, as the python reader hands them on."""
        activities = self.activities_of_leads([lead.id for lead in leads])
        return [join_activities(lead, activities[lead.id]) for lead in leads]

    def file_rows(self) -> str:
        """A query of the batch's file activities (``b_leads``, registered on the scorer's connection,
        names the batch's leads): k, order among the file's rows, type, time, properties and evidence
        text, as the batch's own activity rows; only the rows between the first and the last of its leads'."""
        lo, hi = self.con.execute(f"SELECT min(s.lo), max(s.hi) FROM {_SPANS} s JOIN b_leads l ON s.lead_id = l.id").fetchone()
        ev = q.sql(evidence_sql(q.col("type", "f"), q.utc_day_text(q.col("at", "f")), q.col("place", "f"))) \
            if self.explain else "''"
        return (f"SELECT l.k, f.n AS ord, f.type, f.\"at\", f.props, {ev} AS ev FROM {_TABLE} f "
                f"JOIN b_leads l ON f.lead_id = l.id WHERE f.n BETWEEN {int(lo or 0)} AND {int(hi or -1)}")

    def count_types(self, known: Any, counts: Counter[str]) -> None:
        """Add the file activities of the leads handed on whose type is not in ``known`` to ``counts``,
        as the python reader's records would have been counted."""
        self._flush()
        # The rows of unknown types first (few, or none), then joined to the ids handed on: DuckDB builds
        # its hash table on the smaller side, where a semi-join of every row built it on every id handed
        # on (ten million at ten million leads: the run's peak).
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE ls_file_odd_types AS SELECT lead_id, n, type FROM {_TABLE} "
                         f"WHERE type NOT IN (SELECT unnest(?::VARCHAR[])) AND lead_id NOT IN (SELECT unnest(?::VARCHAR[]))",
                         [sorted(known), sorted(self.counted)])
        try:
            found = self.cur.execute(
                f"SELECT o.type, count(DISTINCT o.n) FROM ls_file_odd_types o JOIN {_JOINED} j ON j.lead_id = o.lead_id "
                "GROUP BY o.type").fetchall()
        finally:
            self.cur.execute("DROP TABLE ls_file_odd_types")
        joined = {lead_id for (lead_id,) in self.con.execute(
            f"SELECT DISTINCT lead_id FROM {_JOINED} WHERE lead_id IN (SELECT unnest(?::VARCHAR[]))",
            [sorted(self.held.by_lead)]).fetchall()} if self.held.by_lead else set()
        for kind, count in found:
            counts[kind] += count
        for lead_id in joined - self.counted:
            counts.update(activity.type for _, activity in self.held.by_lead[lead_id] if activity.type not in known)


def insert_checked(cur: Any, target: str, columns: str, select: str, rows: pa.Table, key: str, chunk: int) -> list[Any]:
    """Into ``target``, ``columns`` of the rows ``select`` (over ``ls_rows``: ``rows``) takes, its
    ``simple`` column true; the ``key`` of the others, in order. The rows go to DuckDB in chunks of
    ``chunk`` (one Arrow chunk is one thread's work, so both threads check them), and the query runs
    again for the others only when some were not taken (rare: a cell with spaces around it, a value of
    another kind). MATERIALIZED: a filter on ``simple`` pushed into the query computed each value twice."""
    cur.register("ls_rows", pa.Table.from_batches(rows.to_batches(max_chunksize=chunk), rows.schema))
    try:
        (taken,), = cur.execute(f"INSERT INTO {target} WITH r AS MATERIALIZED ({select}) "
                                f"SELECT {columns} FROM r WHERE simple").fetchall()
        if taken == rows.num_rows:
            return []
        return [value for (value,) in cur.execute(f"SELECT {key} FROM ({select}) WHERE NOT simple ORDER BY {key}").fetchall()]
    finally:
        cur.unregister("ls_rows")


def _value_type(arrow_type: Any) -> Any:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _next_batch(batches: Iterator[Any], where: str) -> Any:
    """The next batch of a part, or None after the last; a damaged page as ParquetPart.rows words it."""
    try:
        return next(batches, None)
    except Exception as err:  # noqa: BLE001 - a damaged page shows only when its batch is read
        raise InputError(where, f"cannot read the Parquet data ({first_line(err)})",
                         "write the file again; it is damaged or truncated") from None


def _row_query(kinds: Sequence[str | None], dates: Sequence[bool], plan: Any,
               doubles: Sequence[bool] | None = None) -> str:
    """The query over a batch (``ls_rows``: n, c0, c1, ...) that tests each row and makes its values;
    ``kinds``: each column's kind (leadscore.io.parquet's), ``dates``: which are dates, ``doubles``:
    which are floats (of the number kind, the others are decimals)."""
    doubles = doubles or [False] * len(kinds)
    # A map's words for no value (plan.missing, "" without a map): a cell whose strip() is one is no
    # property. The SQL takes cells with nothing to strip, so only the words with nothing to strip can match.
    missing = sorted(word for word in plan.missing if word and word == word.strip())
    prefix = plan.cmap.id_prefix if plan.cmap is not None else ""
    checks: list[exp.Expression] = []
    values: dict[str, exp.Expression] = {}
    entries: list[tuple[str, exp.Expression]] = []  # (property name, its JSON value or NULL when absent)
    for index, key in plan.columns:
        column, kind = q.col(f"c{index}"), kinds[index]
        if key == "lead_id":
            text = column if kind == TEXT else q.cast(column, "VARCHAR") if kind == INTEGER else q.lit(None)
            values["lead_id"] = q.concat(q.lit(prefix), text) if prefix else text  # the map's prefix, as the reader adds it
            checks.append(_clean(text.copy()))
        elif key == "type":
            values["type"] = column
            checks.append(_clean(column))
        elif key == "at":
            at, ok = _time(column, kind, dates[index])
            values["at"] = at
            checks.append(ok)
        elif key == "id":
            text = column if kind == TEXT else q.cast(column, "VARCHAR") if kind == INTEGER else q.lit(None)
            empty = q.or_(q.is_null(text), text.copy().eq(q.lit("")))
            values["id"] = q.case([(empty, q.lit(None))], text.copy())
            checks.append(q.or_(empty.copy(), _clean(text.copy())))
        elif key.startswith("properties."):
            value, ok = _property(column, kind, doubles[index], missing)
            entries.append((key[11:], value))
            checks.append(ok)
    for index, name in plan.unknown:
        value, ok = _property(q.col(f"c{index}"), kinds[index], doubles[index], missing)
        entries.append((name, value))
        checks.append(ok)
    # Each property's JSON value is made once (layer 1), the object of them and the row's test from those (layer 2).
    names = [f"v{i}" for i in range(len(entries))]
    layer1 = q.select(q.col("n"), *(value.as_(name) for name, value in values.items()),
                      *(value.as_(name) for name, (_, value) in zip(names, entries)),
                      q.and_(*(q.coalesce(check, q.lit(False)) for check in checks)).as_("ok")).from_("ls_rows")
    if "id" not in values:
        layer1 = layer1.select(q.lit(None).as_("id"))
    named = [(key, q.col(name)) for name, (key, _) in zip(names, entries)]
    simple = q.and_(q.col("ok"), *(q.coalesce(exp.NEQ(this=q.col(name), expression=q.lit(_ODD)), q.lit(True))
                                   for name in names))
    place, odd = _place(named)
    layer2 = q.select(q.col("n"), q.col("lead_id"), q.col("type"), q.col("at"), q.col("id"), simple.as_("simple"),
                      _object(named).as_("props"), place.as_("place"), odd.as_("odd_place")).from_(layer1.subquery("r1"))
    return q.sql(layer2)


def _clean(text: exp.Expression) -> exp.Expression:
    """Text the reader takes as it is: not empty, nothing Python's strip() removes at either end."""
    return q.and_(q.not_null(text), exp.NEQ(this=text.copy(), expression=q.lit("")),
                  q.not_(q.space_around(text.copy())))


def _time(column: exp.Expression, kind: str | None, date: bool) -> tuple[exp.Expression, exp.Expression]:
    """(the time in microseconds, whether the reader reads the cell as that time): a timestamp (one
    without a zone is UTC, as the reader takes it), a date (its midnight UTC), or text of the form
    lines.STAMP; within the years Python's datetime holds (DuckDB also has year 0 and before)."""
    if kind == TIME:
        us = q.fn("epoch_us", q.cast(column, "TIMESTAMP") if date else column)
    elif kind == TEXT:
        us = q.case([(q.fn("regexp_full_match", column.copy(), q.lit(STAMP)), stamp_us(column))], q.lit(None))
    else:
        return q.lit(None), q.lit(False)
    ok = exp.Between(this=us.copy(), low=q.lit(_FIRST_US), high=q.lit(_LAST_US))
    return us, ok


def _finite(value: exp.Expression) -> exp.Expression:
    return q.fn("isfinite", value)


def _try_double(text: exp.Expression) -> exp.Expression:
    return exp.TryCast(this=text, to=exp.DataType.build("DOUBLE"))


def _property(column: exp.Expression, kind: str | None, double: bool = False,
              missing: Sequence[str] = ()) -> tuple[exp.Expression, exp.Expression]:
    """(the cell's value as JSON text, NULL when the reader leaves it out; whether the SQL reads it as
    ``cell_value`` does): text, whole numbers within 2**53, decimals and true/false; anything else (a
    decimal type, a time, text with spaces around it, a longer whole number, a decimal past a double's
    range or not written as JSON writes numbers) is the python reader's. ``double``: a float column.
    ``missing``: a map's words for no value besides the empty cell (the cell as it is; one with spaces
    around it is the python reader's anyway)."""
    if kind == TEXT:
        # One test first for most text: it starts with no space, digit, sign, dot, t or f and ends with no space.
        value = q.case([
            (q.or_(q.is_null(column), column.copy().eq(q.lit("")), *([q.in_(column.copy(), missing)] if missing else [])),
             q.lit(None)),
            (_plain(column), q.cast(q.fn("to_json", column.copy()), "VARCHAR")),
            (_full(column, _BLANK), q.lit(None)),
            (q.space_around(column.copy()), q.lit(_ODD)),
            (_full(column, "[Tt][Rr][Uu][Ee]"), q.lit("true")),
            (_full(column, "[Ff][Aa][Ll][Ss][Ee]"), q.lit("false")),
            (_full(column, _SHORT_INT), q.cast(q.cast(column.copy(), "BIGINT"), "VARCHAR")),
            (_full(column, _CELL_INT), q.lit(_ODD)),
            # A decimal written as JSON writes a number is its own JSON text (both read it correctly rounded).
            (q.and_(_full(column, _JSON_NUMBER), _finite(_try_double(column.copy()))), column.copy()),
            (_full(column, _CELL_FLOAT), q.lit(_ODD)),
        ], q.cast(q.fn("to_json", column.copy()), "VARCHAR"))
        return value, q.lit(True)
    if kind == INTEGER:
        fits = exp.LTE(this=q.fn("abs", q.cast(column, "HUGEINT")), expression=q.lit(_SAFE_INT))
        text = q.cast(column.copy(), "VARCHAR")
        value = q.case([(q.in_(text, missing), q.lit(None))], text.copy()) if missing else text
        return value, q.or_(q.is_null(column.copy()), fits)
    if kind == BOOLEAN:
        words = [(column, q.lit("true")), (q.not_(column.copy()), q.lit("false"))]
        value = q.case(words, q.lit(None))
        if missing:
            value = q.case([(q.in_(value.copy(), missing), q.lit(None))], value)
        return value, q.lit(True)
    if kind in (None, "null"):
        return q.lit(None), q.lit(True)
    if kind == NUMBER and double and not missing:  # (with a map's words, Python's text of a float decides)
        # DuckDB writes a double's shortest round-trip text; NaN and infinities are Python's ("nan" is text to it).
        return q.cast(column, "VARCHAR"), q.or_(q.is_null(column.copy()), _finite(column.copy()))
    return q.lit(None), q.is_null(column)  # a decimal or a time: the python reader's


def _full(column: exp.Expression, pattern: str) -> exp.Expression:
    return q.fn("regexp_full_match", column.copy(), q.lit(pattern))


def _plain(column: exp.Expression) -> exp.Expression:
    """Text that is its own property value (see _PLAIN_FIRST), tested at its two ends."""
    return q.and_(q.fn("regexp_matches", column.copy(), q.lit(_PLAIN_FIRST)),
                  q.not_(q.fn("regexp_matches", column.copy(), q.lit(q.SPACE_LAST))))


def _object(entries: Sequence[tuple[str, exp.Expression]]) -> exp.Expression:
    """The properties as a JSON object (NULL when none): the first present value of each name, in
    column order, as the reader's dict keeps them."""
    parts = []
    for i, (name, value) in enumerate(entries):
        earlier = [other for other_name, other in entries[:i] if other_name == name]
        present = q.and_(q.not_null(value.copy()), *(q.is_null(other.copy()) for other in earlier))
        parts.append(q.case([(present, q.concat(q.lit(json.dumps(name) + ":"), value.copy()))], q.lit(None)))
    if not parts:
        return q.lit(None)
    joined = q.fn("concat_ws", q.lit(","), *parts)
    return q.case([(joined.eq(q.lit("")), q.lit(None))], q.concat(q.lit("{"), joined.copy(), q.lit("}")))


def _final(entries: Sequence[tuple[str, exp.Expression]], name: str) -> exp.Expression | None:
    """The JSON value property ``name`` ends with (its first present column), or None without a column."""
    found = [value for key, value in entries if key == name]
    if not found:
        return None
    return q.case([(q.not_null(value.copy()), value.copy()) for value in found], q.lit(None))


def _place(entries: Sequence[tuple[str, exp.Expression]]) -> tuple[exp.Expression, exp.Expression]:
    """(model.evidence_place of the properties when it is text, whether it is a value of another
    kind): the first of url, asset and title that is not empty, false or 0."""
    pairs: list[tuple[exp.Expression, exp.Expression]] = []
    odd: list[tuple[exp.Expression, exp.Expression]] = []
    for name in ("url", "asset", "title"):
        value = _final(entries, name)
        if value is None:
            continue
        zero = _try_double(value.copy()).eq(q.lit(0))  # 0, 0.0, -0.0, 0e5; NULL for text
        truthy = q.and_(q.not_null(value), exp.NEQ(this=value.copy(), expression=q.lit("false")),
                        q.not_(q.coalesce(zero, q.lit(False))))
        text = q.fn("starts_with", value.copy(), q.lit('"'))
        pairs.append((truthy, q.case([(text, q.fn("json_extract_string", value.copy(), q.lit("$")))], q.lit(None))))
        odd.append((truthy.copy(), q.not_(text.copy())))
    if not pairs:
        return q.lit(None), q.lit(False)
    return q.case(pairs, q.lit(None)), q.case(odd, q.lit(False))


__all__ = ["SqlActivityTable"]
