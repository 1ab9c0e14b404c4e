#!/usr/bin/env python3
"""The query ``leadscore sql`` prints, run by DuckDB (or PostgreSQL) on generated leads: time, throughput, agreement.

    uv run python bench/bench_sql.py --leads 20000 --rulepack firr-base
    uv run python bench/bench_sql.py --leads 20000 -r firr-base -r enterprise --ledger   # account pass, ledger
    uv run python bench/bench_sql.py --leads 5000 --postgres postgresql://postgres@/bench?host=/tmp/pg

With ``--postgres URL`` the ``--dialect postgres`` query runs on that server instead, over tables
``leads`` and ``activities`` it replaces in the database (timestamp and text columns).

Generates the leads with bench/generate.py, loads them into an in-memory DuckDB database as the two
relations the query reads (not timed with the query), then times the query alone (wall and this
process's CPU: DuckDB's threads included) and, for comparison, the python engine scoring the same
leads in this process (with its account pass when a pack reads account signals). Prints how many
leads the query marked exact and checks that every exact card (and, with ``--ledger``, every exact
ledger) is the python engine's, byte for byte (a mismatch is an error, exit 1).
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
    parser.add_argument("--ledger", action="store_true", help="the query with its ledger column (as the CLI's default)")
    parser.add_argument("--postgres", metavar="URL", help="run the postgres query on this server instead of DuckDB")
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
    from test_sql_export import explain_ledger, in_time_order, load  # the tests' relations: what they check

    # In id order: the query's order for same_account's "first N" people.
    leads = sorted((in_time_order(item) for item in read_leads(io.StringIO(out.getvalue()), fmt="jsonl")
                    if isinstance(item, Lead)), key=lambda lead: lead.id)
    packs = args.rulepack or ["firr-base"]
    if args.postgres:
        import psycopg
        from test_sql_postgres import load as load_postgres  # the PostgreSQL tests' relations

        con = psycopg.connect(args.postgres, autocommit=True)
        load = load_postgres  # noqa: F811
    else:
        con = duckdb.connect(config={"threads": args.threads})
    started = time.perf_counter()
    load(con, leads)
    load_s = time.perf_counter() - started
    with Engine(plugins=PluginManager(), rulepacks=packs, as_of=AS_OF) as engine:
        text = warehouse_query(engine, AS_OF, ledger=args.ledger,
                               dialect="postgres" if args.postgres else "duckdb")
        wall, cpu = time.perf_counter(), _cpu()
        result = con.execute(text)
        names = [d[0] for d in result.description]
        rows = [dict(zip(names, row)) for row in result.fetchall()]
        query_wall, query_cpu = time.perf_counter() - wall, _cpu() - cpu
        wall, cpu = time.perf_counter(), _cpu()
        accounts = engine.build_accounts(leads, AS_OF) if engine.needs_accounts else None
        cards = {card.lead_id: card for card in engine.score(leads, AS_OF, accounts)}
        python_wall, python_cpu = time.perf_counter() - wall, _cpu() - cpu
    exact = [r for r in rows if r["exact"]]
    wrong = [r["id"] for r in exact if r["card"] != _json_line(card_to_dict(cards[r["id"]])).rstrip("\n")
             or (args.ledger and r["ledger"] != explain_ledger(cards[r["id"]]))]
    print(f"leads {len(leads)}  packs {','.join(packs)}{'  with the ledger' if args.ledger else ''}  "
          f"on {'PostgreSQL' if args.postgres else 'DuckDB'}  "
          f"query {len(text):,} characters  (loading {load_s:.1f} s)")
    print(f"query   wall {query_wall:6.2f} s  cpu {query_cpu:6.2f} s  {len(rows) / query_wall:8,.0f} leads/s")
    print(f"python  wall {python_wall:6.2f} s  cpu {python_cpu:6.2f} s  {len(leads) / python_wall:8,.0f} leads/s")
    print(f"ratio (query / python, wall) {python_wall / query_wall:.2f}x")
    print(f"exact {len(exact)} of {len(rows)}; exact cards differing from the python engine's: {len(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
