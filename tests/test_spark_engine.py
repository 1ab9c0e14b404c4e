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


def _invoke(tmp_path: Path, source: Path, *extra: str) -> tuple[Any, str, str]:
    """`leadscore score SOURCE` with ``extra``: the result, the output file's text and the rejects file's."""
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    out.unlink(missing_ok=True)
    rejects.unlink(missing_ok=True)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), "--as-of", "2026-11-23", "-o", str(out), "--rejects", str(rejects), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return (result, out.read_text(encoding="utf-8") if out.exists() else "",
            rejects.read_text(encoding="utf-8") if rejects.exists() else "")


def _score(tmp_path: Path, source: Path, *extra: str) -> tuple[int, str, str]:
    result, out, rejects = _invoke(tmp_path, source, *extra)
    return result.exit_code, out, rejects


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


# --- CSV leads and an activities file ------------------------------------------------------------

ENTERPRISE = ("-r", "firr-base", "-r", "enterprise")


def _run(tmp_path: Path, source: Path, *extra: str) -> tuple[int, str, str, list[str]]:
    """_score, and the lines on stderr about the read: left-out activities, warnings, an error, the summary."""
    result, out, rejects = _invoke(tmp_path, source, *extra)
    notes = [line for line in result.stderr.splitlines()
             if line.startswith(("skipped ", "leadscore: ", "scored ", "... and"))]
    return result.exit_code, out, rejects, notes


def test_sample_csv_with_activities_scores_byte_identical(tmp_path: Path) -> None:
    args = ("--activities", str(SAMPLES / "activities.csv"), *ENTERPRISE, "--explain")
    python = _run(tmp_path, SAMPLES / "leads.csv", *args)
    spark = _run(tmp_path, SAMPLES / "leads.csv", *SPARK, *args)
    assert spark == python
    assert python[0] == 0 and len(python[1].splitlines()) == 46
    cards = [json.loads(line) for line in python[1].splitlines()]
    # The activities reached the cards, and so did the enterprise pack's account signals.
    assert sum(1 for card in cards for line in card["ledger"] if line.get("evidence")) > 100
    assert any((line.get("signal") or "").startswith("account.") for card in cards for line in card["ledger"])


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        header, *rows = csv.reader(handle)
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_part_files_split_an_account_and_score_as_one_file(tmp_path: Path) -> None:
    header, rows = _csv_rows(SAMPLES / "leads.csv")
    account = header.index("account_id")
    # A quoted cell spanning lines, and the accounts' contacts dealt over two files in turn: the
    # second file is separated by semicolons (sniffed from its header).
    header.append("fields.note")
    for i, row in enumerate(rows):
        row.append("met at the booth;\nasked for a trial" if i % 5 == 0 else "")
    rows.sort(key=lambda row: row[account])
    parts = tmp_path / "leads"
    parts.mkdir()
    (parts / "_SUCCESS").write_text("")
    _write_csv(parts / "part-00000.csv", header, rows[0::2])
    _write_csv(parts / "part-00001.csv", header, rows[1::2], delimiter=";")
    _write_csv(tmp_path / "all.csv", header, rows[0::2] + rows[1::2])
    split = ({row[account] for row in rows[0::2]} & {row[account] for row in rows[1::2]}) - {""}
    assert len(split) >= 3
    args = ("--activities", str(SAMPLES / "activities.csv"), *ENTERPRISE, "--explain")
    python = _run(tmp_path, tmp_path / "all.csv", *args)
    spark = _run(tmp_path, parts, *SPARK, *args)
    assert python[0] == 0 and python[2] == ""
    assert spark == python and len(python[1].splitlines()) == 46


def test_bad_csv_rows_and_activity_rows_are_rejected_alike(tmp_path: Path) -> None:
    lines = (SAMPLES / "leads.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    width = lines[0].count(",")
    leads = tmp_path / "leads.csv"
    leads.write_text("".join([
        *lines[:4],
        "L-9002,short@row.example\n",                       # too few cells: rejected, its id named
        lines[1],                                            # L-1001 again: a duplicate
        *lines[4:7],
        "L-9003," + "," * (width - 1) + "\n",               # a lead with nothing but its id
        'L-9001,"never closed,' + "," * (width - 1) + "\n",  # a quote that never closes
        *lines[7:9],
    ]), encoding="utf-8")
    acts = (SAMPLES / "activities.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    extra = "," * (acts[0].count(",") - 2)
    activities = tmp_path / "activities.csv"
    activities.write_text("".join([
        acts[0],
        f"L-1001,page_view,not a time{extra}\n",            # left out, the lead still scored
        f"L-NOPE,page_view,2026-11-20T10:00:00Z{extra}\n",  # for no lead
        *acts[1:30],
        f",page_view,2026-11-20T10:00:00Z{extra}\n",        # no lead id
        f"L-9002,demo_request,2026-11-20T10:00:00Z{extra}\n",  # its lead was rejected: not unknown
        f"L-1002,pricing_page_visit,2026-11-21T10:00:00Z,/pricing{extra[1:]}\n",
        "L-1003,page_view\n",                               # too few cells: left out
    ]), encoding="utf-8")
    args = ("--activities", str(activities), *ENTERPRISE, "--explain")
    python = _run(tmp_path, leads, *args)
    spark = _run(tmp_path, leads, *SPARK, *args)
    assert spark == python
    rejected = [(r["where"], r["reason"]) for r in map(json.loads, python[2].splitlines())]
    assert python[0] == 1
    assert (f"{leads}:5",
            f"row has 2 cells but the header has {width + 1}; quote cells that contain commas") in rejected
    assert any(where == f"{leads}:11" and "never closed" in reason for where, reason in rejected)
    assert any(reason.startswith("duplicate lead id 'L-1001'") for _, reason in rejected)
    assert (f"{activities}:3", "activity for unknown lead 'L-NOPE'; every activity's lead_id must match an id in "
            "the leads file") in rejected
    assert any(where == f"{activities}:33" and "lead_id is missing" in reason for where, reason in rejected)
    assert not any("'L-9002'" in reason and "unknown lead" in reason for _, reason in rejected)
    # Leads first (in file order), then the activity rows in the activities file's order.
    places = [where for where, _ in rejected]
    assert places.index(f"{activities}:3") > places.index(f"{leads}:11")
    assert any(note.startswith(f"skipped {activities}:2: activity left out") for note in python[3])
    assert python[3][-1].endswith("activities left out (listed above)")


def _parquet_parts(source: Path, folder: Path, slices: list[tuple[int, int | None]]) -> Path:
    """The CSV file ``source`` (typed by pyarrow's CSV reader) as Parquet part files in ``folder``,
    one per (offset, length) slice."""
    pacsv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pacsv.read_csv(source)
    folder.mkdir()
    for i, (offset, length) in enumerate(slices):
        pq.write_table(table.slice(offset, length), folder / f"part-{i:05d}.parquet")
    return folder


def test_json_leads_with_parquet_activity_parts_score_byte_identical(tmp_path: Path) -> None:
    # The sample activities as two typed Parquet parts, joined to JSON leads that have their own.
    folder = _parquet_parts(SAMPLES / "activities.csv", tmp_path / "activities", [(0, 120), (120, None)])
    args = ("--activities", str(folder), "-r", "firr-base", "--explain")
    python = _run(tmp_path, SAMPLES / "leads.jsonl", *args)
    spark = _run(tmp_path, SAMPLES / "leads.jsonl", *SPARK, *args)
    assert spark == python
    assert python[0] == 0 and len(python[1].splitlines()) == 46


@pytest.mark.parametrize("strict", [False, True])
def test_delimiter_and_strict_are_the_csv_readers_on_spark_too(tmp_path: Path, strict: bool) -> None:
    header, rows = _csv_rows(SAMPLES / "leads.csv")
    source = tmp_path / "leads.txt"  # no suffix to tell the format: --input-format says it
    _write_csv(source, [*header, "favourite colour"], [[*row, "teal"] for row in rows[:6]], delimiter="|")
    args = ("--input-format", "csv", "--delimiter", "|", "-r", "firr-base", *(("--strict",) if strict else ()))
    python = _run(tmp_path, source, *args)
    spark = _run(tmp_path, source, *SPARK, *args)
    assert spark == python
    if strict:
        assert python[0] == 2 and python[1] == "" and len(python[3]) == 1
        assert python[3][0].startswith(f"leadscore: {source}:1: 1 unknown column: 'favourite colour'")
    else:
        assert python[0] == 0 and len(python[1].splitlines()) == 6
        assert any("1 column kept as custom field: 'favourite colour'" in note for note in python[3])


def test_an_empty_activities_file_stops_both_engines_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "activities.csv"
    empty.write_text("", encoding="utf-8")
    lines = []
    for engine in (("--engine", "python"), SPARK):
        result = CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(SAMPLES / "leads.csv"), "--activities", str(empty), "--as-of", "2026-11-23", *engine,
            "-o", str(tmp_path / "o.jsonl")])
        assert result.exit_code == 2
        lines.append(result.stderr.strip())
    assert lines[0] == lines[1] == (f"leadscore: {empty}: the activities file is empty; write the header "
                                    "lead_id,type,at first")
    assert not (tmp_path / "o.jsonl").exists()


# --- the notes on stderr and the empty-file refusal ----------------------------------------------


def _both(tmp_path: Path, source: Path, *extra: str, spark_source: Path | None = None) -> tuple[Any, Any]:
    """`leadscore score` on the python engine and on Spark: each (exit code, output, rejects, stderr)."""
    runs = []
    for engine, path in ((("--engine", "python"), source), (SPARK, spark_source or source)):
        result, out, rejects = _invoke(tmp_path, path, *engine, *extra)
        runs.append((result.exit_code, out, rejects, result.stderr))
    return runs[0], runs[1]


@pytest.mark.parametrize("content", ["", "\n  \n\r\n"], ids=["0-bytes", "blank-lines"])
def test_an_empty_json_lines_file_is_refused_as_leadscore_score_refuses_it(tmp_path: Path, content: str) -> None:
    source = tmp_path / "leads.jsonl"
    source.write_text(content, encoding="utf-8")
    python, spark = _both(tmp_path, source, "-r", "firr-base")
    assert spark == python
    assert python[:3] == (2, "", "")
    assert python[3] == (f'leadscore: {source}: no leads in this file; write one JSON object per line, such as '
                         '{"id": "L-1001"}\n')


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["0-bytes", "blank-lines"])
def test_an_empty_part_file_stops_the_run_naming_it(tmp_path: Path, content: str) -> None:
    lines = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    folder = _spread(lines[:9], tmp_path / "parts", 3)
    empty = folder / "part-00001.jsonl"
    empty.write_text(content, encoding="utf-8")
    # What leadscore score says of that part by itself (the python engine reads no directory).
    python, spark = _both(tmp_path, empty, "-r", "firr-base", spark_source=folder)
    assert spark == python and python[0] == 2 and python[1] == ""
    assert python[3].startswith(f"leadscore: {empty}: no leads in this file;")
    # A CSV part file of 0 bytes, the same.
    header, rows = _csv_rows(SAMPLES / "leads.csv")
    csv_parts = tmp_path / "csv"
    csv_parts.mkdir()
    _write_csv(csv_parts / "part-00000.csv", header, rows[:4])
    (csv_parts / "part-00001.csv").write_text("", encoding="utf-8")
    python, spark = _both(tmp_path, csv_parts / "part-00001.csv", "-r", "firr-base", spark_source=csv_parts)
    assert spark == python and python[0] == 2
    assert python[3].startswith(f"leadscore: {csv_parts / 'part-00001.csv'}: no leads in this file; write a header")


def test_parquet_input_without_a_row_is_refused_as_leadscore_score_refuses_it(tmp_path: Path) -> None:
    folder = _parquet_parts(SAMPLES / "leads.csv", tmp_path / "leads", [(0, 0), (0, 0)])  # columns, no row
    python, spark = _both(tmp_path, folder, "-r", "firr-base")
    assert spark == python
    assert python == (2, "", "", f"leadscore: {folder}: no leads in this file; write one row per lead\n")
    # One part with rows is enough, as for leadscore score.
    folder = _parquet_parts(SAMPLES / "leads.csv", tmp_path / "more", [(0, 0), (0, 0), (0, 5)])
    python, spark = _both(tmp_path, folder, "-r", "firr-base")
    assert spark == python and python[0] == 0 and len(python[1].splitlines()) == 5


def _with(line: str, **changes: Any) -> str:
    lead = json.loads(line)
    for key, value in changes.items():
        lead[key] = value(lead.get(key)) if callable(value) else value
    return json.dumps(lead) + "\n"


def test_activities_left_out_of_json_leads_are_listed_as_leadscore_score_lists_them(tmp_path: Path) -> None:
    lines = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)

    def spoiled(count: int) -> Any:  # the lead's first activities with times that are no times
        return lambda acts: [{**act, "at": f"around noon {i}"} if i < count else act for i, act in enumerate(acts)]

    source = tmp_path / "leads.jsonl"
    changed = [_with(line, activities=spoiled(i % 4)) if i % 3 == 0 else line for i, line in enumerate(lines)]
    # A later copy of a lead with a bad activity (rejected, its activity still left out), and an
    # activity without a time.
    changed += [changed[3], _with(lines[1], id="L-9101", activities=lambda acts: [*acts, {"type": "page_view"}])]
    source.write_text("".join(changed), encoding="utf-8")
    args = ("--activities", str(SAMPLES / "activities.csv"), "-r", "firr-base", "--explain")
    python, spark = _both(tmp_path, source, *args)
    assert spark == python
    notes = python[3].splitlines()
    skipped = [line for line in notes if line.startswith("skipped ")]
    places = [int(line[len(f"skipped {source}:"):].partition(":")[0]) for line in skipped]
    assert python[0] == 1 and len(skipped) == 20 and places == sorted(places) and len(set(places)) > 5
    more = notes.index(skipped[-1]) + 1
    assert notes[more].startswith("... and ") and notes[more].endswith(" more activities left out")
    assert notes[-1].endswith("activities left out (listed above)")


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_parquet_columns_are_a_warning_or_with_strict_the_error(tmp_path: Path, strict: bool) -> None:
    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    leads = pacsv.read_csv(SAMPLES / "leads.csv")
    folder = tmp_path / "leads"
    folder.mkdir()
    # Each part has a column that is no lead field, the second one more: two warnings.
    first = leads.slice(0, 20).append_column("favourite colour", pa.array(["teal"] * 20))
    second = leads.slice(20).append_column("favourite colour", pa.array(["red"] * (leads.num_rows - 20)))
    second = second.append_column("shoe size", pa.array([42] * (leads.num_rows - 20)))
    pq.write_table(first, folder / "part-00000.parquet")
    pq.write_table(second, folder / "part-00001.parquet")
    python, spark = _both(tmp_path, folder, "-r", "firr-base", *(("--strict",) if strict else ()))
    assert spark == python
    if strict:
        assert python[:3] == (2, "", "")
        assert python[3].startswith(f"leadscore: {folder}: 1 unknown column: 'favourite colour'")
    else:
        assert python[0] == 0 and len(python[1].splitlines()) == leads.num_rows
        warnings = [line for line in python[3].splitlines() if "kept as custom field" in line]
        assert len(warnings) == 2 and "'shoe size'" in warnings[1]


def test_unknown_activity_types_and_misfit_fields_are_counted_as_leadscore_score_counts_them(tmp_path: Path) -> None:
    lines = (SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)

    def renamed(acts: Any) -> Any:  # a typo of a known type, and a type of a CRM's own
        return [{**act, "type": {"page_view": "page_veiw", "ad_click": "crm_touch"}.get(act["type"], act["type"])}
                for act in acts]

    changed = [_with(line, activities=renamed) if i % 2 else line for i, line in enumerate(lines)]
    changed = [_with(line, fields={"budget_confirmed": "maybe", "competitor": "no"} if i % 5 == 0 else
                     {"budget_confirmed": "perhaps"}) if i % 3 == 0 else line for i, line in enumerate(changed)]
    changed.append(changed[1])  # a later copy: rejected, its activities not counted
    source = tmp_path / "leads.jsonl"
    source.write_text("".join(changed), encoding="utf-8")
    # Activities of the activities file count too (joined to the leads before they are counted).
    acts = (SAMPLES / "activities.csv").read_text(encoding="utf-8").replace(",page_view,", ",page_veiw,")
    activities = tmp_path / "activities.csv"
    activities.write_text(acts, encoding="utf-8")
    python, spark = _both(tmp_path, source, "--activities", str(activities), "-r", "firr-base")
    assert spark == python
    notes = python[3].splitlines()
    assert any(line.startswith("leadscore: warning: activity types no rulepack knows") and "'page_view'?" in line
               for line in notes)
    assert any("fields.budget_confirmed (" in line and "not a bool" in line for line in notes)


@pytest.mark.parametrize("extra, expected", [
    (("--format", "csv"), "--engine spark: writes JSON Lines, not csv; add --format jsonl"),
    (("--map", "hubspot"), "--engine spark: --map is not supported on Spark; score with --engine python or duckdb"),
    (("--dedupe",), "--engine spark: --dedupe is not supported on Spark; score with --engine python or duckdb"),
    (("--next-steps",), "--engine spark: --next-steps is not supported on Spark"),
])
def test_what_spark_does_not_do_is_one_line(tmp_path: Path, extra: tuple[str, ...], expected: str) -> None:
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(SAMPLES / "leads.jsonl"), "--as-of", "2026-11-23", *SPARK, "-o", str(tmp_path / "o.jsonl"),
        *extra])
    assert result.exit_code == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_json_lines_file_too_big_for_one_task_is_one_line_before_spark_starts(tmp_path: Path) -> None:
    from leadscore.spark import WHOLE_FILE_LIMIT

    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:  # sparse: no disk is used
        f.truncate(WHOLE_FILE_LIMIT + 1)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(big), "--as-of", "2026-11-23", *SPARK, "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"leadscore: {big}: is 2.0 GiB: Spark reads a JSON Lines or CSV file whole in one task, which holds less than "
        "2 GiB; split it into part files in a directory (e.g. split -C 256m --additional-suffix=.jsonl FILE "
        "DIR/part-) and score the directory")
    assert not (tmp_path / "o.jsonl").exists()


def test_a_failing_spark_job_is_one_line() -> None:
    from leadscore.errors import ConfigurationError
    from leadscore.engine import Engine
    from leadscore.spark import score_files, session, spark_failure

    # A Spark error raised while the job is planned (a negative number of partitions) ...
    with pytest.raises(ConfigurationError) as caught:
        engine = Engine(rulepacks=["firr-base"], as_of=datetime(2026, 11, 23, tzinfo=timezone.utc))
        list(score_files(session("local[2]"), [str(SAMPLES / "leads.jsonl")], engine, partitions=-1))
    line = str(caught.value)
    assert line.startswith("--engine spark: the Spark job failed: ") and "\n" not in line
    assert line.endswith("; Spark's log above has the details")
    # ... and the JVM out of memory, as Py4J reports it: the cause and the fix, not the Java stack.
    heap = RuntimeError("An error occurred while calling o91.toLocalIterator.\n: org.apache.spark.SparkException: "
                        "Job aborted due to stage failure: ... java.lang.OutOfMemoryError: Java heap space\n\tat ...")
    assert spark_failure(heap).line() == (
        "--engine spark: the Spark job ran out of memory (java.lang.OutOfMemoryError); give the driver more "
        "(PYSPARK_SUBMIT_ARGS='--driver-memory 8g pyspark-shell', or spark.executor.memory on a cluster) or split "
        "the input into smaller part files")


def test_a_local_session_runs_this_interpreter_with_room_for_part_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from leadscore.spark import local_defaults

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.delenv("SPARK_DRIVER_MEMORY", raising=False)
    settings = local_defaults()
    assert settings["spark.pyspark.python"] == sys.executable
    assert settings["spark.driver.memory"] in {f"{n}g" for n in range(1, 9)}
    # What the user set stays theirs.
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/python3")
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS", "--driver-memory 2g pyspark-shell")
    assert local_defaults() == {}


# --- Engine(backend="spark", session=...) ----------------------------------------------------------


def test_an_engine_on_a_spark_session_scores_as_the_python_engine(tmp_path: Path) -> None:
    from leadscore.engine import Engine
    from leadscore.io.writers import card_to_dict
    from leadscore.model import Rejection
    from leadscore.spark import session

    when = datetime(2026, 11, 23, tzinfo=timezone.utc)
    leads: list[Any] = [*read_leads(str(SAMPLES / "segment-leads.jsonl")), *read_leads(str(SAMPLES / "leads.jsonl"))]
    leads.insert(7, Rejection("leads.jsonl:8", "malformed JSON", None))  # a rejection passes through in place

    def shown(results: Any) -> list[Any]:
        return [item if isinstance(item, Rejection) else card_to_dict(item, explain=True) for item in results]

    python = Engine(as_of=when)
    index = python.build_accounts(leads)
    expected = shown(python.score(leads, accounts=index))
    spark = Engine(backend="spark", session=session("local[2]"), as_of=when)
    assert python.needs_accounts and spark.needs_accounts
    assert shown(spark.score(leads)) == expected  # the account pass ran on the executors
    assert any((line.get("signal") or "").startswith("account.")
               for card in expected if isinstance(card, dict) for line in card["ledger"])
    # Files, read by the executors: the lines `leadscore score` writes.
    _, one_file, _ = _invoke(tmp_path, SAMPLES / "leads.jsonl", "-r", "firr-base")
    firr = Engine(backend="spark", session=session("local[2]"), rulepacks=["firr-base"], as_of=when)
    assert "".join(item.line for item in firr.score_files([str(SAMPLES / "leads.jsonl")])) == one_file
    # A URL is written through Hadoop's file systems (file:// here; hdfs://, s3a:// on a cluster).
    assert list(firr.write_part_files([str(SAMPLES / "leads.jsonl")], (tmp_path / "parts").as_uri() + "/")) == []
    assert "".join(path.read_text(encoding="utf-8") for path in sorted((tmp_path / "parts").glob("part-*"))) == one_file


def test_what_an_engine_on_spark_refuses_is_one_line() -> None:
    from leadscore.engine import Engine
    from leadscore.errors import ConfigurationError

    when = datetime(2026, 11, 23, tzinfo=timezone.utc)
    for make, expected in [
        (lambda: Engine(backend="spark", plugins=PluginManager(), as_of=when),
         "backend='spark': Spark's executors load the installed plugins; a PluginManager made in this process "
         "cannot be sent to them; install the plugin as a package (a leadscore entry point) and leave out plugins="),
        (lambda: Engine(session=object(), as_of=when),
         "session=: a Spark session is for backend='spark', not 'python'; pass backend='spark' or leave out session="),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            make()
        assert caught.value.line() == expected
    engine = Engine(backend="spark", session=object(), rulepacks=["firr-base"], as_of=when)
    with pytest.raises(ConfigurationError, match="the account pass runs on the executors"):
        list(engine.score([], accounts=engine.build_accounts([])))
    with pytest.raises(ConfigurationError, match="runs in this process, not on Spark"):
        Engine(rulepacks=["firr-base"], as_of=when).spark_session()


# --- part files (-o DIR/) ---------------------------------------------------------------------------


@pytest.fixture
def uncoalesced() -> Any:
    """Spark's adaptive execution merges small partitions into one part file (right for real outputs,
    whose parts are sized by it); off here, so that a few thousand leads give several parts."""
    from leadscore.spark import session

    spark = session("local[2]")
    before = spark.conf.get("spark.sql.adaptive.coalescePartitions.enabled")
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", "false")
    yield spark
    spark.conf.set("spark.sql.adaptive.coalescePartitions.enabled", before)


def _to_parts(tmp_path: Path, source: Path, directory: Path, *extra: str) -> tuple[Any, str]:
    """`leadscore score SOURCE -o DIRECTORY/` on Spark: the result and the rejects file's text."""
    rejects = tmp_path / "rejects-parts.jsonl"
    rejects.unlink(missing_ok=True)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(source), "--as-of", "2026-11-23", *SPARK, "-o", f"{directory}/", "--rejects", str(rejects),
        *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result, rejects.read_text(encoding="utf-8") if rejects.exists() else ""


def _parts(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith("part-"))


def test_part_files_hold_the_cards_of_one_file_in_input_order(tmp_path: Path, uncoalesced: Any) -> None:
    source = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--leads", "1500", "--seed", "11", "-o",
                    str(source)], check=True)
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[10:10] = ["{not json\n", lines[3]]  # a malformed line and a duplicate id among them
    source.write_text("".join(lines), encoding="utf-8")
    python, one_file, python_rejects = _invoke(tmp_path, source, "-r", "firr-base", "--explain")
    result, rejects = _to_parts(tmp_path, source, tmp_path / "cards", "-r", "firr-base", "--explain")
    parts = _parts(tmp_path / "cards")
    assert len(parts) > 1 and parts == [f"part-{i:05d}.jsonl" for i in range(len(parts))]
    assert "".join((tmp_path / "cards" / name).read_text(encoding="utf-8") for name in parts) == one_file
    assert (tmp_path / "cards" / "_SUCCESS").exists()
    assert (result.exit_code, rejects) == (python.exit_code, python_rejects) and python.exit_code == 1
    assert result.stderr.replace("rejects-parts.jsonl", "rejects.jsonl") == python.stderr  # the warnings too
    assert python.stderr.splitlines()[-1].startswith("scored 1500 + rejected 2 (see ")
    # Nothing is left beside the directory (the parts are written under a hidden name first).
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_a_second_run_replaces_the_parts_and_a_failed_one_leaves_them(tmp_path: Path, uncoalesced: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore import spark
    from leadscore.files import OutputError

    cards = tmp_path / "cards"
    result, _ = _to_parts(tmp_path, SAMPLES / "segment-leads.jsonl", cards)
    assert result.exit_code == 0 and _parts(cards)
    (cards / "part-00007.jsonl").write_text("{}\n", encoding="utf-8")  # as an earlier, bigger run leaves it
    # The 46 samples into the same directory: the earlier runs' parts are gone, not mixed in.
    result, _ = _to_parts(tmp_path, SAMPLES / "leads.jsonl", cards, "-r", "firr-base")
    python, one_file, _ = _invoke(tmp_path, SAMPLES / "leads.jsonl", "-r", "firr-base")
    assert result.exit_code == python.exit_code == 0
    kept = _parts(cards)
    assert "".join((cards / name).read_text(encoding="utf-8") for name in kept) == one_file
    assert "part-00007.jsonl" not in kept
    # A run that fails after Spark wrote its parts leaves the directory as it was.
    before = {name: (cards / name).read_bytes() for name in kept}

    def broken(self: Any, staging: str) -> list[str]:
        raise OutputError(staging, "cannot rename part-00000", "check the disk")

    monkeypatch.setattr(spark._Store, "number_parts", broken)
    result, _ = _to_parts(tmp_path, SAMPLES / "segment-leads.jsonl", cards)
    assert result.exit_code == 2 and "cannot rename part-00000" in result.stderr
    assert {name: (cards / name).read_bytes() for name in _parts(cards)} == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_what_part_files_refuse_is_one_line(tmp_path: Path) -> None:
    def run(source: Path, output: str, *extra: str) -> Any:
        return CliRunner().invoke(build_cli(PluginManager()), [
            "score", str(source), "--as-of", "2026-11-23", "-o", output, *extra])

    # A directory holding other files is not emptied.
    mixed = tmp_path / "reports"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run(SAMPLES / "leads.jsonl", str(mixed), *SPARK)
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        f"leadscore: {mixed}: holds 'notes.txt', which is not a part file of an earlier run; name a new or empty "
        "directory, or move the other files out"]
    assert [path.name for path in mixed.iterdir()] == ["notes.txt"]
    # The input inside the output directory.
    folder = _spread((SAMPLES / "leads.jsonl").read_text(encoding="utf-8").splitlines(keepends=True),
                     tmp_path / "parts", 2)
    result = run(folder / "part-00000.jsonl", str(folder) + "/", *SPARK)
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"leadscore: {folder}/: holds the input {folder / 'part-00000.jsonl'}; "
                                     "write the part files to another directory")
    # Another engine, another format.
    result = run(SAMPLES / "leads.jsonl", str(tmp_path / "out") + "/")
    assert result.exit_code == 2 and result.stderr.strip() == (
        f"leadscore: -o {tmp_path / 'out'}/: is a directory; part files are written by --engine spark; name a file "
        "(e.g. -o scores.jsonl) for one file")
    result = run(SAMPLES / "leads.jsonl", str(tmp_path / "out") + "/", *SPARK, "--format", "csv")
    assert result.exit_code == 2 and "writes JSON Lines part files, not csv" in result.stderr
    assert not (tmp_path / "out").exists()


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
