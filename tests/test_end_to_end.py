"""End to end through the installed `leadscore` executable, on the sample files shipped in rulepacks/samples."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
AS_OF = "2026-11-23T00:00:00Z"


def leadscore_exe() -> str:
    exe = Path(sys.executable).parent / "leadscore"
    found = str(exe) if exe.exists() else shutil.which("leadscore")
    assert found, "the leadscore command is not installed in this environment"
    return found


def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_")}
    return subprocess.run([leadscore_exe(), *args], capture_output=True, text=True, input=input, env=env, timeout=120,
                          cwd=ROOT)


def sample_ids() -> list[str]:
    return [json.loads(line)["id"] for line in (SAMPLES / "leads.jsonl").read_text().splitlines() if line.strip()]


def test_quickstart_command_scores_every_sample_lead() -> None:
    result = run("score", "rulepacks/samples/leads.jsonl", "--as-of", "2026-11-23")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == sample_ids()
    n = len(rows)
    assert f"scored {n} + rejected 0 == read {n}" in result.stderr
    bands = {r["band"] for r in rows}
    assert bands == {"early", "engaged", "mql", "sales_ready", "target_account"}


def test_csv_samples_score_like_the_jsonl_samples() -> None:
    jsonl = run("score", "rulepacks/samples/leads.jsonl", "--as-of", AS_OF, "--format", "jsonl", "--explain")
    csv_ = run("score", "rulepacks/samples/leads.csv", "--activities", "rulepacks/samples/activities.csv",
               "--as-of", AS_OF, "--format", "jsonl", "--explain")
    assert jsonl.returncode == csv_.returncode == 0, jsonl.stderr + csv_.stderr
    assert jsonl.stdout == csv_.stdout


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_parquet_samples_score_like_the_csv_samples(tmp_path: Path, engine: str) -> None:
    pacsv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pacsv.read_csv(SAMPLES / "leads.csv"), tmp_path / "leads.parquet")
    parts = tmp_path / "activities"
    parts.mkdir()
    pq.write_table(pacsv.read_csv(SAMPLES / "activities.csv"), parts / "part-00000.parquet", row_group_size=10)
    common = ("--as-of", AS_OF, "--format", "jsonl", "--explain", "--engine", engine)
    csv_ = run("score", "rulepacks/samples/leads.csv", "--activities", "rulepacks/samples/activities.csv", *common)
    parquet = run("score", str(tmp_path / "leads.parquet"), "--activities", str(parts), *common)
    assert csv_.returncode == parquet.returncode == 0, csv_.stderr + parquet.stderr
    assert parquet.stdout == csv_.stdout
    assert parquet.stdout.count("\n") == len(sample_ids())


def test_sample_cases_pass() -> None:
    result = run("test", "rulepacks/samples/cases.toml")
    assert result.returncode == 0, result.stdout
    assert " 0 failed" in result.stdout


def test_explain_a_sample_lead() -> None:
    first = sample_ids()[0]
    result = run("explain", "rulepacks/samples/leads.jsonl", "--lead", first, "--as-of", AS_OF)
    assert result.returncode == 0, result.stderr
    assert f"Lead {first}" in result.stdout and "add up to it exactly" in result.stdout


def test_bad_input_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    missing = run("score", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "L-1", "email": "a@b-corp.com"}\n{oops\n')
    result = run("score", str(bad), "--as-of", AS_OF, "--format", "jsonl")
    assert result.returncode == 1
    assert f"{bad}:2: malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["score", "explain", "check", "test", "plugins", "rulepacks", "signals"])
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and "Example" in result.stdout


def test_benchmark_runs_end_to_end_with_its_inputs_outside_the_repository(tmp_path: Path) -> None:
    # A tiny size: this checks the script's plumbing (generate, run, verify, report), not speed.
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_score.py"), "--sizes", "40", "--repeat", "1", "--no-startup",
         "--out-dir", str(tmp_path), "--rulepack", "firr-base", "--json", str(tmp_path / "results.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert str(tmp_path) in result.stderr  # where the generated input went, named in full
    rows = json.loads((tmp_path / "results.json").read_text())
    assert "|         40 |" in result.stdout and rows


# The valgrind scripts: bench/instructions.py (a whole `leadscore score` run) and
# bench/decode_instructions.py (the columnar engine's JSON Lines block decoder).
_COUNTERS = [("instructions.py", "4"), ("decode_instructions.py", "20")]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.parametrize(("script", "leads"), _COUNTERS)
def test_instruction_count_scripts_count_a_few_leads(script: str, leads: str) -> None:
    # Plumbing only (generate, run under valgrind twice, report): a handful of leads.
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--leads", leads],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    figure = result.stdout.split(" instructions per lead")[0]
    assert int(figure.replace(",", "")) > 10_000  # scoring or decoding a lead takes real work


@pytest.mark.parametrize("script", [script for script, _ in _COUNTERS])
def test_instruction_count_scripts_without_valgrind_say_what_to_install(tmp_path: Path, script: str) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty directory: no valgrind on it
    result = subprocess.run([sys.executable, str(ROOT / "bench" / script)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 2
    assert "valgrind is not on PATH" in result.stderr and "apt install valgrind" in result.stderr


def test_block_memory_script_reports_one_decoded_block() -> None:
    # Plumbing (generate, decode in a child, once untraced and once traced, report) on 300 leads.
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "block_memory.py"), "--leads", "300", "--props"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(r"[\d.]+ MiB of JSON Lines, properties written: 300 lines, ([\d,]+) activities: resident "
                         r"\d+ -> \d+ MiB \(process peak \d+ MiB\), Arrow columns \d+ MiB; Python's allocations "
                         r"peak \d+ MiB", result.stdout.strip())
    assert found and int(found.group(1).replace(",", "")) > 300  # generated leads have activities


@pytest.mark.parametrize(("packs", "passes"), [(["--rulepack", "firr-base"], "1 pass"), ([], "2 passes")])
def test_ceiling_script_bounds_the_columnar_scan_by_its_parts(packs: list[str], passes: str) -> None:
    # Plumbing (generate, decode alone, scan, scan again step by step, report) on 200 leads; the
    # account pass (every installed pack) reads the file twice and decodes each block once.
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "ceiling.py"), "--leads", "200", "--steps", *packs],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("200 leads, ") and f", {passes} over the file, each block decoded once, " in lines[0]
    decoding = re.fullmatch(r"decoding alone: +([\d.]+) us a lead on one core -> at most +([\d,]+) leads/s", lines[1])
    machine = re.fullmatch(r"the whole scan: +([\d.]+) us of CPU a lead \(([\d.]+) besides decoding\) -> at most +"
                           r"([\d,]+) leads/s on \d+ cores", lines[2])
    assert decoding and machine, result.stdout
    per_lead, bound = float(decoding.group(1)), int(decoding.group(2).replace(",", ""))
    assert abs(bound * per_lead - 1e6) < 0.01 * 1e6  # the bound is the decoder's rate (once a block, kept between passes)
    assert float(machine.group(1)) > float(machine.group(2)) > 0
    assert re.match(r"the scan ran at [\d,]+ leads/s \([\d.]+ s wall, [\d.]+ s CPU\): \d+% of the lower bound$", lines[3])
    steps = {line.split()[0] for line in lines[5:]}
    assert {"read", "plan", "sig"} <= steps and ("account" in steps) == ("keep" in steps) == (passes == "2 passes")


def test_statements_script_times_the_scans_statements_and_their_planning() -> None:
    # Plumbing (generate, scan in blocks of 1 MB with every statement timed, PREPARE on the second
    # block's tables) on 1,200 leads with the account pass: each block's query and stored signal step
    # ran once a block, the account pass's contacts once a block, and both are planned apart.
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "statements.py"), "--leads", "1200", "--block-mb", "1",
                             "--top", "40"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    head = re.fullmatch(r"1,200 leads, every installed pack: ([\d.]+) us of CPU a lead, ([\d.]+) of it in DuckDB statements",
                        lines[0])
    assert head and float(head.group(1)) > float(head.group(2)) > 0, result.stdout
    row = re.compile(r" +[\d.]+ us a lead +([\d,]+)x +[\d.]+ ms a call  (.*)")
    calls = {m.group(2): int(m.group(1).replace(",", "")) for m in map(row.fullmatch, lines[1:]) if m}
    blocks = calls["EXECUTE ls_query_1"]
    assert blocks >= 3 and calls['CREATE OR REPLACE TEMP TABLE sig AS SELECT "k", "company.annual_revenu'] == blocks
    assert sum(n for key, n in calls.items() if key.startswith("COPY (SELECT CAST(k AS BIGINT) AS k")) == blocks
    assert any(key.startswith("COPY activities TO '...'") and n == blocks for key, n in calls.items())
    planned = lines.index("parse, bind and plan alone (PREPARE, best of 3) on the second block's tables, once a block:")
    names = [re.fullmatch(r" +[\d.]+ ms  (.*)", line).group(1) for line in lines[planned + 1:]]
    assert names == ["sig", "query", "sig (with account signals)", "query (with account signals)"]


def test_handwritten_query_script_reads_and_scores_generated_leads_in_blocks() -> None:
    # Plumbing (generate, read with DuckDB's reader, score in blocks with and without the ledger,
    # report) on 300 leads; the first card of each shown, its total the sum of its sub-scores.
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "handwritten.py"), "--leads", "300",
                             "--block-leads", "120", "--memory-limit", "200MB", "--threads", "2"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "HANDWRITTEN_SHOW": "1"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    step = r" +[\d.]+ s wall +[\d.]+ s CPU +[\d,]+ leads/s +[\d.]+ us CPU a lead +peak so far [\d,]+ MiB"
    assert re.fullmatch("read" + step, lines[1]) and re.fullmatch(r" +300 leads, [\d,]+ activities", lines[2])
    assert lines[3].strip() == "cards in 3 block(s) of up to 120 leads"
    assert re.fullmatch("cards" + step, lines[4]) and re.fullmatch("cards, no ledger" + step, lines[7])
    assert re.fullmatch(r" +300 cards, \d+ bytes a lead", lines[5]) and re.fullmatch(r" +300 cards, \d+ bytes a lead", lines[8])
    with_ledger, without = json.loads(lines[6]), json.loads(lines[9])
    assert with_ledger["id"] == without["id"] == "L-0000001" and with_ledger["ledger"]
    assert {key: value for key, value in with_ledger.items() if key != "ledger"} == without
    assert with_ledger["total"] == round(sum(with_ledger["sub_scores"].values()), 2)
    assert with_ledger["top_reasons"] == [line["reason"] for line in with_ledger["ledger"][:3]]
    assert re.fullmatch(r"read and cards on \d+ cores with none idle: at most [\d,]+ leads/s without the ledger, "
                        r"[\d,]+ with it", lines[10])


def test_the_python_api_gives_the_cards_the_command_line_gives() -> None:
    # The README's Python snippet and `leadscore score` must agree, account pass included
    # (the enterprise pack reads account.* signals for 11 of the sample leads).
    from datetime import datetime, timezone

    import leadscore
    from leadscore.io import card_to_dict, read_leads

    cli = run("score", "rulepacks/samples/leads.jsonl", "--as-of", AS_OF, "--format", "jsonl", "--explain")
    assert cli.returncode == 0, cli.stderr
    as_of = datetime(2026, 11, 23, tzinfo=timezone.utc)
    api = [json.dumps(card_to_dict(card, explain=True), ensure_ascii=False, separators=(",", ":"))
           for card in leadscore.score(read_leads(SAMPLES / "leads.jsonl"), as_of=as_of)]
    assert [json.loads(line) for line in api] == [json.loads(line) for line in cli.stdout.splitlines()]
    assert any(json.loads(line)["subscores"].get("account") for line in api)  # the account pass ran
