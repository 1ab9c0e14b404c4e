"""Scores JSON Lines, CSV or Parquet files (with an optional activities file) on Spark: the python
engine runs inside each partition, with the leads grouped so that every contact of an account is
scored in the same partition.

Four steps, each a DataFrame operation Spark can spread over a cluster:

1. every JSON Lines or CSV file is read whole (``binaryFile``) by one task and split into lines or
   rows by the python reader's own rules (for CSV: the encoding check, the delimiter sniffed from
   the header, quoted cells spanning lines, a quote that never closes; ``readers.csv_lead_rows``);
   Parquet files are read by Spark's Parquet reader, each row with its file and row number, its
   values as text by the python Parquet reader's rules (leadscore.io.parquet). Each line or row
   becomes a lead (its id, its account key, its text: the JSON line, or the row's cells as JSON)
   or a rejection naming ``file:line`` or ``file:row N`` exactly as ``leadscore score`` does. A
   CSV file's header comes back to the driver (one row per file), and so do the activities its
   leads left out (a bad time) and a problem with a whole file (an empty file, a bad header),
   which stops the run as it stops ``leadscore score``;
2. the activities file (``--activities``: a CSV file, or Parquet parts) is read by Spark too
   (``binaryFile``, all of it by one task, as the python reader reads it whole) into one row per
   lead id: that id's usable activities, pickled, with the place and text of its rejection should
   no lead have the id. Rows that cannot be used are rejections; activities that do not fit
   (a bad time) are left out and their notes go to the driver, as the python reader reports them;
3. a later lead with an id met before (in file order, then line order) is rejected as a
   duplicate, and each kept lead is joined with its activities by lead id; activity ids no line
   of the input has (a lead or a rejected row naming its id) are rejected after the last lead;
4. the leads are repartitioned by account key (a lead without one by its id), sorted by their
   place in the input, and each partition is scored by an :class:`~leadscore.engine.Engine` built
   once per worker: the account pass sees every contact of each account it scores, so account
   signals and ``same_account`` are those of a single-process run. Each task also counts its
   leads' unknown activity types and misfit custom fields (rows at file number ``COUNTED``),
   which the driver adds up for the notes ``leadscore score`` prints.

The driver collects the cards (JSON Lines text made by the python writer) and the rejections in
input order. What is shuffled: one row per lead (its text) by id, for duplicates and the join with
the activities (the activities once, one row per lead id, on the same key), then once more by
account key for scoring (with the lead's activities), and the cards once to the driver.
"""

from __future__ import annotations

import copyreg
import glob
import io
import json
import os
import pickle
import re
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse
from datetime import datetime
from types import MappingProxyType
from typing import Any

import orjson
from attrs import define, field

from leadscore.accounts import account_key
from leadscore.columnar import Rendered
from leadscore.errors import ConfigurationError, InputError, LeadscoreError
from leadscore.io.duplicates import DEDUPE_FIX
from leadscore.io.maps import plan_header
from leadscore.io.parquet import PARQUET_SUFFIX, ParquetPart, is_parquet
from leadscore.io.parquet import parts as parquet_parts
from leadscore.io.readers import (FORMATS, ReadReport, _lead_targets, _lines, _ReadContext,
                                  _row_lead, _unknown_columns, activities_source, join_activities, lead_from_dict,
                                  line_context, parse_jsonl_line)
from leadscore.io.writers import lead_to_dict
from leadscore.model import EMPTY, Activity, Lead, Rejection, ScoreCard

# Suffixes of the part files read from a directory (a lakehouse export writes part-00000.json ...).
PART_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", PARQUET_SUFFIX)
_CSV_SUFFIXES = (".csv", ".tsv")
_FORMAT_NAMES = {"jsonl": "JSON Lines", "csv": "CSV", "parquet": "Parquet"}


# A JSON Lines or CSV file is read whole by one task (binaryFile); a JVM byte array holds less than 2 GiB.
WHOLE_FILE_LIMIT = 2**31 - 1 - 2**20


def input_files(paths: Sequence[str]) -> list[str]:
    """The files behind ``paths`` (files, globs, directories of part files), sorted within each path.

    :raises InputError: when a path names nothing, a directory holds no part files, or a JSON Lines
        or CSV file is too big for one task.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            parts = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if name.endswith(PART_SUFFIXES) and not name.startswith((".", "_")))
            if not parts:
                raise InputError(path, "no JSON Lines, CSV or Parquet part files in this directory",
                                 f"put the leads in files ending {', '.join(PART_SUFFIXES)}")
            found += parts
        elif any(ch in path for ch in "*?["):
            matched = sorted(p for p in glob.glob(path) if os.path.isfile(p))
            if not matched:
                raise InputError(path, "no file matches this pattern", "check the pattern and the folder")
            found += matched
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise InputError(path, "no such file or directory", "check the path")
    for path in found:
        if not is_parquet(Path(path)):
            check_whole_file(path)
    return [os.path.abspath(p) for p in found]


def check_whole_file(path: str) -> None:
    """A JSON Lines or CSV file is read whole by one task (binaryFile): one of 2 GiB or more cannot be.

    :raises InputError: naming the file and the fix (part files).
    """
    size = os.path.getsize(path)
    if size > WHOLE_FILE_LIMIT:
        raise InputError(path, f"is {size / 2**30:.1f} GiB: Spark reads a JSON Lines or CSV file whole in one task, "
                               "which holds less than 2 GiB",
                         "split it into part files in a directory (e.g. split -C 256m --additional-suffix=.jsonl "
                         "FILE DIR/part-) and score the directory")


def input_format(files: Sequence[str], labels: Sequence[str], fmt: str | None = None) -> str:
    """The one format of ``files``: ``fmt`` when given, else from the suffixes (``.parquet``;
    ``.csv`` or ``.tsv``; anything else is read as JSON Lines).

    :raises InputError: for an unknown ``fmt``, or files of two formats in one run.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(labels[0], f"unknown format {fmt!r}", "use jsonl, csv or parquet")
        return fmt
    kinds = sorted({"parquet" if is_parquet(Path(path)) else "csv" if path.lower().endswith(_CSV_SUFFIXES)
                    else "jsonl" for path in files}, key=list(_FORMAT_NAMES).index)
    if len(kinds) > 1:
        raise InputError(labels[0], f"the input mixes {' and '.join(_FORMAT_NAMES[k] for k in kinds)} files",
                         "score each format in its own run")
    return kinds[0]


def parquet_header(files: Sequence[str], labels: Sequence[str], label: str | None = None, strict: bool = False,
                   warnings: list[str] | None = None) -> list[str]:
    """The lead columns of the Parquet ``files``, each file's columns checked as ``leadscore score``
    checks them, before Spark starts on them. With ``label`` (the input as the user named it), the
    columns that are no lead field are reported as the python reader reports them, file by file:
    one warning line each (appended to ``warnings``, once), or under ``strict`` the error.

    :raises InputError: when a file has a column of a type its field does not take, or under
        ``strict`` a column that is no lead field (the same one-line messages as the python reader).
    """
    context = _ReadContext(None, None, strict, ReadReport())
    header: list[str] = []
    for path, part_label in zip(files, labels):
        with ParquetPart(Path(path), part_label) as part:
            plan = plan_header(part.columns, part_label, None)
            part.check(_lead_targets(plan))
            if label is not None:
                _unknown_columns(plan, part.columns, label, context)
            header += [name for name in part.columns if name not in header]
    if warnings is not None:
        warnings += context.report.warnings
    return header


def activity_parts(activities: str) -> tuple[bool, list[tuple[str, str]]]:
    """(whether they are Parquet, [(absolute path, label)]) of the files behind ``--activities``: a
    CSV file, a Parquet file or a directory of Parquet parts, checked as the python reader checks it.

    :raises InputError: when the path is missing, is JSON Lines, is a directory without parts, or
        a file is too big for one task.
    """
    path, _, label = activities_source(activities)
    assert path is not None  # a path was given
    if is_parquet(path):
        found = [(os.path.abspath(part), part_label) for part, part_label in parquet_parts(path, label)]
    else:
        found = [(os.path.abspath(path), label)]
    for part, _ in found:  # each file is read whole (binaryFile), a Parquet part too
        check_whole_file(part)
    return is_parquet(path), found


def check_java() -> None:
    """Spark runs on a Java virtual machine: say in one line what to install when there is none."""
    home = os.environ.get("JAVA_HOME")
    if (home and os.path.exists(os.path.join(home, "bin", "java"))) or shutil.which("java"):
        return
    raise ConfigurationError("--engine spark", "no Java runtime found (Spark needs Java 17 or later)",
                             "install one (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


def session(master: str = "local[*]") -> Any:
    """A Spark session for ``master`` (or the one already running in this process)."""
    check_java()
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ConfigurationError("--engine spark", "PySpark is not installed",
                                 "pip install 'leadscore[spark]' (or uv sync --group spark)") from err
    builder = (SparkSession.builder.master(master).appName("leadscore")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false"))
    if master.startswith("local"):
        for key, value in local_defaults().items():
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")  # Spark's own progress and warnings would drown the summary
    return spark


def local_defaults() -> dict[str, str]:
    """Settings for a session on this machine (``local[N]``) that Spark's own defaults get wrong here,
    each left alone when the user set it: the workers run this interpreter (where leadscore is
    installed; Spark would start ``python3`` from PATH), and the driver, which is also the executor,
    may use a quarter of the memory (at most 8 GiB; Spark's 1 GiB ran out of heap splitting 130 MB
    part files)."""
    settings: dict[str, str] = {}
    if not os.environ.get("PYSPARK_PYTHON"):
        settings["spark.pyspark.python"] = sys.executable
    if "--driver-memory" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "") and not os.environ.get("SPARK_DRIVER_MEMORY"):
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            total = 4 * 2**30
        settings["spark.driver.memory"] = f"{max(1, min(8, total // 4 // 2**30))}g"
    return settings


# --- what runs on the workers -----------------------------------------------------------------

_ENGINES: dict[tuple[Any, ...], Any] = {}


def _recipe(engine: Any, as_of: datetime | None = None) -> tuple[Any, tuple[str, ...] | None, datetime]:
    """What a worker needs to build ``engine`` again: its class (sent by reference: this module
    does not import leadscore.engine, which imports this one), the packs it was given and its
    scoring time (or ``as_of``). The worker's engine loads the plugins installed there."""
    return type(engine), engine.rulepack_names, engine._resolve_as_of(as_of)


def _engine(recipe: tuple[Any, tuple[str, ...] | None, datetime]) -> Any:
    """The worker's engine for this run (a Spark python worker scores many partitions)."""
    engine = _ENGINES.get(recipe)
    if engine is None:
        make, rulepacks, as_of = recipe
        _ENGINES.clear()
        engine = _ENGINES[recipe] = make(rulepacks=list(rulepacks) if rulepacks else None, as_of=as_of)
    return engine


# What a row of the split steps holds (column ``kind``): a lead, a rejected line, a CSV file's header
# (its cells as JSON in ``raw``), a problem with a whole file (``where``, ``reason`` and ``dup``
# hold the error's place, what and fix), a warning line, an activity left out (at ``line``: its
# place among the notes), how many were left out in all (``line``; from the leads' split steps one
# row per file read, so the driver knows which files Spark gave no task), and a lead id's activities.
LEAD, REJECTED, HEADER, FATAL, WARNING, SKIPPED, SKIPPED_COUNT, ACTIVITIES = range(8)
# Rows per Arrow batch a step gives Spark: a file is read whole, its rows are handed on in parts.
_BATCH_ROWS = 8192


class _Rows:
    """A step's output rows as columns, given to Spark as Arrow batches of at most _BATCH_ROWS rows."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.names}

    def add(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def full(self) -> bool:
        return len(self.columns["kind"]) >= _BATCH_ROWS

    def take(self) -> Any:
        import pyarrow as pa

        batch = pa.RecordBatch.from_pydict(self.columns, schema=self.schema)
        self.columns = {name: [] for name in self.schema.names}
        return batch

    def __bool__(self) -> bool:
        return bool(self.columns["kind"])


def _split_row(out: _Rows, f: int, number: int, where: str, item: Lead | Rejection, raw: Any, label: str) -> None:
    """One line or row of the input into the split step's columns: a lead with its text, or a rejection."""
    if isinstance(item, Rejection):
        out.add(kind=REJECTED, f=f, line=number, id=item.lead_id, where=item.where, reason=item.reason)
        return
    # What a later copy of this id is told (io.duplicates words it the same way).
    out.add(kind=LEAD, f=f, line=number, id=item.id, akey=account_key(item), raw=raw, where=where,
            dup=f"duplicate lead id {item.id!r}: an earlier row of {label} has it and was scored; {DEDUPE_FIX}")


def _fatal(out: _Rows, f: int, err: InputError) -> None:
    out.add(kind=FATAL, f=f, line=0, where=err.where, reason=err.what, dup=err.fix)


def _split(batches: Iterator[Any], files: dict[str, int], labels: list[str], label: str) -> Iterator[Any]:
    """JSON Lines files, each whole, as leads (their line) or rejections by the python reader's
    rules; also each file's left-out activities, and a file of blank lines only as the python
    reader refuses it."""
    out = _Rows(_SPLIT_SCHEMA())
    for batch in batches:
        for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
            f = files[_local(path)]
            # One report per file: the activities its leads left out (a bad time) go to the driver.
            context = line_context(ReadReport())
            seen = False
            # The python reader's own line splitting (at b"\n", over-long lines as None).
            for number, raw in _lines(io.BytesIO(content), labels[f]):
                where = f"{labels[f]}:{number}"
                item = parse_jsonl_line(raw, where, number == 1, context)
                if item is not None:
                    seen = True
                    _split_row(out, f, number, where, item, raw, label)
                    if out.full():
                        yield out.take()
            if not seen:
                _fatal(out, f, empty_file_error("jsonl", labels[f]))
            yield from _left_out(out, f, context.report)
    if out:
        yield out.take()


def _left_out(out: _Rows, f: int, report: ReadReport) -> Iterator[Any]:
    """File ``f``'s activities left out (those its ReadReport kept, each at ``line``: its place among
    them) and how many in all (at ``line``); the count's row also tells the driver the file was read."""
    for number, rejection in enumerate(report.skipped):
        out.add(kind=SKIPPED, f=f, line=number, id=rejection.lead_id, where=rejection.where, reason=rejection.reason)
        if out.full():
            yield out.take()
    out.add(kind=SKIPPED_COUNT, f=f, line=report.skipped_count)


def empty_file_error(kind: str, label: str) -> InputError:
    """What the python reader says of an empty JSON Lines or CSV file (``kind``) named ``label``
    (Spark gives a file of 0 bytes no task, so the driver says it), or of Parquet input without a row."""
    from leadscore.io.readers import _read_csv, _read_jsonl

    if kind == "parquet":  # the python reader's words (_read_parquet), which reads no stream to ask
        return InputError(label, "no leads in this file", "write one row per lead")
    reader = _read_jsonl if kind == "jsonl" else _read_csv
    try:
        for _ in reader(io.StringIO(""), label, line_context()):
            pass
    except InputError as err:
        return err
    raise AssertionError(f"the {kind} reader took an empty file")


def _csv_text(content: bytes) -> Any:
    """A CSV file's bytes as the text stream the python reader reads a file as (UTF-8 or, after
    Excel's byte-order mark, UTF-16; undecodable bytes kept, so their row alone is rejected)."""
    from leadscore.io.readers import _CSV_TEXT, _stream_encoding

    raw = io.BufferedReader(io.BytesIO(content))
    return io.TextIOWrapper(raw, encoding=_stream_encoding(raw), **_CSV_TEXT)


def _split_csv(batches: Iterator[Any], files: dict[str, int], labels: list[str], label: str,
               delimiter: str | None, strict: bool) -> Iterator[Any]:
    """CSV files, each whole, as leads (their cells as JSON) or rejections by the python CSV reader
    (``readers.csv_lead_rows``); also each file's header, its warnings and a whole-file problem."""
    from leadscore.io.readers import csv_lead_rows

    out = _Rows(_SPLIT_SCHEMA())
    for batch in batches:
        for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
            f = files[_local(path)]
            ctx = _ReadContext(None, delimiter, strict, ReadReport())
            header: list[list[str]] = []
            try:
                for number, cells, item in csv_lead_rows(_csv_text(content), labels[f], ctx, header):
                    # A lead's row is valid UTF-8 (the reader rejects one that is not).
                    raw = json.dumps(cells, ensure_ascii=False).encode() if isinstance(item, Lead) else None
                    _split_row(out, f, number, f"{labels[f]}:{number}", item, raw, label)
                    if out.full():
                        yield out.take()
            except InputError as err:
                _fatal(out, f, err)
            if header:
                out.add(kind=HEADER, f=f, line=0, raw=json.dumps(header[0], ensure_ascii=False).encode())
            for line in ctx.report.warnings:
                out.add(kind=WARNING, f=f, line=0, reason=line)
            yield from _left_out(out, f, ctx.report)
    if out:
        yield out.take()


def _split_parquet(batches: Iterator[Any], files: dict[str, int], labels: list[str], label: str,
                   header: list[str]) -> Iterator[Any]:
    """Parquet rows (columns ``header``, then the file's path and the row's index) as leads or
    rejections, by the python Parquet reader's rules; a lead's text is its row of cells as JSON.
    (A row leaves activities out only through a column map's activity columns, and Spark takes no
    --map: there is nothing to report; the columns' warnings are the driver's, parquet_header.)"""
    from leadscore.io.parquet import _text_cells

    plan = plan_header(header, label, None)
    context = line_context()
    width = len(header)
    out = _Rows(_SPLIT_SCHEMA())
    for batch in batches:
        cells = [_text_cells(batch.column(i)) for i in range(width)]
        places = zip(batch.column(width).to_pylist(), batch.column(width + 1).to_pylist())
        for (path, index), row in zip(places, zip(*cells)):
            f = files[_local(path)]
            where = f"{labels[f]}:row {index + 1}"
            item = _row_lead(plan, row, where, context)
            _split_row(out, f, index + 1, where, item, json.dumps(row, ensure_ascii=False).encode(), label)
            if out.full():
                yield out.take()
    if out:
        yield out.take()


def _split_activities(batches: Iterator[Any], parts: dict[str, tuple[int, str]], label: str, parquet: bool,
                      delimiter: str | None, strict: bool) -> Iterator[Any]:
    """The whole activities input (every part in this one task) read by the python reader into
    one row per lead id (its activities, pickled; its rejection should no lead have the id), a
    rejection per unusable row, and the read's warnings and left-out activities."""
    # Spark gives no row for an empty file: the reader is handed it empty, as it would read it.
    contents = dict.fromkeys(parts, b"")
    for batch in batches:
        for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
            contents[_local(path)] = content
    yield from _activity_rows(contents, parts, label, parquet, delimiter, strict)


def _activity_rows(contents: dict[str, bytes], parts: dict[str, tuple[int, str]], label: str, parquet: bool,
                   delimiter: str | None, strict: bool) -> Iterator[Any]:
    """_split_activities' rows from the bytes of each part (the driver calls it too, for empty files
    that Spark gave no task)."""
    from leadscore.io.readers import _parquet_activity_table, _read_activities

    report = ReadReport()
    ctx = _ReadContext(None, delimiter, strict, report)
    out = _Rows(_ACTIVITY_SCHEMA())
    try:
        if parquet:
            ordered = sorted(contents, key=lambda path: parts[path][0])
            table = _parquet_activity_table([(io.BytesIO(contents[path]), parts[path][1]) for path in ordered],
                                            label, ctx)
        else:
            (content,) = contents.values()
            table = _read_activities(None, io.BufferedReader(io.BytesIO(content)), label, ctx)
    except InputError as err:
        out.add(kind=FATAL, line=0, where=err.where, reason=err.what, fix=err.fix)
        yield out.take()
        return
    for line in report.warnings:
        out.add(kind=WARNING, line=0, reason=line)
    for number, rejection in enumerate(report.skipped):
        out.add(kind=SKIPPED, line=number, id=rejection.lead_id, where=rejection.where, reason=rejection.reason)
    out.add(kind=SKIPPED_COUNT, line=report.skipped_count)
    # No lead is matched yet: every lead id's first row comes with its rejection, used when no lead has it.
    try:
        for order, rejection in table.placed():
            if rejection.lead_id is None:  # a row without a lead id, or one that could not be read
                out.add(kind=REJECTED, line=order, where=rejection.where, reason=rejection.reason)
            else:
                found = [(a.type, a.at, dict(a.properties), a.id) for a in table.activities_of(rejection.lead_id)]
                out.add(kind=ACTIVITIES, line=order, id=rejection.lead_id, where=rejection.where,
                        reason=rejection.reason, acts=pickle.dumps(found, protocol=pickle.HIGHEST_PROTOCOL))
            if out.full():
                yield out.take()
    finally:
        table.close()
    if out:
        yield out.take()


def _lead_of(raw: bytes, where: str, number: int, plan: Any) -> Lead:
    """The lead the split step kept, built again from its text (a JSON line when ``plan`` is None,
    else a CSV or Parquet row's cells read through its file's header plan)."""
    if plan is None:
        item = parse_jsonl_line(raw, where, number == 1, line_context())
    else:
        item = _row_lead(plan, json.loads(raw), where, line_context())
    assert isinstance(item, Lead)  # the split step kept leads only
    return item


def _with_activities(lead: Lead, found: bytes | None) -> Lead:
    """The lead joined with its rows of the activities file, by the python reader's join."""
    if found is None:
        return lead
    extra = [Activity(kind, at, properties or EMPTY, ident) for kind, at, properties, ident in pickle.loads(found)]
    return join_activities(lead, extra)


def _score(batches: Iterator[Any], recipe: Any, explain: bool, top: int,
           headers: dict[int, list[str]] | None = None) -> Iterator[Any]:
    """Score one partition's leads (in input order, with the account pass) by the python engine;
    ``headers`` gives each CSV or Parquet file's columns (None for JSON Lines)."""
    import pyarrow as pa

    from leadscore.io.writers import JsonLinesWriter

    engine = _engine(recipe)
    rows: list[tuple[int, int, str, bytes, bytes | None]] = []
    for batch in batches:
        rows += zip(batch.column("f").to_pylist(), batch.column("line").to_pylist(),
                    batch.column("where").to_pylist(), batch.column("raw").to_pylist(),
                    batch.column("acts").to_pylist())
    if not rows:
        return
    rows.sort(key=lambda row: (row[0], row[1]))
    plans: dict[int, Any] = {}

    def plan_of(f: int) -> Any:
        if headers is None:
            return None
        if f not in plans:
            plans[f] = plan_header(headers[f], "", None)
        return plans[f]

    leads = [_with_activities(_lead_of(raw, where, number, plan_of(f)), found)
             for f, number, where, raw, found in rows]
    index = engine.build_accounts(leads) if engine.needs_accounts else None
    out: dict[str, list[Any]] = {name: [] for name in ("f", "line", "text", "id", "where", "reason")}
    buffer = io.StringIO()
    writer = JsonLinesWriter(buffer, explain=explain, top=top)
    for (f, number, _, _, _), lead, result in zip(rows, leads, engine.score(leads, accounts=index)):
        out["f"].append(f)
        out["line"].append(number)
        if isinstance(result, Rejection):
            out["text"].append(None)
            out["id"].append(result.lead_id)
            out["where"].append(result.where)
            out["reason"].append(result.reason)
            continue
        buffer.seek(0)
        buffer.truncate()
        writer.write(result)
        out["text"].append(buffer.getvalue())
        out["id"].append(lead.id)
        out["where"].append(None)
        out["reason"].append(None)
    for values in _counted(leads, engine.vocabulary):
        for name, value in zip(("f", "line", "text", "id", "where", "reason"), values):
            out[name].append(value)
    yield pa.RecordBatch.from_pydict(out, schema=_RESULT_SCHEMA())


# A row of the scoring step at this file number is no card but a count for the run's notes: in
# ``id`` an activity type no rulepack knows (``where`` "type") or a custom field whose values do
# not fit their declared type (``where`` "field", ``reason`` the type), in ``line`` how many.
COUNTED = -1


def _counted(leads: Sequence[Lead], vocabulary: Any) -> Iterator[tuple[Any, ...]]:
    """The scoring step's count rows for ``leads``: what ``leadscore score`` counts of the leads it
    scores (each activity of a type not in the run's vocabulary; each lead's custom fields that
    cannot be read as the type a pack declares) and reports on stderr."""
    from collections import Counter

    from leadscore.explain import count_unscored
    from leadscore.rulepack.schema import CUSTOM_FIELDS

    known = vocabulary.get("activity_types", frozenset())
    declared = vocabulary.get(CUSTOM_FIELDS)
    unknown: Counter[str] = Counter()
    misfits: Counter[tuple[str, str]] = Counter()
    for lead in leads:
        count_unscored(lead, known, declared, unknown, misfits)
    for kind, count in sorted(unknown.items()):
        yield COUNTED, count, None, kind, "type", None
    for (name, field_type), count in sorted(misfits.items()):
        yield COUNTED, count, None, name, "field", field_type


def add_counts(scored: Any, F: Any, unknown_types: Any, misfits: Any) -> None:  # noqa: N803
    """The count rows (``COUNTED``) of the scoring step's frame ``scored`` added into the run's
    Counters (either may be None; with neither, Spark is not asked)."""
    if unknown_types is None and misfits is None:
        return
    for row in scored.where(F.col("f") == COUNTED).collect():
        if row["where"] == "type" and unknown_types is not None:
            unknown_types[row["id"]] += row["line"]
        elif row["where"] == "field" and misfits is not None:
            misfits[(row["id"], row["reason"])] += row["line"]


def _local(path: str) -> str:
    # binaryFile gives file:/tmp/a b.jsonl; Parquet's _metadata.file_path gives file:///tmp/a%20b.parquet.
    if path.startswith("file:"):
        return unquote(urlparse(path).path) if "%" in path or path.startswith("file://") else path[len("file:"):]
    return path


_SPLIT_DDL = ("kind int, f int, line long, id string, akey string, raw binary, where string, reason string, "
              "dup string")
_ACTIVITY_DDL = "kind int, line long, id string, where string, reason string, fix string, acts binary"
_RESULT_DDL = "f int, line long, text string, id string, where string, reason string"


def _SPLIT_SCHEMA() -> Any:  # noqa: N802 - a schema, built where pyarrow is imported
    import pyarrow as pa

    return pa.schema([("kind", pa.int32()), ("f", pa.int32()), ("line", pa.int64()), ("id", pa.string()),
                      ("akey", pa.string()), ("raw", pa.binary()), ("where", pa.string()), ("reason", pa.string()),
                      ("dup", pa.string())])


def _ACTIVITY_SCHEMA() -> Any:  # noqa: N802
    import pyarrow as pa

    return pa.schema([("kind", pa.int32()), ("line", pa.int64()), ("id", pa.string()), ("where", pa.string()),
                      ("reason", pa.string()), ("fix", pa.string()), ("acts", pa.binary())])


def _RESULT_SCHEMA() -> Any:  # noqa: N802
    import pyarrow as pa

    return pa.schema([("f", pa.int32()), ("line", pa.int64()), ("text", pa.string()), ("id", pa.string()),
                      ("where", pa.string()), ("reason", pa.string())])


# --- the driver -------------------------------------------------------------------------------


def score_files(spark: Any, paths: Sequence[str], engine: Any, *,
                explain: bool = False, top: int = 3, label: str | None = None, partitions: int | None = None,
                activities: str | None = None, fmt: str | None = None, delimiter: str | None = None,
                strict: bool = False, report: ReadReport | None = None, unknown_types: Any = None,
                misfits: Any = None) -> Iterator[Rendered | Rejection]:
    """Score the JSON Lines, CSV or Parquet files behind ``paths`` on ``spark``; cards (as their
    JSON line) and rejections come back in input order (file, then line or row), as ``leadscore
    score`` gives them, then the activity rows no lead matched.

    ``engine`` (a :class:`leadscore.Engine`) names the run: its packs and its scoring time; each
    executor builds an engine of its class with those, and with the plugins installed there.
    ``label`` names the input in duplicate-id messages (default: the one path, or "input").
    ``activities`` is an activities CSV, Parquet file or directory of Parquet parts joined on
    ``lead_id`` (``leadscore score --activities``); ``fmt`` (jsonl, csv or parquet) overrides the
    suffixes; ``delimiter`` and ``strict`` are the CSV reader's (``--delimiter``, ``--strict``).
    ``report`` receives the read's warnings and the activities left out, before the first result;
    ``unknown_types`` (a Counter: activity type -> activities) and ``misfits`` ((field, type) ->
    leads) count what ``leadscore score`` reports of the leads it scores, after the last result.

    :raises InputError: for a problem with a whole file (missing, empty, a bad header), as
        ``leadscore score`` stops on it, before the first result.
    :raises ConfigurationError: when Spark fails (the JVM out of memory, a lost executor): one line
        naming the cause, where Spark's own error is a page of Java stack.
    """
    options = dict(explain=explain, top=top, label=label, partitions=partitions,
                   activities=activities, fmt=fmt, delimiter=delimiter, strict=strict, report=report,
                   unknown_types=unknown_types, misfits=misfits)
    try:
        with _results(spark, paths, engine, **options) as everything:
            for row in everything.orderBy("f", "line").toLocalIterator():
                if row["text"] is not None:
                    yield Rendered(row["text"], row["id"])
                else:
                    yield Rejection(row["where"], row["reason"], row["id"])
    except (LeadscoreError, GeneratorExit):
        raise
    except Exception as err:  # Py4J's and PySpark's errors, or the gateway's socket once the JVM is gone
        raise spark_failure(err) from err


def score_leads(spark: Any, leads: Iterable[Lead | Rejection], engine: Any, *, as_of: datetime | None = None,
                partitions: int | None = None) -> Iterator[ScoreCard | Rejection]:
    """Score leads held in this process on ``spark`` (``Engine(backend="spark").score``): the cards
    (ScoreCard objects) and rejections in the order given, as the python engine scores them with
    its account pass (contacts grouped by account key, as :func:`score_files` groups them).

    Every lead is sent to the executors from here, so this is for leads already in memory; score
    files with :func:`score_files`, which the executors read themselves.
    """
    from pyspark.sql import functions as F  # noqa: N812

    recipe = _recipe(engine, as_of)
    items = list(leads)
    rows: dict[str, list[Any]] = {"line": [], "akey": [], "raw": []}
    for number, item in enumerate(items):
        if isinstance(item, Lead):
            rows["line"].append(number)
            key = account_key(item)
            rows["akey"].append(f"a:{key}" if key else f"l:{number}")
            rows["raw"].append(orjson.dumps(lead_to_dict(item)))  # read back equal by lead_from_dict
    results: list[ScoreCard | Rejection] = list(items)
    if rows["line"]:
        import pyarrow as pa

        parallel = partitions or spark.sparkContext.defaultParallelism
        try:
            table = spark.createDataFrame(pa.table(rows))  # an Arrow table (PySpark 4)
            scored = (table.repartition(parallel, F.col("akey")).sortWithinPartitions("line")
                      .mapInArrow(lambda batches: _score_objects(batches, recipe), "line long, card binary"))
            for row in scored.toLocalIterator():
                results[row["line"]] = pickle.loads(row["card"])
        except (LeadscoreError, GeneratorExit):
            raise
        except Exception as err:  # as in score_files
            raise spark_failure(err) from err
    yield from results


def _score_objects(batches: Iterator[Any], recipe: Any) -> Iterator[Any]:
    """score_leads' step on the executors: one partition's leads (as JSON), in their order, scored
    with the account pass; each card or rejection pickled."""
    import pyarrow as pa

    engine = _engine(recipe)
    rows: list[tuple[int, bytes]] = []
    for batch in batches:
        rows += zip(batch.column("line").to_pylist(), batch.column("raw").to_pylist())
    if not rows:
        return
    rows.sort()
    leads = [lead_from_dict(orjson.loads(raw), f"lead {line}") for line, raw in rows]
    index = engine.build_accounts(leads) if engine.needs_accounts else None
    cards = [_pickled(result) for result in engine.score(leads, accounts=index)]
    yield pa.RecordBatch.from_pydict({"line": [line for line, _ in rows], "card": cards},
                                     schema=pa.schema([("line", pa.int64()), ("card", pa.binary())]))


def _pickled(value: Any) -> bytes:
    """``value`` pickled, with the read-only mappings a card holds (``MappingProxyType``, which
    pickle refuses) sent as their contents."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: lambda proxy: (_read_only, (dict(proxy),))}
    pickler.dump(value)
    return out.getvalue()


def _read_only(contents: dict[str, Any]) -> Any:
    return MappingProxyType(contents) if contents else EMPTY


@define
class PartFiles:
    """What :func:`write_part_files` wrote: the directory, its part files in order, and the cards in them."""

    directory: str
    files: list[str] = field(factory=list)
    cards: int = 0


def write_part_files(spark: Any, paths: Sequence[str], engine: Any, directory: str, *,
                     written: PartFiles | None = None, **options: Any) -> Iterator[Rejection]:
    """Score the files behind ``paths`` as :func:`score_files` does (the same ``options``) and write
    the cards into ``directory`` as JSON Lines part files (``part-00000.jsonl`` ...), written by the
    executors: read in name order, the parts hold the cards in input order, the bytes of
    ``leadscore score -o FILE``. Yields the rejections in input order once the parts are written.

    The parts are written beside ``directory`` under a hidden name and moved into place when the
    last rejection has been taken, replacing an earlier run's parts: a run that fails or is stopped
    leaves the directory as it was. ``written`` receives the part files and the number of cards
    before the first rejection. ``directory`` may be any path Spark writes to (``hdfs://``,
    ``s3a://``); a path without a scheme is taken from the current directory.

    :raises OutputError: when ``directory`` is a file, holds files other than an earlier run's
        parts, or holds an input file.
    """
    from leadscore.files import OutputError

    written = written if written is not None else PartFiles(directory)
    target = directory if "://" in directory else os.path.abspath(directory)
    for path in input_files(paths) + ([p for p, _ in activity_parts(options["activities"])[1]]
                                      if options.get("activities") else []):
        if "://" not in target and os.path.commonpath([target, path]) == target:
            raise OutputError(directory, f"holds the input {path}", "write the part files to another directory")
    store = _Store(spark, target)
    store.check_replaceable(directory)
    staging = store.sibling("new")
    moved = False
    try:
        with _results(spark, paths, engine, **options) as everything:
            from pyspark.sql import functions as F  # noqa: N812

            cards = everything.where(F.col("text").isNotNull())
            # Range-partitioned by input place: part i holds the cards before part i + 1's.
            (cards.orderBy("f", "line").select(F.expr("left(text, length(text) - 1)").alias("value"))
             .write.text(staging))
            written.files = store.number_parts(staging)
            written.cards = cards.count()
            for row in everything.where(F.col("text").isNull()).orderBy("f", "line").toLocalIterator():
                yield Rejection(row["where"], row["reason"], row["id"])
        store.replace(staging)
        moved = True
        written.files = [store.join(target, name) for name in written.files]
    except (LeadscoreError, GeneratorExit, OutputError):
        raise
    except Exception as err:  # noqa: BLE001 - as in score_files
        raise spark_failure(err) from err
    finally:
        if not moved:
            store.remove(staging)


def _cannot(path: str, what: str) -> Exception:
    from leadscore.files import OutputError

    return OutputError(path, what, "check the directory's permissions and free space")


class _Store:
    """The file system behind an output directory, through Hadoop's FileSystem (what Spark writes
    with), so that a part-file directory on HDFS or S3 is handled as one on the local disk."""

    # What an earlier run leaves in its directory: the parts, Spark's _SUCCESS marker, and the
    # local file system's hidden checksum files.
    _OURS = re.compile(r"part-\d{5}\.jsonl|_SUCCESS|\..*\.crc")

    def __init__(self, spark: Any, target: str) -> None:
        jvm = spark.sparkContext._jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        self.target = self._path(target)
        self.fs = self.target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def check_replaceable(self, shown: str) -> None:
        from leadscore.files import OutputError

        if not self.fs.exists(self.target):
            return
        if not self.fs.getFileStatus(self.target).isDirectory():
            raise OutputError(shown, "is a file, and part files are written into a directory",
                              "name a directory (ending in /), or a file ending .jsonl for one file")
        others = sorted(name for name in self._names(self.target) if not self._OURS.fullmatch(name))
        if others:
            raise OutputError(shown, f"holds {others[0]!r}, which is not a part file of an earlier run",
                              "name a new or empty directory, or move the other files out")

    def sibling(self, kind: str) -> str:
        parent, name = self.target.getParent(), self.target.getName()
        return str(self._path(parent, f".{name}.leadscore-{kind}-{uuid.uuid4().hex[:12]}"))

    def _names(self, folder: Any) -> list[str]:
        return [status.getPath().getName() for status in self.fs.listStatus(folder)]

    def number_parts(self, staging: str) -> list[str]:
        """Rename Spark's part files (part-00003-<job>-c000.txt) to part-00000.jsonl, part-00001.jsonl
        ... in their order (empty partitions write no file); Spark's hidden files go."""
        folder = self._path(staging)
        names = self._names(folder)
        parts = sorted(name for name in names if name.startswith("part-") and not name.endswith(".crc"))
        renamed = []
        for number, name in enumerate(parts):
            new = f"part-{number:05d}.jsonl"
            if not self.fs.rename(self._path(folder, name), self._path(folder, new)):
                raise _cannot(staging, f"cannot rename {name} to {new}")
            renamed.append(new)
        return renamed

    def replace(self, staging: str) -> None:
        """Move ``staging`` to the target, the old directory (if any) aside first and then removed."""
        old = None
        if self.fs.exists(self.target):
            old = self._path(self.sibling("old"))
            if not self.fs.rename(self.target, old):
                raise _cannot(str(self.target), "cannot move the earlier part files aside")
        else:
            self.fs.mkdirs(self.target.getParent())
        if not self.fs.rename(self._path(staging), self.target):
            if old is not None:
                self.fs.rename(old, self.target)
            raise _cannot(str(self.target), "cannot move the new part files into place")
        if old is not None:
            self.fs.delete(old, True)

    def remove(self, staging: str) -> None:
        try:
            self.fs.delete(self._path(staging), True)
        except Exception:  # noqa: BLE001 - the session died with the job: the job's error is the one to report
            pass

    def join(self, folder: str, name: str) -> str:
        return str(self._path(self._path(folder), name))


def spark_failure(err: Exception) -> ConfigurationError:
    """Spark's error as one line: the cause, and what to change."""
    text = str(err)
    if "OutOfMemoryError" in text:
        return ConfigurationError("--engine spark", "the Spark job ran out of memory (java.lang.OutOfMemoryError)",
                                  "give the driver more (PYSPARK_SUBMIT_ARGS='--driver-memory 8g pyspark-shell', or "
                                  "spark.executor.memory on a cluster) or split the input into smaller part files")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    return ConfigurationError("--engine spark", f"the Spark job failed: {type(err).__name__}: {first[:300]}",
                              "Spark's log above has the details")


@contextmanager
def _results(spark: Any, paths: Sequence[str], engine: Any, *,
             explain: bool = False, top: int = 3, label: str | None = None, partitions: int | None = None,
             activities: str | None = None, fmt: str | None = None, delimiter: str | None = None,
             strict: bool = False, report: ReadReport | None = None, unknown_types: Any = None,
             misfits: Any = None) -> Iterator[Any]:
    """The run as one DataFrame of columns f, line (the input order), text (a card's JSON line, or
    None), id, where and reason (a rejection's), its steps kept (persisted) while the caller reads it.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

    files = input_files(paths)
    number_of = {p: i for i, p in enumerate(files)}
    labels = [_label(p, paths) for p in files]
    label = label or (paths[0] if len(paths) == 1 else "input")
    recipe = _recipe(engine)
    kind = input_format(files, labels, fmt)
    columns: list[str] = []  # the Parquet leads' unknown-column warnings
    header = parquet_header(files, labels, label, strict, columns) if kind == "parquet" else None
    act_parquet, act_files = activity_parts(activities) if activities is not None else (False, [])

    # Shuffles (duplicates by id, the final sort) into as many partitions as the scoring step: Spark's
    # default of 200 made the driver fetch the sorted cards in 200 jobs.
    parallel = partitions or spark.sparkContext.defaultParallelism
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(parallel))
    # Kept once computed: the lines feed several branches, and the final sort samples its input first;
    # without persist() Spark would split (and score) everything again for each of them.
    if kind == "parquet":
        assert header is not None
        # Spark's own Parquet reader; the hidden _metadata columns give each row's file and place in it.
        table = spark.read.option("mergeSchema", "true").parquet(*files)
        # Positional names: Spark's Python bridge does not resolve dotted ones (company.name).
        rows = table.select(*(F.col(f"`{name}`").alias(f"c{i}") for i, name in enumerate(header)),
                            F.col("_metadata.file_path"), F.col("_metadata.row_index"))
        lines = rows.mapInArrow(lambda batches: _split_parquet(batches, number_of, labels, label, header),
                                _SPLIT_DDL).persist()
    else:
        raw = spark.read.format("binaryFile").load(files).select("path", "content")
        if kind == "csv":
            lines = raw.mapInArrow(lambda batches: _split_csv(batches, number_of, labels, label, delimiter, strict),
                                   _SPLIT_DDL).persist()
        else:
            lines = raw.mapInArrow(lambda batches: _split(batches, number_of, labels, label), _SPLIT_DDL).persist()
    acts = None
    places = {path: (i, part_label) for i, (path, part_label) in enumerate(act_files)}
    act_label = os.fspath(activities) if activities is not None else ""
    if act_files:
        # One task reads the whole activities input, as the python reader does (rows are numbered
        # across the file, or across the parts, in order).
        acts = (spark.read.format("binaryFile").load([path for path, _ in act_files]).select("path", "content")
                .coalesce(1)
                .mapInArrow(lambda batches: _split_activities(batches, places, act_label, act_parquet, delimiter,
                                                              strict), _ACTIVITY_DDL)
                .persist())
    scored = None
    try:
        headers = _notes(lines, acts, report, F, lambda: [
            row for batch in _activity_rows(dict.fromkeys(places, b""), places, act_label, act_parquet, delimiter,
                                            strict) for row in batch.to_pylist()], labels, kind, columns, label)
        if kind == "parquet":
            assert header is not None
            headers = dict.fromkeys(range(len(files)), header)
        first = Window.partitionBy("id").orderBy("f", "line")
        leads = (lines.where(F.col("kind") == LEAD)
                 .withColumn("copy", F.row_number().over(first)))
        # A later copy of an id: rejected as leadscore score rejects it.
        duplicates = leads.where(F.col("copy") > 1).select(
            "f", "line", F.lit(None).cast("string").alias("text"), "id",
            F.concat(F.lit("lead "), F.col("id")).alias("where"), F.col("dup").alias("reason"))
        kept = leads.where(F.col("copy") == 1).drop("copy", "dup")
        if acts is not None:
            kept = kept.join(acts.where(F.col("kind") == ACTIVITIES).select("id", "acts"), "id", "left")
        else:
            kept = kept.withColumn("acts", F.lit(None).cast("binary"))
        key = F.coalesce(F.concat(F.lit("a:"), F.col("akey")), F.concat(F.lit("l:"), F.col("id")))
        grouped = (kept.repartition(parallel, key)
                   .sortWithinPartitions("f", "line"))
        scored = grouped.mapInArrow(lambda batches: _score(batches, recipe, explain, top,
                                                           headers if kind != "jsonl" else None),
                                    _RESULT_DDL).persist()
        refused = lines.where(F.col("kind") == REJECTED).select(
            "f", "line", F.lit(None).cast("string").alias("text"), "id", "where", "reason")
        everything = scored.where(F.col("f") != COUNTED).unionByName(duplicates).unionByName(refused)
        if acts is not None:
            # After the last lead, in the activities file's order: rows no lead (nor a rejected row
            # naming its id) matched, and rows without a usable lead id.
            named = lines.where(F.col("kind").isin(LEAD, REJECTED) & F.col("id").isNotNull()).select("id")
            unknown = acts.where(F.col("kind") == ACTIVITIES).join(named, "id", "left_anti")
            orphans = acts.where(F.col("kind") == REJECTED)
            for late in (unknown, orphans):
                everything = everything.unionByName(late.select(
                    F.lit(len(files)).cast("int").alias("f"), "line", F.lit(None).cast("string").alias("text"),
                    "id", "where", "reason"))
        yield everything
        add_counts(scored, F, unknown_types, misfits)
    finally:
        failing = sys.exc_info()[1] is not None
        try:
            if scored is not None:
                scored.unpersist()
            if acts is not None:
                acts.unpersist()
            lines.unpersist()
            spark.conf.set("spark.sql.shuffle.partitions", before)
        except Exception:  # noqa: BLE001 - the session died with the job: the job's error is the one to report
            if not failing:
                raise


def _notes(lines: Any, acts: Any, report: ReadReport | None, F: Any,  # noqa: N803
           empty_activities: Any, labels: Sequence[str], kind: str,
           columns: Sequence[str] = (), label: str = "") -> dict[int, list[str]]:
    """Each CSV file's header by file number; the warnings and left-out activities into ``report``,
    in the python reader's order (the activities file's first, then the leads', file by file and
    line by line). ``empty_activities`` gives the activities step's rows for empty files, for when
    Spark ran no task at all (it gives none for empty files). ``labels`` name the input files (of
    format ``kind``), ``columns`` are the Parquet leads' unknown-column warnings (parquet_header),
    ``label`` names the input as a whole (Parquet parts without a row between them are refused by it).

    :raises InputError: the first problem with a whole file (the activities file's first, as the
        python reader reads it before the leads; then the first lead file's, an empty one included).
    """
    found: list[Any] = []
    if acts is not None:
        found = acts.where(F.col("kind").isin(FATAL, WARNING, SKIPPED, SKIPPED_COUNT)).collect()
        if not any(row["kind"] in (FATAL, SKIPPED_COUNT) for row in found):  # the reading task never ran
            found = empty_activities()
        for row in found:
            if row["kind"] == FATAL:
                raise InputError(row["where"], row["reason"], row["fix"] or "")
        if not any(row["kind"] == SKIPPED_COUNT for row in found):
            raise InputError("--activities", "Spark read no activities file", "check the activities file")
    meta = sorted(lines.where(F.col("kind").isin(HEADER, FATAL, WARNING, SKIPPED, SKIPPED_COUNT))
                  .select("kind", "f", "line", "id", "raw", "where", "reason", "dup").collect(),
                  key=lambda row: (row["f"], row["kind"] != FATAL))
    problems = [(row["f"], InputError(row["where"], row["reason"], row["dup"] or "")) for row in meta
                if row["kind"] == FATAL]
    if kind != "parquet":
        # A JSON Lines or CSV file Spark gave no task (0 bytes): the split step said nothing of it.
        read = {row["f"] for row in meta if row["kind"] in (FATAL, SKIPPED_COUNT)}
        problems += [(f, empty_file_error(kind, name)) for f, name in enumerate(labels) if f not in read]
    elif not problems and lines.isEmpty():  # every Parquet row is a lead or a rejection: there is none
        problems.append((0, empty_file_error(kind, label)))
    if problems:
        raise min(problems, key=lambda problem: problem[0])[1]
    if report is not None:
        for row in found:
            if row["kind"] == WARNING:
                report.warn(row["reason"])
        # The activities file's left-out activities, then the leads' (file by file, line by line).
        for skipped, rows in ((sorted((row for row in found if row["kind"] == SKIPPED), key=lambda row: row["line"]),
                               found),
                              (sorted((row for row in meta if row["kind"] == SKIPPED),
                                      key=lambda row: (row["f"], row["line"])), meta)):
            for row in skipped:
                report.skip(Rejection(row["where"], row["reason"], row["id"]))
            report.skipped_count += sum(row["line"] for row in rows if row["kind"] == SKIPPED_COUNT) - len(skipped)
        for line in columns:
            report.warn(line)
        for row in meta:
            if row["kind"] == WARNING:
                report.warn(row["reason"])
    return {row["f"]: json.loads(row["raw"]) for row in meta if row["kind"] == HEADER}


def _label(path: str, given: Sequence[str]) -> str:
    """How a file is named in messages: as given when it was given by itself, else its path."""
    for name in given:
        if os.path.isfile(name) and os.path.abspath(name) == path:
            return name
    return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path


__all__ = ["PART_SUFFIXES", "PartFiles", "activity_parts", "check_java", "input_files", "input_format", "score_files",
           "score_leads", "session", "write_part_files"]
