"""`leadscore score` with Parquet in and out: what is written, and the one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

AS_OF = "2026-11-23T00:00:00Z"


def run(*args: str, input: str | None = None):
    cli = build_cli(PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({
        "id": ["L-1", "L-2", "L-3"],
        "email": ["dana@acme-robotics.com", "kim@gmail.com", "lee@acme-robotics.com"],
        "title": ["VP Marketing", "Marketing Intern", "Analyst"],
        "company.domain": ["acme-robotics.com", None, "acme-robotics.com"],
        "company.employees": [1200, 1, None],
        "company.annual_revenue": [2.5e8, None, None],
    }), path)
    return path


@pytest.fixture
def activities(tmp_path: Path) -> Path:
    folder = tmp_path / "activities"
    folder.mkdir()
    when = pa.timestamp("s", tz="UTC")  # 2026-11-20T10:00:00Z and 2026-11-21T09:00:00Z below
    pq.write_table(pa.table({"lead_id": ["L-1"], "type": ["pricing_page_visit"],
                             "at": pa.array([1795168800], when)}), folder / "part-00000.parquet")
    pq.write_table(pa.table({"lead_id": ["L-1"], "type": ["demo_request"],
                             "at": pa.array([1795251600], when)}), folder / "part-00001.parquet")
    return folder


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_parquet_in_and_out_reads_back_as_the_json_lines_cards(tmp_path: Path, leads: Path, activities: Path,
                                                               engine: str) -> None:
    out = tmp_path / "cards.parquet"
    written = run("score", str(leads), "--activities", str(activities), "--as-of", AS_OF, "--explain",
                  "--engine", engine, "-o", str(out))
    assert written.exit_code == 0, written.stderr
    assert "scored 3 + rejected 0 == read 3" in written.stderr
    jsonl = run("score", str(leads), "--activities", str(activities), "--as-of", AS_OF, "--explain",
                "--engine", engine, "--format", "jsonl")
    cards = [json.loads(line) for line in jsonl.stdout.splitlines()]
    rows = pq.read_table(out).to_pylist()
    assert [r["id"] for r in rows] == [c["id"] for c in cards] == ["L-1", "L-2", "L-3"]
    for row, card in zip(rows, cards):
        assert (row["total"], row["band"], row["reasons"], row["packs"]) == (
            card["total"], card["band"], card["reasons"], card["packs"])
        assert {k[6:]: v for k, v in row.items() if k.startswith("score_") and v is not None} == card["subscores"]
        assert (row["route_action"], row["route_queue"], row["sla_hours"]) == (
            (card["route"]["action"], card["route"]["queue"], card["route"]["sla_hours"]) if card["route"]
            else (None, None, None))
        assert json.loads(row["ledger"]) == card["ledger"]
    assert any(line["signal"] == "demo_request" for line in cards[0]["ledger"])  # the activities were joined


def test_a_parquet_leads_file_alone_is_read_as_parquet_on_every_engine(leads: Path) -> None:
    # Without --activities the columnar engine once took a .parquet file for JSON Lines and rejected it.
    results = [run("score", str(leads), "--as-of", AS_OF, "--engine", engine, "--format", "jsonl")
               for engine in ("python", "duckdb", "auto")]
    for result in results:
        assert result.exit_code == 0, result.stderr
        assert "scored 3 + rejected 0 == read 3" in result.stderr
    assert results[0].stdout == results[1].stdout == results[2].stdout
    assert [json.loads(line)["id"] for line in results[0].stdout.splitlines()] == ["L-1", "L-2", "L-3"]


def test_format_parquet_needs_an_output_file(leads: Path) -> None:
    result = run("score", str(leads), "--format", "parquet")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("leadscore: --format parquet: a Parquet file is not written to standard output; "
                                     "add -o FILE.parquet")


def test_a_failed_run_leaves_the_parquet_output_as_it_was(tmp_path: Path, leads: Path) -> None:
    out = tmp_path / "cards.parquet"
    out.write_bytes(b"the old file")
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": ["L-1"], "title": [["VP"]]}), bad)
    result = run("score", str(bad), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"leadscore: {bad}: column 'title' is of Parquet type list<element: string>, "
                                     "not text; write title as text")
    assert out.read_bytes() == b"the old file"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cards")] == []


def test_bad_files_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = run("score", str(tmp_path / "gone.parquet"))
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"leadscore: {tmp_path / 'gone.parquet'}: file not found; check the path"
    text = tmp_path / "leads.parquet"
    text.write_text("id,email\nL-1,a@b.io\n")
    not_parquet = run("score", str(text))
    assert not_parquet.exit_code == 2
    assert not_parquet.stderr.startswith(f"leadscore: {text}: not a readable Parquet file (")
    assert len(not_parquet.stderr.strip().splitlines()) == 1
    stdin = run("score", "-", "--input-format", "parquet", input="PAR1")
    assert stdin.exit_code == 2
    assert stdin.stderr.strip() == ("leadscore: <stdin>: Parquet is read from a file, not a stream; name the .parquet "
                                    "file or directory")


def test_bad_rows_are_rejected_at_their_row_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": ["L-1", "L-2", "L-1"], "company.employees": ["12", "lots", "3"]}), path)
    rejects = tmp_path / "rejects.jsonl"
    result = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "--rejects", str(rejects))
    assert result.exit_code == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["L-1"]
    found = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["where"], r["reason"]) for r in found] == [
        (f"{path}:row 2", "company.employees: 'lots' is not a whole number; write digits such as 1200"),
        ("lead L-1", f"duplicate lead id 'L-1': an earlier row of {path} has it and was scored; each lead id once "
                     "per input; pass --dedupe to merge the copies into one lead")]
    assert result.stderr.strip().splitlines()[-1] == f"scored 1 + rejected 2 (see {rejects}) == read 3"


# The console script's process, with a score of the sample leads to Parquet, then the pool pyarrow uses.
_POOL_CHILD = """
import sys
from leadscore_cli.main import main
sys.argv = ["leadscore", "score", sys.argv[1], "--engine", "duckdb", "--as-of", "2026-11-23", "-o", sys.argv[2]]
try:
    main()
except SystemExit as end:
    assert end.code == 0, end.code
import pyarrow as pa
print(pa.default_memory_pool().backend_name)
"""


@pytest.mark.parametrize(("chosen", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_cli_gives_pyarrow_the_system_allocator_unless_told_otherwise(tmp_path, chosen, expected):
    # A Parquet block read in one thread and freed in another stayed in mimalloc's pages: the CLI has
    # pyarrow use malloc, unless ARROW_DEFAULT_MEMORY_POOL already names a pool. pyarrow reads the
    # variable once, at its import, so this fails if anything imports pyarrow before main() runs.
    pytest.importorskip("duckdb")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    samples = Path(__file__).resolve().parents[2] / "rulepacks" / "samples" / "leads.jsonl"
    out = tmp_path / "cards.parquet"
    done = subprocess.run([sys.executable, "-c", _POOL_CHILD, str(samples), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == expected
    assert pq.read_table(out).num_rows == 46
