#!/usr/bin/env python3
"""The issue's premise measured: how fast a hand-written DuckDB query of the same kind of job runs.

    uv run python bench/handwritten.py --file g200k.jsonl --block-leads 16384 --memory-limit 300MB
    uv run python bench/handwritten.py --leads 200000        # bench/generate.py's leads, seed 7, one query

Issue 15 set its throughput targets (40,000 leads/s for firr-base, 20,000 with every installed
pack, on this 2-core machine) from a single hand-written DuckDB query "of the same kind of job":
about 30 rules, decay, caps, a ledger per lead. This script is such a query over
``bench/generate.py``'s leads, with no exactness of its own: no rulepack, no composition, no
evidence text, no checks of a value's type, no rejections, titles read with a few patterns. It is
a floor under what any columnar plan of firr-base's kind costs here, not a scorer, and its SQL is
written as text on purpose: it is the hand-written query. ``--block-leads`` scores that many leads a
query, as the columnar engine's blocks do to stay within a memory limit; one query for the whole
file holds all of it at once.

It runs in one process and prints, for each step, the wall time and the CPU time of the process
(DuckDB's threads included):

- ``read``: DuckDB's own JSON reader makes a ``leads`` table and an ``activities`` table (one row an
  activity) from the file, typed, nothing checked;
- ``cards``: 16 lead-level rules and 18 per-activity rules (each with a step, window or half-life
  decay and a cap of its own), the five sub-scores with their caps, a total, a band, the top three
  reasons and the ledger of every rule that scored, written as JSON Lines by DuckDB;
- ``cards, no ledger``: the same without the ledger list.

The leads per second of a step is the file's leads over the step's wall time; "CPU a lead" is what
bounds the rate on a machine of N cores at N / (CPU a lead) with none idle; the last line gives
that bound for reading and the cards without the ledger (what ``leadscore score`` writes without
``--explain``) and with it. ``HANDWRITTEN_SHOW=1`` prints the first card of each output too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from decode_instructions import generated  # the script beside this one: bench/generate.py's leads, seed 7
from proc_memory import status

AS_OF = "2026-12-01"

LEAD_RULES = [  # (rule id, category, points, reason, condition on the leads table)
    ("fit.title.c-level", "fit", 25, "C-level or founder",
     r"regexp_matches(title, '(?i)\b(ceo|cto|cfo|coo|cmo|cro|chief|founder|president)\b')"),
    ("fit.title.vp", "fit", 20, "VP-level title", r"regexp_matches(title, '(?i)\b(vp|vice president)\b')"),
    ("fit.title.director", "fit", 15, "Director", r"regexp_matches(title, '(?i)\bdirector\b')"),
    ("fit.title.manager", "fit", 8, "Manager", r"regexp_matches(title, '(?i)\b(manager|head of)\b')"),
    ("fit.function.buyer", "fit", 10, "Buying-team function",
     r"regexp_matches(title, '(?i)(marketing|sales|revenue|growth|demand)')"),
    ("fit.industry.target", "fit", 10, "Target industry",
     "lower(industry) IN ('information technology', 'software', 'financial services', 'professional services')"),
    ("fit.company.size", "fit", 15, "100 or more employees", "employees >= 100"),
    ("fit.email.company-domain", "fit", 5, "Email on the company's domain", "split_part(email, '@', 2) = domain"),
    ("fit.region.core", "fit", 5, "North America or Europe",
     "country IN ('US', 'CA', 'GB', 'DE', 'FR', 'NL', 'SE', 'IE', 'ES', 'IT', 'DK', 'NO', 'FI', 'BE', 'CH', 'AT')"),
    ("revenue.large", "revenue", 20, "Revenue of $250M or more", "annual_revenue >= 250000000"),
    ("revenue.mid", "revenue", 12, "Revenue $50M-$250M", "annual_revenue >= 50000000 AND annual_revenue < 250000000"),
    ("revenue.small", "revenue", 5, "Revenue $10M-$50M", "annual_revenue >= 10000000 AND annual_revenue < 50000000"),
    ("negative.personal-email", "negative", -20, "Personal email",
     "split_part(email, '@', 2) IN ('gmail.com', 'yahoo.com', 'hotmail.com', 'outlook.com', 'icloud.com', 'aol.com')"),
    ("negative.student", "negative", -30, "Student", "title ILIKE '%student%' OR email LIKE '%.edu'"),
    ("negative.competitor", "negative", -50, "Competitor", "competitor"),
    ("readiness.referral", "readiness", 5, "Came by referral", "source = 'referral'"),
]

ACTIVITY_RULES = [  # (rule id, category, points, reason, activity type, decay, days, cap)
    ("intent.pricing-page", "intent", 10, "Visited pricing", "pricing_page_visit", "step", 30, 30),
    ("intent.comparison", "intent", 8, "Compared us", "comparison_page_visit", "step", 30, 16),
    ("intent.integrations", "intent", 4, "Looked at integrations", "integration_page_visit", "step", 30, 8),
    ("intent.security", "intent", 6, "Read the security page", "security_page_visit", "step", 30, 12),
    ("intent.page-view", "intent", 1, "Web visit", "page_view", "step", 30, 5),
    ("readiness.demo", "readiness", 30, "Requested a demo", "demo_request", "half_life", 30, 40),
    ("readiness.contact-sales", "readiness", 30, "Contacted sales", "contact_sales", "half_life", 30, 40),
    ("readiness.quote", "readiness", 25, "Asked for a quote", "quote_request", "half_life", 30, 25),
    ("readiness.trial", "readiness", 20, "Started a trial", "trial_signup", "half_life", 30, 20),
    ("readiness.meeting", "readiness", 35, "Booked a meeting", "meeting_booked", "half_life", 30, 35),
    ("intent.webinar-attended", "intent", 8, "Attended a webinar", "webinar_attendance", "step", 60, 16),
    ("intent.webinar-registered", "intent", 4, "Registered for a webinar", "webinar_registration", "step", 60, 8),
    ("intent.content", "intent", 5, "Downloaded content", "content_download", "step", 90, 15),
    ("intent.case-study", "intent", 4, "Read a case study", "case_study_view", "step", 90, 12),
    ("intent.email-open", "intent", 1, "Opened an email", "email_open", "window", 30, 5),
    ("intent.email-click", "intent", 2, "Clicked an email", "email_click", "window", 30, 8),
    ("negative.unsubscribe", "negative", -10, "Unsubscribed", "unsubscribe", "window", 365, -10),
    ("negative.spam", "negative", -25, "Complained of spam", "spam_complaint", "window", 365, -25),
]

CAPS = {"fit": (None, 50), "intent": (None, 60), "readiness": (None, 60), "revenue": (None, 25),
        "negative": (-100, None)}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_sql(path: str) -> list[str]:
    columns = ("{id: 'VARCHAR', email: 'VARCHAR', title: 'VARCHAR', source: 'VARCHAR', "
               "account_id: 'VARCHAR', company: 'STRUCT(name VARCHAR, domain VARCHAR, industry VARCHAR, "
               "employees BIGINT, annual_revenue DOUBLE, country VARCHAR)', fields: 'JSON', "
               "activities: 'STRUCT(\"type\" VARCHAR, \"at\" TIMESTAMP, properties JSON)[]'}")
    raw = f"read_json({_q(path)}, format = 'newline_delimited', columns = {columns})"
    return [
        f"CREATE TABLE raw AS SELECT row_number() OVER () AS n, * FROM {raw}",
        "CREATE TABLE leads AS SELECT n, id, email, coalesce(title, '') AS title, source, account_id, "
        "company.domain AS domain, company.industry AS industry, company.employees AS employees, "
        "company.annual_revenue AS annual_revenue, company.country AS country, "
        "coalesce(TRY_CAST(fields->>'competitor' AS BOOLEAN), false) AS competitor FROM raw",
        "CREATE TABLE activities AS SELECT n, a.type AS type, a.\"at\" AS happened FROM "
        "(SELECT n, unnest(activities) AS a FROM raw)",
        "DROP TABLE raw",
    ]


def cards_sql(out: str, ledger: bool, first: int, last: int) -> str:
    lead_lines = " UNION ALL ".join(
        f"SELECT n, {_q(rid)} AS rule, {_q(cat)} AS category, {pts}::DOUBLE AS points, {_q(why)} AS reason, "
        f"{i} AS pos FROM block_leads WHERE {cond}"
        for i, (rid, cat, pts, why, cond) in enumerate(LEAD_RULES))
    rules = ", ".join(
        f"({_q(rid)}, {_q(cat)}, {pts}, {_q(why)}, {_q(kind)}, {_q(decay)}, {days}, {cap}, {len(LEAD_RULES) + i})"
        for i, (rid, cat, pts, why, kind, decay, days, cap) in enumerate(ACTIVITY_RULES))
    caps = " ".join(
        f"WHEN {_q(cat)} THEN least(greatest(s, {lo if lo is not None else 's'}), {hi if hi is not None else 's'})"
        for cat, (lo, hi) in CAPS.items())
    ledger_column = (", list({'rule': rule, 'points': points, 'reason': reason} ORDER BY abs(points) DESC, pos) "
                     "AS ledger") if ledger else ""
    ledger_out = ", l.ledger" if ledger else ""
    return f"""
COPY (
WITH block_leads AS (SELECT * FROM leads WHERE n BETWEEN {first} AND {last}),
block_activities AS (SELECT * FROM activities WHERE n BETWEEN {first} AND {last}),
rules(rule, category, points, reason, kind, decay, days, cap, pos) AS (VALUES {rules}),
occurrences AS (
    SELECT a.n, r.rule, r.category, r.reason, r.pos, r.cap, r.points * CASE r.decay
        WHEN 'half_life' THEN pow(0.5, age / r.days)
        WHEN 'window' THEN CASE WHEN age <= r.days THEN 1.0 ELSE 0.0 END
        ELSE CASE WHEN age <= r.days THEN 1.0 WHEN age <= 2 * r.days THEN 0.5
                  WHEN age <= 3 * r.days THEN 0.25 ELSE 0.0 END END AS points
    FROM (SELECT n, type, date_diff('second', happened, TIMESTAMP '{AS_OF}') / 86400.0 AS age FROM block_activities) a
    JOIN rules r ON a.type = r.kind
    WHERE a.age >= 0),
activity_lines AS (
    SELECT n, rule, any_value(category) AS category,
        round(CASE WHEN any_value(cap) < 0 THEN greatest(sum(points), any_value(cap))
                   ELSE least(sum(points), any_value(cap)) END, 2) AS points,
        any_value(reason) || ' (' || count(*) || 'x)' AS reason, any_value(pos) AS pos
    FROM occurrences GROUP BY n, rule HAVING sum(points) <> 0),
lines AS ({lead_lines} UNION ALL SELECT * FROM activity_lines),
sub AS (
    SELECT n, category, CASE category {caps} END AS points
    FROM (SELECT n, category, sum(points) AS s FROM lines GROUP BY n, category)),
scores AS (
    SELECT n, round(sum(points), 2) AS total,
        map_from_entries(list((category, round(points, 2)) ORDER BY category)) AS sub_scores
    FROM sub GROUP BY n),
reasons AS (
    SELECT n, list(reason ORDER BY abs(points) DESC, pos)[1:3] AS top_reasons{ledger_column}
    FROM lines GROUP BY n)
SELECT leads.id, coalesce(s.total, 0) AS total, s.sub_scores,
    CASE WHEN coalesce(s.total, 0) >= 100 THEN 'target_account' WHEN s.total >= 80 THEN 'sales_ready'
         WHEN s.total >= 60 THEN 'mql' WHEN s.total >= 30 THEN 'engaged' ELSE 'early' END AS band,
    l.top_reasons{ledger_out}
FROM block_leads leads LEFT JOIN scores s USING (n) LEFT JOIN reasons l USING (n)
ORDER BY leads.n
) TO {_q(out)} (FORMAT JSON)
"""


def _step(con: duckdb.DuckDBPyConnection, name: str, statements: list[str], leads: int | None) -> tuple[int, float]:
    """(leads, CPU microseconds a lead) of running ``statements``, printed as a line."""
    wall, cpu = time.perf_counter(), time.process_time()
    for statement in statements:
        con.execute(statement)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if leads is None:
        leads = con.execute("SELECT count(*) FROM leads").fetchone()[0]
    print(f"{name:<20} {wall:8.2f} s wall {cpu:8.2f} s CPU   {leads / wall:9,.0f} leads/s   "
          f"{cpu / leads * 1e6:6.1f} us CPU a lead   peak so far {status('VmHWM'):,} MiB")
    return leads, cpu / leads * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--leads", type=int, default=50_000, help="generated leads to score (default 50,000)")
    source.add_argument("--file", type=Path, help="a JSON Lines file of bench/generate.py's leads instead")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="DuckDB's threads (default: every core this process may run on)")
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's memory limit (default 4GB)")
    parser.add_argument("--block-leads", type=int, default=0,
                        help="score this many leads a query, as the columnar engine's blocks (default: all at once)")
    args = parser.parse_args()
    if args.file is not None and not args.file.is_file():
        parser.error(f"--file {args.file}: no such file")
    with tempfile.TemporaryDirectory(prefix="leadscore-handwritten-") as scratch:
        path = str(args.file if args.file is not None else generated(scratch, args.leads))
        con = duckdb.connect(config={"threads": args.threads, "memory_limit": args.memory_limit,
                                     "temp_directory": scratch, "preserve_insertion_order": True})
        print(f"{path}: DuckDB {duckdb.__version__}, {args.threads} threads, memory limit {args.memory_limit}")
        leads, read_us = _step(con, "read", read_sql(path), None)
        activities = con.execute("SELECT count(*) FROM activities").fetchone()[0]
        print(f"{'':<20} {leads:,} leads, {activities:,} activities")
        block = args.block_leads or leads
        blocks = [(first, min(first + block - 1, leads)) for first in range(1, leads + 1, block)]
        print(f"{'':<20} cards in {len(blocks):,} block(s) of up to {block:,} leads")
        cards_us = {}
        for ledger, name in ((True, "cards"), (False, "cards, no ledger")):
            outs = [os.path.join(scratch, f"cards-{i}-{ledger}.jsonl") for i in range(len(blocks))]
            cards_us[ledger] = _step(con, name, [cards_sql(out, ledger, *span) for out, span in zip(outs, blocks)],
                                     leads)[1]
            lines = 0
            for out in outs:
                with open(out, encoding="utf-8") as cards:
                    lines += sum(1 for _ in cards)
            size = sum(os.path.getsize(out) for out in outs)
            print(f"{'':<20} {lines:,} cards, {size / leads:.0f} bytes a lead")
            if os.environ.get("HANDWRITTEN_SHOW"):
                with open(outs[0], encoding="utf-8") as cards:
                    sys.stdout.write(cards.readline())
    cores = len(os.sched_getaffinity(0))
    bound = {ledger: cores * 1e6 / (read_us + us) for ledger, us in cards_us.items()}
    print(f"read and cards on {cores} cores with none idle: at most {bound[False]:,.0f} leads/s without the ledger, "
          f"{bound[True]:,.0f} with it")


if __name__ == "__main__":
    main()
