"""A CSV or Parquet leads file read by DuckDB itself (leadscore.columnar.table) against the python reader:
each row the SQL takes becomes the row the engine makes of the python reader's lead, every other row
is the python reader's (its lead, or its rejection with its message and place), and
``leadscore score --engine duckdb`` writes the python engine's files.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
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
from leadscore.columnar import sql as q  # noqa: E402
from leadscore.columnar import table as lead_table  # noqa: E402
from leadscore.columnar.engine import NotColumnar, Rows  # noqa: E402
from leadscore.errors import InputError  # noqa: E402
from leadscore.io import read_leads, readers  # noqa: E402
from leadscore.io.readers import ReadReport, _ReadContext  # noqa: E402
from leadscore.model import Lead  # noqa: E402
from leadscore_cli.main import build_cli  # noqa: E402
from tests.test_columnar_activities import CELLS, STAMPS, WIDE, _column  # noqa: E402

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
IDS = ("L-1", "L-2", " L-3", "L-4 ", "", " ", None, "7", "L-\u00e9")
EMAILS = ("dana@acme.io", "Dana@Acme.IO", " dana@acme.io", "d\u00e9@acme.io", "D\u0130@acme.io", "bob@gmail.com", "", None,
          "x@\u212aelvin.com")
EMPLOYEES = ("250", "1200.0", "12.", "12.5", "-3", "+3", "007", "1e3", " 40", "1234567890123456", "", "abc", None)
REVENUE = ("2775000", "2.5e6", "1E+3", "-5", "+5", ".5", "5.", "1e400", "nan", " 7", "12.50", "", "x", None)
TEXTS = ("software", "Information Technology", " software", "software ", "\u00e9t\u00e9", "", "\u00a0", None, "a\u2003")


def _leads_text(draw: Any, values: tuple[Any, ...]) -> Any:
    return draw(st.one_of(st.sampled_from(values), st.text(max_size=4)))


@st.composite
def lead_files(draw: Any) -> tuple[list[str], list[list[Any]]]:
    """A header and rows of cells (None: an empty cell), with the lead columns in any order and custom fields."""
    rows = draw(st.integers(1, 8))
    columns: dict[str, list[Any]] = {"id": [draw(st.sampled_from(IDS)) for _ in range(rows)]}
    optional = {
        "email": EMAILS, "title": TEXTS, "source": TEXTS, "created_at": STAMPS, "account_id": IDS,
        "company.name": TEXTS, "company.domain": ("acme.io", "ACME.io", " acme.io", "\u00e9.io", "", None),
        "company.industry": TEXTS, "company.employees": EMPLOYEES, "company.annual_revenue": REVENUE,
        "company.country": ("DE", " DE", "", None), "company.tier": TEXTS, "first_name": TEXTS,
        "fields.budget": CELLS, "fields.Seats": CELLS, "Lead Score": CELLS, "stage": CELLS, "seats": CELLS,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=8)):
        columns[name] = [_leads_text(draw, optional[name]) for _ in range(rows)]
    names = draw(st.permutations(list(columns)))
    return names, [[columns[name][i] for name in names] for i in range(rows)]


def _as_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if cell is None else cell for cell in row])


def _sql_rows(path: Path, fmt: str, numeric: dict[str, str], column_map: Any = None) -> dict[int, tuple[Any, ...]]:
    """The leads-table rows the table scan's SQL makes of the file's rows it takes, by row number."""
    con = duckdb.connect()
    found: dict[int, tuple[Any, ...]] = {}
    # Blocks of 3 rows (several blocks), Parquet batches of 2 (a block of several, each with its dictionaries).
    source = lead_table._Source(path, str(path), fmt, None, False, 3, column_map)
    batch_rows, lead_table.BATCH_ROWS = lead_table.BATCH_ROWS, 2
    try:
        for rows in source.blocks(_ReadContext(column_map, None, False, ReadReport()), q.micros(AS_OF), numeric):
            con.register("ls_rows", rows.raw)
            for row in con.execute(f"SELECT * FROM ({rows.select}) WHERE simple").fetchall():
                found[row[0]] = row[:-1]
            con.unregister("ls_rows")
    finally:
        lead_table.BATCH_ROWS = batch_rows
    return found


def _python_rows(path: Path, numeric: dict[str, str], column_map: Any = None) -> dict[int, Any]:
    """What the python reader makes of each row, by row number: the engine's row of a lead, or the item."""
    found: dict[int, Any] = {}
    for k, item in enumerate(read_leads(path, column_map=column_map), start=1):
        if isinstance(item, Lead) and not item.activities:  # (a map's activity columns: no row of the SQL's)
            rows = Rows(numeric)
            try:
                rows.add(k, item, q.micros(AS_OF))
            except NotColumnar:
                found[k] = item
                continue
            leads, _ = rows.tables()
            found[k] = tuple(leads.to_pylist()[0].values())
        else:
            found[k] = item
    return found


def _same(sql: tuple[Any, ...], python: Any) -> None:
    assert isinstance(python, tuple), python  # the SQL took a row the python reader rejects (or the engine refuses)
    assert sql[:-1] == python[:-1]
    # The custom fields: the same names in the same order with the same values.
    assert [list(json.loads(x).items()) if x is not None else None for x in (sql[-1], python[-1])] == \
        [list(json.loads(python[-1]).items()) if python[-1] is not None else None] * 2


NUMERIC = [{}, {"budget": "int", "seats": "number", "lead_score": "int"}]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lead_files(), st.sampled_from(NUMERIC))
def test_each_csv_row_the_sql_takes_is_the_row_of_the_python_readers_lead(
        tmp_path: Path, file: tuple[list[str], list[list[Any]]], numeric: dict[str, str]) -> None:
    header, rows = file
    path = tmp_path / "leads.csv"
    _as_csv(path, header, rows)
    _compare(path, "csv", numeric)


def _compare(path: Path, fmt: str, numeric: dict[str, str], column_map: Any = None) -> dict[int, tuple[Any, ...]]:
    """The rows the SQL takes (by number), each checked against the python reader's."""
    try:
        python = _python_rows(path, numeric, column_map)
    except InputError as err:  # the whole file refused (no rows, a column of a type no lead field takes): alike
        with pytest.raises(InputError) as refused:
            _sql_rows(path, fmt, numeric, column_map)
        assert str(refused.value) == str(err)
        return {}
    taken = _sql_rows(path, fmt, numeric, column_map)
    for k, row in taken.items():
        _same(row, python[k])
    return taken


# A CRM export read through a column map (leadscore.columnar.mapped): a map file's picklists, missing
# values, id prefix, constants and typed custom fields, or the built-in HubSpot map's normalisers.
MAP_CELLS = {
    "Contact ID": ("1", "17", "0042", " 17", "", "N/A", "L-\u00e9"),
    "E-mail": ("dana@acme.io", "Dana@Acme.IO ", "Select", "", "d\u00e9@acme.io"),
    "Source": ("Web", "web", "WEB ", "Paid Search", "paid-search", "Trade Show", "Select", "", "Other \u00e9"),
    "Signed up": ("2026-11-20T10:00:00Z", "2026-11-20 10:00", "11/20/2026", "11/20/2026 10:05", "2026-11-20T10:00:00.25Z",
                  "2026-11-20T12:00:00+02:00", "20.11.2026", "1850-01-01", "", "Select"),
    "Headcount": ("1,200", "100-500", "1000+", "250", "12.5", "-3", "n/a", "", "Select", "1e3"),
    "Revenue": ("$250,000", "2500000", "1,200.50", "2.5e6", "abc", "", "N/A"),
    "Website": ("https://www.Acme.io/x", "acme.io", "ACME.IO", "", "http://b\u00e9.fr"),
    "Visits": ("5", "2.0", "1,200", "x", "", "Select", "1e400", "-0"),
    "Opt In": ("Yes", "No", "y", "maybe", "", "TRUE"),
    "Notes": ("hello", "123", "true", "1.5", " x ", "", "Select", "007"),
    "Country": ("FR", "", "Select", " FR", "N/A"),
    "Demo": ("", "", "2026-11-20T10:00:00Z", "Select", "soon", " "),
    "Lead Score": CELLS,
}
HUBSPOT_CELLS = {
    "Record ID": ("1", "17", "", " 9"), "Email": ("dana@acme.io", "Dana@Acme.IO", ""),
    "Original Source": ("ORGANIC_SEARCH", "Organic Search", "PAID_SOCIAL", "OFFLINE", "Something Else", ""),
    "Create Date": ("2026-11-02 14:23", "11/02/2026 14:23", "11/02/2026", "2026-11-02T14:23:00Z", "02.11.2026", ""),
    "Website URL": ("https://www.acme.io/pricing", "acme.io", ""), "Industry": ("COMPUTER_SOFTWARE", "Computer Software",
                                                                                  "Basket Weaving", ""),
    "Number of Employees": ("100-500", "1000+", "1,200", "n/a", ""), "Annual Revenue": ("$250,000,000", "1.5", "x", ""),
    "Lifecycle Stage": ("marketingqualifiedlead", "Lead", "customer", "odd one", ""),
    "Lead Status": ("IN_PROGRESS", "New", ""), "HubSpot Score": ("51", "51.5", "high", ""), "Phone Number": ("555",),
    "Favourite Channel": CELLS,
}


@st.composite
def mapped_files(draw: Any) -> tuple[Any, list[str], list[list[Any]]]:
    """(a column map, a header, rows of cells) of a CRM export."""
    from leadscore.io.maps import load_map, parse_map

    rows = draw(st.integers(1, 10))
    if draw(st.integers(0, 2)) == 0:
        cells = HUBSPOT_CELLS
        names = ["Record ID", *(name for name in sorted(cells) if name != "Record ID" and draw(st.integers(0, 9)) < 6)]
        column_map = load_map("hubspot")
    else:
        cells = MAP_CELLS
        names = ["Contact ID", *(name for name in sorted(cells) if name != "Contact ID" and draw(st.integers(0, 9)) < 6)]
        targets = {"E-mail": ("lead", "email"), "Source": ("lead", "source"), "Signed up": ("lead", "created_at"),
                   "Headcount": ("lead", '"company.employees"'), "Revenue": ("lead", '"company.annual_revenue"'),
                   "Website": ("lead", '"company.domain"'), "Visits": ("fields", "visits"),
                   "Opt In": ("fields", "opt_in"), "Notes": ("fields", "notes"), "Country": ("lead", '"company.country"')}
        lead = ['id = "Contact ID"'] + [f'{targets[n][1]} = "{n}"' for n in names if targets.get(n, ("",))[0] == "lead"]
        kinds = {"Visits": "number", "Opt In": "yes_no", "Notes": draw(st.sampled_from(["text", "number", "date"]))}
        fields = [f'{targets[n][1]} = {{ column = "{n}", type = "{kinds[n]}" }}' for n in names
                  if targets.get(n, ("",))[0] == "fields"]
        text = "[lead]\n" + "\n".join(lead) + "\n"
        if draw(st.booleans()):
            text += 'id_prefix = "XE-"\n'
        text += "[fields]\n" + "\n".join(fields) + "\n"
        if "Demo" in names:
            text += '[[activities]]\ncolumn = "Demo"\ntype = "demo_request"\n'

        text += "[values.source]\n\"Web\" = \"website\"\n\"Paid Search\" = \"paid_search\"\n\"Other\" = \"other\"\n"
        if draw(st.booleans()):
            text += '[missing]\nvalues = ["", "Select", "N/A"]\n'
        if draw(st.booleans()):
            text += '[constants]\n"company.country" = "DE"\n"fields.region" = "emea"\n"company.tier" = "target"\n'
        if draw(st.booleans()):
            text += '[dates]\nformats = ["%m/%d/%Y", "%m/%d/%Y %H:%M"]\n'
        column_map = parse_map(text, "map.toml")
    # Mostly a CRM's own forms (the first half of each list), so that most rows are ones the SQL takes.
    columns = {name: [draw(st.sampled_from(cells[name][:max(1, len(cells[name]) // 2)])) if draw(st.integers(0, 9)) < 8
                      else _leads_text(draw, cells[name]) for _ in range(rows)] for name in names}
    names = draw(st.permutations(names))
    return column_map, names, [[columns[name][i] for name in names] for i in range(rows)]


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(mapped_files(), st.sampled_from(NUMERIC + [{"visits": "int", "notes": "number", "hubspot_score": "int"}]),
       st.sampled_from(["csv", "parquet"]))
def test_each_mapped_row_the_sql_takes_is_the_row_of_the_python_readers_lead(
        tmp_path: Path, file: tuple[Any, list[str], list[list[Any]]], numeric: dict[str, str], fmt: str) -> None:
    """A CSV export, or the same cells as a Parquet file of text columns (an empty cell null)."""
    column_map, header, rows = file
    path = tmp_path / f"export.{fmt}"
    if fmt == "csv":
        _as_csv(path, header, rows)
    else:
        pq.write_table(pa.table({name: pa.array([row[i] or None for row in rows], pa.string())
                                 for i, name in enumerate(header)}), path)
    _compare(path, fmt, numeric, column_map)


def test_a_mapped_value_the_sql_would_read_otherwise_is_left_to_the_python_reader(tmp_path: Path) -> None:
    """Each kind of value the map's code makes, written as a plain cell or left to the python reader:
    a text custom field that reads as a number, a time with a fraction of a second, a constant under
    an empty or missing cell, a picklist value, the id's prefix, a value the map refuses."""
    from leadscore.io.maps import parse_map

    column_map = parse_map(
        '[lead]\nid = "Contact ID"\nid_prefix = "XE-"\nsource = "Source"\ncreated_at = "Signed up"\n'
        '"company.country" = "Country"\n"company.employees" = "Headcount"\n'
        '[fields]\nnotes = "Notes"\nvisits = { column = "Visits", type = "number" }\n'
        '[values.source]\n"Web" = "website"\n[missing]\nvalues = ["", "Select"]\n'
        '[constants]\n"company.country" = "DE"\n"fields.region" = "emea"\n', "map.toml")
    path = tmp_path / "export.csv"
    _as_csv(path, ["Contact ID", "Source", "Signed up", "Country", "Notes", "Visits", "Headcount"], [
        ["1", "WEB", "2026-11-20T10:00:00.25Z", "", "hello", "1,200", "250"],   # 1: taken
        ["2", "Select", "2026-11-20 10:00", "Select", "hello", "2.0", ""],       # 2: taken (the constant country)
        ["3", "web", "2026-11-20T10:00:00Z", "FR", "123", "5", "250"],          # 3: a text that reads as 123
        ["4", "Web", "20.11.2026", "FR", "hello", "5", "250"],                  # 4: a date the map refuses
        ["5", "Web", "2026-11-20T10:00:00Z", "FR", "hello", "x", "250"],        # 5: a number the map refuses
        ["6", "Web", "2026-11-20T10:00:00Z", " FR", "hello", "1e400", "250"],   # 6: out of range
    ])
    taken = _compare(path, "csv", {}, column_map)
    assert sorted(taken) == [1, 2]
    first, second = taken[1], taken[2]
    assert first[1:6] == ("XE-1", None, None, "website", q.micros(datetime(2026, 11, 20, 10, 0, 0, 250000,
                                                                                   tzinfo=timezone.utc)))
    assert (first[12], second[12], second[4]) == ("DE", "DE", None)
    assert json.loads(first[-1]) == {"region": "emea", "notes": "hello", "visits": 1200}
    python = _python_rows(path, {}, column_map)
    assert isinstance(python[3], tuple) and json.loads(python[3][-1])["notes"] == "123"
    assert [python[k].reason.split(":")[0] for k in (4, 5, 6)] == ["created_at", "fields.visits", "fields.visits"]


def test_the_sql_takes_the_rows_of_a_crm_export_through_its_map(tmp_path: Path) -> None:
    """bench/crm_export.py's HubSpot and Salesforce exports through the built-in maps: the SQL takes
    every row but those the map's own code refuses (a headcount of n/a, a date of another locale),
    the one without an id and those with a space after the company name (the reader strips it), and
    each row it takes is the python reader's lead."""
    import csv
    import subprocess
    import sys

    from leadscore.io.maps import load_map

    for crm in ("hubspot", "salesforce"):
        path = tmp_path / f"{crm}.csv"
        subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "crm_export.py"),
                        "--crm", crm, "--leads", "600", "-o", str(path)], check=True)
        python = _python_rows(path, {}, load_map(crm))
        taken = _compare(path, "csv", {}, load_map(crm))
        refused = {k for k, item in python.items() if not isinstance(item, tuple)}
        with path.open(encoding="utf-8", newline="") as handle:
            spaced = {k for k, row in enumerate(csv.DictReader(handle), start=1)
                      if row["Company Name" if crm == "hubspot" else "Company / Account"].endswith(" ")}
        assert 20 > len(refused) > 0 and 20 > len(spaced) > 0 and set(taken) == set(python) - refused - spaced, crm


@st.composite
def parquet_files(draw: Any) -> pa.Table:
    """Lead columns of the Parquet types the reader takes for them, and custom fields of any."""
    rows = draw(st.integers(1, 8))
    columns: dict[str, Any] = {}
    columns["id"] = (pa.array([draw(st.sampled_from(IDS)) for _ in range(rows)], pa.string()) if draw(st.booleans())
                     else _column("int", draw, rows))
    for name, kinds in (("created_at", ("stamp", "naive", "date", "text")), ("company.employees", ("int", "double", "text")),
                        ("company.annual_revenue", ("int", "double", "text")), ("email", ("text",)),
                        ("account_id", ("int", "text")), ("Lead Score", ("int", "double", "bool", "text", "stamp")),
                        ("fields.seats", ("int", "double", "bool", "text")), ("company.industry", ("text",))):
        if not draw(st.booleans()):
            continue
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            values = {"created_at": STAMPS, "company.employees": EMPLOYEES, "company.annual_revenue": REVENUE,
                      "email": EMAILS, "account_id": IDS}.get(name, CELLS)
            columns[name] = pa.array([_leads_text(draw, values) for _ in range(rows)], pa.string())
        else:
            columns[name] = _column(kind, draw, rows)
    if draw(st.booleans()):
        columns["tier"] = pa.array([None] * rows, pa.null())  # pandas writes a column of None so
    if draw(st.booleans()) and "company.industry" in columns:
        columns["company.industry"] = columns["company.industry"].dictionary_encode()
    return pa.table(columns)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(parquet_files(), st.sampled_from(NUMERIC))
def test_each_parquet_row_the_sql_takes_is_the_row_of_the_python_readers_lead(
        tmp_path: Path, table: Any, numeric: dict[str, str]) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(table, path)
    _compare(path, "parquet", numeric)


def test_the_sql_takes_every_row_of_a_plain_crm_export(tmp_path: Path) -> None:
    """Clean rows (no spaces around cells, times in the form ``leadscore export`` writes, ASCII
    emails): none goes through the python reader's per-row code."""
    path = tmp_path / "leads.csv"
    _as_csv(path, ["id", "email", "created_at", "company.employees", "company.annual_revenue", "company.domain",
                   "fields.budget", "Lead Score", "title"],
            [[f"L-{i}", f"p{i}@acme{i % 7}.io", "2026-11-20T10:00:00Z", str(i), "2.5e6", f"acme{i % 7}.io",
              "true" if i % 2 else "12", str(i * 3), "VP Marketing" if i % 3 else None] for i in range(1, 41)])
    assert sorted(_sql_rows(path, "csv", {})) == list(range(1, 41))
    parquet = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": [f"L-{i}" for i in range(40)], "company.employees": list(range(40)),
                             "created_at": pa.array([datetime(2026, 11, 20, tzinfo=timezone.utc)] * 40,
                                                    pa.timestamp("us", "UTC"))}), parquet)
    assert sorted(_sql_rows(parquet, "parquet", {})) == list(range(1, 41))


# --- leadscore score: the python engine's files ----------------------------------------------

HOSTILE = [
    ["id", "email", "title", "created_at", "account_id", "company.name", "company.domain", "company.employees",
     "company.annual_revenue", "company.industry", "fields.budget_confirmed", "Lead Status", "seats"],
    ["L-1", "dana@acme.io", "VP Marketing", "2026-11-20T10:00:00Z", "A-1", "Acme", "acme.io", "250", "2775000",
     "Software", "true", "open", "12"],
    ["L-2", "Bob@Gmail.com", "Student", "2026-11-01T10:00:00Z", "", "", "", "5", "", "", "", "", ""],
    [" L-3", "eve@acme.io", "CTO", "2026-11-20", "A-1", "Acme", "ACME.io", "1200.0", "1e3", "software", "false", "", "x"],
    ["", "nobody@acme.io", "", "", "", "", "", "", "", "", "", "", ""],  # no id: rejected
    ["L-4", "d\u00e9@acme.io", "Head of Growth", "2026-11-21T08:00:00+02:00", "A-2", "Initech", "initech.com", "12.5",
     "", "", "", "", ""],  # employees not whole: rejected
    ["L-5", "al@initech.com", "Director", "0001-01-01T00:00:00Z", "A-2", "Initech", "initech.com", "40", "abc", "",
     "", "", ""],  # revenue not a number: rejected
    ["L-6", "cy@initech.com", "Director", "1700-01-01T00:00:00Z", "A-2", "Initech", "initech.com", "40", "", "", "",
     "", "007"],  # a far date: the python engine's
    ["L-1", "dup@acme.io", "", "", "A-1", "", "", "", "", "", "", "", ""],  # duplicate id: rejected
    ["L-7", "fe@globex.com", "Chief Revenue Officer", "2026-11-22T09:30:00.5Z", "A-3", "Globex", "globex.com", " 80",
     "1E+9", "Manufacturing", "TRUE", "\u00a0", "1234567890123456789"],
]


def _hostile(tmp_path: Path, as_parquet: bool) -> Path:
    if as_parquet:
        path = tmp_path / "leads"
        path.mkdir()
        header, rows = HOSTILE[0], HOSTILE[1:]
        table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(header)})
        pq.write_table(table.slice(0, 4), path / "part-0.parquet")  # two parts: rows numbered in each
        pq.write_table(table.slice(4), path / "part-1.parquet")
        return path
    path = tmp_path / "leads.csv"
    _as_csv(path, HOSTILE[0], HOSTILE[1:])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('L-8,"open,quote@acme.io\n')  # a quote never closed: the rest of the file is one bad row
    return path


def _activities(tmp_path: Path, as_parquet: bool) -> Path:
    """Rows for leads the SQL takes, for one the reader strips (L-3), one it rejects (L-4), a far date
    (the python engine's), a duplicate id's (L-1 again), an unknown lead, and rows left out."""
    rows = [["lead_id", "type", "at", "properties.url"],
            ["L-1", "pricing_page_visit", "2026-11-20T10:00:00Z", "/pricing"],
            ["L-3", "demo_request", "2026-11-21T09:00:00Z", ""],
            ["L-4", "webinar_attended", "2026-11-19T08:00:00Z", ""],
            ["L-7", "demo_request", "2026-11-22T08:00:00Z", "/demo"],
            ["L-7", " page_view", "2026-11-22T08:00:00Z", "/x"],  # spaces: the reader's code
            ["L-2", "pricing_page_visit", "2026-02-30T10:00:00Z", ""],  # no such day: left out
            ["L-6", "pricing_page_visit", "1700-01-01T00:00:00Z", ""],  # far: the python engine's
            ["L-9", "page_view", "2026-11-20T10:00:00Z", ""],  # no such lead: rejected
            ["L-1", "content_download", "2026-11-22T08:00:00Z", "/guide"]]
    if as_parquet:
        path = tmp_path / "acts.parquet"
        pq.write_table(pa.table({name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])}), path)
        return path
    path = tmp_path / "acts.csv"
    _as_csv(path, rows[0], rows[1:])
    return path


@pytest.mark.parametrize("as_parquet", [False, True])
@pytest.mark.parametrize("extra", [(), ("--explain",)])
@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
def test_a_leads_file_and_an_activities_file_both_in_duckdb_give_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_parquet: bool, extra: tuple[str, ...],
        packs: tuple[str, ...]) -> None:
    leads, acts = _hostile(tmp_path, as_parquet), _activities(tmp_path, not as_parquet)  # (a mix: CSV and Parquet)
    extra = (*packs, "--activities", str(acts), *extra)
    wanted = _score(tmp_path, "python", leads, *extra)
    assert "activity for unknown lead 'L-9'" in wanted[2] and "activity left out" in wanted[3]
    _no_python_reading(monkeypatch)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the activities file was read the python way")

    monkeypatch.setattr(readers, "_parquet_activity_table", refused)
    monkeypatch.setattr(readers, "_activity_table", refused)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    assert _score(tmp_path, "duckdb", leads, *extra) == wanted


def _score(tmp_path: Path, engine: str, leads: Path | str, *extra: str,
           stdin: bytes | None = None) -> tuple[int, str, str, str]:
    """(exit code, cards, rejections, stderr) of ``leadscore score`` on ``leads`` (``-``: ``stdin``)."""
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    for path in (out, rejects):
        path.unlink(missing_ok=True)
    result = CliRunner().invoke(build_cli(PluginManager()), [
        "score", str(leads), "--as-of", "2026-11-23", "--engine", engine, "-o", str(out), "--rejects", str(rejects),
        *extra], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return (result.exit_code, out.read_text(encoding="utf-8") if out.exists() else "",
            rejects.read_text(encoding="utf-8") if rejects.exists() else "", result.stderr)


def _no_python_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the leads file was read the python way")

    monkeypatch.setattr(readers, "_read_csv", refused)
    monkeypatch.setattr(readers, "_read_parquet", refused)


@pytest.mark.parametrize("as_parquet", [False, True])
@pytest.mark.parametrize("extra", [(), ("--explain",), ("--format=csv",)])
@pytest.mark.parametrize("packs", [("-r", "firr-base"), ()])
def test_score_of_a_leads_file_read_by_duckdb_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_parquet: bool, extra: tuple[str, ...],
        packs: tuple[str, ...]) -> None:
    """firr-base, and every installed pack (the shipped plugins' packs read account signals: the
    account pass reads the file first)."""
    leads = _hostile(tmp_path, as_parquet)
    extra = (*packs, *extra)
    wanted = _score(tmp_path, "python", leads, *extra)
    assert f"scored 5 + rejected {4 if as_parquet else 5} " in wanted[3]
    assert "duplicate lead id 'L-1'" in wanted[2] and "id is missing" in wanted[2]
    if not as_parquet:
        assert "never closed" in wanted[2]
    _no_python_reading(monkeypatch)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    got = _score(tmp_path, "duckdb", leads, *extra)
    assert got[:3] == wanted[:3]
    assert got[3] == wanted[3]


def test_csv_options_and_file_errors_as_the_python_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--delimiter, --strict on unknown columns, a header without rows, an empty file, a UTF-16 export."""
    semi = tmp_path / "semi.csv"
    semi.write_text("id;email;Lead Score\nL-1;dana@acme.io;7\nL-2;bob@gmail.com;x\n", encoding="utf-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("id\temail\nL-1\tdana@acme.io\n".encode("utf-16"))
    header_only, empty = tmp_path / "header.csv", tmp_path / "empty.csv"
    header_only.write_text("id,email\n", encoding="utf-8")
    empty.write_text("", encoding="utf-8")
    cases = [(semi, ("--delimiter", ";")), (semi, ()), (semi, ("--strict",)), (utf16, ()), (header_only, ()),
             (empty, ())]
    wanted = [_score(tmp_path, "python", path, "-r", "firr-base", *extra) for path, extra in cases]
    _no_python_reading(monkeypatch)
    for (path, extra), expected in zip(cases, wanted):
        assert _score(tmp_path, "duckdb", path, "-r", "firr-base", *extra) == expected, (path, extra)
    assert "unknown column" in wanted[2][3] and "no leads in this file" in wanted[4][3]


def test_a_maps_options_and_file_errors_as_the_python_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a map: its [csv] delimiter, --strict on a column it neither reads nor excludes, a
    column it names that the file lacks, a header without rows, a UTF-16 export, a row of another
    width, an unclosed quote, a map with an activity column (a row with a date in it is the python
    reader's), a constant custom field a column also writes (read as records: the file's header
    decides), the built-in map on a file with none of its columns but the id."""
    column_map = tmp_path / "map.toml"
    column_map.write_text('[lead]\nid = "Contact"\nemail = "Mail"\n"company.employees" = "Size"\n'
                          '[csv]\ndelimiter = ";"\n[missing]\nvalues = ["", "-"]\n', encoding="utf-8")
    activity_map = tmp_path / "activity.toml"
    activity_map.write_text('[lead]\nid = "Contact"\n[[activities]]\ncolumn = "Demo"\ntype = "demo_request"\n',
                            encoding="utf-8")
    constant_map = tmp_path / "constant.toml"
    constant_map.write_text('[lead]\nid = "Contact"\n[constants]\n"fields.size" = 5\n', encoding="utf-8")
    semi = tmp_path / "semi.csv"
    semi.write_text('Contact;Mail;Size;Lead Score\nC-1;dana@acme.io;1,200;7\nC-2;-;-;x\nC-3;bob@gmail.com;12\n'
                    'C-4;"open;x;1\n', encoding="utf-8")
    lacking = tmp_path / "lacking.csv"
    lacking.write_text("Contact;Mail\nC-1;dana@acme.io\n", encoding="utf-8")
    header_only = tmp_path / "header.csv"
    header_only.write_text("Contact;Mail;Size\n", encoding="utf-8")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("Contact;Mail;Size\nC-1;dana@acme.io;100-500\n".encode("utf-16"))
    demo = tmp_path / "demo.csv"
    demo.write_text("Contact,Demo\nC-1,2026-11-20T10:00:00Z\nC-2,\nC-3,soon\n", encoding="utf-8")
    hubspot = tmp_path / "hubspot.csv"
    hubspot.write_text("Record ID,Size\n1,3\n2,4\n", encoding="utf-8")
    cases = [(semi, column_map, ()), (semi, column_map, ("--strict",)), (lacking, column_map, ()),
             (header_only, column_map, ()), (utf16, column_map, ()), (demo, activity_map, ()),
             (semi, constant_map, ("--delimiter", ";")), (hubspot, "hubspot", ())]
    wanted = [_score(tmp_path, "python", path, "-r", "firr-base", "--map", str(cmap), *extra)
              for path, cmap, extra in cases]
    for (path, cmap, extra), expected in zip(cases, wanted):
        if cmap == constant_map:  # read as records: the python reader reads them
            assert _score(tmp_path, "duckdb", path, "-r", "firr-base", "--map", str(cmap), *extra) == expected
    _no_python_reading(monkeypatch)
    for (path, cmap, extra), expected in zip(cases, wanted):
        if cmap != constant_map:
            assert _score(tmp_path, "duckdb", path, "-r", "firr-base", "--map", str(cmap), *extra) == expected, (path, extra)
    assert "scored 2 + rejected 2" in wanted[0][3] and "cells but the header has" in wanted[0][2]
    assert "never closed" in wanted[0][2]
    assert "'Lead Score'" in wanted[1][3] and wanted[1][0] == 2
    assert "names columns the file does not have" in wanted[2][3] and "no leads in this file" in wanted[3][3]
    assert "scored 1 + rejected 0" in wanted[4][3] and wanted[5][0] == 0 and "scored 2 + rejected 2" in wanted[6][3]


@pytest.mark.parametrize("extra", [(), ("--dedupe",), ("--explain",)])
def test_parquet_files_with_a_column_named_twice_or_both_files_wrong_fail_as_the_python_reader(
        tmp_path: Path, extra: tuple[str, ...]) -> None:
    """A Parquet column name written twice (leads or activities) is the header's one-line error, not a
    traceback; with both files wrong the activities file's error is told first, with --dedupe too."""
    leads, twice, wrong = tmp_path / "leads.parquet", tmp_path / "twice.parquet", tmp_path / "wrong.parquet"
    acts, acts_twice, acts_wrong = (tmp_path / f"{name}.parquet" for name in ("acts", "acts-twice", "acts-wrong"))
    pq.write_table(pa.table([pa.array(["L-1", "L-2"]), pa.array(["dana@acme.io", "bob@gmail.com"])],
                            names=["id", "email"]), leads)
    pq.write_table(pa.table([pa.array(["L-1", "L-2"]), pa.array(["dana@acme.io", None]), pa.array(["L-3", "L-4"])],
                            names=["id", "email", "id"]), twice)
    pq.write_table(pa.table([pa.array([True, False])], names=["id"]), wrong)
    stamps = pa.array(["2026-11-20T10:00:00Z"])
    pq.write_table(pa.table([pa.array(["L-1"]), pa.array(["demo_request"]), stamps], names=["lead_id", "type", "at"]), acts)
    pq.write_table(pa.table([pa.array(["L-1"]), pa.array(["page_view"]), stamps, pa.array(["/pricing"]), pa.array(["/x"])],
                            names=["lead_id", "type", "at", "properties.url", "properties.url"]), acts_twice)
    pq.write_table(pa.table([pa.array(["L-1"]), pa.array([True]), stamps], names=["lead_id", "type", "at"]), acts_wrong)
    cases = [(twice, acts, f"{twice}: column 'id' appears twice; keep one column per name"),
             (leads, acts_twice, f"{acts_twice}: column 'properties.url' appears twice; keep one column per name"),
             (wrong, acts_wrong, f"{acts_wrong}: column 'type' is of Parquet type bool, not text; write type as text")]
    for path, activities, message in cases:
        expected = _score(tmp_path, "python", path, "--activities", str(activities), *extra)
        assert expected == (2, "", "", f"leadscore: {message}\n")
        assert _score(tmp_path, "duckdb", path, "--activities", str(activities), *extra) == expected


@pytest.mark.parametrize("extra", [(), ("--explain",), ("-r", "firr-base", "--explain")])
def test_floats_of_fewer_than_64_bits_read_as_the_text_an_export_of_them_writes(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """A float32 3.3 is 3.3 (as pandas, DuckDB or Spark write it in a CSV), not 3.299999952316284, on both engines."""
    leads, acts = tmp_path / "leads.parquet", tmp_path / "acts.parquet"
    pq.write_table(pa.table({"id": ["L-1", "L-2"], "email": ["dana@acme.io", "bob@acme.io"],
                             "company.employees": pa.array([123456789.0, 1200.0], pa.float32()),
                             "company.annual_revenue": pa.array([0.1, 2.5e6], pa.float32()),
                             "fields.budget": pa.array([3.3, None], pa.float16())}), leads)
    pq.write_table(pa.table({"lead_id": ["L-1", "L-2"], "type": ["webinar_attendance", "page_view"],
                             "at": ["2026-11-20T10:00:00Z"] * 2,
                             "properties.minutes_watched": pa.array([45.1, None], pa.float32()),
                             "properties.url": pa.array([None, 3.3], pa.float32())}), acts)
    expected = _score(tmp_path, "python", leads, "--activities", str(acts), *extra)
    assert _score(tmp_path, "duckdb", leads, "--activities", str(acts), *extra) == expected
    assert expected[0] == 0 and expected[3].endswith("scored 2 + rejected 0 == read 2\n")
    if "--explain" in extra:  # float32(123456789) is 123456792, written 1.2345679e8
        assert '"evidence":"123456790 employees"' in expected[1] and '"evidence":"page_view on 2026-11-20 (3.3)"' in expected[1]


@pytest.mark.parametrize("extra", [(), ("--dedupe",)])
def test_activity_types_no_pack_knows_are_counted_as_the_python_engine_counts_them_with_an_activities_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]) -> None:
    """A map's activity column read by the reader's code beside an activities file (its activities
    counted too, not the file's alone), and an id twice with a row of the file twice (merged with
    --dedupe, the merged lead's exact repeats count once; else the later copy is rejected)."""
    column_map = tmp_path / "map.toml"
    column_map.write_text('[map]\nname = "own"\n\n[lead]\nid = "id"\nemail = "email"\ntitle = "title"\n\n'
                          '[[activities]]\ncolumn = "seen"\ntype = "g2_profile_view"\n', encoding="utf-8")
    leads = tmp_path / "leads.csv"
    _as_csv(leads, ["id", "email", "title", "seen"], [["L-1", "a@acme.io", "CEO", "2026-11-20T10:00:00Z"],
                                                      ["L-2", "b@acme.io", "CTO", ""],
                                                      ["L-1", "a@acme.io", "VP Sales", "2026-11-21T10:00:00Z"]])
    acts = tmp_path / "acts.csv"
    _as_csv(acts, ["lead_id", "type", "at"], [[lead_id, "g2_profile_view", "2026-11-19T10:00:00Z"]
                                              for lead_id in ("L-1", "L-1", "L-2", "L-2")])
    args = ("-r", "firr-base", "--map", str(column_map), "--activities", str(acts), *extra)
    wanted = _score(tmp_path, "python", leads, *args)
    # L-1 merged: its two columns' activities and the file's row once (an exact repeat); L-2: the file's two.
    # Without --dedupe: the first L-1's column and the file's rows (two), L-2's two.
    assert "g2_profile_view (5)" in wanted[3]
    _no_python_reading(monkeypatch)
    assert _score(tmp_path, "duckdb", leads, *args) == wanted


def test_a_batch_of_records_with_no_lead_in_it_is_no_error_in_the_account_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records scored in batches (the file scan turned off) with the account pass (every installed
    pack): the activities file's rows for leads the file does not have come after the last lead, so a
    last batch may hold only their rejections; it used to stop the run (``range() arg 3 must not be zero``)."""
    from tests.test_columnar_engine import SAMPLES

    import leadscore.columnar.accounts as accounts
    import leadscore.columnar.run as run
    import leadscore_cli.main as cli_main

    monkeypatch.setattr(cli_main, "columnar_reads", lambda *args: False)  # the leads read as records

    activities = tmp_path / "activities.csv"
    text = (SAMPLES / "activities.csv").read_text(encoding="utf-8")
    width = text.splitlines()[0].count(",")
    activities.write_text(text + "".join(f"L-404{i},page_view,2026-11-20T10:00:00Z{',' * (width - 2)}\n"
                                         for i in range(6)), encoding="utf-8")
    args = ("--activities", str(activities), "--dedupe")
    wanted = _score(tmp_path, "python", SAMPLES / "leads.csv", *args)
    assert wanted[0] == 1 and wanted[2].count("activity for unknown lead") == 6
    original = run.batches
    monkeypatch.setattr(accounts, "batches", lambda leads, size: original(leads, 4))
    monkeypatch.setattr(run, "batches", lambda leads, size: original(leads, 4))
    assert _score(tmp_path, "duckdb", SAMPLES / "leads.csv", *args) == wanted


def test_a_row_left_to_the_python_engine_and_a_batch_that_fails_keep_the_python_cards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block whose SQL fails is scored by the python engine from the python reader's leads of its rows."""
    leads = _hostile(tmp_path, False)
    wanted = _score(tmp_path, "python", leads, "-r", "firr-base", "--explain")
    from leadscore.columnar.engine import ColumnarScorer

    run_views = ColumnarScorer.run_views

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.con.execute("SELECT count(*) FROM b_leads").fetchone()[0]:  # (the plan's check on no leads runs)
            raise duckdb.Error("no SQL today")
        return run_views(self, *args, **kwargs)

    monkeypatch.setattr(ColumnarScorer, "run_views", failing)
    got = _score(tmp_path, "duckdb", leads, "-r", "firr-base", "--explain")
    assert got[:3] == wanted[:3]
    assert "could not run 1 batch in SQL" in got[3]


def test_a_wide_whole_number_is_no_row_the_sql_takes(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": ["L-1", "L-2", "L-3"], "company.employees": [WIDE, WIDE + 1, 5],
                             "Seats": [1, WIDE + 1, 2]}), path)
    assert sorted(_sql_rows(path, "parquet", {})) == [1, 3]


def _crm_export(tmp_path: Path, crm: str, leads: int, *extra: str) -> Path:
    import subprocess
    import sys

    path = tmp_path / f"{crm}.csv"
    subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "crm_export.py"), "--crm", crm,
                    "--leads", str(leads), "-o", str(path), *extra], check=True)
    return path


@pytest.mark.parametrize("extra", [(), ("-r", "firr-base", "--explain")])
def test_a_crm_export_through_its_map_with_an_activities_file_read_by_duckdb_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: tuple[str, ...]) -> None:
    """A HubSpot export through ``--map hubspot`` with its activities file (lead_id the Record ID; two
    rows for contacts the export does not have are rejected after the last lead): both files read by
    DuckDB, and the python engine's files."""
    activities = tmp_path / "activities.csv"
    export = _crm_export(tmp_path, "hubspot", 600, "--activities", str(activities))
    with activities.open("a", encoding="utf-8") as handle:
        handle.write("999999,demo_request,2026-11-20T10:00:00Z,,,,\n,page_view,2026-11-20T10:00:00Z,/pricing,,,\n")
    args = ("--map", "hubspot", "--activities", str(activities), *extra)
    wanted = _score(tmp_path, "python", export, *args)
    assert wanted[0] == 1 and wanted[2].count(f'"where":"{activities}:') == 2, wanted[2][-600:]
    _no_python_reading(monkeypatch)
    monkeypatch.setattr(readers, "_read_activities", lambda *a, **k: (_ for _ in ()).throw(AssertionError("records")))
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    assert _score(tmp_path, "duckdb", export, *args) == wanted


@pytest.mark.parametrize(("crm", "extra", "as_parquet"), [
    ("hubspot", (), False), ("hubspot", ("-r", "firr-base", "--explain"), False), ("salesforce", ("--format=csv",), False),
    ("salesforce", ("-r", "firr-base", "--delimiter", ","), False), ("hubspot", (), True),
    ("salesforce", ("-r", "firr-base", "--explain"), True)])
def test_score_of_a_crm_export_through_its_map_read_by_duckdb_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crm: str, extra: tuple[str, ...], as_parquet: bool) -> None:
    """``--map hubspot`` / ``--map salesforce`` on bench/crm_export.py's exports (every installed pack
    reads the file twice, for the account pass), and the same as Parquet with the types pyarrow gives
    its columns (ids and scores as integers): the leads file is read by the columnar scan, the map
    applied column by column, and the cards, rejections and summary are the python engine's."""
    import pyarrow.csv as pacsv

    from leadscore.columnar import mapped

    export = _crm_export(tmp_path, crm, 800)
    if as_parquet:
        table = pacsv.read_csv(export)
        assert pa.types.is_integer(table.schema.field("Record ID" if crm == "hubspot" else "Converted Account ID").type
                                   ) == (crm == "hubspot")
        export = tmp_path / f"{crm}.parquet"
        pq.write_table(table, export, row_group_size=300)
    wanted = _score(tmp_path, "python", export, "--map", crm, *extra)
    assert wanted[0] == 1 and "rejected 0" not in wanted[3] and wanted[2].count("\n") < 30
    _no_python_reading(monkeypatch)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    blocks: list[int] = []
    columns = mapped.MappedHeader.columns
    monkeypatch.setattr(mapped.MappedHeader, "columns", lambda self, rows: blocks.append(len(rows)) or columns(self, rows))
    assert _score(tmp_path, "duckdb", export, "--map", crm, *extra) == wanted
    assert sum(blocks) == 800 * (1 if "firr-base" in extra else 2)


# The X Education export: public data with no licence stated, so it is never copied into the
# repository; it is read from ../shared/data beside it (as core/tests/test_io_maps.py reads it).
X_EDUCATION = next((parent / "shared" / "data" for parent in Path(__file__).resolve().parents
                    if (parent / "shared" / "data").is_dir()), Path("shared/data")) / "x-education-leads" / "Leads.csv"


@pytest.mark.skipif(not X_EDUCATION.is_file(), reason=f"the X Education data are not here ({X_EDUCATION}); they "
                    "live in ../shared/data beside the repository")
def test_the_x_education_export_through_its_sample_map_read_by_duckdb_gives_the_python_engines_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real CRM export (../shared/data, see its README) through rulepacks/samples/maps/x-education.toml:
    picklists, a missing value ("Select"), an id prefix, typed custom fields."""
    from tests.test_columnar_engine import SAMPLES

    data = X_EDUCATION
    column_map = str(SAMPLES / "maps" / "x-education.toml")
    wanted = _score(tmp_path, "python", data, "--map", column_map, "--as-of", "2020-01-01")
    assert wanted[0] == 0 and "scored 9240 + rejected 0 == read 9240" in wanted[3]
    _no_python_reading(monkeypatch)
    monkeypatch.setenv("LEADSCORE_COLUMNAR_STRICT", "1")
    assert _score(tmp_path, "duckdb", data, "--map", column_map, "--as-of", "2020-01-01") == wanted
