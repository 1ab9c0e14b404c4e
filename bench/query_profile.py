#!/usr/bin/env python3
"""Where the columnar engine's query spends its time on one block: DuckDB's operators, the costliest first.

    uv run python bench/query_profile.py g200k.jsonl -r firr-base
    uv run python bench/query_profile.py g200k.jsonl --block 3 --repeat 5 --top 25
    uv run python bench/query_profile.py g200k.jsonl --sql q.sql --dump tables/   # to try a rewrite on

Scans a JSON Lines file as ``leadscore score --engine duckdb`` does (cards rendered as JSON lines,
no ledger) up to the block ``--block``; there, once the block's stored steps are made, runs the
batch's query ``--repeat`` times as the engine does (the prepared statement) and prints the best
time, then once more as text with DuckDB's JSON profiling on, and prints DuckDB's memory in that
run (its buffer pool's peak, what it allocated and spilled) and the operators by their own time with
their share of the sum (``LEADSCORE_COLUMNAR_PROFILE`` profiles the prepared
statement, which DuckDB does not break into operators). ``--sql`` writes the query's text and
``--dump`` the tables it reads (the block's ``sig``, ``b_leads``, ``b_acts`` and the plan's
constant tables) as Parquet files. Only rulepacks scored in one pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time

from leadscore.columnar import engine as columnar
from leadscore.columnar import sql as q
from scan_memory import one_pass_cards


def _operators(node: dict, depth: int = 0) -> list[tuple[float, int, str, str]]:
    """(own time, depth, name, details) of ``node`` of DuckDB's JSON profile and of each operator under it."""
    found = []
    name = node.get("name") or node.get("operator_name") or "?"
    timing = float(node.get("timing", node.get("operator_timing", 0.0)) or 0.0)
    info = node.get("extra_info") or {}
    text = "; ".join(f"{k}: {v}" for k, v in info.items()) if isinstance(info, dict) else str(info)
    if name != "?" or timing:
        found.append((timing, depth, name.strip(), " ".join(text.split())[:160]))
    for child in node.get("children", []):
        found += _operators(child, depth + 1)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a JSON Lines file of generated leads (bench/generate.py)")
    parser.add_argument("-r", "--rulepack", action="append", help="rulepacks (default: firr-base)")
    parser.add_argument("--block", type=int, default=2, help="the block to profile (from 1)")
    parser.add_argument("--repeat", type=int, default=3, help="times the query is run for its best time")
    parser.add_argument("--top", type=int, default=20, help="operators printed")
    parser.add_argument("--sql", help="write the query's text to this file")
    parser.add_argument("--dump", help="write the tables the query reads to this folder, as Parquet files")
    args = parser.parse_args()
    run_views = columnar.ColumnarScorer.run_views
    seen = [0]
    done: list[bool] = []  # set once the block is profiled: the scan stops there

    def profiled(self: columnar.ColumnarScorer, **kwargs: object) -> object:
        seen[0] += 1
        if seen[0] < args.block:
            return run_views(self, **kwargs)
        found = run_views(self, **kwargs)  # the stored steps (sig) stay until the next block
        con = self.con
        variant = self.variants[False]
        best = min(_timed(lambda: con.execute("EXECUTE ls_query_0").fetchall()) for _ in range(args.repeat))
        leads = con.execute("SELECT count(*) FROM sig").fetchall()[0][0]
        acts = con.execute("SELECT count(*) FROM b_acts").fetchall()[0][0]
        print(f"block {seen[0]}: {leads:,} leads, {acts:,} activities; query best of {args.repeat}: {best:.3f} s "
              f"({best * 1e6 / leads:.0f} us a lead)")
        if args.sql:
            with open(args.sql, "w", encoding="utf-8") as out:
                out.write(variant["query"])
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            for name in sorted(set(re.findall(r'"?\b(sig|b_acts|b_leads|ls_[a-z_0-9]+)\b', variant["query"]))):
                target = q.sql(q.lit(os.path.join(args.dump, name + ".parquet")))
                con.execute(f"COPY (SELECT * FROM {name}) TO {target} (FORMAT parquet)")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "profile.json")
            con.execute("PRAGMA enable_profiling='json'")
            con.execute(f"PRAGMA profiling_output={q.sql(q.lit(path))}")
            con.execute(variant["query"]).fetchall()
            con.execute("PRAGMA disable_profiling")
            with open(path, encoding="utf-8") as f:
                tree = json.load(f)
        held = sum(row[0] for row in con.execute("SELECT memory_usage_bytes FROM duckdb_memory()").fetchall())
        system = tree.get("system", {})
        print(f"DuckDB's memory in the profiled run: peak {system.get('peak_buffer_memory', 0) / 2**20:.0f} MiB "
              f"(the block's tables and the rest held before and after it: {held / 2**20:.0f} MiB), "
              f"allocated {system.get('total_memory_allocated', 0) / 2**20:.0f} MiB, "
              f"spilled {system.get('total_bytes_spilled', 0) / 2**20:.0f} MiB")
        ops = [op for root in tree.get("operator", []) for op in _operators(root)]
        total = sum(t for t, *_ in ops) or 1.0
        print(f"operators' own time: {total:.3f} s (the profiled run's CPU: {tree.get('query', {}).get('cpu_time', 0):.3f} s)")
        for timing, depth, name, text in sorted(ops, reverse=True)[:args.top]:
            print(f"{timing:7.3f} s {100 * timing / total:5.1f}%  d{depth:<2d} {name:22s} {text}")
        done.append(True)
        return found

    for _ in one_pass_cards(args.path, args.rulepack, profiled,
                            "these rulepacks need the account pass: name packs scored in one pass with -r"):
        if done:
            return 0
    sys.exit(f"the file has fewer than {args.block} blocks")


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
