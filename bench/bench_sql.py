#!/usr/bin/env python3
"""The query ``leadscore sql`` prints, run by DuckDB on generated leads: time, throughput, agreement.

    uv run python bench/bench_sql.py --leads 20000 --rulepack firr-base

Generates the leads with bench/generate.py, loads them into an in-memory DuckDB database as the two
relations the query reads (not timed with the query), then times the query alone (wall and this
process's CPU: DuckDB's threads included) and, for comparison, the python engine scoring the same
leads in this process. Prints how many leads the query marked exact and checks that every exact
card is the python engine's, byte for byte (a mismatch is an error, exit 1).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rulepack", "-r", action="append", default=None)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2)")
    args = parser.parse_args(argv)

    import duckdb

    sys.path.insert(0, str(HERE))
    import generate  # noqa: E402

    from leadscore import Engine, PluginManager
    from leadscore.columnar.export import warehouse_query
    from leadscore.io.readers import read_leads
    from leadscore.io.writers import _json_line, card_to_dict
    from leadscore.model import Lead

    out = io.StringIO()
    generate.write_leads(args.leads, args.seed, out)
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_sql_export import in_time_order, load  # the tests' relations: what the tests check

    leads = [in_time_order(item) for item in read_leads(io.StringIO(out.getvalue()), fmt="jsonl")
             if isinstance(item, Lead)]
    packs = args.rulepack or ["firr-base"]
    con = duckdb.connect(config={"threads": args.threads})
    started = time.perf_counter()
    load(con, leads)
    load_s = time.perf_counter() - started
    with Engine(plugins=PluginManager(), rulepacks=packs, as_of=AS_OF) as engine:
        text = warehouse_query(engine, AS_OF)
        wall, cpu = time.perf_counter(), _cpu()
        rows = con.execute(text).fetchall()
        query_wall, query_cpu = time.perf_counter() - wall, _cpu() - cpu
        wall, cpu = time.perf_counter(), _cpu()
        want = {card.lead_id: _json_line(card_to_dict(card)).rstrip("\n") for card in engine.score(leads, AS_OF)}
        python_wall, python_cpu = time.perf_counter() - wall, _cpu() - cpu
    exact = [r for r in rows if r[4]]
    wrong = [r[0] for r in exact if r[3] != want.get(r[0])]
    print(f"leads {len(leads)}  packs {','.join(packs)}  query {len(text):,} characters  (loading {load_s:.1f} s)")
    print(f"query   wall {query_wall:6.2f} s  cpu {query_cpu:6.2f} s  {len(rows) / query_wall:8,.0f} leads/s")
    print(f"python  wall {python_wall:6.2f} s  cpu {python_cpu:6.2f} s  {len(leads) / python_wall:8,.0f} leads/s")
    print(f"ratio (query / python, wall) {python_wall / query_wall:.2f}x")
    print(f"exact {len(exact)} of {len(rows)}; exact cards differing from the python engine's: {len(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
