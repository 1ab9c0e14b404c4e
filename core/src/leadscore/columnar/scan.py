"""Scores a JSON Lines file with the columnar engine: read block by block into Arrow columns, scored in SQL.

The file is cut into blocks of whole lines (16 MB, about 8,000 generated leads each); each block is
decoded into Arrow columns by the python reader's typed decoder (:mod:`leadscore.columnar.lines`)
and scored and written while the next is decoded in a thread of its own (:class:`Ahead`); nothing
of a block is held once the one after it is scored (its lines, its DuckDB tables), so memory stays
flat whatever the file's size; the lead ids met are kept as 8-byte hashes, mostly on disk. Lines
that decoder does not take are parsed by the python reader's line parser; leads with values the
SQL does not reproduce are scored by the python engine; both in their place. When the rulepacks
need the account pass, a first pass over the blocks summarises every account in SQL, and keeps each block's
tables on disk as Parquet (:class:`KeptBlocks`) so that the scoring pass reads them back in DuckDB
instead of decoding the lines a second time (and reads a block's lines again only when asked for);
that pass also writes each block's lead ids to disk and finds the duplicates once, at its end
(:class:`LeadIds`); without it, each block's ids are checked against those met before, the
latest in DuckDB's memory and the earlier in files (:class:`SeenIds`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial, reduce
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from leadscore.accounts import account_key
from leadscore.columnar import higher_limit
from leadscore.columnar import sql as q
from leadscore.columnar.accounts import AccountPass, SqlAccounts
from leadscore.columnar.engine import BATCH, NotColumnar, Rows, timed, with_file_rows
from leadscore.columnar.files import ParquetFolder, copy_parquet, insert_rows
from leadscore.columnar.lines import activity_sql, decode_block
from leadscore.columnar.run import add_lead, halve_or_record
from leadscore.errors import InputError, first_line
from leadscore.explain import count_unscored
from leadscore.io.duplicates import DEDUPE_FIX, merge
from leadscore.io.maps import ColumnMap
from leadscore.io.readers import MAX_LINE_BYTES, ReadReport, line_context, parse_jsonl_line
from leadscore.model import Lead, Rejection, ScoreCard
from leadscore.rulepack.fields import misfit_fields
from leadscore.rulepack.schema import CUSTOM_FIELDS

# About 8,000 generated leads. A block's lines, the next block decoded ahead and DuckDB's work on
# this one are what a scan holds beyond its start: with blocks of 24 MB, a million leads with
# firr-base peaked at 466 MiB and ten million at 501 MiB, over the 500 MB target; with 16 MB, 413
# MiB at a million, 8% more time; every installed pack 392,876 KB against 411,668, 5% more time
# (bench/README.md, sixteenth round).
BLOCK_BYTES = 16 << 20
# A part of a block DuckDB runs out of memory on is halved until it is this small (see _in_parts).
MIN_PART_LINES = 256
# With --explain every lead's full ledger is built at once: 6 MB of lines (about 3,000 generated
# leads) stay within DuckDB's memory limit (24 MB do not, with firr-base on generated leads).
EXPLAIN_BLOCK_BYTES = 6 << 20


def scan_jsonl(engine: Any, path: str, label: str, when: datetime, *, explain: bool, top: int,
               block_bytes: int | None = None, render: str | None = None, report: ReadReport | None = None,
               unknown_types: Counter[str] | None = None,
               misfits: Counter[tuple[str, str]] | None = None, dedupe: bool = False,
               column_map: ColumnMap | None = None) -> Iterator[Any] | None:
    """Cards and rejections for every line of ``path`` in order, or None when the columnar engine
    cannot read this file or run this plan (the caller then reads and scores it the python way).

    ``render`` (jsonl, csv or parquet: the output format): a lead scored in SQL comes as a
    :class:`~leadscore.columnar.Rendered` line (a :class:`~leadscore.columnar.RenderedRow` for parquet),
    with its ledger under ``explain``, when the plan can make it; else as a ScoreCard.
    A block DuckDB cannot score (out of memory, say) is read again by the python reader and scored
    by the python engine (same cards; :func:`leadscore.columnar.run.fallback_note` says so).
    As the python reader and ``leadscore score`` do: a later lead with an id met before is rejected
    as a duplicate (with ``dedupe``, the copies of an id are merged into one lead, given at its last
    copy's line, as ``--dedupe`` merges them), activities left out are noted in ``report``, activity types outside the
    run's vocabulary are counted in ``unknown_types``, and custom field values that do not fit
    their declared ``[fields]`` type in ``misfits`` ((field, type) -> leads). ``column_map``: an
    export's map (``--map``), whose activity type renames are the part a JSON Lines lead reads.
    """
    scorer = scan_scorer(engine, when, explain=explain, top=top, render=render)
    if scorer is None:
        return None
    if block_bytes is None:
        block_bytes = EXPLAIN_BLOCK_BYTES if explain else BLOCK_BYTES
    reader = _BlockReader(engine, scorer, path, label, when, block_bytes, report, unknown_types, misfits, dedupe,
                          column_map)
    blocks = reader.blocks()
    first = next(blocks, None)
    if first is None:
        raise InputError(label, "no leads in this file", 'write one JSON object per line, such as {"id": "L-1001"}')
    return reader.scored(first, blocks)


def scan_scorer(engine: Any, when: datetime, *, explain: bool, top: int, render: str | None) -> Any:
    """The scorer of a scan that reads a file itself, or None when the run's plan has no columnar form
    or a router reads more of a lead than a card keeps (the leads are then read as records)."""
    stub = {"id", "account_id"}
    if any(not stub.issuperset(getattr(fn, "reads_lead", ("*",))) for fn in engine.pm.router_functions()):
        return None
    return engine.columnar_scorer(when, explain=explain, top=top, values=False, render=render)


def line_blocks(path: str, block_bytes: int,
                spans: list[tuple[int, int, int, int]] | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, the lines of a block without their line ends) of the file at
    ``path``, in file order, each block about ``block_bytes`` of whole lines (a longer line is a
    block of its own); a last line without a line end is a line. With ``spans``, each block's
    (first line, number of lines, first byte, byte after its last line end) is added to it as the
    block is handed on: :class:`SpanLines` reads those lines again.

    Only the lines outlive a block's reading: the bytes read are dropped before the lines are
    handed on (kept, they were two more copies of the block while it was scored), and the lines
    are not held here once handed on."""
    first, carry, start, read = 1, b"", 0, 0
    with open(path, "rb") as handle:
        while True:
            data = handle.read(block_bytes)
            if not data:
                if carry:
                    if spans is not None:
                        spans.append((first, 1, start, read))
                    yield first, [carry]
                return
            read += len(data)
            lines = (carry + data if carry else data).split(b"\n")
            carry, data = lines.pop(), b""  # what follows the last line end
            if not lines:
                continue
            count = len(lines)
            if spans is not None:
                spans.append((first, count, start, read - len(carry)))
            start = read - len(carry)
            yield first, lines
            del lines  # not held while the next block is read
            first += count


class SpanLines:
    """The lines of one block of ``line_blocks`` (its span: ``count`` lines from byte ``start`` to
    ``end``), read from the file only when one is asked for, then held with the block."""

    def __init__(self, path: str, count: int, start: int, end: int) -> None:
        self.path, self.count, self.start, self.end = path, count, start, end
        self._lines: list[bytes] | None = None

    def read(self) -> list[bytes]:
        if self._lines is None:
            with open(self.path, "rb") as handle:
                handle.seek(self.start)
                lines = handle.read(self.end - self.start).split(b"\n")
            if len(lines) > self.count:
                lines.pop()  # the empty piece after the block's last line end
            self._lines = lines
        return self._lines

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> bytes:
        return self.read()[index]


def renamed_types(acts: pa.Table, column_map: ColumnMap | None) -> pa.Table:
    """A decoded block's activities with each type through the map's ``[activity_types]`` renames
    (as the python reader renames a lead's, ``ColumnMap.activity_type``), each distinct type once.
    The evidence text is made from the type in SQL afterwards, and the time order does not read it."""
    if column_map is None or not column_map.activity_types or not acts.num_rows:
        return acts
    index = acts.schema.get_field_index("type")
    chunks = []
    for chunk in acts.column(index).chunks:
        encoded = chunk.dictionary_encode()
        kinds = pa.array([column_map.activity_type(kind) for kind in encoded.dictionary.to_pylist()], pa.string())
        chunks.append(kinds.take(encoded.indices))
    return acts.set_column(index, acts.schema.field(index), pa.chunked_array(chunks, pa.string()))


class _Block:
    """One block of the file read into the ``leads`` and ``activities`` tables, and its odd lines."""

    def __init__(self, first: int, last: int, by_python: dict[int, Lead | Rejection],
                 lines: list[bytes] | SpanLines, column_map: ColumnMap | None = None) -> None:
        self.first, self.last, self.by_python, self.lines = first, last, by_python, lines
        self.column_map = column_map

    def read_python(self, label: str, lines: tuple[int, int] | None = None) -> dict[int, Lead | Rejection]:
        """The block's lines (or those numbered ``lines``, first and last) read by the python reader,
        for leads the SQL could not score: the lines the SQL took become leads beside the odd lines and
        duplicates already read. Returns the leads and rejections read here."""
        low, high = lines if lines is not None else (self.first, self.last)
        read = parsed_lines(self.lines, self.first, [k for k in range(low, high + 1) if k not in self.by_python], label,
                            self.column_map)
        self.by_python.update(read)
        return read


def parsed_lines(lines: list[bytes] | SpanLines, first: int, numbers: Iterable[int],
                 label: str, column_map: ColumnMap | None = None) -> dict[int, Lead | Rejection]:
    """The python reader's lead or rejection of each line numbered in ``numbers`` of the block of
    ``lines`` from line ``first`` (a blank line gives nothing; ``column_map``: the run's map), by
    number; what they leave out is not noted again (it was when the block was read)."""
    context = line_context(None, column_map)
    read: dict[int, Lead | Rejection] = {}
    for number in numbers:
        item = parsed_line(lines[number - first], number, label, context)
        if item is not None:
            read[number] = item
    return read


def parsed_line(raw: bytes, number: int, label: str, context: Any) -> Lead | Rejection | None:
    """The python reader's lead or rejection of the line ``raw`` (without its line end), numbered
    ``number`` in the file ``label`` (None for a blank line)."""
    # A line longer than the python reader reads is refused as it refuses it.
    return parse_jsonl_line(None if len(raw) > MAX_LINE_BYTES else raw + b"\n", f"{label}:{number}", number == 1,
                            context)


class _BlockReader:
    def __init__(self, engine: Any, scorer: Any, path: str, label: str, when: datetime, block_bytes: int,
                 report: ReadReport | None, unknown_types: Counter[str] | None,
                 misfits: Counter[tuple[str, str]] | None = None, dedupe: bool = False,
                 column_map: ColumnMap | None = None) -> None:
        self.engine, self.scorer, self.path, self.label, self.when = engine, scorer, path, label, when
        self.column_map = column_map  # a JSON Lines file's map: its activity type renames
        self.block_bytes = block_bytes
        self.report, self.unknown_types, self.misfits = report, unknown_types, misfits
        self.declared = engine.vocabulary.get(CUSTOM_FIELDS) or {}
        self.known_types = sorted(engine.vocabulary.get("activity_types", frozenset()))
        # Two passes with the account pass, and with --dedupe (``dedupe``): the first finds the lines
        # whose id another line has, and the copies of an id are merged at its last line (Copies).
        two_passes = engine.needs_accounts or dedupe
        self.last_pass = not two_passes
        self.ahead: Ahead | None = None
        # The first pass's blocks, kept for the scoring pass (None: one pass, or KEEP_BLOCKS off),
        # and where each block's lines are in the file (the scoring pass reads them only if asked).
        self.kept = KeptBlocks(scorer.tmp.name) if two_passes and KEEP_BLOCKS else None
        self.spans: list[tuple[int, int, int, int]] = []
        # With two passes, the first pass's lead ids (the scoring pass then knows which lines are
        # duplicates); with one, the ids met so far, each block checked against them as it is read.
        self.ids = LeadIds(scorer.tmp.name, with_ids=dedupe) if two_passes else None
        self.seen: SeenIds | None = None
        self.copies = Copies() if dedupe else None
        self.accounts: SqlAccounts | None = None  # the account pass's sums, once made

    def blocks(self) -> Iterator[_Block]:
        """Each block read into the connection's ``leads`` and ``activities`` tables in turn."""
        con, scorer = self.scorer.con, self.scorer
        as_of_us = q.micros(self.when)
        if self.ids is None:
            self.seen = SeenIds(con, scorer.tmp.name)
        ahead = self.ahead = Ahead(self._decoded(as_of_us), READ_AHEAD)
        try:
            ahead.ask()
            while True:
                with timed("read wait"):  # for the block being decoded ahead, if it is not ready
                    got = ahead.take()
                if got is None:
                    break
                first, lines, decoded = got
                del got
                # The last block's tables go before this block is read, not when this one replaces them.
                for table in ("leads", "activities", "block_ids", "block_hashes", "met"):
                    con.execute(f"DROP TABLE IF EXISTS {table}")
                scorer.drop_batch()
                with timed("read tables"):
                    odd = self._block_tables(first, lines, decoded, as_of_us)
                del decoded  # in DuckDB's tables now: not held while the block is scored
                # The next block is decoded while DuckDB works on this one, but not beside DuckDB reading the
                # Arrow columns above (that took twice as long beside the decoder: both hold Python's lock).
                # The scoring pass starts it once the stored signal step is made (see _score_sql), which
                # measured faster than starting it here (bench/README.md, eighth round); the account pass's
                # first reading starts it here.
                if not self.last_pass:
                    ahead.ask()
                with timed("read odd lines"):
                    by_python = self._odd_lines(first, lines, odd, as_of_us)
                if self.copies is not None and self.last_pass:
                    self._merge_copies(by_python, first, lines, as_of_us)
                else:
                    self._duplicates(by_python, first, first + len(lines) - 1)
                if self.last_pass:
                    self._count_types(by_python)
                    self._count_misfits(by_python)
                yield self._block(first, first + len(lines) - 1, by_python, lines)
                del lines, by_python  # the block's 16 MB of lines are the caller's now: not held here
        finally:
            ahead.close()
        self.last_pass = True

    def _block(self, first: int, last: int, by_python: dict[int, Lead | Rejection], lines: Any) -> _Block:
        return _Block(first, last, by_python, lines, self.column_map)

    def _decoded(self, as_of_us: int) -> Iterator[tuple[int, list[bytes] | SpanLines, Any]]:
        """(number of the first line, the lines, their decoded rows or None for a kept block) of each
        block in turn: Python and Arrow only, no DuckDB, so it may run in a thread of its own (see Ahead)."""
        kept = self.kept
        if kept is not None and self.last_pass:
            yield from self._kept_or_decoded(as_of_us)
            return
        for first, lines in line_blocks(self.path, self.block_bytes, None if self.last_pass else self.spans):
            decoded = self._decode(lines, first, as_of_us)
            yield first, lines, decoded
            del lines, decoded

    def _kept_or_decoded(self, as_of_us: int) -> Iterator[tuple[int, SpanLines, Any]]:
        """The scoring pass's blocks after the account pass kept them: the blocks the first pass read,
        their lines read from the file only when asked for (odd lines, a block left to the python
        engine); a block it could not keep is read and decoded again (as ``_decoded``)."""
        assert self.kept is not None
        for first, count, start, end in self.spans:
            lines = SpanLines(self.path, count, start, end)
            if self.kept.has(first):
                yield first, lines, None  # read back from the account pass's copy (see _block_tables)
                continue
            decoded = self._decode(lines.read(), first, as_of_us)
            yield first, lines, decoded
            del lines, decoded

    def _decode(self, lines: list[bytes], first: int, as_of_us: int) -> Any:
        with timed("read decode"):
            return decode_block(lines, first, as_of_us, self.scorer.numeric_fields, self.scorer.reads_props,
                                self.scorer.explain)

    def _block_tables(self, first: int, lines: list[bytes] | SpanLines, decoded: Any, as_of_us: int) -> list[int]:
        """``leads`` and ``activities`` of the block of ``lines`` from line ``first``, from its decoded
        rows or (``decoded`` None) from the account pass's copy; the numbers of the lines left to the
        python reader. The account pass keeps a copy of each block as read here (before its odd lines
        and duplicates, which each pass reads and checks as it goes); a copy that cannot be written
        or read back leaves that block to be decoded again."""
        kept = self.kept
        if decoded is None:
            assert kept is not None
            odd = kept.load(self.scorer.con, first)
            if odd is not None:
                return odd
            decoded = self._decode(lines.read() if isinstance(lines, SpanLines) else lines, first, as_of_us)
        odd = self._tables(decoded, as_of_us)
        if kept is not None and not self.last_pass:
            with timed("keep block"):
                kept.keep(self.scorer.con, first, odd)
        return odd

    def _tables(self, decoded: Any, as_of_us: int) -> list[int]:
        """``leads`` and ``activities`` from a decoded block; the numbers of the lines left to the
        python reader (the decoder's, and those with an activity time the SQL does not read)."""
        con = self.scorer.con
        con.register("in_leads", decoded.leads)
        con.register("in_acts", renamed_types(decoded.activities, self.column_map))
        rows = activity_sql(as_of_us, "in_acts", evidence=self.scorer.explain)
        con.execute(f"CREATE OR REPLACE TEMP TABLE activities AS {rows}")
        bad = [k for (k,) in con.execute('SELECT DISTINCT k FROM activities WHERE "at" IS NULL').fetchall()]
        keep = ""
        if bad:
            con.register("bad_lines", pa.table({"k": pa.array(bad, pa.int64())}))
            con.execute("DELETE FROM activities WHERE k IN (SELECT k FROM bad_lines)")
            keep = " WHERE k NOT IN (SELECT k FROM bad_lines)"
        con.execute(f"CREATE OR REPLACE TEMP TABLE leads AS SELECT * FROM in_leads{keep}")
        for name in ("in_leads", "in_acts", *(("bad_lines",) if bad else ())):
            con.unregister(name)
        return sorted(decoded.odd + bad)

    def _duplicates(self, by_python: dict[int, Lead | Rejection], first: int, last: int) -> None:
        """Leads whose id an earlier lead of the file has: out of ``leads``, rejected in their place as
        the python reader's duplicate check words it. With the account pass, that pass notes each
        block's ids and finds the duplicates at its end (:class:`LeadIds`, and ``finish`` leaves their
        contacts out); the scoring pass rejects them as here."""
        con = self.scorer.con
        con.execute("CREATE OR REPLACE TEMP TABLE block_ids (k BIGINT, id VARCHAR)")
        con.execute("INSERT INTO block_ids SELECT k, id FROM leads")
        python_ids = [(k, item.id) for k, item in by_python.items() if isinstance(item, Lead)]
        insert_rows(con, "block_ids", python_ids)
        if self.ids is not None and not self.last_pass:
            self.ids.note(con, self.label)
            return
        if self.ids is not None:
            found = con.execute("SELECT k, id FROM block_ids WHERE k IN (SELECT k FROM later_ids WHERE k BETWEEN ? AND ?) "
                                "ORDER BY k", [first, last]).fetchall()
        else:
            assert self.seen is not None
            self.seen.find_met(con)
            found = con.execute(
                "SELECT k, id FROM (SELECT k, id, row_number() OVER (PARTITION BY id ORDER BY k) AS rn FROM block_ids) b "
                "WHERE rn > 1 OR hash(id) IN (SELECT h FROM met) ORDER BY k").fetchall()
            self.seen.add_new(con, self.label)
        if not found:
            return
        for k, lead_id in found:
            by_python[k] = Rejection(f"lead {lead_id}", f"duplicate lead id {lead_id!r}: an earlier row of {self.label} "
                                     f"has it and was scored; {DEDUPE_FIX}", lead_id)
        _drop_lines(con, [k for k, _ in found])

    def _merge_copies(self, by_python: dict[int, Lead | Rejection | None], first: int, lines: Any,
                      as_of_us: int) -> tuple[list[int], list[tuple[int, Lead]]]:
        """--dedupe: the block's copies of ids that more than one line has (``ls_copies``) out of ``leads``;
        each id's merged lead at its last line (into ``leads`` when the SQL takes it), None at the
        others (a line that gives nothing, as the python reader's merge_duplicates gives nothing
        there). Returns the block's copies' lines and the merged leads given in it, (line, lead)."""
        assert self.copies is not None
        con = self.scorer.con
        found = con.execute("SELECT k, last, id FROM ls_copies WHERE k BETWEEN ? AND ? ORDER BY k",
                            [first, first + len(lines) - 1]).fetchall()
        if not found:
            return [], []
        _drop_lines(con, [k for k, _, _ in found])
        merged = self._merged_in(self.copies, first, lines, found)
        for k, _, _ in found:
            by_python[k] = None
        by_python.update(self._add_odd(merged, as_of_us))
        return [k for k, _, _ in found], merged

    def _merged_in(self, copies: Copies, first: int, lines: Any,
                   found: list[tuple[int, bool, str]]) -> list[tuple[int, Lead]]:
        """The copies on ``found``'s lines ((line, its id's last, id)) of the block of ``lines`` from
        line ``first`` held in ``copies`` (in the form :meth:`_copy_forms` gives), and the merged lead
        of each id whose last copy is among them, (line, lead): the copies read by the python reader's
        code and merged in line order (leadscore.io.duplicates.merge), as merge_duplicates merges them."""
        forms = self._copy_forms(first, lines, [k for k, _, _ in found])
        groups = []
        for k, last, lead_id in found:
            copies.hold(lead_id, k, forms[k])
            if last:
                groups.append((k, copies.release(lead_id)))
        merged = []
        for (k, _), leads in zip(groups, self._copy_leads([group for _, group in groups])):
            read = [lead for lead in leads if isinstance(lead, Lead)]  # (both passes read a line alike)
            if read:
                merged.append((k, reduce(merge, read)))
        return merged

    def _copy_forms(self, first: int, lines: Any, numbers: list[int]) -> dict[int, Any]:
        """What is held of each copy's line numbered in ``numbers`` until its id's last copy: the
        line's bytes (a lead with its activities takes several times that as records)."""
        return {k: lines[k - first] for k in numbers}

    def _copy_leads(self, groups: list[list[tuple[int, Any]]]) -> list[list[Lead | Rejection | None]]:
        """Each group's copies ((line, form)) read by the python reader's code."""
        context = line_context(None, self.column_map)
        return [[parsed_line(raw, k, self.label, context) for k, raw in group] for group in groups]

    def _copy_blocks(self, found: list[tuple[int, bool, str]]) -> Iterator[tuple[int, Any, list[tuple[int, bool, str]]]]:
        """(first line, lines, the copies among them) of each block with copies on ``found``'s lines
        (in order), its lines read from the file again through the first pass's spans."""
        return by_block(found, ((first, count, SpanLines(self.path, count, start, end))
                                for first, count, start, end in self.spans))

    def _merged_copies(self) -> Iterator[tuple[int, Lead]]:
        """(last line, merged lead) of every id that more than one line has, in line order, read again
        from the file for the account pass (the scoring pass merges them again as it meets them)."""
        found = self.scorer.con.execute("SELECT k, last, id FROM ls_copies ORDER BY k").fetchall()
        copies = Copies()
        for first, lines, mine in self._copy_blocks(found):
            yield from self._merged_in(copies, first, lines, mine)

    def _count_types(self, by_python: dict[int, Lead | Rejection]) -> None:
        """Activity types no rulepack of the run knows, counted as ``leadscore score`` reports them."""
        if self.unknown_types is None:
            return
        known = q.in_(q.col("type"), self.known_types)
        counted = (q.select(q.col("type"), exp.Count(this=exp.Star()), copy=False).from_("activities", copy=False)
                   .where(q.not_(known), copy=False).group_by(q.col("type"), copy=False))
        for kind, count in self.scorer.con.execute(q.sql(counted)).fetchall():
            self.unknown_types[kind] += count
        known_set = frozenset(self.known_types)
        for item in by_python.values():
            if isinstance(item, Lead):
                count_unscored(item, known_set, None, self.unknown_types, None)

    def _count_misfits(self, by_python: dict[int, Lead | Rejection]) -> None:
        """Custom field values that cannot be read as their declared type, counted per lead as
        ``leadscore score`` reports them: each distinct stored value is judged once."""
        if self.misfits is None or not self.declared:
            return
        for name, (kind, _) in self.declared.items():
            found = self.scorer.con.execute(
                "SELECT v, count(*) FROM (SELECT json_extract(fields, ?) AS v FROM leads) WHERE v IS NOT NULL "
                "GROUP BY v", [f'$."{name}"']).fetchall()
            for text, count in found:
                if misfit_fields({name: json.loads(text)}, self.declared):
                    self.misfits[(name, kind)] += count
        for item in by_python.values():
            if isinstance(item, Lead):
                count_unscored(item, frozenset(), self.declared, None, self.misfits)

    def _odd_lines(self, first: int, lines: list[bytes] | SpanLines, numbers: list[int],
                   as_of_us: int) -> dict[int, Lead | Rejection]:
        """The python reader's result for the lines the decoder left to it; leads it makes join the tables."""
        # Activities left out of a lead are reported once, in the pass that scores.
        context = line_context(self.report if self.last_pass else None, self.column_map)

        def parsed() -> Iterator[tuple[int, Lead | Rejection]]:
            for number in numbers:
                item = parsed_line(lines[number - first], number, self.label, context)
                if item is not None:
                    yield number, item

        return self._add_odd(parsed(), as_of_us)

    def _add_odd(self, items: Iterable[tuple[int, Lead | Rejection]], as_of_us: int,
                 file_acts: Any = None) -> dict[int, Lead | Rejection]:
        """The leads of ``items`` ((number, the python reader's lead or rejection)) the SQL takes into the
        block's ``leads`` and ``activities`` (with ``file_acts``, an activities file kept in DuckDB, their
        rows of it too); the rest, by number."""
        found: dict[int, Lead | Rejection] = {}
        rows = Rows(self.scorer.numeric_fields, evidence=self.scorer.explain)
        for number, item in items:
            if isinstance(item, Lead):
                try:
                    add_lead(rows, number, item, as_of_us, file_acts)
                    continue
                except NotColumnar:
                    pass
            found[number] = item
        leads, acts = rows.tables()
        if not leads.num_rows:
            return found
        con = self.scorer.con
        for name, table in (("more_leads", leads), ("more_acts", acts), ("more_held", rows.held_table())):
            con.register(name, table)
        con.execute("INSERT INTO leads SELECT * FROM more_leads")
        if file_acts is None:
            con.execute("INSERT INTO activities SELECT * FROM more_acts")
        else:
            con.execute("CREATE OR REPLACE TEMP VIEW b_leads AS SELECT * FROM more_leads")
            con.execute(f"INSERT INTO activities {with_file_rows('more_acts', 'more_held', file_acts.file_rows())}")
        for name in ("more_leads", "more_acts", "more_held"):
            con.unregister(name)
        return found

    def _accounts(self, summary: AccountPass) -> Any:
        """The account pass's sums over every contact but the duplicates', or one line saying why DuckDB
        could not make them (nothing is scored yet then: no block is left half-done)."""
        import duckdb

        assert self.ids is not None
        try:
            if self.copies is not None:  # --dedupe: each id's copies count once, merged
                self.ids.find_copies(self.scorer.con)
                return summary.finish(left_out="ls_copies", merged=self._merged_copies())
            self.ids.find_later(self.scorer.con)
            return summary.finish(left_out="later_ids")
        except duckdb.Error as err:
            more = f"{higher_limit(self.scorer.memory_limit)} or " if isinstance(err, duckdb.OutOfMemoryException) else ""
            raise InputError(self.label, f"the columnar engine could not sum up the accounts of this file in "
                             f"DuckDB ({first_line(err)})", f"score it with {more}--engine python") from err

    def scored(self, first: _Block, rest: Iterator[_Block]) -> Iterator[ScoreCard | Rejection]:
        """Score the blocks (``first`` is read already); with the account pass, read them all first."""
        try:
            yield from self._scored(first, rest)
        finally:
            for files in (self.kept, self.ids, self.seen, self.accounts):
                if files is not None:
                    files.close()

    def _scored(self, first: _Block, rest: Iterator[_Block]) -> Iterator[ScoreCard | Rejection]:
        engine, scorer, when = self.engine, self.scorer, self.when
        accounts = None
        blocks = _handed_on(first, rest)
        del first  # each block is held only while it is scored (see _handed_on)
        if engine.needs_accounts:
            summary = AccountPass(engine, scorer, when)
            try:
                with summary.reading():
                    for block in blocks:
                        summary.add_python(block.by_python)  # its odd lines
                        for lines in self._in_parts(block, summary.add_sql, "accounts"):
                            summary.add_python(block.read_python(self.label, lines))  # counted the python way instead
                        del block
                accounts = self.accounts = self._accounts(summary)
            finally:
                summary.close()
            blocks = self.blocks()
        elif self.copies is not None:  # --dedupe without the account pass: a first pass for the ids
            assert self.ids is not None
            for block in blocks:  # (each block's ids are noted as it is read)
                del block
            self.ids.find_copies(self.scorer.con)
            blocks = self.blocks()
        for block in blocks:
            cards: dict[int, ScoreCard | Rejection] = {}
            for lines in self._in_parts(block, partial(self._score_sql, cards, accounts is not None), "cards", accounts):
                block.read_python(self.label, lines)  # the python engine scores these leads
            if accounts is not None:
                accounts.fetch(account_key(item) for item in block.by_python.values() if isinstance(item, Lead))
            for number in range(block.first, block.last + 1):
                item = cards.get(number)
                if item is not None:
                    yield item
                    continue
                pending = block.by_python.get(number)
                if pending is None:
                    continue  # a blank line
                if isinstance(pending, Rejection):
                    yield pending
                else:
                    yield engine.score_item(pending, when, accounts)
            del block, cards

    def _in_parts(self, block: _Block, run: Callable[[], None], kind: str,
                  accounts: SqlAccounts | None = None) -> list[tuple[int, int]]:
        """``run()`` on the block's leads in SQL, the whole block at once; a part DuckDB runs out of
        memory on (a large rulepack's ledger with ``--explain``, say) is halved and each half run
        again, down to parts of MIN_PART_LINES lines (and the next blocks of this ``kind`` of
        statement start in parts of the lines the halving came to). Returns the lines (first, last)
        of the parts still not run (another error, or out of memory at that size), left to the
        python engine."""
        con, scorer = self.scorer.con, self.scorer
        size = scorer.fits.get(kind) or block.last - block.first + 1
        parts = [(low, min(low + size - 1, block.last)) for low in range(block.first, block.last + 1, size)][::-1]
        left = []
        while parts:
            lines = parts.pop()
            _views(con, lines, lines == (block.first, block.last), accounts)
            try:
                run()
            except Exception as err:  # noqa: BLE001 - the leads are scored in smaller parts or the python way
                low, high = lines
                if halve_or_record(scorer, err, high - low + 1, MIN_PART_LINES, kind):
                    middle = (low + high) // 2
                    parts += [(middle + 1, high), (low, middle)]  # the first half next
                else:
                    left.append(lines)
        return left

    def _score_sql(self, cards: dict[int, ScoreCard | Rejection], with_accounts: bool) -> None:
        """The cards of the leads behind ``b_leads`` into ``cards``; the next block is decoded from
        when the stored steps are made (see blocks)."""
        found = self.scorer.run_views(with_accounts=with_accounts, then=self.ahead.ask if self.ahead else None)
        cards.update(self.scorer.cards(found, _leads_of(self.scorer.con, fields=self.scorer.values_needed)))


# The account pass keeps each block's tables for the scoring pass (False: the scoring pass decodes
# the lines again, as the tests compare; the cards are the same either way).
KEEP_BLOCKS = True


class KeptBlocks:
    """Blocks' ``leads`` and ``activities`` tables (and the numbers of their odd lines) kept on disk
    between the account pass and the scoring pass, in a folder of their own under ``folder``.

    Decoding a block holds Python's lock (decoding every block twice was about half of the CPU of a
    scan with the account pass); DuckDB writes and reads Parquet on its own threads, and writing a
    block's copy costs about a tenth of decoding it (bench/README.md, thirteenth round). A block is
    read back once and its files removed; the disk holds at most the file's blocks, compressed
    (about 240 bytes a generated lead).
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kept-", dir=folder))
        self.blocks: set[int] = set()

    def _paths(self, first: int) -> tuple[Path, Path, Path]:
        return tuple(self.folder / f"{first}.{part}" for part in ("leads.parquet", "activities.parquet", "odd"))

    def has(self, first: int) -> bool:
        """The block from line ``first`` is kept (and not read back yet)."""
        return first in self.blocks

    def keep(self, con: Any, first: int, odd: list[int]) -> None:
        """Write the connection's ``leads`` and ``activities`` and ``odd`` as the block from line
        ``first``; a block that cannot be written (the disk is full, say) is not kept."""
        import duckdb

        leads, acts, numbers = self._paths(first)
        try:
            for table, path in (("leads", leads), ("activities", acts)):
                copy_parquet(con, table, path)
            with open(numbers, "wb") as out:
                array("q", odd).tofile(out)
        except (duckdb.Error, OSError):
            self._remove(first)
            return
        self.blocks.add(first)

    def load(self, con: Any, first: int) -> list[int] | None:
        """The block from line ``first`` into the connection's ``leads`` and ``activities``, and the
        numbers of its odd lines; None when it cannot be read back (the block is then decoded again)."""
        import duckdb

        self.blocks.discard(first)
        leads, acts, numbers = self._paths(first)
        try:
            for table, path in (("leads", leads), ("activities", acts)):
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_parquet({q.path_text(path)})")
            odd = array("q")
            with open(numbers, "rb") as source:
                odd.frombytes(source.read())
            return odd.tolist()
        except (duckdb.Error, OSError):
            return None
        finally:
            self._remove(first)

    def _remove(self, first: int) -> None:
        for path in self._paths(first):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        self.blocks.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _drop_lines(con: Any, numbers: list[int]) -> None:
    """The leads on the lines numbered ``numbers`` out of the block's ``leads`` and ``activities``."""
    listed = ",".join(str(k) for k in numbers)
    con.execute(f"DELETE FROM leads WHERE k IN ({listed})")
    con.execute(f"DELETE FROM activities WHERE k IN ({listed})")


def by_block(found: list[Any], blocks: Iterable[tuple[int, int, Any]]) -> Iterator[tuple[int, Any, list[Any]]]:
    """(first line, block, the items of ``found`` on its lines) of each block of ``blocks`` ((first
    line, number of lines, block), in file order) that has any of ``found`` (items whose first value
    is a line number, in line order); stops after the block of the last item."""
    at = 0
    for first, count, block in blocks:
        if at == len(found):
            return
        mine = []
        while at < len(found) and found[at][0] < first + count:
            mine.append(found[at])
            at += 1
        if mine:
            yield first, block, mine


class Copies:
    """--dedupe: the copies of each lead id that more than one line has, held (each in the form its
    reader gives: see _BlockReader._copy_forms) from the id's first copy until its last, where they
    are read and merged into one lead. Only those copies are held."""

    def __init__(self) -> None:
        self.held: dict[str, list[tuple[int, Any]]] = {}

    def hold(self, lead_id: str, line: int, form: Any) -> None:
        self.held.setdefault(lead_id, []).append((line, form))

    def release(self, lead_id: str) -> list[tuple[int, Any]]:
        """The id's copies held, (line, form) in line order, no longer held."""
        return self.held.pop(lead_id)


class LeadIds:
    """The account pass's lead ids, as (line, 64-bit hash of the id) in a Parquet file a block, in a
    folder of their own under ``folder``; at the pass's end :meth:`find_later` finds the lines whose
    id an earlier line has, all at once. Checked block by block against every id met before instead
    (``seen_ids``, as a pass without accounts does), every block of both passes read all the ids met
    again, held in DuckDB's temporary storage (bench/README.md, fourteenth round). Two ids sharing a
    hash count as one, as in ``seen_ids``."""

    def __init__(self, folder: str, with_ids: bool = False) -> None:
        self.files = ParquetFolder(folder, "ids-")
        self.with_ids = with_ids  # the ids themselves too, for --dedupe (see find_copies)

    def note(self, con: Any, label: str) -> None:
        """The ids of the connection's ``block_ids``, as the next file."""
        _write_ids(self.files, con, f"SELECT k, hash(id) AS h{', id' if self.with_ids else ''} FROM block_ids", label)

    def find_later(self, con: Any) -> None:
        """The table ``later_ids``: the lines (``k``, in order) whose id's hash an earlier line has."""
        con.execute("CREATE OR REPLACE TEMP TABLE later_ids (k BIGINT)")
        ids = self.files.read()
        if ids is not None:
            self._met_twice(con, ids)
            con.execute(f"INSERT INTO later_ids SELECT k FROM {ids} JOIN met_twice USING (h) WHERE k > first ORDER BY k")
            con.execute("DROP TABLE met_twice")
        self.close()

    def find_copies(self, con: Any) -> None:
        """The table ``ls_copies``: the lines (``k``, in order) whose id another line has, whether each
        is its id's last (``last``), and the id, for --dedupe (the ids noted ``with_ids``; two ids
        sharing a hash are told apart here)."""
        con.execute("CREATE OR REPLACE TEMP TABLE ls_copies (k BIGINT, last BOOLEAN, id VARCHAR)")
        ids = self.files.read()
        if ids is not None:
            self._met_twice(con, ids)
            con.execute(f"INSERT INTO ls_copies SELECT k, k = max(k) OVER (PARTITION BY id), id FROM {ids} "
                        "WHERE h IN (SELECT h FROM met_twice) QUALIFY count(*) OVER (PARTITION BY id) > 1 ORDER BY k")
            con.execute("DROP TABLE met_twice")
        self.close()

    @staticmethod
    def _met_twice(con: Any, ids: str) -> None:
        # The hashes met more than once (one row a hash: DuckDB spills what does not fit), and each
        # one's first line; a file without duplicates makes no row, and the next step reads nothing.
        con.execute(f"CREATE OR REPLACE TEMP TABLE met_twice AS SELECT h, min(k) AS first FROM {ids} GROUP BY h "
                    "HAVING count(*) > 1")

    def close(self) -> None:
        self.files.close()


class SeenIds:
    """The lead ids a scan without the account pass has met, as 64-bit hashes, for each block's
    duplicate check: the latest (up to SEEN_IDS_IN_MEMORY) in DuckDB's table ``seen_ids``, the earlier
    ones in Parquet files of that many under ``folder``, which each block's check reads through.
    Held in DuckDB alone, ten million leads' hashes took 87 MiB of DuckDB's memory (bench/seen_ids.py:
    peak 271 MiB against 206 now); read from the files, the checks of 834 blocks took 41.8 s against
    35.4 (bench/README.md, sixteenth round). 8 bytes an id, as the python
    reader's SeenHashes keeps them: two ids sharing a hash, a chance of about n^2 / 2^65, count as one."""

    def __init__(self, con: Any, folder: str) -> None:
        self.files = ParquetFolder(folder, "seen-")
        self.held = 0
        con.execute("CREATE OR REPLACE TEMP TABLE seen_ids (h UBIGINT)")

    def find_met(self, con: Any) -> None:
        """The tables ``block_hashes`` (the distinct hashes of ``block_ids``) and ``met`` (those of
        them met before): a join that looks each earlier hash up in the block's few thousand (an IN
        over the earlier ones hashed all of them again for every block)."""
        con.execute("CREATE OR REPLACE TEMP TABLE block_hashes AS SELECT DISTINCT hash(id) AS h FROM block_ids")
        files = self.files.read()
        earlier = "seen_ids" if files is None else f"(SELECT h FROM seen_ids UNION ALL SELECT h FROM {files})"
        con.execute(f"CREATE OR REPLACE TEMP TABLE met AS SELECT DISTINCT h FROM {earlier} JOIN block_hashes USING (h)")

    def add_new(self, con: Any, label: str) -> None:
        """The block's hashes not met before, into ``seen_ids``; once it holds SEEN_IDS_IN_MEMORY, its
        hashes go to the next file and it starts again empty."""
        (added,), = con.execute("INSERT INTO seen_ids SELECT h FROM block_hashes WHERE h NOT IN (SELECT h FROM met)"
                                ).fetchall()
        self.held += added
        if self.held >= SEEN_IDS_IN_MEMORY:
            _write_ids(self.files, con, "SELECT h FROM seen_ids", label)
            con.execute("CREATE OR REPLACE TEMP TABLE seen_ids (h UBIGINT)")
            self.held = 0

    def close(self) -> None:
        self.files.close()


# How many lead hashes a scan without the account pass holds in DuckDB's memory (about 9 MiB) before
# it writes them to a file (see SeenIds).
SEEN_IDS_IN_MEMORY = 1 << 20


def _write_ids(files: ParquetFolder, con: Any, select: str, label: str) -> None:
    """The rows of ``select`` (lead ids' hashes) as the next file of ``files``, or one line saying why not."""
    import duckdb

    try:
        files.write(con, select)
    except (duckdb.Error, OSError) as err:
        raise InputError(label, f"the columnar engine could not write the lead ids it checks for duplicates to "
                         f"{files.folder} ({first_line(err)})", "free space there (it is under TMPDIR) or "
                         "score it with --engine python") from err


# The next block is decoded in a thread while DuckDB scores this one (False: each in turn, as the
# tests compare; the cards are the same either way).
READ_AHEAD = True
# How often Python hands its lock from one thread to another while a block is decoded ahead, in
# seconds (the interpreter's own is 0.005). DuckDB runs a query on its own threads but takes
# Python's lock between the query's tasks (to check for Ctrl-C); with the decoder busy, each take
# waited up to the interval. At 1 ms a million leads with firr-base took 103 and 102 s against 112
# and 119 s (bench/README.md, ninth round).
SWITCH_INTERVAL = 0.001


class _Switching:
    """The interpreter's switch interval held at SWITCH_INTERVAL (when that is shorter) while any
    Ahead decodes in a thread, and given back when the last one closes. The interval is the
    process's, so it is shortened only as long as a scan reads ahead."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved = 0.0

    def enter(self) -> None:
        with self.lock:
            if self.users == 0:
                self.saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.saved, SWITCH_INTERVAL))
            self.users += 1

    def leave(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users == 0:
                sys.setswitchinterval(self.saved)


_switching = _Switching()


class Ahead:
    """The items of ``source`` one at a time, the next made in a thread of its own from when the
    caller asks for it (:meth:`ask`) while the caller works on the one it has: Python decoding a
    block while DuckDB, which lets go of Python's lock while it runs, scores the last. At most one
    item is made ahead. ``on`` False: each item is made when taken, in the caller's thread. While
    on, Python's switch interval is SWITCH_INTERVAL (see _Switching) until :meth:`close`.

    An error making an item is raised by the :meth:`take` that would have given it; :meth:`close`
    waits for an item being made and closes ``source`` (a generator's ``finally`` runs)."""

    def __init__(self, source: Iterator[Any], on: bool = True) -> None:
        self.source = source
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="leadscore-read") if on else None
        self.coming: Future[Any] | None = None
        if self.pool is not None:
            _switching.enter()

    def ask(self) -> None:
        """Start making the next item, if it is not being made already (nothing when off)."""
        if self.pool is not None and self.coming is None:
            self.coming = self.pool.submit(next, self.source, None)

    def take(self) -> Any:
        """The next item (made now if it was not asked for), or None after the last."""
        coming, self.coming = self.coming, None
        if coming is None:
            return next(self.source, None)
        return coming.result()

    def close(self) -> None:
        coming, self.coming = self.coming, None
        if coming is not None:
            coming.exception()  # waits: a generator cannot be closed while it runs
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
            _switching.leave()
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


def read_ahead(items: Iterable[Any], chunk: int = BATCH) -> Iterator[Any]:
    """``items`` in their order, the next ``chunk`` of them read in a thread of its own while the
    caller works on these: for leads that come through the python reader (CSV, Parquet, JSON Lines
    with ``--activities`` and the like), read while DuckDB, which lets go of Python's lock, scores
    the batch before them. At most one chunk is read ahead; an error reading is raised where the
    chunk it stopped would have come (the CLI then writes no output, as before)."""
    source = iter(items)

    def chunks() -> Iterator[list[Any]]:
        while True:
            got = list(islice(source, chunk))
            if not got:
                return
            yield got

    ahead = Ahead(chunks())
    try:
        while True:
            got = ahead.take()
            if got is None:
                return
            ahead.ask()
            yield from got
            del got
    finally:
        ahead.close()


def _handed_on(first: _Block, rest: Iterator[_Block]) -> Iterator[_Block]:
    """``first``, then the blocks of ``rest``, keeping no reference to a block once handed on (a
    block's lines are about 25 MB; a loop variable or a list in ``itertools.chain`` would hold the
    last one, or the first, while the next is read)."""
    yield first
    del first
    yield from rest


def _views(con: Any, lines: tuple[int, int], whole: bool, accounts: SqlAccounts | None = None) -> None:
    """``b_leads``, ``b_acts`` (and with ``accounts``, the account pass's sums, ``b_acc``): the relations
    the plan's statements read, for the leads on the lines numbered ``lines`` (first, last); ``whole``:
    they are the whole block (its tables are read unfiltered)."""
    for view, table in (("b_leads", "leads"), ("b_acts", "activities")):
        select = q.select(exp.Star()).from_(table, copy=False)
        if not whole:
            select = select.where(exp.Between(this=q.col("k"), low=q.lit(lines[0]), high=q.lit(lines[1])), copy=False)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {q.sql(select)}")
    if accounts is not None:
        rows = accounts.block_rows(lines)
        joined = rows.join(q.table("b_leads", "l"), on=q.col("k", "l").eq(q.col("k", "r")), copy=False)
        con.execute(f"CREATE OR REPLACE TEMP VIEW b_acc AS {q.sql(joined)}")


class _LeadStub:
    """What a card needs of a lead scored in SQL: its id and account id (the record is never built),
    and when its signal values are made, its custom fields (the block's JSON text of them)."""

    __slots__ = ("id", "account_id", "_fields")

    def __init__(self, lead_id: str, account_id: str | None, fields: str | None = None) -> None:
        self.id = lead_id
        self.account_id = account_id
        self._fields = fields

    @property
    def fields(self) -> dict[str, Any]:
        return {} if self._fields is None else json.loads(self._fields)


def _leads_of(con: Any, *, fields: bool) -> dict[int, Any]:
    columns = "k, id, account_id, fields" if fields else "k, id, account_id"
    return {row[0]: _LeadStub(*row[1:]) for row in con.execute(f"SELECT {columns} FROM b_leads").fetchall()}


__all__ = ["Ahead", "read_ahead", "scan_jsonl"]
