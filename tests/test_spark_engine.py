"""`leadscore score --engine spark` gives the python engine's cards and rejections, in input order,
also when an account's contacts are spread over several part files.

The tests share one local Spark session (started by the first run, about half a minute); they
are skipped with the reason when PySpark (`uv sync --group spark`) or Java is missing.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from typing import Any
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("pyspark", reason="the Spark engine needs leadscore[spark] (uv sync --group spark)")
if not shutil.which("java"):
    pytest.skip("the Spark engine needs Java 17 or later on PATH", allow_module_level=True)

from leadscore import PluginManager  # noqa: E402
from leadscore.accounts import account_key  # noqa: E402
from leadscore.io.readers import parse_jsonl_line, read_leads  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
SPARK = ("--engine", "spark", "--spark-master", "local[2]")


def _score(tmp_path: Path, source: Path, *extra: str) -> tuple[int, str, str]:
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    out.unlink(missing_ok=True)
    rejects.unlink(missing_ok=True)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), "--as-of", "2026-11-23", "-o", str(out), "--rejects", str(rejects), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return (result.exit_code, out.read_text(encoding="utf-8") if out.exists() else "",
            rejects.read_text(encoding="utf-8") if rejects.exists() else "")


def _spread(lines: list[str], folder: Path, parts: int) -> Path:
    """The lines dealt over ``parts`` files in turn, so an account's contacts land in different files;
    the concatenation of the parts (in name order) is written beside them."""
    folder.mkdir()
    dealt: list[list[str]] = [[] for _ in range(parts)]
    for i, line in enumerate(lines):
        dealt[i % parts].append(line)
    for i, chunk in enumerate(dealt):
        (folder / f"part-{i:05d}.jsonl").write_text("".join(chunk), encoding="utf-8")
    (folder.parent / "all.jsonl").write_text("".join(line for chunk in dealt for line in chunk), encoding="utf-8")
    return folder


@pytest.mark.parametrize("extra", [("--explain",), ("-r", "firr-base")])
def test_sample_leads_score_byte_identical(tmp_path: Path, extra: tuple[str, ...]) -> None:
    python = _score(tmp_path, SAMPLES / "leads.jsonl", *extra)
    spark = _score(tmp_path, SAMPLES / "leads.jsonl", *SPARK, *extra)
    assert spark == python and python[0] == 0 and python[1]


def test_an_account_split_across_part_files_is_scored_as_one(tmp_path: Path) -> None:
    lines = (SAMPLES / "segment-leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines += (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    # Contacts of one account next to each other, then dealt over three files: every account with
    # three or more contacts has one in each file.
    lines.sort(key=lambda line: account_key(parse_jsonl_line(line.encode(), "x:1")) or "")
    folder = _spread(lines, tmp_path / "parts", 3)
    keys = [account_key(lead) for lead in read_leads(str(tmp_path / "all.jsonl"))]
    assert any(keys.count(key) >= 3 for key in keys if key)
    python = _score(tmp_path, tmp_path / "all.jsonl", "--explain")
    spark = _score(tmp_path, folder, *SPARK, "--explain")
    assert python[0] == 0
    assert spark == python
    # Account signals reached the cards: some ledger line reads an account.* signal.
    assert any((line.get("signal") or "").startswith("account.")
               for card in python[1].splitlines() for line in json.loads(card)["ledger"])


def test_bad_lines_and_duplicate_ids_are_rejected_alike(tmp_path: Path) -> None:
    good = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:6]
    lines = [good[0], "{not json\n", good[1], "\n", "[1, 2]\n", good[2], good[0], '{"id": 5}\n', good[3]]
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(lines), encoding="utf-8")
    python = _score(tmp_path, source, "--explain")
    spark = _score(tmp_path, source, *SPARK, "--explain")
    assert spark == python
    reasons = [json.loads(line)["reason"] for line in python[2].splitlines()]
    assert python[0] == 1 and len(reasons) == 3  # malformed, not an object, the later copy
    assert any(r.startswith("duplicate lead id") for r in reasons) and any("malformed JSON" in r for r in reasons)


def test_generated_leads_score_byte_identical(tmp_path: Path) -> None:
    source = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--leads", "2000", "--seed", "5", "-o",
                    str(source)], check=True)
    assert _score(tmp_path, source, *SPARK) == _score(tmp_path, source)


def test_parquet_part_files_are_read_by_spark_and_score_byte_identical(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    # The sample leads typed by pyarrow (integers, booleans, UTC timestamps), with a row whose
    # employees do not fit, a copy of an earlier id, and a row of nulls, dealt over three parts.
    leads = pacsv.read_csv(SAMPLES / "leads.csv")
    bad = leads.slice(0, 3).to_pylist()
    bad[0]["id"], bad[0]["company.employees"] = "L-BAD", None
    bad[2] = dict.fromkeys(bad[2])
    table = pa.concat_tables([leads, pa.Table.from_pylist(bad, schema=leads.schema)])
    folder = tmp_path / "leads"
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    third = -(-table.num_rows // 3)
    for i in range(3):
        pq.write_table(table.slice(i * third, third), folder / f"part-{i:05d}.parquet", row_group_size=5)
    python = _score(tmp_path, folder, "--explain")
    spark = _score(tmp_path, folder, *SPARK, "--explain")
    assert spark == python
    reasons = [(r["where"], r["reason"]) for r in map(json.loads, python[2].splitlines())]
    assert python[0] == 1 and len(python[1].splitlines()) == 47
    assert (f"{folder / 'part-00002.parquet'}:row {table.num_rows - 2 * third}",
            "id is missing; every lead needs a non-empty id such as L-1001") in reasons
    assert any(reason.startswith("duplicate lead id 'L-1002'") for _, reason in reasons)


def test_a_parquet_column_of_the_wrong_type_is_one_line_on_spark_too(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    source = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": ["L-1"], "title": [["VP"]]}), source)
    code, _, _ = _score(tmp_path, source, *SPARK)
    result = CliRunner().invoke(build_cli(PluginManager()), ["score", str(source), *SPARK, "-o", str(tmp_path / "o.jsonl")])
    assert code == result.exit_code == 2
    assert result.stderr.strip() == (f"leadscore: {source}: column 'title' is of Parquet type list<element: string>, "
                                     "not text; write title as text")


@pytest.mark.parametrize("extra, expected", [
    (("--format", "csv"), "--engine spark: writes JSON Lines, not csv; add --format jsonl"),
    (("--dedupe",), "--engine spark: --dedupe is not supported on Spark; score with --engine python or duckdb"),
    (("--next-steps",), "--engine spark: --next-steps is not supported on Spark"),
])
def test_what_spark_does_not_do_is_one_line(tmp_path: Path, extra: tuple[str, ...], expected: str) -> None:
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "leads.jsonl"), "--as-of", "2026-11-23", *SPARK, "-o", str(tmp_path / "o.jsonl"),
        *extra])
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- leadscore sql --dialect spark -----------------------------------------------------------------


def _sql_export_tests() -> Any:
    """tests/test_sql_export.py as a module: its relation builder and sample leads are shared, not copied."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ls_sql_export_tests", ROOT / "tests" / "test_sql_export.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _spark_relations(spark: Any, leads: list[Any]) -> None:
    """The leads as the two relations `leadscore sql` reads, built as tests/test_sql_export.py builds them."""
    lead_columns, activity_columns = _sql_export_tests().relation_rows(leads)
    revenue = lead_columns["company.annual_revenue"]
    lead_columns["company.annual_revenue"] = [None if v is None else float(v) for v in revenue]
    spark.createDataFrame(list(zip(*lead_columns.values())), "id string, email string, title string, source string, "
                          "created_at timestamp, account_id string, `company.name` string, `company.domain` string, "
                          "`company.industry` string, `company.employees` bigint, `company.annual_revenue` double, "
                          "`company.country` string, `company.tier` string, fields string"
                          ).createOrReplaceTempView("ls_test_leads")
    spark.createDataFrame(list(zip(*activity_columns.values())), "lead_id string, type string, at timestamp, "
                          "properties string").createOrReplaceTempView("ls_test_activities")


EVERY_PACK = ("firr-base", "midmarket", "enterprise", "syndication")


@pytest.mark.parametrize("packs", [("firr-base",), ("firr-base", "midmarket"), ("firr-base", "enterprise"), EVERY_PACK])
def test_the_exported_spark_script_scores_as_the_python_engine(tmp_path: Path, packs: tuple[str, ...]) -> None:
    from leadscore import Engine
    from leadscore.columnar.export import STEP_PREFIX
    from leadscore.io.writers import _json_line, card_to_dict
    from leadscore.spark import session

    as_of = datetime(2026, 11, 23, tzinfo=timezone.utc)
    exported = _sql_export_tests()
    # Activities at the same time in the query's order, leads in id order (same_account's "first N").
    leads = exported.sample_leads()
    if packs == EVERY_PACK:  # and content-syndication leads whose properties the SQL forms read (or mark)
        leads += (exported.syndication_leads(30, 1, exported.PLAIN_PROPS)
                  + exported.syndication_leads(15, 2, exported.PLAIN_PROPS + exported.UNTRUSTED_PROPS))
    leads.sort(key=lambda lead: lead.id)
    with Engine(plugins=PluginManager(), rulepacks=list(packs), as_of=as_of) as engine:
        cards = exported.python_cards(engine, leads)
    want = {card.lead_id: _json_line(card_to_dict(card)).rstrip("\n") for card in cards}
    ledgers = {card.lead_id: exported.explain_ledger(card) for card in cards}
    args = ["sql", "--dialect", "spark", "--as-of", "2026-11-23", "--leads", "ls_test_leads",
            "--activities", "ls_test_activities", "-o", str(tmp_path / "score.sql")]
    for pack in packs:
        args += ["-r", pack]
    result = CliRunner().invoke(build_cli(PluginManager()), args)
    assert result.exit_code == 0, result.output
    statements = [s for s in (tmp_path / "score.sql").read_text(encoding="utf-8").split(";\n") if s.strip()]
    spark = session("local[2]")
    warehouse = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    existed = warehouse.exists()
    _spark_relations(spark, leads)
    try:
        for statement in statements[:-1]:
            spark.sql(statement)
        rows = spark.sql(statements[-1]).collect()
    finally:
        for table in spark.catalog.listTables():
            if table.name.startswith(STEP_PREFIX):
                spark.sql(f"DROP TABLE IF EXISTS `{table.name}`")
        if not existed:
            shutil.rmtree(warehouse, ignore_errors=True)
    assert sorted(r["id"] for r in rows) == sorted(want)
    for row in rows:
        assert row["rejection"] is None
        if row["exact"]:
            assert row["card"] == want[row["id"]], row["id"]
            assert row["ledger"] == ledgers[row["id"]], row["id"]
    assert sum(1 for row in rows if row["exact"]) >= 38
    if packs == EVERY_PACK:
        crafted = exported.syndication_exact([lead for lead in leads if lead.id.startswith("S-")])
        assert {row["id"]: row["exact"] for row in rows if row["id"] in crafted} == crafted
