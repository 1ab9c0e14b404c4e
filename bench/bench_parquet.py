#!/usr/bin/env python3
"""Parquet in and out beside JSON Lines and CSV: ``leadscore score`` on the same generated leads in each format.

    uv run python bench/bench_parquet.py --leads 20000 --rulepack firr-base --engines python,duckdb

The leads come from bench/generate.py (cached in bench/out/ as bench_score.py caches them). They are
written once, untimed, in the normalised shape too: leads.csv + activities.csv (one row per
activity), and the same two tables as Parquet (pyarrow's CSV reader types the columns: integers,
floats, booleans, UTC timestamps; ids stay text). Then, per engine, one process per run:

    leadscore score LEADS [--activities ACTS] --as-of 2026-11-23T00:00:00Z -r firr-base -o OUT --engine E

with LEADS/OUT in: jsonl -> jsonl, csv -> jsonl, parquet -> jsonl, parquet -> parquet, jsonl -> parquet.
Wall time is spawn to exit; CPU time is the child's user + system time from the rusage os.wait4
returns (what /usr/bin/time prints); peak RSS likewise. Each run must exit 0 and yield one card per
lead; Parquet and CSV input must give byte-identical JSON Lines. The conversion runs in a process
of its own: Linux keeps a child's peak RSS across exec, so a parent holding the tables would count
them in every run it starts.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_score import AS_OF, DEFAULT_OUT, _child_env, _shown, leads_file, leadscore_executable, machine  # noqa: E402

# (input format, output format) of each run, in the order they are reported.
RUNS = (("jsonl", "jsonl"), ("csv", "jsonl"), ("parquet", "jsonl"), ("parquet", "parquet"), ("jsonl", "parquet"))


@dataclass
class Measured:
    engine: str
    source: str
    target: str
    seconds: float
    cpu: float
    peak_mib: float
    digest: str


def normalised_inputs(jsonl: Path) -> dict[str, tuple[Path, Path | None]]:
    """{format: (leads, activities)}: the JSON Lines file itself, and its CSV and Parquet forms
    (cached; written by a child process)."""
    made = _input_paths(jsonl)
    if not all(path.exists() for pair in made.values() for path in pair if path is not None):
        print(f"writing {_shown(jsonl)} as CSV and Parquet", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--write-inputs", str(jsonl)], check=True)
    return made


def _input_paths(jsonl: Path) -> dict[str, tuple[Path, Path | None]]:
    stem = jsonl.with_suffix("")
    made = {"jsonl": (jsonl, None),
            "csv": (stem.with_name(stem.name + "-leads.csv"), stem.with_name(stem.name + "-activities.csv")),
            "parquet": (stem.with_name(stem.name + "-leads.parquet"), stem.with_name(stem.name + "-activities.parquet"))}
    return made


def write_inputs(jsonl: Path) -> None:
    """The CSV pair, then each CSV as Parquet, in bounded memory: a ten-million-lead file's activities
    (about 200M rows) do not fit in memory as one table."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    made = _input_paths(jsonl)
    leads_csv, acts_csv = made["csv"]
    _write_csv(jsonl, leads_csv, acts_csv)
    ids = {"id": "string", "account_id": "string", "lead_id": "string"}
    for source, target in ((leads_csv, made["parquet"][0]), (acts_csv, made["parquet"][1])):
        with open(source, encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        types = {name: pa.string() for name in header if name in ids}
        # As pacsv.read_csv does, the column types are inferred from the first block; the row groups
        # are pyarrow's default size (write_table's), not one per block read.
        reader = pacsv.open_csv(source, convert_options=pacsv.ConvertOptions(column_types=types))
        with pq.ParquetWriter(target, reader.schema) as writer:
            held: list[pa.RecordBatch] = []
            rows = 0
            for batch in reader:
                held.append(batch)
                rows += batch.num_rows
                if rows >= _ROW_GROUP:
                    table = pa.Table.from_batches(held, reader.schema)
                    writer.write_table(table.slice(0, _ROW_GROUP), row_group_size=_ROW_GROUP)
                    held = table.slice(_ROW_GROUP).to_batches()
                    rows -= _ROW_GROUP
            if rows:
                writer.write_table(pa.Table.from_batches(held, reader.schema), row_group_size=_ROW_GROUP)


# pyarrow's default row group size (pq.write_table): rows, not bytes.
_ROW_GROUP = 1024 * 1024


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _rows(jsonl: Path) -> Iterator[tuple[dict[str, object], list[dict[str, object]]]]:
    """Each lead of ``jsonl`` as its leads-CSV row and its activities-CSV rows."""
    with open(jsonl, encoding="utf-8") as handle:
        for line in handle:
            lead = json.loads(line)
            row = {k: v for k, v in lead.items() if k not in ("company", "fields", "activities")}
            row.update({f"company.{k}": v for k, v in (lead.get("company") or {}).items()})
            row.update({f"fields.{k}": v for k, v in (lead.get("fields") or {}).items()})
            acts = []
            for activity in lead.get("activities") or []:
                arow = {"lead_id": lead["id"], "type": activity["type"], "at": activity["at"]}
                if activity.get("id") is not None:
                    arow["id"] = activity["id"]
                arow.update({f"properties.{k}": v for k, v in (activity.get("properties") or {}).items()})
                acts.append(arow)
            yield row, acts


def _write_csv(jsonl: Path, leads_path: Path, acts_path: Path) -> None:
    """The leads of ``jsonl`` as a leads CSV and an activities CSV (the shape `--activities` reads),
    read twice: once for the columns (in the order they first appear), once for the rows."""
    lead_columns: dict[str, None] = {}
    act_columns: dict[str, None] = dict.fromkeys(["lead_id", "type", "at"])
    for row, acts in _rows(jsonl):
        lead_columns.update(dict.fromkeys(row))
        for arow in acts:
            act_columns.update(dict.fromkeys(arow))
    with open(leads_path, "w", newline="", encoding="utf-8") as leads_out, \
            open(acts_path, "w", newline="", encoding="utf-8") as acts_out:
        leads_writer = csv.writer(leads_out, lineterminator="\r\n")
        acts_writer = csv.writer(acts_out, lineterminator="\r\n")
        leads_writer.writerow(lead_columns)
        acts_writer.writerow(act_columns)
        for row, acts in _rows(jsonl):
            leads_writer.writerow([_cell(row.get(column)) for column in lead_columns])
            acts_writer.writerows([_cell(arow.get(column)) for column in act_columns] for arow in acts)


def run_once(leads: Path, acts: Path | None, out: Path, engine: str, packs: list[str], n: int) -> Measured:
    cmd = [str(leadscore_executable()), "score", str(leads), "--as-of", AS_OF, "-o", str(out), "--engine", engine]
    if acts is not None:
        cmd += ["--activities", str(acts)]
    for pack in packs:
        cmd += ["--rulepack", pack]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_child_env())
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench_parquet: {' '.join(cmd)}\n  exited with {code}:\n{stderr[-2000:]}")
    counted = re.search(r"scored (\d+) \+ rejected (\d+)", stderr)
    if counted is None or (int(counted.group(1)), int(counted.group(2))) != (n, 0):
        sys.exit(f"bench_parquet: {' '.join(cmd)}\n  did not score every lead:\n{stderr[-2000:]}")
    peak = (usage.ru_maxrss / 1024 / 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return Measured(engine, "", "", seconds, usage.ru_utime + usage.ru_stime, peak, digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000, help="number of generated leads (default 20000)")
    parser.add_argument("--engines", default="python,duckdb", help="engines, comma-separated (default python,duckdb)")
    parser.add_argument("--rulepack", action="append", default=[], metavar="NAME|PATH",
                        help="passed to leadscore score (repeatable); default: every installed rulepack")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="cache and scratch directory (default bench/out)")
    parser.add_argument("--write-inputs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_inputs:
        write_inputs(args.write_inputs)
        return 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    inputs = normalised_inputs(leads_file(args.leads, args.seed, args.out_dir))
    results: list[Measured] = []
    for engine in engines:
        for source, target in RUNS:
            leads, acts = inputs[source]
            out = args.out_dir / f"bench-parquet-{engine}-{source}.{target}"
            measured = run_once(leads, acts, out, engine, args.rulepack, args.leads)
            measured.source, measured.target = source, target
            out.unlink()
            print(f"  {engine:>7} {source:>7} -> {target:<7} {measured.seconds:6.2f} s wall  {measured.cpu:6.2f} s CPU  "
                  f"{measured.peak_mib:6.0f} MiB", file=sys.stderr, flush=True)
            results.append(measured)
    packs = "".join(f" -r {p}" for p in args.rulepack) or " (every installed rulepack)"
    sizes = {fmt: sum(p.stat().st_size for p in pair if p is not None) / 2**20 for fmt, pair in inputs.items()}
    lines = [f"leadscore score LEADS [--activities ACTS] --as-of {AS_OF}{packs} -o OUT --engine E; "
             f"{args.leads:,} generated leads (seed {args.seed}); one run each", "",
             "input sizes: " + ", ".join(f"{fmt} {size:.1f} MiB" for fmt, size in sizes.items()), "",
             "| engine | in -> out | wall s | CPU s (user+sys) | leads/s (wall) | peak RSS MiB |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.engine} | {r.source} -> {r.target} | {r.seconds:.2f} | {r.cpu:.2f} | "
                     f"{args.leads / r.seconds:,.0f} | {r.peak_mib:.0f} |")
    lines.append("")
    for engine in engines:
        by = {(r.source, r.target): r for r in results if r.engine == engine}
        same = by[("parquet", "jsonl")].digest == by[("csv", "jsonl")].digest
        base = by[("jsonl", "jsonl")]
        lines.append(f"{engine}: parquet -> jsonl output {'identical to' if same else 'DIFFERS FROM'} csv -> jsonl; "
                     f"wall vs jsonl -> jsonl: " + ", ".join(
                         f"{s} -> {t} {r.seconds / base.seconds:.2f}x" for (s, t), r in by.items() if r is not base))
    lines += ["", "machine:"] + [f"  {k:<9} {v}" for k, v in machine().items()]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
