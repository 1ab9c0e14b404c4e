#!/usr/bin/env python3
"""Where a columnar scan's memory goes, block by block, for rulepacks scored in one pass.

    uv run python bench/scan_memory.py g1m.jsonl -r firr-base
    uv run python bench/scan_memory.py g1m.jsonl -r firr-base --block-mb 24 --every 20

Scores a JSON Lines file with the columnar engine (the cards are made and dropped, nothing is
written) and prints, every --every blocks: the highest peak resident size of those blocks (VmHWM,
reset after each block through /proc/self/clear_refs), the resident size, DuckDB's own accounting
(duckdb_memory(): in memory, spilled) and Python's live memory blocks. ``--block-mb``: the scan's
blocks of lines, in MiB (default: the engine's). For the account pass's blocks see
bench/account_pass_memory.py. Linux only (it reads /proc/self).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from leadscore import Engine, PluginManager
from leadscore.columnar import engine as columnar, scan
from proc_memory import duckdb_mib, reset_peak, status

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a JSON Lines file of generated leads (bench/generate.py)")
    parser.add_argument("-r", "--rulepack", action="append", help="rulepacks (default: firr-base)")
    parser.add_argument("--block-mb", type=int, help="blocks of this many MiB of lines")
    parser.add_argument("--every", type=int, default=10, help="print every N blocks")
    args = parser.parse_args()
    if args.block_mb:
        scan.BLOCK_BYTES = args.block_mb << 20
    run_views = columnar.ColumnarScorer.run_views
    peaks: list[int] = []
    start = time.perf_counter()
    print(f"blocks of {scan.BLOCK_BYTES >> 20} MiB", flush=True)
    print("block       s  peak_MiB  resident_MiB  duckdb_MiB  spilled_MiB  python_blocks", flush=True)

    def traced(self: columnar.ColumnarScorer, **kwargs: object) -> object:
        found = run_views(self, **kwargs)
        peaks.append(status("VmHWM"))
        if len(peaks) % args.every == 0:
            held, spilled = duckdb_mib(self.con)
            print(f"{len(peaks):5d}  {time.perf_counter() - start:6.0f}  {max(peaks[-args.every:]):8d}  "
                  f"{status('VmRSS'):12d}  {held:10d}  {spilled:11d}  {sys.getallocatedblocks():13d}", flush=True)
        reset_peak()  # the next block's peak is its own
        return found

    leads = sum(1 for _ in one_pass_cards(args.path, args.rulepack, traced, "these rulepacks need the account pass: "
                                          "see bench/account_pass_memory.py and bench/phase_peaks.py"))
    print(f"{leads:,} lines, {len(peaks)} blocks in {time.perf_counter() - start:.0f} s; highest block peak "
          f"{max(peaks)} MiB", flush=True)


def one_pass_cards(path: str, rulepacks: list[str] | None, run_views: Any, refusal: str) -> Iterator[Any]:
    """The cards of a columnar scan of ``path`` as ``leadscore score --engine duckdb`` makes them (JSON
    lines, no ledger), ``run_views`` standing in for ColumnarScorer.run_views; exits with ``refusal``
    when the rulepacks (default: firr-base) need the account pass."""
    columnar.ColumnarScorer.run_views = run_views
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF, rulepacks=rulepacks or ["firr-base"]) as engine:
        if engine.needs_accounts:
            sys.exit(refusal)
        yield from scan.scan_jsonl(engine, path, path, AS_OF, explain=False, top=3, render="jsonl")


if __name__ == "__main__":
    main()
