#!/usr/bin/env python3
"""What each of the columnar scan's DuckDB statements costs, and how much of that is planning.

    uv run python bench/statements.py --file g200k.jsonl -r firr-base
    uv run python bench/statements.py --file g200k.jsonl              # every installed pack (two passes)
    uv run python bench/statements.py --leads 50000 --top 10 --block-mb 32

Scans a JSON Lines file as ``leadscore score --engine duckdb`` does (cards rendered as JSON lines,
no ledger, written nowhere; each block decoded in turn so that no thread's CPU lands in another
statement's time) with every statement the scan hands DuckDB timed by the process's CPU clock,
DuckDB's threads included, and prints the statements by their CPU a lead: how often each ran and
what one call took. Statements are told apart by their first 70 characters (a file's path left out).

Then, on the tables of the scan's second block, what DuckDB takes to parse, bind and plan each
stored step and the block's query without running it (``PREPARE``), for each variant of the plan
(with the account pass, the scoring pass runs the one with account signals). DuckDB 2.0 plans a prepared
statement again at every ``EXECUTE`` (duckdb/duckdb#17237), so this is paid once a block, whatever
the block's size: the part of a block's cost that does not shrink with fewer leads in it.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from decode_instructions import generated  # the script beside this one: bench/generate.py's leads, seed 7

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)  # the scoring time the generated leads are written around


class Timed:
    """A DuckDB connection whose ``execute`` and ``sql`` calls are timed by statement, the rest passed on."""

    def __init__(self, con: Any, spent: Counter[str], calls: Counter[str]) -> None:
        self._con, self._spent, self._calls = con, spent, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _run(self, how: str, statement: Any, *args: Any, **kwargs: Any) -> Any:
        # A statement naming a block's own file counts with the others of its kind.
        key = re.sub(r"'/[^']*'", "'...'", re.sub(r"\s+", " ", str(statement)))[:70]
        started = time.process_time()
        try:
            return getattr(self._con, how)(statement, *args, **kwargs)
        finally:
            self._spent[key] += time.process_time() - started
            self._calls[key] += 1

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._run("execute", statement, *args, **kwargs)

    def sql(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._run("sql", statement, *args, **kwargs)


def planning(scorer: Any, repeat: int = 3) -> list[tuple[str, float]]:
    """(step, best CPU seconds of its PREPARE) of each stored step and the query, on the tables loaded now."""
    con = getattr(scorer.con, "_con", scorer.con)  # not counted among the scan's statements
    found = []
    for with_accounts, variant in sorted(scorer.variants.items()):
        statements = [(name, text) for name, text, _ in variant["steps"]] + [("query", variant["query"])]
        for name, text in statements:
            best = float("inf")
            for _ in range(repeat):
                started = time.process_time()
                con.execute(f"PREPARE ls_bench_plan AS {text}")
                best = min(best, time.process_time() - started)
            con.execute("DEALLOCATE ls_bench_plan")
            found.append((f"{name}{' (with account signals)' if with_accounts else ''}", best))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--leads", type=int, default=50_000, help="generated leads to score (default 50,000)")
    source.add_argument("--file", type=Path, help="a JSON Lines file of leads instead")
    parser.add_argument("--rulepack", "-r", action="append", help="a rulepack (repeatable); default: every installed one")
    parser.add_argument("--top", type=int, default=15, help="statements printed (default 15)")
    parser.add_argument("--block-mb", type=int, help="blocks of this many MB of lines (default: the scan's, 16)")
    args = parser.parse_args(argv)
    if args.file is not None and not args.file.is_file():
        parser.error(f"--file {args.file}: no such file")
    if args.block_mb is not None and args.block_mb < 1:
        parser.error("--block-mb must be at least 1")

    from leadscore.columnar import context, engine as columnar, scan
    from leadscore.engine import Engine
    from leadscore.plugins import PluginManager

    spent: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    plans: list[tuple[str, float]] = []
    aside = [0.0]  # the CPU of measuring the plans, not the scan's
    made, run_views, register = columnar.ColumnarScorer.__init__, columnar.ColumnarScorer.run_views, context.Udfs.register

    def timed_scorer(self: Any, *a: Any, **kw: Any) -> None:
        made(self, *a, **kw)
        self.con = Timed(self.con, spent, calls)

    def views(self: Any, **kw: Any) -> Any:
        found = run_views(self, **kw)
        blocks = calls[next((key for key in calls if key.startswith("EXECUTE ls_query")), "")]
        if blocks == 2 and not plans:  # the second block's tables (the checks on no leads ran before the timing)
            started = time.process_time()
            plans.extend(planning(self))
            aside[0] += time.process_time() - started
        return found

    columnar.ColumnarScorer.__init__ = timed_scorer
    columnar.ColumnarScorer.run_views = views
    # The functions a plan registers are keyed by the connection they were registered on.
    context.Udfs.register = lambda self, con: register(self, getattr(con, "_con", con))
    scan.READ_AHEAD = False
    with tempfile.TemporaryDirectory(prefix="leadscore-statements-") as tmp:
        path = args.file if args.file is not None else generated(tmp, args.leads)
        with Engine(plugins=PluginManager(), rulepacks=args.rulepack, backend="duckdb") as engine:
            started = time.process_time()
            items = scan.scan_jsonl(engine, str(path), path.name, AS_OF, explain=False, top=3, render="jsonl",
                                    block_bytes=args.block_mb << 20 if args.block_mb else None)
            if items is None:
                sys.exit(f"statements.py: the columnar engine does not run these rulepacks: {engine.columnar_note}")
            count = sum(1 for _ in items)
            total = time.process_time() - started - aside[0]
    packs = ", ".join(args.rulepack) if args.rulepack else "every installed pack"
    print(f"{count:,} leads, {packs}: {total / count * 1e6:.1f} us of CPU a lead, "
          f"{sum(spent.values()) / count * 1e6:.1f} of it in DuckDB statements")
    for key, seconds in spent.most_common(args.top):
        print(f"  {seconds / count * 1e6:7.2f} us a lead  {calls[key]:5,}x {seconds / calls[key] * 1e3:8.2f} ms a call  {key}")
    if plans:
        print("parse, bind and plan alone (PREPARE, best of 3) on the second block's tables, once a block:")
        for name, seconds in plans:
            print(f"  {seconds * 1e3:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
