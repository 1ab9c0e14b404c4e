"""DuckDB's memory limit for the columnar engine: ``Engine(memory_limit=)`` and ``leadscore score
--memory-limit``: the size reaches DuckDB, the cards do not change with it, and a size that is not one
(or too small to run in, or for an engine without DuckDB) stops the run in one line before any input
is read."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("duckdb")

from leadscore import Engine, PluginManager  # noqa: E402
from leadscore.columnar import memory_limit_bytes, memory_limit_text  # noqa: E402
from leadscore.errors import ConfigurationError  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize(("limit", "shown"), [
    (None, "190.7 MiB"),  # the default, 200MB
    ("300MB", "286.1 MiB"),
    ("0.5GiB", "512.0 MiB"),
    (" 2 gb ", "1.8 GiB"),
])
def test_the_limit_is_duckdbs_on_the_scorers_connection(limit: str | None, shown: str) -> None:
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF, memory_limit=limit) as engine:
        scorer = engine.columnar_scorer(AS_OF, explain=False, values=False, render="jsonl")
        assert scorer.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == shown


def test_sizes_count_as_duckdb_counts_them() -> None:
    assert memory_limit_bytes("150MB") == 150_000_000
    assert memory_limit_bytes("1.5GB") == 1_500_000_000
    assert memory_limit_bytes("512MiB") == 512 * 2**20
    assert memory_limit_bytes("1TiB") == 2**40
    assert memory_limit_text("157286400B") == "157MB"
    assert memory_limit_text("200MB") == "200MB"


def test_the_api_refuses_a_limit_for_an_engine_without_duckdb() -> None:
    with pytest.raises(ConfigurationError) as err:
        Engine(plugins=PluginManager(), backend="python", memory_limit="300MB")
    assert str(err.value) == ("memory_limit=: a memory limit is for backend='duckdb' (DuckDB's), not 'python'; "
                              "pass backend='duckdb' or leave out memory_limit=")
    with pytest.raises(ConfigurationError, match=r"^memory_limit=: 64MB is below the least the columnar engine runs in"):
        Engine(plugins=PluginManager(), backend="duckdb", memory_limit="64MB")


def _score(tmp_path: Path, name: str, *args: str) -> tuple[int, str, str]:
    out = tmp_path / name
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "leads.jsonl"), "--as-of", "2026-11-23", "--explain", "-o", str(out), *args])
    return result.exit_code, out.read_text(encoding="utf-8") if out.exists() else "", result.stderr


def test_the_cli_gives_duckdb_the_limit_and_the_cards_do_not_change(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.columnar.engine import ColumnarScorer

    limits: list[str] = []
    init = ColumnarScorer.__init__

    def noted(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        limits.append(self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0])

    monkeypatch.setattr(ColumnarScorer, "__init__", noted)
    python = _score(tmp_path, "python.jsonl", "--engine", "python")
    assert python[0] == 0 and python[1].count("\n") == 46 and limits == []
    for limit, shown in [("150MB", "143.0 MiB"), ("1GB", "953.6 MiB")]:
        limits.clear()
        got = _score(tmp_path, f"duckdb-{limit}.jsonl", "--engine", "duckdb", "--memory-limit", limit)
        assert got[:2] == python[:2], got[2]
        assert limits and set(limits) == {shown}
    # auto scores 46 leads with the python engine: the limit, DuckDB's, is not needed, and not refused.
    limits.clear()
    assert _score(tmp_path, "auto.jsonl", "--memory-limit", "300MB")[:2] == python[:2] and limits == []


@pytest.mark.parametrize(("args", "line"), [
    (["--memory-limit", "100MB"], "leadscore: --memory-limit: 100MB is below the least the columnar engine runs in "
     "(150MB); give 150MB or more, or leave it out (the default is 200MB)"),
    (["--memory-limit", "12XB"], "leadscore: --memory-limit: '12XB' is not a size with its unit; give a number and a "
     "unit, e.g. 300MB or 1.5GB (KB, MB, GB, TB; KiB, MiB, GiB, TiB)"),
    (["--memory-limit", "300"], "leadscore: --memory-limit: '300' is not a size with its unit; give a number and a "
     "unit, e.g. 300MB or 1.5GB (KB, MB, GB, TB; KiB, MiB, GiB, TiB)"),
    (["--memory-limit", "300MB", "--engine", "python"], "leadscore: --memory-limit: DuckDB's memory limit is for "
     "--engine duckdb (or auto), not --engine python; leave it out or choose --engine duckdb"),
    (["--memory-limit", "300MB", "--engine", "spark"], "leadscore: --memory-limit: DuckDB's memory limit is for "
     "--engine duckdb (or auto), not --engine spark; leave it out or choose --engine duckdb"),
])
def test_a_limit_that_cannot_be_used_stops_the_run_in_one_line(tmp_path: Path, args: list[str], line: str) -> None:
    code, cards, stderr = _score(tmp_path, "cards.jsonl", "--engine", "duckdb", *args)
    assert code == 2 and cards == "" and not (tmp_path / "cards.jsonl").exists()
    assert stderr.strip().splitlines() == [line]


# Run in a process of its own: the CLI's, where nothing has imported pandas or asked pyarrow about it yet.
_PROCESS = """
import sys
from leadscore_cli.main import main
sys.argv = ["leadscore", "score", *sys.argv[1:]]
try:
    main()
except SystemExit as end:
    assert end.code == 0, end.code
imported = "pandas" in sys.modules
import pyarrow as pa
frame = pa.table({"total": [12, None]}).to_pandas()  # pandas, wanted, still comes
print(imported, type(frame).__name__, frame["total"].isna().tolist())
"""


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_a_run_of_either_engine_leaves_pandas_unimported_and_usable(tmp_path: Path, engine: str) -> None:
    # pyarrow imports pandas, where it is installed, the first time it turns a list into a column and
    # the first time it infers a column's type: tens of MiB the columnar engine's run does not use. The
    # CLI asks pyarrow both once with pandas hidden; the python engine does not use pyarrow here.
    pytest.importorskip("pandas")
    out = tmp_path / f"{engine}.jsonl"
    done = subprocess.run([sys.executable, "-c", _PROCESS, str(SAMPLES / "leads.jsonl"), "--as-of", "2026-11-23",
                           "--engine", engine, "--explain", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "False DataFrame [False, True]"
    assert out.read_text().count("\n") == 46
    assert "scored 46 + rejected 0 == read 46" in done.stderr
