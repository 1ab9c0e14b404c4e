#!/usr/bin/env python3
"""The duplicate check of a columnar scan without the account pass, at the size of a large file,
without reading one: time a block and resident memory as the lead ids met grow.

    uv run python bench/seen_ids.py                            # 10,000,000 leads, 8,000 a block
    uv run python bench/seen_ids.py --in-memory 100000000      # every hash in DuckDB's memory, as before

A scan with rulepacks that need no account pass (firr-base alone, say) checks each block's lead ids
against every id met before (:class:`leadscore.columnar.scan.SeenIds`): the latest
``--in-memory`` hashes in a DuckDB table, the earlier ones in Parquet files. This script runs the
check's statements on the engine's own connection (two threads, the scorer's 200 MB memory limit)
with blocks of distinct generated ids (and one id of the first block again in each, a duplicate to
find), and prints every hundredth block's time, the resident size and DuckDB's own memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

import pyarrow as pa

from leadscore import Engine, PluginManager
from leadscore.columnar import scan
from proc_memory import duckdb_mib, status

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=10_000_000)
    parser.add_argument("--block", type=int, default=8_000, help="leads a block (8,000: a 16 MB block of generated leads)")
    parser.add_argument("--in-memory", type=int, default=scan.SEEN_IDS_IN_MEMORY,
                        help="hashes held in DuckDB's memory before they go to a file")
    args = parser.parse_args(argv)
    scan.SEEN_IDS_IN_MEMORY = args.in_memory
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        scorer = engine.columnar_scorer(AS_OF, explain=False, top=3, values=False, render="jsonl")
        if scorer is None:
            print("the columnar engine cannot run the installed packs here", file=sys.stderr)
            return 1
        return _run(scorer, args)


def _run(scorer, args: argparse.Namespace) -> int:
    con = scorer.con
    seen = scan.SeenIds(con, scorer.tmp.name)
    print(f"{args.leads:,} leads in blocks of {args.block:,}, {args.in_memory:,} hashes in memory", flush=True)
    started, slowest, found = time.perf_counter(), 0.0, 0
    try:
        for number, first in enumerate(range(0, args.leads, args.block)):
            ids = [f"L-{n:09d}" for n in range(first, min(first + args.block, args.leads))]
            if first:
                ids.append("L-000000007")  # met in the first block
            con.register("in_ids", pa.table({"k": pa.array(range(first, first + len(ids)), pa.int64()),
                                             "id": pa.array(ids)}))
            con.execute("CREATE OR REPLACE TEMP TABLE block_ids AS SELECT * FROM in_ids")
            con.unregister("in_ids")
            began = time.perf_counter()
            seen.find_met(con)
            found += con.execute("SELECT count(*) FROM met").fetchall()[0][0]
            seen.add_new(con, "bench")
            took = time.perf_counter() - began
            slowest = max(slowest, took)
            if number % 100 == 0:
                duck = duckdb_mib(con)[0]
                print(f"block {number:5d} ({first:>10,} ids met): {took * 1000:6.1f} ms, resident {status('VmRSS')} MiB "
                      f"(peak {status('VmHWM')}), DuckDB {duck} MiB, {seen.files.files} files", flush=True)
    finally:
        seen.close()
    blocks = number + 1
    print(f"{blocks} blocks in {time.perf_counter() - started:.1f} s; slowest check {slowest * 1000:.1f} ms; "
          f"duplicates found {found} of {blocks - 1}; peak resident {status('VmHWM')} MiB")
    return 0 if found == blocks - 1 else 1


if __name__ == "__main__":
    sys.exit(main())
