#!/usr/bin/env python3
"""How fast the columnar engine could score Parquet input if DuckDB read the files itself: the
leads and activities tables of bench/bench_parquet.py, read with ``read_parquet``, scored by the
engine's own statements, the cards written as JSON Lines.

    uv run python bench/bench_parquet.py --write-inputs g200k.jsonl      # g200k-leads.parquet, g200k-activities.parquet
    uv run python bench/parquet_bound.py g200k-leads.parquet g200k-activities.parquet -o pq.jsonl
    leadscore score g200k.jsonl -r firr-base --engine duckdb --as-of 2026-11-23 -o j.jsonl && cmp pq.jsonl j.jsonl

Today a Parquet (or CSV) input is read by the python reader, the CSV reader's rules cell by cell,
and the columnar engine scores the leads it makes in batches (leadscore.columnar.run). This script
measures the route the issue asks for instead, without the checks that would make it exact for any
input (text cells trimmed and empty as missing, times in their ranges, every value of a type the
SQL reads as the reader does; a row failing one would go to the python reader, as the JSON Lines
decoder's odd lines do): so it is an upper bound on that route's rate, and it holds only for
input as clean as bench/generate.py's. The steps, each timed:

- **activities by lead**: the activities table joined with the leads' ids once (each activity
  gets its lead's row number ``k``), written sorted by ``k`` to one Parquet file in row groups of
  65,536, so a block reads only its own (as the account pass's sorted file is read);
- **read tables**: each block of 8,000 leads into ``leads`` (the lead columns as the decoder
  makes them: text trimmed, email and domain lower case, custom fields as one JSON object) and
  its activities into ``activities`` (their time order ``pos``, microseconds, properties as JSON);
- **query** and **cards**: the engine's stored steps and prepared query on the block
  (``ColumnarScorer.run_views``), and each card's JSON line written.

Only rulepacks without the account pass (firr-base by default). The cards should be the bytes
``leadscore score`` writes for the same leads as JSON Lines: compare them with ``cmp``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

from leadscore import Engine, PluginManager
from leadscore.columnar import sql as q
from leadscore.columnar.scan import _leads_of, _views

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
BLOCK = 8_000  # leads a block, as the JSON Lines scan's 16 MB blocks of generated leads
LEAD_TEXT = {"id": "id", "email": "email", "title": "title", "source": "source", "account_id": "account_id",
             "company.name": "c_name", "company.domain": "c_domain", "company.industry": "c_industry",
             "company.country": "c_country", "company.tier": "c_tier"}
LOWER = {"email", "company.domain"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("leads", help="leads as Parquet (bench_parquet.py --write-inputs)")
    parser.add_argument("activities", help="their activities as Parquet, one row an activity, by lead_id")
    parser.add_argument("-o", "--output", required=True, help="the cards as JSON Lines")
    parser.add_argument("-r", "--rulepack", action="append", help="rulepacks (default: firr-base)")
    args = parser.parse_args(argv)
    started, cpu = time.perf_counter(), os.times()
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF, rulepacks=args.rulepack or ["firr-base"]) as engine:
        if engine.needs_accounts:
            print("these rulepacks need the account pass, which this bound leaves out; name others with -r",
                  file=sys.stderr)
            return 2
        scorer = engine.columnar_scorer(AS_OF, explain=False, top=3, values=False, render="jsonl")
        times, leads = _scan(scorer, args.leads, args.activities, args.output)
    wall, used = time.perf_counter() - started, os.times()
    seconds = used.user - cpu.user + used.system - cpu.system
    print(f"{leads:,} leads in {wall:.1f} s wall, {seconds:.1f} s CPU: {leads / wall:,.0f} leads/s, "
          f"{seconds * 1e6 / leads:.0f} us of CPU a lead")
    print("  " + ", ".join(f"{step} {spent:.1f} s" for step, spent in times.items()))
    return 0


def _scan(scorer, leads_path: str, activities_path: str, output: str) -> tuple[dict[str, float], int]:
    con, times = scorer.con, {"activities by lead": 0.0, "read tables": 0.0, "query": 0.0, "cards": 0.0}
    leads, acts = q.path_text(leads_path), q.path_text(activities_path)
    sorted_acts = q.path_text(os.path.join(scorer.tmp.name, "activities.parquet"))

    def columns(path: str) -> dict[str, str]:
        """The file's columns and their DuckDB types."""
        return {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()}

    def json_of(prefix: str, names: dict[str, str], alias: str = "") -> str:
        """The ``prefix.*`` columns as one JSON object of their values (empty text as missing), or NULL."""
        pairs = ", ".join(f"{q.sql(q.lit(n[len(prefix):]))}, {_value(alias + _quoted(n), kind)}"
                          for n, kind in names.items() if n.startswith(prefix))
        return f"nullif(json_object({pairs})::VARCHAR, '{{}}')" if pairs else "NULL"

    began = time.perf_counter()
    props = columns(acts)
    place = [_value("a." + _quoted("properties." + n), props["properties." + n]) for n in ("url", "asset", "title")
             if "properties." + n in props]
    numbered = f"read_parquet({leads}, file_row_number = true)"  # k: the lead's row, from 1, as a line number
    con.execute(f"CREATE TEMP TABLE lead_k AS SELECT file_row_number + 1 AS k, id FROM {numbered}")
    count = con.execute("SELECT count(*) FROM lead_k").fetchall()[0][0]
    where = f"coalesce({', '.join(place)})" if place else "NULL"  # the evidence's place, as activity_evidence
    con.execute(f"""COPY (SELECT l.k, a.file_row_number AS r, a.type, epoch_us(a."at") AS "at",
                          {json_of('properties.', props, 'a.')} AS props, {where} AS "where"
                          FROM read_parquet({acts}, file_row_number = true) a JOIN lead_k l ON l.id = a.lead_id ORDER BY l.k)
                    TO {sorted_acts} (FORMAT parquet, COMPRESSION lz4, ROW_GROUP_SIZE 65536)""")
    con.execute("DROP TABLE lead_k")
    times["activities by lead"] += time.perf_counter() - began
    names = columns(leads)
    lead_columns = ", ".join(
        [f"{_value(_quoted(name), names.get(name, 'VARCHAR'), lower=name in LOWER)} AS {column}"
         for name, column in LEAD_TEXT.items()]
        + ['epoch_us(created_at) AS created_at', '"company.employees"::BIGINT AS c_employees',
           '"company.annual_revenue"::DOUBLE AS c_revenue',
           f"{json_of('fields.', names)} AS fields"])
    with open(output, "w", encoding="utf-8") as out:
        for first in range(1, count + 1, BLOCK):
            last = min(first + BLOCK - 1, count)
            began = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE leads AS SELECT file_row_number + 1 AS k, {lead_columns} "
                        f"FROM {numbered} WHERE file_row_number + 1 BETWEEN {first} AND {last}")
            # pos: the reader's order, by time and equal times in the file's order
            con.execute(f"""CREATE OR REPLACE TEMP TABLE activities AS SELECT k,
                            row_number() OVER (PARTITION BY k ORDER BY "at", r) - 1 AS pos, type, "at", props, '' AS ev
                            FROM read_parquet({sorted_acts}) WHERE k BETWEEN {first} AND {last}""")
            times["read tables"] += time.perf_counter() - began
            _views(con, (first, last), True)
            began = time.perf_counter()
            found = scorer.run_views(with_accounts=False)
            times["query"] += time.perf_counter() - began
            began = time.perf_counter()
            cards = scorer.cards(found, _leads_of(con, fields=scorer.values_needed))
            for k in range(first, last + 1):
                line = getattr(cards[k], "line", None)
                if line is None:  # a card only the python engine makes: this input is not one the bound covers
                    raise SystemExit(f"row {k}: the SQL did not make this lead's card line")
                out.write(line)
            times["cards"] += time.perf_counter() - began
    return times, count


def _quoted(name: str) -> str:
    return q.sql(q.ident(name))


def _value(column: str, kind: str, lower: bool = False) -> str:
    """A text cell as the CSV reader reads it (trimmed, empty as missing); other types as they are."""
    if kind != "VARCHAR":
        return column
    text = f"nullif(trim({column}), '')"
    return f"lower({text})" if lower else text


if __name__ == "__main__":
    sys.exit(main())
