#!/usr/bin/env python3
"""Run ``leadscore`` with what each block's query of the columnar engine took from DuckDB: the
buffer pool's peak while it ran, the memory it allocated, the bytes it spilled, its time.

    uv run python bench/query_peaks.py score g200k-leads.parquet --activities g200k-activities.parquet \\
        -r firr-base --engine duckdb --as-of 2026-12-01 -o c.jsonl

The arguments are the CLI's. The figures are DuckDB's own (its JSON profile's ``system`` and
``query`` sections, ``LEADSCORE_COLUMNAR_PROFILE``), one line a block on stderr as ``[query] ...``,
then their least, median and largest over the blocks with leads. The pool's peak counts everything DuckDB holds at that
moment (an activities file's table too), so a query that reaches the memory limit shows it here
with the bytes it spilled; what the query itself needs is told by running it alone
(``bench/query_profile.py --dump``, or its tables in a database of their own).
"""

from __future__ import annotations

import atexit
import json
import os
import statistics
import sys
import tempfile

from leadscore_cli.main import prefer_system_allocator  # imports no pyarrow

prefer_system_allocator()  # as leadscore's main() does, before pyarrow is imported

from leadscore.columnar import engine  # noqa: E402

MIB = 1 << 20
profile = os.path.join(tempfile.mkdtemp(prefix="leadscore-query-peaks-"), "profile.json")
os.environ["LEADSCORE_COLUMNAR_PROFILE"] = profile
found: list[tuple[int, float, float, float, float]] = []  # (leads, peak MiB, allocated MiB, spilled MiB, seconds)
run_views = engine.ColumnarScorer.run_views


def recorded(self: engine.ColumnarScorer, *args: object, **kwargs: object) -> list[dict]:
    rows = run_views(self, *args, **kwargs)
    with open(profile) as f:
        made = json.load(f)
    system, query = made["system"], made["query"]
    found.append((len(rows), system["peak_buffer_memory"] / MIB, system["total_memory_allocated"] / MIB,
                  system["total_bytes_spilled"] / MIB, query["total_time"]))
    leads, peak, allocated, spilled, seconds = found[-1]
    sys.stderr.write(f"[query] block {len(found)}: {leads} leads, pool peak {peak:.0f} MiB, allocated {allocated:.0f} MiB, "
                     f"spilled {spilled:.0f} MiB, {seconds:.3f} s\n")
    return rows


def summary() -> None:
    if not any(row[0] for row in found):
        sys.stderr.write("[query] no block ran on the columnar engine\n")
        return
    scored = [row for row in found if row[0]]  # the scorer's check of its plan on no leads left out
    for index, name in ((1, "pool peak MiB"), (2, "allocated MiB"), (3, "spilled MiB"), (4, "seconds")):
        values = [row[index] for row in scored]
        sys.stderr.write(f"[query] {name}: least {min(values):.3f}, median {statistics.median(values):.3f}, "
                         f"largest {max(values):.3f} over {len(values)} blocks\n")


engine.ColumnarScorer.run_views = recorded
atexit.register(summary)

from leadscore_cli.main import main  # noqa: E402

sys.argv = ["leadscore", *sys.argv[1:]]
main()
