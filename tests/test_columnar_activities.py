"""An activities file (Parquet or CSV) read into DuckDB (leadscore.columnar.activities) against the python reader:
the same activities for every lead, the same rows left out and rejected with the same messages, and
the same cards from ``leadscore score --engine duckdb`` as from the python engine.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("duckdb", reason="the columnar engine needs leadscore[columnar]")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import duckdb  # noqa: E402

from leadscore import PluginManager  # noqa: E402
from leadscore.columnar import activities as file_activities  # noqa: E402
from leadscore.columnar import sql as q  # noqa: E402
from leadscore.columnar.activities import SqlActivityTable  # noqa: E402
from leadscore.io import readers  # noqa: E402
from leadscore.io.parquet import parts  # noqa: E402
from leadscore.io.maps import ColumnMap  # noqa: E402
from leadscore.io.readers import ReadReport, _parquet_activity_table, _ReadContext  # noqa: E402
from leadscore.model import evidence_place  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
IDS = ("L-1", "L-2", "L-3", " L-1", "L-2 ", "", None, "L-9")
TYPES = ("page_view", "demo_request", " page_view", "Webinar Attended", "", None, "x\u00a0", "pricing_page_visit",
         "webinar attended")
STAMPS = ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00.5Z", "2026-11-20T10:00:00.123456Z", "2026-11-21T00:00:00Z",
          "2026-02-30T10:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
          "2026-11-20", "2026-11-20T10:00:00", "2026-11-20 10:00:00Z", " 2026-11-20T10:00:00Z", "2026-11-20T24:00:00Z",
          "2026-11-20T10:00:00+02:00", "1850-01-01T00:00:00Z", "2026-11-20T10:00:00.1234567Z", "", None, "soon")
CELLS = ("", " ", "\u00a0", "N/A", " N/A", " x", "x", "-", "7", "true", "TRUE", "False", "fal\u017fe", "0", "-0", "+5", "007",
         "123456789012345", "1234567890123456", "12345678901234567890", "1.5", ".5", "5.", "1e5", "1E+5", "nan", "inf",
         "/pricing", " /pricing", "/pricing ", "x\n", "trial", "Title", "f", "t", "-", "+", ".", "\u00e9", "\u2003x", '"q"',
         "a\\b", "\x1f", "\u3000", "The Playbook", None)
WIDE = 2**53


def _text_cells(values: Any) -> Any:
    return st.lists(st.one_of(st.sampled_from(values), st.text(max_size=5)), min_size=1, max_size=1).map(lambda v: v[0])


def _column(kind: str, draw: Any, rows: int) -> Any:
    """A Parquet column of ``rows`` values of ``kind`` (text, int, bool, double, stamp, naive, date)."""
    if kind == "text":
        return pa.array([draw(_text_cells(CELLS)) for _ in range(rows)], pa.string())
    if kind == "int":
        return pa.array([draw(st.one_of(st.none(), st.sampled_from((0, 1, 7, -7, WIDE, WIDE + 1, -WIDE - 1, 2**63 - 1)),
                                         st.integers(-10**6, 10**6))) for _ in range(rows)], pa.int64())
    if kind == "bool":
        return pa.array([draw(st.one_of(st.none(), st.booleans())) for _ in range(rows)], pa.bool_())
    if kind == "double":
        return pa.array([draw(st.one_of(st.none(), st.floats(allow_nan=True), st.sampled_from((2.0, 0.0, -0.0, 1e16))))
                         for _ in range(rows)], pa.float64())
    stamps = st.one_of(st.none(), st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
                       st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)))
    if kind == "stamp":
        values = [draw(stamps) for _ in range(rows)]
        return pa.array([None if v is None else v.replace(tzinfo=timezone.utc) for v in values], pa.timestamp("ms", "UTC"))
    if kind == "naive":
        return pa.array([draw(stamps) for _ in range(rows)], pa.timestamp("us"))
    return pa.array([draw(st.one_of(st.none(), st.dates(min_value=date(1, 1, 1)))) for _ in range(rows)], pa.date32())


@st.composite
def activity_files(draw: Any) -> pa.Table:
    rows = draw(st.integers(0, 8))
    columns: dict[str, Any] = {}
    if draw(st.booleans()):
        columns["lead_id"] = pa.array([draw(st.sampled_from(IDS)) for _ in range(rows)], pa.string())
    else:
        columns["lead_id"] = pa.array([draw(st.sampled_from((1, 2, 3, None))) for _ in range(rows)], pa.int64())
    columns["type"] = pa.array([draw(st.sampled_from(TYPES)) for _ in range(rows)], pa.string())
    at = draw(st.sampled_from(("text", "stamp", "naive", "date")))
    if at == "text":
        columns["at"] = pa.array([draw(st.sampled_from(STAMPS)) for _ in range(rows)], pa.string())
    else:
        columns["at"] = _column(at, draw, rows)
    if draw(st.booleans()):
        columns["id"] = (pa.array([draw(st.sampled_from(("a1", " a1", "", None, "7"))) for _ in range(rows)], pa.string())
                         if draw(st.booleans()) else _column("int", draw, rows))
    names = draw(st.lists(st.sampled_from(("properties.url", "properties.asset", "properties.title", "url", "title",
                                           "Asset", "Score", "properties.stage", "stage")), unique=True, max_size=5))
    for name in names:
        columns[name] = _column(draw(st.sampled_from(("text", "text", "text", "int", "bool", "double", "stamp"))),
                                draw, rows)
    return pa.table(columns)


class _Scorer:
    def __init__(self, explain: bool) -> None:
        self.con = duckdb.connect()
        self.as_of = AS_OF
        self.explain = explain


# A map's parts that reach an activities file: an id prefix, words for no value, type renames.
MAP = ColumnMap(name="test", source="test", missing=frozenset({"", "N/A", "-", "7", "true", " x"}),
                activity_types={"page_view": "web_visit", "Webinar Attended": "webinar_attendance"}, id_prefix="X-")


def _python_read(path: Path, cmap: Any = None) -> tuple[Any, ReadReport]:
    report = ReadReport()
    return _parquet_activity_table(parts(path, str(path)), str(path), _ReadContext(cmap, None, False, report)), report


def _sql_read(path: Path, explain: bool, cmap: Any = None) -> tuple[SqlActivityTable, ReadReport]:
    report = ReadReport()
    table = SqlActivityTable()
    table.attach(_Scorer(explain))
    table.reader(path, str(path), _ReadContext(cmap, None, False, report))
    return table, report


def _shown(activities: list[Any]) -> list[tuple[Any, ...]]:
    # Key order too: the reader's dict keeps the columns' order.
    return [(a.type, a.at, list(a.properties.items()), a.id) for a in activities]


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(activity_files(), st.sets(st.sampled_from(("L-1", "L-2", "L-3", "1", "2"))), st.booleans(),
       st.sampled_from((None, MAP)))
def test_a_file_in_duckdb_gives_each_lead_the_python_readers_activities_and_messages(
        tmp_path: Path, table: Any, matched: set[str], explain: bool, cmap: Any) -> None:
    path = tmp_path / "acts.parquet"
    pq.write_table(table, path)
    try:
        python, python_report = _python_read(path, cmap)
    except Exception as err:  # noqa: BLE001 - a file the reader refuses is refused alike
        with pytest.raises(type(err)) as refused:
            _sql_read(path, explain, cmap)
        assert str(refused.value) == str(err)
        return
    sql, sql_report = _sql_read(path, explain, cmap)
    assert sql_report.skipped == python_report.skipped
    assert sql_report.warnings == python_report.warnings
    matched = {f"X-{lead_id}" for lead_id in matched} if cmap else matched
    ids = {*matched, *(f"{'X-' if cmap else ''}{i}" for i in ("L-1", "L-2", "L-3", "L-9", "1", "2", "3"))}
    for lead_id in sorted(ids):
        assert _shown(sql.activities_of(lead_id)) == _shown(python.activities_of(lead_id)), lead_id
    # Every row the SQL kept names its evidence place as the activity's record does; a place that is
    # not text (or a time the SQL's doubles do not hold exactly) sends its lead to the python engine.
    for lead_id, n, at, place, odd in sql.con.execute(
            f'SELECT lead_id, n, "at", place, odd_place FROM {file_activities._TABLE} ORDER BY n').fetchall():
        record = next(a for order, a in python._store.by_lead[lead_id] if order == n)
        wanted = evidence_place(record.properties)
        assert (place, odd) == ((wanted, False) if wanted is None or type(wanted) is str else (None, True))
        if odd and explain or abs(at - int(AS_OF.timestamp()) * 10**6) >= WIDE:
            assert lead_id in sql.python_ids
    for lead_id in sorted(matched):
        python.match(lead_id)
        sql.match(lead_id)
    assert list(sql.unmatched()) == list(python.unmatched())


@st.composite
def activity_csvs(draw: Any) -> list[list[str]]:
    """An activities CSV's rows of text (a header first), some of another width."""
    header = ["lead_id", "type", "at", *draw(st.lists(st.sampled_from(
        ("properties.url", "properties.asset", "url", "title", "Score", "id")), unique=True, max_size=4))]
    cells = {"lead_id": st.sampled_from(IDS), "type": st.sampled_from(TYPES), "at": st.sampled_from(STAMPS),
             "id": st.sampled_from(("a1", " a1", "", "7"))}
    rows = [header]
    for _ in range(draw(st.integers(0, 8))):
        row = [draw(cells.get(name, _text_cells(CELLS))) or "" for name in header]
        if draw(st.integers(0, 9)) == 0:
            row = row[:-1] if draw(st.booleans()) else [*row, "extra"]
        rows.append(row)
    return rows


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(activity_csvs(), st.sets(st.sampled_from(("L-1", "L-2", "L-3"))), st.booleans(), st.sampled_from((None, MAP)))
def test_a_csv_file_in_duckdb_gives_each_lead_the_python_readers_activities_and_messages(
        tmp_path: Path, rows: list[list[str]], matched: set[str], explain: bool, cmap: Any) -> None:
    import csv

    path = tmp_path / "acts.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    report = ReadReport()
    with readers.open_activity_csv(path, str(path)) as handle:
        python = readers._activity_table(handle, str(path), _ReadContext(cmap, None, False, report))
    sql, sql_report = _sql_read(path, explain, cmap)
    assert sql_report.skipped == report.skipped
    assert sql_report.warnings == report.warnings
    matched = {f"X-{lead_id}" for lead_id in matched} if cmap else matched
    for lead_id in ("L-1", "L-2", "L-3", "L-9", "X-L-1", "X-L-2", "X-L-3"):
        assert _shown(sql.activities_of(lead_id)) == _shown(python.activities_of(lead_id)), lead_id
    for lead_id in sorted(matched):
        python.match(lead_id)
        sql.match(lead_id)
    assert list(sql.unmatched()) == list(python.unmatched())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=30))
def test_text_the_plain_test_takes_is_text_to_cell_value_and_strip(texts: list[str]) -> None:
    """The property values taken as text at once (``_plain``) are their own cell value, and
    ``space_around`` is true exactly for the texts Python's strip() changes."""
    from leadscore.io.maps import cell_value

    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    texts = [*texts, *(c + "x" for c in spaces), *("x" + c for c in spaces), *spaces, "x\ny", " x\n", "1", "t", "f",
             "+", "-", ".", "a", "Trial", "/pricing", "fal\u017fe"]
    con = duckdb.connect()
    x = q.col("x")
    taken = con.execute(f"SELECT list_transform(?, lambda x: {q.sql(file_activities._plain(x))}), "
                        f"list_transform(?, lambda x: {q.sql(q.space_around(x))})", [texts, texts]).fetchall()[0]
    plains, around = taken
    assert plains[-2] and plains[-4] and not plains[-3] and not plains[-5]
    assert around == [text != text.strip() for text in texts]
    for text, plain in zip(texts, plains):
        if plain:
            assert text == text.strip() and cell_value(text) == text, text


def _write(tmp_path: Path, as_csv: bool = False) -> tuple[Path, Path]:
    leads = pa.table({
        "id": ["L-1", "L-2", "L-3", "L-4", "L-5", "L-2", "L-6"],
        "email": ["dana@acme.io", "bob@gmail.com", "eve@mit.edu", "al@acme.io", "", "x@acme.io", "cy@acme.io"],
        "company.industry": ["software", "software", "", "software", "software", "software", "software"],
        "company.employees": [250, 5, 40, 1000, 12, 3, 80],
    })
    rows = [
        ("L-1", "pricing_page_visit", "2026-11-20T10:00:00Z", "/pricing", None, "7"),
        ("L-1", "demo_request", "2026-11-21T09:00:00Z", None, "The Playbook", "true"),
        ("L-1", "page_view", "2026-11-20T10:00:00Z", "/blog", None, "5."),  # a decimal JSON does not write: the python reader's
        ("L-2", "webinar_attended", "2026-11-19T08:00:00Z", None, None, None),
        ("L-2", "pricing_page_visit", "2026-02-30T10:00:00Z", None, None, None),  # no such day: left out
        ("L-3", " demo_request", "2026-11-18T08:00:00Z", "/demo", None, None),  # spaces: the python reader's
        ("L-3", "pricing_page_visit", "1700-01-01T00:00:00Z", "/pricing", None, None),  # far: the python engine's
        ("", "page_view", "2026-11-20T10:00:00Z", None, None, None),  # no lead id: rejected
        ("L-8", "page_view", "2026-11-20T10:00:00Z", None, None, None),  # no such lead: rejected
        ("L-4", "content_download", "2026-11-22T08:00:00Z", "7", None, "1.5"),
        ("L-4", "content_download", "2026-11-22T08:00:00Z", "", "Guide", None),
        ("L-5", "email_click", "2026-11-22T08:00:00Z", None, None, None),
        ("L-6", "pricing_page_visit", "2026-11-22T08:00:00Z", None, None, None),
        ("L-2", "demo_request", "2026-11-22T08:00:00Z", None, None, None),
    ]
    acts = pa.table({name: [row[i] for row in rows] for i, name in enumerate(
        ("lead_id", "type", "at", "properties.url", "properties.asset", "score"))})
    leads_path, acts_path = tmp_path / "leads.parquet", tmp_path / "acts"
    pq.write_table(leads, leads_path)
    if as_csv:  # the same rows as an activities CSV (row N of the parts is line N + 1)
        acts_path = tmp_path / "acts.csv"
        acts_path.write_text("\n".join(",".join(map(_csv_cell, row)) for row in [acts.column_names, *rows]) + "\n",
                             encoding="utf-8")
        return leads_path, acts_path
    acts_path.mkdir()
    pq.write_table(acts.slice(0, 6), acts_path / "part-0.parquet")  # two parts: rows are counted across them
    pq.write_table(acts.slice(6), acts_path / "part-1.parquet")
    return leads_path, acts_path


def _csv_cell(value: Any) -> str:
    return "" if value is None else str(value)


def _run(tmp_path: Path, engine: str, leads: Path, acts: Path, *extra: str) -> tuple[int, str, str, str]:
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(leads), "--activities", str(acts), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out),
        "--rejects", str(rejects), *extra])
    return result.exit_code, out.read_text(encoding="utf-8"), rejects.read_text(encoding="utf-8"), result.stderr


@pytest.mark.parametrize("as_csv", [False, True])
@pytest.mark.parametrize("extra", [(), ("--explain",), ("--format=csv",), ("--format=csv", "--explain")])
@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
@pytest.mark.parametrize("records", [False, True])
def test_score_with_an_activities_file_in_duckdb_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...], as_csv: bool,
        packs: tuple[str, ...], records: bool) -> None:
    """firr-base, and every installed pack (the shipped plugins' packs read account signals: the
    account pass reads the leads and the file first, in DuckDB too, and the scoring pass reads the
    file's table again, with its messages said once). The columnar engine reads the leads file
    itself (leadscore.columnar.table), or (``records``) takes the python reader's records of it, as
    it does with a map, say."""
    import leadscore_cli.main as cli_main
    from leadscore.engine import Engine

    leads, acts = _write(tmp_path, as_csv)
    extra = (*packs, *extra)
    wanted = _run(tmp_path, "python", leads, acts, *extra)
    assert "scored 6 + rejected 3" in wanted[3]  # L-2 twice; the row without a lead id; L-8's row
    assert ("acts.csv:6" if as_csv else "part-0.parquet:row 5") + ": activity left out: at: '2026-02-30T10:00:00Z'" in wanted[3]
    assert "activity for unknown lead 'L-8'" in wanted[2] and ("acts.csv:10" if as_csv else "part-1.parquet:row 3") in wanted[2]
    kept: list[SqlActivityTable] = []
    attach = SqlActivityTable.attach

    def attach_and_keep(self: SqlActivityTable, scorer: Any) -> None:
        kept.append(self)
        attach(self, scorer)

    monkeypatch.setattr(SqlActivityTable, "attach", attach_and_keep)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the activities file was read the python way")

    monkeypatch.setattr(readers, "_parquet_activity_table", refused)
    monkeypatch.setattr(readers, "_activity_table", refused)
    monkeypatch.setattr(Engine, "build_accounts", refused)
    if records:
        monkeypatch.setattr(cli_main, "columnar_reads", lambda *args: False)
    else:
        monkeypatch.setattr(readers, "_read_parquet", refused)  # (the leads file is Parquet)
    assert _run(tmp_path, "duckdb", leads, acts, *extra) == wanted
    table = kept[0]
    # The account pass's scorer is the scoring pass's (the file is read once).
    assert kept == [table] * (2 if records and not packs else 1)
    # Fourteen rows: ten in SQL; the decimal "5.", the type with a space, the bad day and the empty
    # lead id through the python reader's code.
    assert (table.rows, table.sql_rows) == (14, 10)
    # L-3's activity of 1700 is beyond the SQL's exact doubles; L-4's url 7 is a place that is not
    # text, which only the full ledger names: those leads are the python engine's.
    assert table.python_ids == ({"L-3", "L-4"} if "--explain" in extra else {"L-3"})


def test_runs_that_read_each_leads_activities_as_records_keep_the_python_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leads, acts = _write(tmp_path)
    runs = [("-r", "firr-base", "--next-steps"),
            ("--next-steps",)]  # with the account pass: --next-steps reads each lead's account as records
    wanted = [_run(tmp_path, "python", leads, acts, *extra) for extra in runs]
    made: list[int] = []
    monkeypatch.setattr(SqlActivityTable, "__init__", lambda self: made.append(1) or None)
    assert [_run(tmp_path, "duckdb", leads, acts, *extra) for extra in runs] == wanted
    assert made == []
    assert all("scored" in found[3] for found in wanted)


def test_leads_with_their_own_activities_and_an_activities_file_in_duckdb(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample leads carry activities of their own; the file's come after them at one instant."""
    samples = Path(__file__).resolve().parents[1] / "rulepacks" / "samples" / "leads.jsonl"
    ids = [json.loads(line)["id"] for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = ["lead_id,type,at,properties.url"]
    for i, lead_id in enumerate(ids):
        for j in range(i % 4):
            lines.append(f"{lead_id},{('pricing_page_visit', 'demo_request', 'page_view')[j % 3]},"
                         f"2026-11-{1 + (i + j) % 22:02d}T10:00:00Z,{('/pricing', '', '/blog')[(i + j) % 3]}")
    acts = tmp_path / "acts.csv"
    acts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for extra in (("-r", "firr-base"), ("-r", "firr-base", "--explain")):
        wanted = _run(tmp_path, "python", samples, acts, *extra)
        monkeypatch.setattr(readers, "_activity_table", lambda *args: pytest.fail("read the python way"))
        assert _run(tmp_path, "duckdb", samples, acts, *extra) == wanted
        monkeypatch.undo()
        assert "scored 46 + rejected 0" in wanted[3]


def test_activity_rows_counts_parquet_rows_and_estimates_csv_rows(tmp_path: Path) -> None:
    import leadscore_cli.main as cli_main

    _, parts_dir = _write(tmp_path)
    _, csv_file = _write(tmp_path, as_csv=True)
    assert cli_main.activity_rows(str(parts_dir)) == 14  # both parts' metadata
    assert cli_main.activity_rows(str(csv_file)) == csv_file.stat().st_size // cli_main.CSV_ACTIVITY_ROW_BYTES
    assert cli_main.activity_rows(str(tmp_path / "missing.parquet")) == 0
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert cli_main.activity_rows(str(tmp_path / "broken.parquet")) == 0


@pytest.mark.parametrize(("rows", "extra", "built"), [
    (1, ("-r", "firr-base"), ["duckdb"]),  # kept in DuckDB: the columnar engine past the threshold
    (10**9, ("-r", "firr-base"), ["python"]),  # below it
    (1, (), ["duckdb"]),  # the plugins' packs: the account pass reads the file in DuckDB too
    (10**9, (), ["python"]),  # below it
    (1, ("-r", "firr-base", "--dedupe"), ["duckdb"]),  # the file scan merges the copies itself
    (1, ("-r", "firr-base", "--next-steps"), ["python"]),
])
def test_auto_engine_weighs_an_activities_file_the_columnar_engine_keeps_in_duckdb(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int, extra: tuple[str, ...], built: list[str]) -> None:
    import leadscore_cli.main as cli_main

    leads, acts = _write(tmp_path)
    wanted = _run(tmp_path, "python", leads, acts, *extra)
    monkeypatch.setattr(cli_main, "AUTO_COLUMNAR_ACTIVITY_ROWS", rows)
    engines, make = [], cli_main._engine

    def recorded(pm: Any, rulepacks: Any, engine_name: str, when: Any, **options: Any) -> Any:
        engines.append(engine_name)
        return make(pm, rulepacks, engine_name, when, **options)

    monkeypatch.setattr(cli_main, "_engine", recorded)
    assert _run(tmp_path, "auto", leads, acts, *extra) == wanted
    assert engines == built


@pytest.mark.parametrize("as_csv", [False, True])
def test_a_file_of_many_rows_the_sql_does_not_take_goes_back_to_the_python_readers_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_csv: bool) -> None:
    """Rows the SQL does not take are held as records; past ODD_ROWS of them the python reader's table
    (which moves to disk) reads the file again, with nothing said twice."""
    leads, acts = _write(tmp_path, as_csv)
    extra = ("-r", "firr-base", "--explain")
    wanted = _run(tmp_path, "python", leads, acts, *extra)
    monkeypatch.setattr(file_activities, "ODD_ROWS", 2)  # the file has four
    kept: list[SqlActivityTable] = []
    attach = SqlActivityTable.attach
    monkeypatch.setattr(SqlActivityTable, "attach", lambda self, scorer: kept.append(self) or attach(self, scorer))
    assert _run(tmp_path, "duckdb", leads, acts, *extra) == wanted
    (table,) = kept
    assert table.con is None and table.rows > 2  # read in part, then handed back
    assert wanted[3].count(": activity left out: ") == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(("L-1", "L-2", "L-3", "L-4", "L-5")), max_size=40),
       st.sets(st.sampled_from(("L-1", "L-2", "L-3", "L-4", "L-5", "L-9"))))
def test_a_batch_of_leads_reads_every_row_of_its_leads_in_whatever_order_the_file_has_them(
        tmp_path: Path, ids: list[str], batch: set[str]) -> None:
    """A batch reads only the rows between its leads' first and last; none of theirs is left out."""
    path = tmp_path / "acts.parquet"
    pq.write_table(pa.table({"lead_id": pa.array(ids, pa.string()), "type": ["page_view"] * len(ids),
                             "at": ["2026-11-20T10:00:00Z"] * len(ids)}), path)
    table, _ = _sql_read(path, False)
    keys = sorted(batch)
    table.con.register("b_leads", pa.table({"k": list(range(len(keys))), "id": keys}))
    found = sorted((k, n) for k, n, *_ in table.con.execute(table.file_rows()).fetchall())
    assert found == sorted((keys.index(lead_id), n) for n, lead_id in enumerate(ids, 1) if lead_id in batch)


def _table_memory(con: Any) -> int:
    ((used,),) = con.execute("SELECT sum(memory_usage_bytes + temporary_storage_bytes) FROM duckdb_memory() "
                             "WHERE tag = 'IN_MEMORY_TABLE'").fetchall()
    return int(used or 0)


def test_the_files_rows_are_kept_compressed_once_read(tmp_path: Path) -> None:
    """The rows are held compressed (a database of their own, checkpointed once read), so a big file
    leaves DuckDB's memory to the scoring: here less than a quarter of what the same rows take in the
    connection's own database."""
    rows = 200_000
    path = tmp_path / "acts.parquet"
    pq.write_table(pa.table({
        "lead_id": [f"L-{n // 20:07d}" for n in range(rows)],
        "type": [("page_view", "email_open", "webinar_attended", "pricing_page_visit")[n % 4] for n in range(rows)],
        "at": pa.array([datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1000 + n * 60_000 for n in range(rows)],
                       pa.float64()).cast(pa.int64()).cast(pa.timestamp("ms", "UTC")),
        "properties.url": [f"/blog/post-{n % 300}" for n in range(rows)]}), path)
    table, report = _sql_read(path, True)
    assert table.sql_rows == rows and not report.skipped
    kept = _table_memory(table.con)
    table.con.execute(f"CREATE TABLE plain_copy AS SELECT * FROM {file_activities._TABLE}")
    assert _table_memory(table.con) - kept > 4 * kept
    # and what the scoring reads of them is unchanged
    table.con.register("b_leads", pa.table({"k": [0, 1], "id": ["L-0000003", "L-0009999"]}))
    found = sorted(table.con.execute(table.file_rows()).fetchall())
    assert [(k, n) for k, n, *_ in found] == [(0, n) for n in range(61, 81)] + [(1, n) for n in range(199_981, 200_001)]
    assert {ev for *_, ev in found} >= {"page_view on 2026-11-01 (/blog/post-60)", "email_open on 2026-11-01 (/blog/post-61)"}


def test_a_parquet_file_read_batch_by_batch_holds_about_a_row_group_not_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's read-ahead (``pre_buffer``) kept the bytes of every row group read until the file was
    done: a million leads' activities file (20 row groups) held 180 MB of Arrow memory at its end."""
    import random

    rows, group = 240_000, 10_000
    chance = random.Random(7)
    path = tmp_path / "acts.parquet"
    pq.write_table(pa.table({
        "lead_id": [f"L-{n // 20:07d}" for n in range(rows)],
        "type": ["page_view"] * rows,
        "at": pa.array([1_793_000_000_000 + n for n in range(rows)], pa.int64()).cast(pa.timestamp("ms", "UTC")),
        # text that does not compress: each row group's bytes are about what it holds when read
        "properties.url": [f"/p/{chance.getrandbits(160):040x}" for _ in range(rows)]}), path, row_group_size=group)
    file_bytes = path.stat().st_size
    held: list[int] = []
    next_batch = file_activities._next_batch
    monkeypatch.setattr(file_activities, "BATCH", 5_000)
    monkeypatch.setattr(file_activities, "_next_batch",
                        lambda *args: held.append(pa.total_allocated_bytes()) or next_batch(*args))
    before = pa.total_allocated_bytes()
    table, report = _sql_read(path, False)
    assert table.sql_rows == rows and not report.skipped and len(held) > rows // 5_000
    assert max(held) - before < file_bytes / 3, (max(held) - before, file_bytes)


@pytest.mark.parametrize("as_csv", [False, True])
@pytest.mark.parametrize("extra", [(), ("--explain",)])
def test_a_map_file_reads_an_activities_file_in_duckdb_as_the_python_reader_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_csv: bool, extra: tuple[str, ...]) -> None:
    """A map's id prefix, its words for no value and its activity type renames, in SQL."""
    leads, acts = _write(tmp_path, as_csv)
    crm_map = tmp_path / "crm.toml"
    crm_map.write_text('[lead]\nid = "id"\nemail = "email"\nid_prefix = "X-"\n"company.industry" = "company.industry"\n'
                       '"company.employees" = "company.employees"\n[missing]\nvalues = ["", "7", "The Playbook"]\n'
                       '[activity_types]\nwebinar_attended = "webinar_attendance"\n"Demo Request" = "page_view"\n',
                       encoding="utf-8")
    extra = ("-r", "firr-base", "--map", str(crm_map), *extra)
    wanted = _run(tmp_path, "python", leads, acts, *extra)
    assert '"id":"X-L-1"' in wanted[1] and "webinar_attended" not in wanted[3]
    kept: list[SqlActivityTable] = []
    attach = SqlActivityTable.attach
    monkeypatch.setattr(SqlActivityTable, "attach", lambda self, scorer: kept.append(self) or attach(self, scorer))
    monkeypatch.setattr(readers, "_parquet_activity_table", lambda *args: pytest.fail("read the python way"))
    monkeypatch.setattr(readers, "_activity_table", lambda *args: pytest.fail("read the python way"))
    assert _run(tmp_path, "duckdb", leads, acts, *extra) == wanted
    assert kept and kept[0].sql_rows == 10


def test_a_maps_words_for_no_value_match_a_cell_as_the_reader_strips_it(tmp_path: Path) -> None:
    """The reader compares a cell's strip() with the map's words: " x" is no word for the cell "x" or " x"."""
    path = tmp_path / "acts.csv"
    path.write_text('lead_id,type,at,properties.url,properties.asset\n'
                    'X1,page_view,2026-11-20T10:00:00Z," x",N/A\nX1,page_view,2026-11-21T10:00:00Z,x,x\n', encoding="utf-8")
    report = ReadReport()
    with readers.open_activity_csv(path, str(path)) as handle:
        python = readers._activity_table(handle, str(path), _ReadContext(MAP, None, False, report))
    sql, _ = _sql_read(path, False, MAP)
    assert _shown(sql.activities_of("X-X1")) == _shown(python.activities_of("X-X1"))
    assert [dict(a.properties) for a in python.activities_of("X-X1")] == [{"url": "x"}, {"url": "x", "asset": "x"}]


# A pack reading account signals of every kind: the best contact's total too (the account pass then
# runs the plan to each contact's total), and same_account patterns over activities and signals.
ACCOUNT_PACK = """
[pack]
name = "account-signals"
version = "1"
[categories.fit]
max = 80
[categories.account]
[[rules]]
id = "acc.downloads"
category = "account"
points = 12
reason = "two people at the account downloaded content"
when = { same_account = 2, where = { at_least = 1, of = "content_download", within_days = 60 } }
[[rules]]
id = "acc.deciders"
category = "account"
points = 8
reason = "two decision makers at the account"
when = { same_account = 2, where = { signal = "title.is_decision_maker", eq = true } }
[[rules]]
id = "acc.best"
category = "account"
points = 5
reason = "a strong colleague"
when = { signal = "account.best_lead_score", gte = 30 }
[[rules]]
id = "acc.intent"
category = "account"
points = 4
reason = "recent high intent at the account"
when = { signal = "account.high_intent_30d", gte = 2 }
[[rules]]
id = "fit.senior"
category = "fit"
points = 20
reason = "a senior title"
when = { signal = "title.seniority", in = ["vp", "c_level", "director"] }
[[rules]]
id = "fit.demo"
category = "fit"
points = 25
reason = "asked for a demo"
when = { at_least = 1, of = "demo_request", within_days = 90 }
[[bands]]
name = "low"
min = 0
[[bands]]
name = "high"
min = 40
[accounts]
rollup = "sum_capped"
cap = 100
"""


@pytest.mark.parametrize("extra", [(), ("--explain",)])
@pytest.mark.parametrize(("packs", "roll_up"), [("installed", False), ("installed", True), ("accounts", False),
                                               ("accounts", True), ("firr-base", True)])
def test_the_account_pass_over_leads_and_an_activities_file_in_duckdb_gives_the_python_accounts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packs: str, extra: tuple[str, ...], roll_up: bool) -> None:
    """Generated leads of many accounts with their activities in a CSV file: the account pass reads
    the leads and the file in DuckDB (each contact's values in SQL; a lead whose file rows the SQL
    does not take, here a time past its exact doubles, the python way) and the scoring pass reads
    the same table again. Every installed pack (the enterprise pack's account signals and
    same_account), a pack reading the best contact's total, and with ``--accounts`` (the account
    cards, from the pass's sums and each scored contact) firr-base too: the python engine's bytes."""
    import subprocess
    import sys

    from leadscore.columnar.accounts import AccountPass
    from leadscore.engine import Engine

    generated = tmp_path / "generated.jsonl"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "generate.py"), "--leads", "400",
                    "--seed", "11", "-o", str(generated)], check=True)
    leads = [json.loads(line) for line in generated.read_text(encoding="utf-8").splitlines()]
    rows = [[lead["id"], act["type"], act["at"], (act.get("properties") or {}).get("url", "")]
            for lead in leads for act in lead.pop("activities", [])]
    rows += [[leads[i]["id"], "demo_request", "1700-01-01T00:00:00Z", ""] for i in (3, 30, 300)]  # the python way
    source, acts = tmp_path / "leads.jsonl", tmp_path / "acts.csv"
    source.write_text("".join(json.dumps(lead) + "\n" for lead in leads), encoding="utf-8")
    acts.write_text("\n".join(",".join(row) for row in [["lead_id", "type", "at", "properties.url"], *rows]) + "\n",
                    encoding="utf-8")
    if packs == "accounts":
        pack = tmp_path / "accounts.toml"
        pack.write_text(ACCOUNT_PACK, encoding="utf-8")
        extra = ("-r", str(pack), *extra)
    if packs == "firr-base":
        extra = ("-r", "firr-base", *extra)
    roll_ups = tmp_path / "accounts.csv"
    if roll_up:
        extra = (*extra, "--accounts", str(roll_ups))
    wanted = _run(tmp_path, "python", source, acts, *extra)
    assert wanted[0] == 0 and "scored 400 + rejected 0" in wanted[3]
    wanted_accounts = roll_ups.read_text(encoding="utf-8") if roll_up else ""
    roll_ups.unlink(missing_ok=True)
    by_python: list[int] = []
    add_python = AccountPass.add_python
    monkeypatch.setattr(AccountPass, "add_python", lambda self, found: by_python.append(len(found)) or add_python(self, found))
    monkeypatch.setattr(readers, "_activity_table", lambda *args: pytest.fail("read the python way"))
    monkeypatch.setattr(Engine, "build_accounts", lambda *args: pytest.fail("the python account pass"))
    assert _run(tmp_path, "duckdb", source, acts, *extra) == wanted
    assert sum(by_python) == 3
    if roll_up:
        assert roll_ups.read_text(encoding="utf-8") == wanted_accounts and wanted_accounts.count("\n") > 100
    cards = [json.loads(line) for line in wanted[1].splitlines()]
    if packs == "accounts" and extra[-1] == "--explain":  # every account rule fired for some lead
        fired = {line["rule_id"] for card in cards for line in card["ledger"] if line["points"]}
        assert {"acc.downloads", "acc.deciders", "acc.best", "acc.intent"} <= fired
