"""DuckDB's memory for a batch's ledgers as one value per lead, against rows of text in order.

    uv run python bench/ledger_memory.py --leads 2048 --lines 30

Makes a table of ledger lines (``--lines`` a lead, the columns of the engine's ``lines``), then runs
three forms of the ledger's JSON text with DuckDB's profiling on and prints each one's time, the
peak of DuckDB's buffer memory and the text's size: a list of line structs per lead made into text
(what ``--explain`` did before), one ``string_agg`` per lead, and one row of text per line in the
cards' order (render.ledger_rows), joined by lead afterwards (render.joined_rows). The three texts
are checked equal.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from leadscore.columnar.render import joined_rows

FIELDS = ("rule_id", "kind", "category", "points", "raw", "decay", "factor", "signal", "observed_at", "reason",
          "pack", "evidence")
TEXT = {"rule_id", "kind", "category", "decay", "signal", "reason", "pack", "evidence"}


def one(prefix: str) -> str:
    parts = []
    for i, name in enumerate(FIELDS):
        value = f"to_json({prefix}{name})" if name in TEXT else f"CAST({prefix}{name} AS VARCHAR)"
        parts += [f"'{',' if i else '{'}\"{name}\":'", value]
    return "concat(" + ", ".join(parts) + ", '}')"


FORMS = {
    "list of structs": f"""SELECT k, '[' || array_to_string(list_transform(ledger, lambda l: {one('l.')}), ',') || ']' AS text
        FROM (SELECT k, list(struct_pack({', '.join(FIELDS)}) ORDER BY s1, s2) AS ledger FROM lines GROUP BY k)""",
    "string_agg": f"SELECT k, '[' || string_agg({one('')}, ',' ORDER BY s1, s2) || ']' AS text FROM lines GROUP BY k",
    "rows in order": f"""SELECT k, text FROM (
        SELECT k, 0 AS part, NULL AS s1, NULL AS s2, '[' AS text FROM (SELECT DISTINCT k FROM lines)
        UNION ALL SELECT l.k, 1, l.s1, l.s2,
            CASE WHEN struct_pack(s1 := l.s1, s2 := l.s2) = f.first THEN '' ELSE ',' END || {one('l.')}
            FROM lines l JOIN (SELECT k, min(struct_pack(s1 := s1, s2 := s2)) AS first FROM lines GROUP BY k) f ON f.k = l.k
        UNION ALL SELECT k, 2, NULL, NULL, ']' FROM (SELECT DISTINCT k FROM lines)) ORDER BY k, part, s1, s2""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=2048)
    parser.add_argument("--lines", type=int, default=30)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ledger-memory-")
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB", "temp_directory": folder})
    n = args.leads
    con.execute(f"""CREATE TABLE lines AS SELECT (i % {n})::BIGINT AS k, (i // {n})::INTEGER AS s1, 0 AS s2,
        'rule-' || (i % 37) AS rule_id, 'rule' AS kind, ['fit', 'intent', 'readiness'][1 + i % 3] AS category,
        (i % 20)::BIGINT AS points, (i % 25)::BIGINT AS raw, 'half_life' AS decay, 0.5 + (i % 7) / 10.0 AS factor,
        'activity.type' AS signal, 1788008336000000 + i * 1000000 AS observed_at, 'a reason for rule ' || (i % 37) AS reason,
        'firr-base' AS pack, 'page_view on 2026-11-01 (/blog/post-' || (i % 300) || ')' AS evidence
        FROM range({n} * {args.lines}) r(i)""")
    profile = Path(folder) / "profile.json"
    texts = []
    for name, query in FORMS.items():
        con.execute("PRAGMA enable_profiling='json'")
        con.execute(f"PRAGMA profiling_output='{profile}'")
        started = time.perf_counter()
        if name == "rows in order":
            found = {row["k"]: row["text"] for row in joined_rows(con.sql(query).to_arrow_reader(16_384))}
        else:
            found = dict(con.execute(query).fetchall())
        seconds = time.perf_counter() - started
        con.execute("PRAGMA disable_profiling")
        peak = json.loads(profile.read_text())["system"]["peak_buffer_memory"]
        size = sum(len(text) for text in found.values())
        print(f"{name:16} {seconds:6.3f} s  peak buffer memory {peak / 2**20:6.1f} MB  text {size / 2**20:5.1f} MB")
        texts.append(found)
    if any(found != texts[0] for found in texts[1:]):
        raise SystemExit("the forms' texts differ")
    print(f"{n} leads, {args.lines} lines each: the same text from all three")


if __name__ == "__main__":
    main()
