"""Scores JSON Lines or Parquet files on Spark: the python engine runs inside each partition, with
the leads grouped so that every contact of an account is scored in the same partition.

Three steps, each a DataFrame operation Spark can spread over a cluster:

1. every JSON Lines file is read whole (``binaryFile``) and split into lines by the python reader's
   own line rules; Parquet files are read by Spark's Parquet reader, each row with its file and row
   number, its values as text by the python Parquet reader's rules (leadscore.io.parquet). Each
   line or row becomes a lead (its id, its account key, its text) or a rejection naming
   ``file:line`` or ``file:row N`` exactly as ``leadscore score`` does;
2. a later lead with an id met before (in file order, then line order) is rejected as a duplicate;
3. the leads are repartitioned by account key (a lead without one by its id), sorted by their
   place in the input, and each partition is scored by an :class:`~leadscore.engine.Engine` built
   once per worker: the account pass sees every contact of each account it scores, so account
   signals and ``same_account`` are those of a single-process run.

The driver collects the cards (JSON Lines text made by the python writer) and the rejections in
input order. What is shuffled: one row per lead (its text), once for duplicates (by id) and once
for scoring (by account key).
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse
from datetime import datetime
from typing import Any

from leadscore.accounts import account_key
from leadscore.columnar import Rendered
from leadscore.errors import ConfigurationError, InputError
from leadscore.io.duplicates import DEDUPE_FIX
from leadscore.io.maps import plan_header
from leadscore.io.parquet import PARQUET_SUFFIX, ParquetPart, is_parquet
from leadscore.io.readers import _lead_targets, _lines, _row_lead, line_context, parse_jsonl_line
from leadscore.model import Lead, Rejection

# Suffixes of the part files read from a directory (a lakehouse export writes part-00000.json ...).
PART_SUFFIXES = (".jsonl", ".json", ".ndjson", PARQUET_SUFFIX)


# A JSON Lines file is read whole by one task (binaryFile), and a JVM byte array holds less than 2 GiB.
WHOLE_FILE_LIMIT = 2**31 - 1 - 2**20


def input_files(paths: Sequence[str]) -> list[str]:
    """The files behind ``paths`` (files, globs, directories of part files), sorted within each path.

    :raises InputError: when a path names nothing, a directory holds no JSON Lines part files, or a
        JSON Lines file is too big for one task.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            parts = sorted(os.path.join(path, name) for name in os.listdir(path)
                           if name.endswith(PART_SUFFIXES) and not name.startswith((".", "_")))
            if not parts:
                raise InputError(path, "no JSON Lines or Parquet part files in this directory",
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
        size = os.path.getsize(path)
        if size > WHOLE_FILE_LIMIT and not is_parquet(Path(path)):
            raise InputError(path, f"is {size / 2**30:.1f} GiB: Spark reads a JSON Lines file whole in one task, "
                                   "which holds less than 2 GiB",
                             "split it into part files in a directory (e.g. split -C 256m --additional-suffix=.jsonl "
                             "FILE DIR/part-) and score the directory")
    return [os.path.abspath(p) for p in found]


def parquet_header(files: Sequence[str], labels: Sequence[str]) -> list[str] | None:
    """The lead columns when ``files`` are Parquet (None when they are JSON Lines), each file's
    columns checked as ``leadscore score`` checks them, before Spark starts on them.

    :raises InputError: when Parquet and JSON Lines files are mixed, or a file has a column of a
        type its field does not take (the same one-line message as the python reader).
    """
    kinds = {is_parquet(Path(path)) for path in files}
    if kinds == {False}:
        return None
    if len(kinds) > 1:
        raise InputError(labels[0], "the input mixes Parquet and JSON Lines files", "score each format in its own run")
    header: list[str] = []
    for path, label in zip(files, labels):
        with ParquetPart(Path(path), label) as part:
            part.check(_lead_targets(plan_header(part.columns, label, None)))
            header += [name for name in part.columns if name not in header]
    return header


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


def _engine(rulepacks: tuple[str, ...] | None, as_of: datetime) -> Any:
    """The worker's engine for this run's packs (a Spark python worker scores many partitions)."""
    key = (rulepacks, as_of)
    engine = _ENGINES.get(key)
    if engine is None:
        from leadscore.engine import Engine

        _ENGINES.clear()
        engine = _ENGINES[key] = Engine(rulepacks=list(rulepacks) if rulepacks else None, as_of=as_of)
    return engine


_SPLIT_COLUMNS = ("f", "line", "id", "akey", "raw", "where", "reason", "dup")


def _split_row(out: dict[str, list[Any]], f: int, number: int, where: str, item: Lead | Rejection, raw: Any,
               label: str) -> None:
    """One line or row of the input into the split step's columns: a lead with its text, or a rejection."""
    out["f"].append(f)
    out["line"].append(number)
    out["where"].append(where)
    if isinstance(item, Rejection):
        out["id"].append(item.lead_id)
        out["akey"].append(None)
        out["raw"].append(None)
        out["reason"].append(item.reason)
        out["dup"].append(None)
        return
    out["id"].append(item.id)
    out["akey"].append(account_key(item))
    out["raw"].append(raw)
    out["reason"].append(None)
    # What a later copy of this id is told (io.duplicates words it the same way).
    out["dup"].append(f"duplicate lead id {item.id!r}: an earlier row of {label} has it and was scored; {DEDUPE_FIX}")


def _split(batches: Iterator[Any], files: dict[str, int], labels: list[str], label: str) -> Iterator[Any]:
    import pyarrow as pa

    for batch in batches:
        out: dict[str, list[Any]] = {name: [] for name in _SPLIT_COLUMNS}
        for path, content in zip(batch.column("path").to_pylist(), batch.column("content").to_pylist()):
            f = files[_local(path)]
            # The python reader's own line splitting (at b"\n", over-long lines as None).
            for number, raw in _lines(io.BytesIO(content), labels[f]):
                where = f"{labels[f]}:{number}"
                item = parse_jsonl_line(raw, where, number == 1, line_context())
                if item is not None:
                    _split_row(out, f, number, where, item, raw, label)
        yield pa.RecordBatch.from_pydict(out, schema=_SPLIT_SCHEMA())


def _split_parquet(batches: Iterator[Any], files: dict[str, int], labels: list[str], label: str,
                   header: list[str]) -> Iterator[Any]:
    """Parquet rows (columns ``header``, then the file's path and the row's index) as leads or
    rejections, by the python Parquet reader's rules; a lead's text is its row of cells as JSON."""
    import pyarrow as pa

    from leadscore.io.parquet import _text_cells

    plan = plan_header(header, label, None)
    context = line_context()
    width = len(header)
    for batch in batches:
        out: dict[str, list[Any]] = {name: [] for name in _SPLIT_COLUMNS}
        cells = [_text_cells(batch.column(i)) for i in range(width)]
        places = zip(batch.column(width).to_pylist(), batch.column(width + 1).to_pylist())
        for (path, index), row in zip(places, zip(*cells)):
            f = files[_local(path)]
            where = f"{labels[f]}:row {index + 1}"
            item = _row_lead(plan, row, where, context)
            _split_row(out, f, index + 1, where, item, json.dumps(row, ensure_ascii=False).encode(), label)
        yield pa.RecordBatch.from_pydict(out, schema=_SPLIT_SCHEMA())


def _lead_of(raw: bytes, where: str, number: int, header: list[str] | None, plan: Any) -> Lead:
    """The lead the split step kept, built again from its text (a JSON line, or a Parquet row's cells)."""
    if header is None:
        item = parse_jsonl_line(raw, where, number == 1, line_context())
    else:
        item = _row_lead(plan, json.loads(raw), where, line_context())
    assert isinstance(item, Lead)  # the split step kept leads only
    return item


def _score(batches: Iterator[Any], rulepacks: tuple[str, ...] | None, as_of: datetime, explain: bool,
           top: int, header: list[str] | None = None) -> Iterator[Any]:
    import pyarrow as pa

    from leadscore.io.writers import JsonLinesWriter

    engine = _engine(rulepacks, as_of)
    rows: list[tuple[int, int, str, bytes]] = []
    for batch in batches:
        rows += zip(batch.column("f").to_pylist(), batch.column("line").to_pylist(),
                    batch.column("where").to_pylist(), batch.column("raw").to_pylist())
    if not rows:
        return
    rows.sort(key=lambda row: (row[0], row[1]))
    plan = plan_header(header, "", None) if header is not None else None
    leads = [_lead_of(raw, where, number, header, plan) for _, number, where, raw in rows]
    index = engine.build_accounts(leads) if engine.needs_accounts else None
    out: dict[str, list[Any]] = {name: [] for name in ("f", "line", "text", "id", "where", "reason")}
    buffer = io.StringIO()
    writer = JsonLinesWriter(buffer, explain=explain, top=top)
    for (f, number, _, _), lead, result in zip(rows, leads, engine.score(leads, accounts=index)):
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
    yield pa.RecordBatch.from_pydict(out, schema=_RESULT_SCHEMA())


def _local(path: str) -> str:
    # binaryFile gives file:/tmp/a b.jsonl; Parquet's _metadata.file_path gives file:///tmp/a%20b.parquet.
    if path.startswith("file:"):
        return unquote(urlparse(path).path) if "%" in path or path.startswith("file://") else path[len("file:"):]
    return path


def _SPLIT_SCHEMA() -> Any:  # noqa: N802 - a schema, built where pyarrow is imported
    import pyarrow as pa

    return pa.schema([("f", pa.int32()), ("line", pa.int64()), ("id", pa.string()), ("akey", pa.string()),
                      ("raw", pa.binary()), ("where", pa.string()), ("reason", pa.string()), ("dup", pa.string())])


def _RESULT_SCHEMA() -> Any:  # noqa: N802
    import pyarrow as pa

    return pa.schema([("f", pa.int32()), ("line", pa.int64()), ("text", pa.string()), ("id", pa.string()),
                      ("where", pa.string()), ("reason", pa.string())])


# --- the driver -------------------------------------------------------------------------------


def score_files(spark: Any, paths: Sequence[str], *, rulepacks: Sequence[str] | None, as_of: datetime,
                explain: bool = False, top: int = 3, label: str | None = None,
                partitions: int | None = None) -> Iterator[Rendered | Rejection]:
    """Score the JSON Lines or Parquet files behind ``paths`` on ``spark``; cards (as their JSON
    line) and rejections come back in input order (file, then line or row), as ``leadscore score``
    gives them.

    ``label`` names the input in duplicate-id messages (default: the one path, or "input").
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

    files = input_files(paths)
    number_of = {p: i for i, p in enumerate(files)}
    labels = [_label(p, paths) for p in files]
    label = label or (paths[0] if len(paths) == 1 else "input")
    packs = tuple(rulepacks) if rulepacks else None
    header = parquet_header(files, labels)
    split_schema = "f int, line long, id string, akey string, raw binary, where string, reason string, dup string"
    result_schema = "f int, line long, text string, id string, where string, reason string"

    # Shuffles (duplicates by id, the final sort) into as many partitions as the scoring step: Spark's
    # default of 200 made the driver fetch the sorted cards in 200 jobs.
    parallel = partitions or spark.sparkContext.defaultParallelism
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(parallel))
    # Kept once computed: the lines feed three branches, and the final sort samples its input first;
    # without persist() Spark would split (and score) everything again for each of them.
    if header is None:
        raw = spark.read.format("binaryFile").load(files).select("path", "content")
        lines = raw.mapInArrow(lambda batches: _split(batches, number_of, labels, label), split_schema).persist()
    else:
        # Spark's own Parquet reader; the hidden _metadata columns give each row's file and place in it.
        table = spark.read.option("mergeSchema", "true").parquet(*files)
        # Positional names: Spark's Python bridge does not resolve dotted ones (company.name).
        rows = table.select(*(F.col(f"`{name}`").alias(f"c{i}") for i, name in enumerate(header)),
                            F.col("_metadata.file_path"), F.col("_metadata.row_index"))
        lines = rows.mapInArrow(lambda batches: _split_parquet(batches, number_of, labels, label, header),
                                split_schema).persist()
    first = Window.partitionBy("id").orderBy("f", "line")
    leads = (lines.where(F.col("reason").isNull())
             .withColumn("copy", F.row_number().over(first)))
    # A later copy of an id: rejected as leadscore score rejects it.
    duplicates = leads.where(F.col("copy") > 1).select(
        "f", "line", F.lit(None).cast("string").alias("text"), "id",
        F.concat(F.lit("lead "), F.col("id")).alias("where"), F.col("dup").alias("reason"))
    kept = leads.where(F.col("copy") == 1).drop("copy", "dup")
    key = F.coalesce(F.concat(F.lit("a:"), F.col("akey")), F.concat(F.lit("l:"), F.col("id")))
    grouped = (kept.repartition(parallel, key)
               .sortWithinPartitions("f", "line"))
    scored = grouped.mapInArrow(lambda batches: _score(batches, packs, as_of, explain, top, header),
                                result_schema).persist()
    refused = lines.where(F.col("reason").isNotNull()).select(
        "f", "line", F.lit(None).cast("string").alias("text"), "id", "where", "reason")
    everything = scored.unionByName(duplicates).unionByName(refused).orderBy("f", "line")
    try:
        for row in everything.toLocalIterator():
            if row["text"] is not None:
                yield Rendered(row["text"], row["id"])
            else:
                yield Rejection(row["where"], row["reason"], row["id"])
    finally:
        scored.unpersist()
        lines.unpersist()
        spark.conf.set("spark.sql.shuffle.partitions", before)


def _label(path: str, given: Sequence[str]) -> str:
    """How a file is named in messages: as given when it was given by itself, else its path."""
    for name in given:
        if os.path.isfile(name) and os.path.abspath(name) == path:
            return name
    return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path


__all__ = ["PART_SUFFIXES", "check_java", "input_files", "score_files", "session"]
