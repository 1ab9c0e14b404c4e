#!/usr/bin/env python3
"""A differential fuzz campaign: mutated inputs scored by the python engine and by the columnar
engine, whose results must be the same bytes.

    uv run python bench/fuzz_engines.py --runs 500 --seed 1
    uv run python bench/fuzz_engines.py --runs 300 --kinds parquet --out-dir findings/

Each run writes one mutated input and runs ``leadscore score`` on it twice in this process (click's
test runner), ``--engine python`` and ``--engine duckdb``, with the same options drawn at random
(``--explain``, ``--format csv`` or ``parquet``, ``-r firr-base``, ``--dedupe``, ``--top``,
``--next-steps``, ``--accounts``, ``--strict``, an ``--as-of`` with an offset or before most of the
activities; now and then the file on standard input). A run passes when neither raised and both
gave the same exit code, the same cards, the same rejections file and the same standard error,
word for word (Parquet cards: the same schema and rows; with ``--accounts``, the same account
cards too).

The kinds of input (``--kinds``, default all):

- ``jsonl``: the sample leads (or the segment samples) with values replaced by hostile ones
  (texts with spaces, control characters, other scripts' digits, CRM-style numbers and dates, odd
  timestamps; huge, negative and fractional numbers; nulls, lists, objects), keys dropped or added,
  lines repeated (duplicate ids), bytes broken, odd lines inserted;
- ``csv``: the sample leads CSV so mutated cell by cell (and rows repeated, cut short, made longer,
  header names changed), alone, with the mutated activities CSV, or as JSON Lines leads with it;
- ``crm``: ``bench/crm_export.py``'s HubSpot or Salesforce export mutated the same way, read through
  ``--map``;
- ``parquet``: the leads and activities CSVs (mutated or not) written as Parquet with each column's
  type drawn: text (large, dictionary-encoded), integers of several widths, 64-, 32- and 16-bit
  floats, decimals, booleans, timestamps in every unit and several zones, dates, binary, times.

Failing inputs are kept in ``--out-dir`` (one folder a finding: the files, ``args.json``, and what
differed in ``diff.txt``). Results go to bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import io
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crm_export  # noqa: E402
import fuzz  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from leadscore import PluginManager  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
KINDS = ("jsonl", "csv", "crm", "parquet")

TEXTS = ["", " ", "  VP  ", "ＶＰ Marketing", "vp\u0000x", "a\u2028b", "x" * 3000, "😀", "=cmd|' /C calc'!A0", "NaN",
         "nan", "1e5", "-0", "0x10", " 12 ", "1,200", "٣", "Ⅻ", "caf\u00e9", "e\u0301", "\"quoted\"", "back\\slash", "\t",
         "2026-11-23", "2026-11-23T25:00:00Z", "2026-02-29T00:00:00Z", "2026-11-23T10:00:00+14:00", "2026-11-23 10:00",
         "2026-11-23T10:00:00.123456789Z", "20261123", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
         "2026-11-23T10:00:00", "2026-11-23T10:00:00-00:30", "2026-11-22T23:59:60Z", "+002026-11-23T10:00:00Z",
         "tomorrow", "2026-W47", "11/02/2026 14:23", "31/12/2026", "n/a", "-", "100-500", "1000+", "$2,775,000",
         "€1.200,50", "1.5k", "10 000", "1e400", "-1", "1.5", "true", "false", "null", "student@uni.edu", "x@gmail.com",
         "Demo_Request", "demo_request", "page_view", "pricing_page_visit", "ceo", "Student", "/pricing",
         "Marketing Qualified Lead", "salesqualifiedlead", "REFERRALS", "https://www.acme.io/", "ACME.IO"]
NUMBERS = [0, -1, 1.5, 1e308, -1e308, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1e-320, 3.0, 10 ** 30, 0.1, 123456789012, -0.0]
OTHERS = [None, True, False, [], {}, [1], {"a": 1}, [None], ["x"]]
OPTIONS = [[], ["--explain"], ["--format", "csv"], ["-r", "firr-base"], ["--dedupe"], ["--explain", "--dedupe"],
           ["-r", "firr-base", "--explain"], ["--top", "0"], ["--format", "csv", "--explain"], ["--top", "7", "--explain"],
           ["--format", "parquet"], ["--format", "parquet", "--explain"], ["--next-steps"], ["--accounts", "ACCOUNTS.jsonl"],
           ["--accounts", "ACCOUNTS.csv", "--explain"], ["--strict"]]
AS_OF = ["2026-11-23", "2026-11-23T10:00:00+02:00", "2027-06-01", "2026-10-01T23:59:59-12:00"]


def hostile(rng: random.Random) -> Any:
    roll = rng.random()
    return rng.choice(TEXTS) if roll < 0.6 else rng.choice(NUMBERS) if roll < 0.85 else rng.choice(OTHERS)


def mutate_lead(lead: dict[str, Any], rng: random.Random) -> None:
    """One value of ``lead`` (its own, its company's, an activity's or a property's) replaced,
    dropped, or a key added beside it."""
    holders = [lead, lead.get("company"), lead.get("fields")]
    activities = lead.get("activities")
    for activity in activities if isinstance(activities, list) else []:
        holders += [activity, activity.get("properties") if isinstance(activity, dict) else None]
    spots = [(holder, key) for holder in holders if isinstance(holder, dict) for key in holder]
    if not spots:
        return
    holder, key = rng.choice(spots)
    roll = rng.random()
    if roll < 0.75:
        holder[key] = hostile(rng)
    elif roll < 0.85:
        del holder[key]
    else:
        holder[rng.choice(["fields", "extra", "company", "activities", "score", key + "_x"])] = hostile(rng)


def mutate_lines(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines()
    for _ in range(rng.randint(1, 6)):
        at, roll = rng.randrange(len(lines)), rng.random()
        if roll < 0.7:
            try:
                lead = json.loads(lines[at])
            except ValueError:
                continue
            if isinstance(lead, dict):
                mutate_lead(lead, rng)
                lines[at] = json.dumps(lead, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        elif roll < 0.8:
            lines.insert(at, lines[rng.randrange(len(lines))])
        elif roll < 0.9:
            lines[at] = fuzz.mutate(lines[at], rng)  # bytes deleted, inserted, repeated or replaced
        else:
            lines.insert(at, rng.choice([b"", b"   ", b"[]", b"null", b"{}", b'{"id": ""}', b'{"id": 5}', b'"x"']))
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.9 else b"")


def mutate_rows(data: bytes, rng: random.Random) -> bytes:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    for _ in range(rng.randint(1, 6)):
        at, roll = rng.randrange(1, len(rows)), rng.random()
        if roll < 0.7 and rows[at]:
            value = hostile(rng)
            rows[at][rng.randrange(len(rows[at]))] = value if isinstance(value, str) else json.dumps(value)
        elif roll < 0.8:
            rows.insert(at, list(rows[rng.randrange(1, len(rows))]))
        elif roll < 0.87:
            rows[at] = rows[at][:rng.randrange(len(rows[at]) + 1)]
        elif roll < 0.93:
            rows[at] = rows[at] + ["extra"]
        else:
            column = rng.randrange(len(rows[0]))
            name = rows[0][column]
            rows[0][column] = rng.choice(["", "id", "notes", name.upper(), name + " ", "fields.x", "company.employees"])
    out = io.StringIO()
    csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"])).writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def typed_column(cells: list[str | None], name: str, rng: random.Random) -> Any:
    """``cells`` as an Arrow array of a type drawn for the column (text when the cells do not fit it)."""
    import pyarrow as pa

    def numbers(kind: Any) -> list[Any]:
        return [None if c is None else kind(c) for c in cells]

    def when(cell: str | None) -> dt.datetime | None:
        moment = dt.datetime.fromisoformat(cell.replace("Z", "+00:00")) if cell else None
        return moment.astimezone(dt.UTC) if moment is not None and moment.tzinfo else moment

    # Mostly a type the column's field takes (leadscore.io.parquet.expected); now and then any.
    numeric = ["int64", "int32", "uint64", "float64", "float32", "float16", "decimal"]
    kinds = ["text", "large", "dictionary"] + (
        ["timestamp"] * 4 + ["date"] if name in ("created_at", "at") else
        ["int64", "int32", "uint64"] if name in ("id", "lead_id", "account_id") else
        numeric if name in ("company.employees", "company.annual_revenue") else
        [*numeric, "boolean", "timestamp"] if name.startswith(("fields.", "properties.")) else [])
    if rng.random() < 0.05:
        kinds = [*numeric, "boolean", "timestamp", "binary", "time"]
    kind = rng.choice(kinds)
    try:
        if kind == "large":
            return pa.array(cells, pa.large_string())
        if kind == "dictionary":
            return pa.array(cells, pa.string()).dictionary_encode()
        if kind == "timestamp":
            zone = rng.choice([None, "UTC", "+02:00", "America/New_York", "Asia/Kolkata"])
            moments = [when(c) for c in cells]
            if zone is None:
                moments = [m.replace(tzinfo=None) if m is not None else None for m in moments]
            return pa.array(moments, pa.timestamp(rng.choice(["s", "ms", "us", "ns"]), tz=zone))
        if kind == "date":
            return pa.array([m.date() if (m := when(c)) is not None else None for c in cells], pa.date32())
        if kind in ("int64", "int32", "uint64"):
            return pa.array(numbers(int), getattr(pa, kind)())
        if kind in ("float64", "float32", "float16"):
            return pa.array(numbers(float), getattr(pa, kind)())
        if kind == "decimal":
            return pa.array(numbers(decimal.Decimal), pa.decimal128(20, 4))
        if kind == "boolean":
            return pa.array([None if c is None else c.lower() in ("true", "yes", "1") for c in cells], pa.bool_())
        if kind == "binary":
            return pa.array([None if c is None else c.encode() for c in cells], pa.binary())
        if kind == "time":
            return pa.array([None if c is None else dt.time(10) for c in cells], pa.time64("us"))
    except (ValueError, TypeError, OverflowError, ArithmeticError, pa.ArrowException):
        pass
    return pa.array(cells, pa.string())


def write_parquet(data: bytes, path: Path, rng: random.Random) -> None:
    """The CSV ``data`` as a Parquet file, or now and then as a directory of part files (each part's
    column types drawn on their own), with an empty cell as null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    parts = rng.choice([1, 1, 1, 2, 3])
    if parts > 1:
        path.mkdir()
    size = -(-len(body) // parts) or 1
    for number, start in enumerate(range(0, max(len(body), 1), size)):
        chunk = body[start:start + size]
        columns = [[row[i] if i < len(row) and row[i] != "" else None for row in chunk] for i in range(len(header))]
        table = pa.table([typed_column(cells, name, rng) for cells, name in zip(columns, header)], names=header)
        pq.write_table(table, path / f"part-{number:05d}.parquet" if parts > 1 else path,
                       row_group_size=rng.choice([3, 7, 1000]))


def draw_input(kind: str, folder: Path, rng: random.Random, crm_files: dict[str, Path]) -> list[str]:
    """Write one mutated input of ``kind`` in ``folder``; the arguments that name it."""
    leads_csv, acts_csv = (SAMPLES / "leads.csv").read_bytes(), (SAMPLES / "activities.csv").read_bytes()
    if kind == "jsonl":
        source = folder / "leads.jsonl"
        source.write_bytes(mutate_lines((SAMPLES / rng.choice(["leads.jsonl", "segment-leads.jsonl"])).read_bytes(), rng))
        return [str(source)]
    if kind == "crm":
        crm = rng.choice(sorted(crm_files))
        source = folder / "export.csv"
        source.write_bytes(mutate_rows(crm_files[crm].read_bytes(), rng))
        return [str(source), "--map", crm]
    if kind == "parquet":
        leads, acts = folder / "leads.parquet", folder / "activities.parquet"
        write_parquet(mutate_rows(leads_csv, rng) if rng.random() < 0.6 else leads_csv, leads, rng)
        write_parquet(mutate_rows(acts_csv, rng) if rng.random() < 0.6 else acts_csv, acts, rng)
        return [str(leads), "--activities", str(acts)]
    acts = folder / "activities.csv"
    acts.write_bytes(mutate_rows(acts_csv, rng))
    roll = rng.random()
    if roll < 0.3:  # JSON Lines leads without activities, with the activities file
        leads = [json.loads(line) for line in (SAMPLES / "leads.jsonl").read_bytes().splitlines()]
        for lead in leads:
            lead.pop("activities", None)
        source = folder / "leads.jsonl"
        source.write_bytes(mutate_lines(b"\n".join(json.dumps(lead).encode() for lead in leads), rng))
        return [str(source), "--activities", str(acts)]
    source = folder / "leads.csv"
    source.write_bytes(mutate_rows(leads_csv, rng))
    return [str(source)] if roll < 0.6 else [str(source), "--activities", str(acts)]


def score(cli: Any, folder: Path, args: list[str], engine: str) -> tuple[Any, ...]:
    """(exit code, cards, rejections, stderr, the traceback of an exception) of one run. Parquet cards
    are compared by their schema and rows (the two engines' writers lay the bytes out differently)."""
    import pyarrow.parquet as pq

    out, rejects = folder / "out", folder / "rejects.jsonl"
    accounts = [folder / arg for arg in args if arg.startswith("ACCOUNTS.")]
    for path in (out, rejects, *accounts):
        path.unlink(missing_ok=True)
    args = [str(folder / arg) if arg.startswith("ACCOUNTS.") else arg for arg in args]
    stdin = None
    if args[0] == "-":  # standard input: the file named after it in the arguments' last place
        stdin, args = Path(args[-1]).read_bytes(), args[:-1]
    result = CliRunner().invoke(cli, ["score", *args, "--engine", engine, "-o", str(out), "--rejects", str(rejects)],
                                input=stdin)
    raised = result.exception if not isinstance(result.exception, SystemExit) else None
    cards: Any = out.read_bytes() if out.exists() else b""
    if cards and "parquet" in args:
        table = pq.read_table(out)
        cards = (str(table.schema), table.to_pylist())
    if accounts:  # and the account cards
        cards = (cards, accounts[0].read_bytes() if accounts[0].exists() else b"")
    return (result.exit_code, cards, rejects.read_bytes() if rejects.exists() else b"", result.stderr,
            "".join(traceback.format_exception(raised)) if raised is not None else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="mutated inputs, each scored by both engines")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--out-dir", type=Path, help="where failing inputs are kept (default: a temporary folder)")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="leadscore-fuzz-engines-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    crm_files = {crm: out_dir / f"{crm}-60.csv" for crm in ("hubspot", "salesforce")}
    for crm, path in crm_files.items():
        crm_export.main(["--crm", crm, "--leads", "60", "--seed", str(args.seed), "-o", str(path)])
    rng = random.Random(args.seed)
    cli = build_cli(PluginManager())
    findings, codes = [], {}
    started = time.perf_counter()
    for number in range(args.runs):
        folder = out_dir / f"run-{number}"
        folder.mkdir()
        kind = rng.choice(kinds)
        run_args = [*draw_input(kind, folder, rng, crm_files), "--as-of", rng.choice(AS_OF), *rng.choice(OPTIONS)]
        if "--format" not in run_args:
            run_args += ["--format", "jsonl"]
        if rng.random() < 0.15 and not run_args[0].endswith(".parquet"):  # the file on standard input instead
            source = run_args[0]
            run_args = ["-", *(["--input-format", "csv"] if source.endswith(".csv") else []), *run_args[1:], source]
        python, duckdb = score(cli, folder, run_args, "python"), score(cli, folder, run_args, "duckdb")
        codes[kind, python[0]] = codes.get((kind, python[0]), 0) + 1
        differ = [name for name, a, b in zip(("exit code", "cards", "rejections", "stderr"), python, duckdb) if a != b]
        differ += ["a traceback"] * (python[4] is not None or duckdb[4] is not None)
        if not differ:
            shutil.rmtree(folder)
            continue
        (folder / "args.json").write_text(json.dumps(run_args))
        (folder / "diff.txt").write_text(f"differ in: {', '.join(differ)}\n\npython: {python!r}\n\nduckdb: {duckdb!r}\n")
        findings.append(f"{folder}: {kind}, {' '.join(run_args[1:])}: {', '.join(differ)}")
        print(f"finding: {findings[-1]}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    by_kind = ", ".join(f"{kind} exit {code}: {n}" for (kind, code), n in sorted(codes.items()))
    print(f"{args.runs} runs in {seconds:.0f} s ({by_kind}); {len(findings)} findings (inputs kept in {out_dir})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
