"""Parquet input and output: the same leads as Parquet or as CSV score to the same cards on every
engine, bad files and bad rows get their one-line messages, and written cards read back equal."""

from __future__ import annotations

import csv
import io
import json
import math
import string
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from leadscore import Engine  # noqa: E402
from leadscore.errors import InputError  # noqa: E402
from leadscore.io import parquet as parquet_io  # noqa: E402
from leadscore.io.readers import ReadReport, read_leads  # noqa: E402
from leadscore.io.writers import JsonLinesWriter, ParquetWriter, card_to_dict  # noqa: E402
from leadscore.model import Lead, Rejection  # noqa: E402

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
ENGINES = ("python", "duckdb")


# --- the same table as CSV text and as Parquet --------------------------------------------


def csv_text(value: Any) -> str:
    """A typed value as a CSV export writes it (pandas' to_csv: repr for floats, ISO 8601 for times)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        # CRLF line ends make the writer quote every cell holding a \r or a \n, as Excel does.
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(columns)
        for row in zip(*columns.values()):
            writer.writerow([csv_text(value) for value in row])
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]], types: dict[str, Any], parts: int = 1,
                  row_group: int | None = None) -> Path:
    """The table as one Parquet file, or (parts > 1) as a directory of part files split by rows."""
    table = pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})
    if parts == 1:
        pq.write_table(table, path, row_group_size=row_group)
        return path
    path.mkdir()
    (path / "_SUCCESS").write_text("")
    size = math.ceil(table.num_rows / parts) or 1
    for number, start in enumerate(range(0, max(table.num_rows, 1), size)):
        pq.write_table(table.slice(start, size), path / f"part-{number:05d}.parquet", row_group_size=row_group)
    return path


def score_text(engine: Engine, leads: str | Path, activities: str | Path | None) -> tuple[str, list[tuple[str | None, str]], list[str]]:
    """(the cards as JSON Lines text, the rejections' (lead id, reason), their places) for a read."""
    items = list(read_leads(leads, activities=activities, report=ReadReport()))
    index = engine.build_accounts([i for i in items if isinstance(i, Lead)]) if engine.needs_accounts else None
    out = io.StringIO()
    writer = JsonLinesWriter(out, explain=True)
    rejected, places = [], []
    for result in engine.score(items, accounts=index):
        if isinstance(result, Rejection):
            rejected.append((result.lead_id, result.reason))
            places.append(result.where)
        else:
            writer.write(result)
    assert len(items) == out.getvalue().count("\n") + len(rejected)  # scored + rejected == read
    return out.getvalue(), rejected, places


@pytest.fixture(scope="module")
def engines() -> Any:
    made = {name: Engine(backend=name, as_of=AS_OF) for name in ENGINES}
    yield made
    for engine in made.values():
        engine.close()


SAMPLES = Path(__file__).resolve().parents[2] / "rulepacks" / "samples"


@pytest.mark.parametrize("name", ENGINES)
def test_sample_leads_as_parquet_score_like_the_sample_csv(tmp_path: Path, engines: Any, name: str) -> None:
    import pyarrow.csv as pacsv

    # pyarrow's CSV reader types the columns: integers, booleans and UTC timestamps, not text.
    leads = pacsv.read_csv(SAMPLES / "leads.csv")
    acts = pacsv.read_csv(SAMPLES / "activities.csv")
    assert pa.types.is_timestamp(leads.schema.field("created_at").type)
    assert pa.types.is_integer(leads.schema.field("company.employees").type)
    pq.write_table(leads, tmp_path / "leads.parquet")
    folder = tmp_path / "activities"
    folder.mkdir()
    half = acts.num_rows // 2
    pq.write_table(acts.slice(0, half), folder / "part-0.parquet", row_group_size=7)
    pq.write_table(acts.slice(half), folder / "part-1.parquet", row_group_size=7)
    engine = engines[name]
    from_csv = score_text(engine, SAMPLES / "leads.csv", SAMPLES / "activities.csv")
    from_parquet = score_text(engine, tmp_path / "leads.parquet", folder)
    assert from_csv[0].count("\n") == 46
    assert from_parquet[0] == from_csv[0]
    assert from_parquet[1] == from_csv[1] == []


# --- generated rows -------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_WORDS = st.sampled_from(["VP Marketing", "Head of Sales Ops", " CTO ", "intern", "", "Director, RevOps"])
_WHEN = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 1, 1),
                     timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_KINDS = st.sampled_from(["page_view", "pricing_page_visit", "demo_request", "webinar_attended", "email_open",
                          "content_download", "unsubscribe", "mystery_type", " ", ""])


# Floats of fewer than 64 bits, as the doubles of the texts a CSV export of them writes (its shortest):
# a float32 column holding 3.3 is exported as "3.3", not as the 3.299999952316284 it widens to.
_FLOAT32 = [float(text) for text in ("3.3", "0.1", "1200.0", "123456790.0", "16777216.0", "1e-08", "7e-05", "-0.0",
                                       "3.4e+38", "1e+16", "123.456", "nan", "inf")]
_HALF = [float(text) for text in ("3.3", "0.1", "1.5", "2048.0", "65500.0", "6e-08", "-inf")]


def _column(kind: str, n: int) -> st.SearchStrategy[tuple[list[Any], Any]]:
    """(values, Parquet type) of one column whose Parquet type the example draws."""
    nullable = lambda s: st.one_of(st.none(), s)  # noqa: E731
    options: dict[str, list[tuple[Any, st.SearchStrategy[Any]]]] = {
        "when": [(pa.timestamp("ms", tz="UTC"), _WHEN), (pa.timestamp("us"), _WHEN.map(lambda d: d.replace(tzinfo=None))),
                 (pa.date32(), _WHEN.map(datetime.date)),
                 (pa.string(), st.one_of(_WHEN.map(csv_text), st.sampled_from(["yesterday", "2026-13-01", ""])))],
        "count": [(pa.int64(), st.integers(-5, 5000)), (pa.float64(), st.sampled_from([1200.0, 12.5, 0.0, -3.0, 2.5e-7])),
                  (pa.float32(), st.sampled_from(_FLOAT32)),
                  (pa.string(), st.sampled_from(["1200", "lots", "1,200", " 40 ", "12.0"]))],
        "money": [(pa.int64(), st.integers(0, 10**10)),
                  (pa.float64(), st.floats(allow_nan=True, allow_infinity=True, width=64)),
                  (pa.float32(), st.sampled_from(_FLOAT32)),
                  (pa.string(), st.sampled_from(["250000000", "2.5e8", "n/a"]))],
        "free": [(pa.bool_(), st.booleans()), (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
                 (pa.float64(), st.floats(width=64)), (pa.float32(), st.sampled_from(_FLOAT32)),
                 (pa.float16(), st.sampled_from(_HALF)), (pa.string(), _TEXT), (pa.timestamp("ms", tz="UTC"), _WHEN)],
        "id": [(pa.string(), st.sampled_from(["L-1", "L-2", "L-3", " L-4 ", "", "07"])), (pa.int64(), st.integers(0, 4))],
        "text": [(pa.string(), st.one_of(_WORDS, _TEXT))],
        "kind": [(pa.string(), _KINDS)],
    }
    return st.sampled_from(options[kind]).flatmap(
        lambda pair: st.lists(nullable(pair[1]), min_size=n, max_size=n).map(lambda values: (values, pair[0])))


_LEAD_COLUMNS = {"id": "id", "email": "text", "title": "text", "created_at": "when", "account_id": "id",
                 "company.name": "text", "company.employees": "count", "company.annual_revenue": "money",
                 "company.tier": "text", "fields.budget_confirmed": "free", "fields.seats": "free",
                 "Lead Score": "free"}
_ACTIVITY_COLUMNS = {"lead_id": "id", "type": "kind", "at": "when", "properties.url": "text",
                     "properties.minutes_watched": "free", "Campaign Name": "text"}


@st.composite
def tables(draw: Any, spec: dict[str, str], max_rows: int) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    n = draw(st.integers(1, max_rows))
    columns, types = {}, {}
    for name, kind in spec.items():
        columns[name], types[name] = draw(_column(kind, n))
    if "email" in columns:
        # Addresses on one domain, so the rules that read the email's domain have something to find.
        columns["email"] = [None if v is None else f"{''.join(c for c in v if c in string.ascii_letters) or 'a'}@acme.io"
                            for v in columns["email"]]
    return columns, types


def _same_from_parquet_as_from_csv(engine: Engine, folder: Path, leads: Any, acts: Any, parts: int) -> None:
    # A CSV holding only rows of empty cells has no leads (an error, not a comparison).
    assume(len(_blank_rows(leads[0])) < len(leads[0]["id"]))
    (lead_columns, lead_types), (act_columns, act_types) = leads, acts
    csv_leads, csv_acts = write_csv(folder / "leads.csv", lead_columns), write_csv(folder / "acts.csv", act_columns)
    pq_leads = write_parquet(folder / "leads.parquet", lead_columns, lead_types)
    pq_acts = write_parquet(folder / ("acts" if parts > 1 else "acts.parquet"), act_columns, act_types, parts=parts,
                            row_group=2)
    # A CSV row of empty cells is a spreadsheet's leftover and skipped; a Parquet row of nulls is
    # a row, rejected for its missing id like any other.
    blank = {f"{pq_leads}:row {n}" for n in _blank_rows(lead_columns)} | {
        f"{part}:row {n}" for part, n in _blank_part_rows(pq_acts, act_columns)}
    expected = score_text(engine, csv_leads, csv_acts)
    found = score_text(engine, pq_leads, pq_acts)
    assert found[0] == expected[0]
    kept = [rejection for rejection, where in zip(found[1], found[2]) if where not in blank]
    assert kept == expected[1]
    assert {reason.split(";")[0] for (_, reason), where in zip(found[1], found[2]) if where in blank} <= {
        "id is missing", "lead_id is missing"}
    # The places differ in kind only: file:row N for Parquet where the CSV has file:line.
    assert all(":row " in where for where in found[2])


# Shrinking re-runs a whole scoring per step; a failure is reported as generated instead.
_PROPERTY = {"deadline": None, "phases": [Phase.explicit, Phase.reuse, Phase.generate],
             "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
_GENERATED = {"leads": tables(_LEAD_COLUMNS, 8), "acts": tables(_ACTIVITY_COLUMNS, 12), "parts": st.integers(1, 3),
              "batch": st.integers(1, 5)}


@settings(max_examples=50, **_PROPERTY)
@given(**_GENERATED)
def test_generated_rows_score_the_same_from_parquet_as_from_csv_python(
        tmp_path_factory: Any, engines: Any, monkeypatch: Any, leads: Any, acts: Any, parts: int, batch: int) -> None:
    monkeypatch.setattr(parquet_io, "BATCH_ROWS", batch)  # many small batches, not one
    _same_from_parquet_as_from_csv(engines["python"], tmp_path_factory.mktemp("gen"), leads, acts, parts)


@pytest.mark.slow
@settings(max_examples=20, **_PROPERTY)
@given(**_GENERATED)
def test_generated_rows_score_the_same_from_parquet_as_from_csv_duckdb(
        tmp_path_factory: Any, engines: Any, monkeypatch: Any, leads: Any, acts: Any, parts: int, batch: int) -> None:
    monkeypatch.setattr(parquet_io, "BATCH_ROWS", batch)
    _same_from_parquet_as_from_csv(engines["duckdb"], tmp_path_factory.mktemp("gen"), leads, acts, parts)


def _blank_rows(columns: dict[str, list[Any]]) -> list[int]:
    """The numbers (from 1) of the rows whose every cell is empty text in CSV."""
    rows = zip(*columns.values())
    return [n for n, row in enumerate(rows, 1) if not any(csv_text(value).strip() for value in row)]


def _blank_part_rows(path: Path, columns: dict[str, list[Any]]) -> list[tuple[Path, int]]:
    """(part file, row number in it) of the blank rows of a table written by write_parquet."""
    if not path.is_dir():
        return [(path, n) for n in _blank_rows(columns)]
    blank = set(_blank_rows(columns))
    found, start = [], 0
    for part in sorted(path.glob("*.parquet")):
        rows = pq.ParquetFile(part).metadata.num_rows
        found += [(part, n - start) for n in range(start + 1, start + rows + 1) if n in blank]
        start += rows
    return found


# --- bad files, bad columns, bad rows -------------------------------------------------------


def _leads_table(**columns: Any) -> Any:
    return pa.table({"id": ["L-1", "L-2"], **columns})


def test_a_missing_parquet_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_leads(tmp_path / "gone.parquet")
    assert str(caught.value) == f"{tmp_path / 'gone.parquet'}: file not found; check the path"


def test_a_file_that_is_not_parquet_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    path.write_text('{"id": "L-1"}\n')
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value) == (f"{path}: not a readable Parquet file (Parquet magic bytes not found in footer. "
                                 "Either the file is corrupted or this is not a parquet file.); write the file with a "
                                 "Parquet writer (pyarrow, DuckDB, Spark, pandas)")


def test_a_truncated_parquet_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(_leads_table(email=["a@acme.io", "b@acme.io"]), path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value).startswith(f"{path}: not a readable Parquet file (")
    assert "\n" not in str(caught.value)


def test_damaged_pages_stop_the_read_at_the_row_it_reached(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": [f"L-{i}" for i in range(3000)]}), path, compression="zstd",
                   use_dictionary=False)
    data = bytearray(path.read_bytes())
    data[4:40] = b"\xff" * 36  # the first page's header, just after the leading magic bytes
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value).startswith(f"{path}:row 1: cannot read the Parquet data (")
    assert str(caught.value).endswith("); write the file again; it is damaged or truncated")


def test_a_directory_without_parquet_parts_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(InputError) as caught:
        read_leads(tmp_path)
    assert str(caught.value) == f"{tmp_path}: is a directory; pass the path of a file, or a directory of .parquet part files"


def test_a_parquet_stream_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        read_leads(io.BytesIO(b"PAR1"), fmt="parquet", name="<stdin>")
    assert str(caught.value) == "<stdin>: Parquet is read from a file, not a stream; name the .parquet file or directory"


@pytest.mark.parametrize(("column", "values", "arrow_type", "message"), [
    ("email", [["a@acme.io"], None], pa.list_(pa.string()),
     "column 'email' is of Parquet type list<element: string>, not text; write email as text"),
    ("created_at", [1, 2], pa.int64(),
     "column 'created_at' is of Parquet type int64, not a timestamp, a date or text; "
     "write created_at as a timestamp, a date or text"),
    ("fields.tags", [{"a": 1}, None], pa.struct([("a", pa.int64())]),
     "column 'fields.tags' is of Parquet type struct<a: int64>, not a single value (text, a number, true/false, a "
     "date or a timestamp); write that field as a single value (text, a number, true/false, a date or a timestamp)"),
    ("id", [b"L-1", b"L-2"], pa.binary(),
     "column 'id' is of Parquet type binary, not text or an integer; write id as text or an integer"),
])
def test_a_column_of_the_wrong_parquet_type_is_one_line_naming_it(tmp_path: Path, column: str, values: list[Any],
                                                                   arrow_type: Any, message: str) -> None:
    path = tmp_path / "leads.parquet"
    columns = {"id": pa.array(["L-1", "L-2"]), column: pa.array(values, arrow_type)}
    pq.write_table(pa.table(columns), path)
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value) == f"{path}: {message}"


def test_a_column_named_twice_is_the_headers_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table([pa.array(["L-1"]), pa.array(["dana@acme.io"]), pa.array(["L-2"])],
                            names=["id", "email", "id"]), path)
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value) == f"{path}: column 'id' appears twice; keep one column per name"


def test_a_column_of_nulls_only_is_empty_cells_whatever_it_feeds(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": ["L-1"], "created_at": pa.array([None], pa.null()),
                             "fields.note": pa.array([None], pa.null())}), path)
    [lead] = list(read_leads(path))
    assert isinstance(lead, Lead) and lead.created_at is None and not lead.fields


def test_an_activities_column_of_the_wrong_type_names_its_part_file(tmp_path: Path) -> None:
    pq.write_table(_leads_table(), tmp_path / "leads.parquet")
    folder = tmp_path / "acts"
    folder.mkdir()
    pq.write_table(pa.table({"lead_id": ["L-1"], "type": [["page_view"]], "at": ["2026-11-20"]}),
                   folder / "part-0.parquet")
    with pytest.raises(InputError) as caught:
        list(read_leads(tmp_path / "leads.parquet", activities=folder))
    assert str(caught.value) == (f"{folder / 'part-0.parquet'}: column 'type' is of Parquet type list<element: string>, "
                                 "not text; write type as text")


def test_bad_values_reject_their_row_by_the_csv_rules(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({
        "id": ["L-1", "L-2", "L-3", None, "L-5"],
        "company.employees": ["1200", "lots", "12.0", "4", None],
        "company.annual_revenue": [1.5e8, None, float("nan"), None, None],
        "created_at": ["2026-11-20T10:00:00Z", None, None, None, "yesterday"],
    }), path, row_group_size=2)
    items = list(read_leads(path))
    assert [i.id for i in items if isinstance(i, Lead)] == ["L-1"]
    assert [(r.where, r.reason) for r in items if isinstance(r, Rejection)] == [
        (f"{path}:row 2", "company.employees: 'lots' is not a whole number; write digits such as 1200"),
        (f"{path}:row 3", "company.annual_revenue: 'nan' is not a number; write digits such as 250000000"),
        (f"{path}:row 4", "id is missing; every lead needs a non-empty id such as L-1001"),
        (f"{path}:row 5", "created_at: 'yesterday' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z"),
    ]


def test_bad_activity_rows_are_left_out_or_rejected_at_their_row(tmp_path: Path) -> None:
    leads, acts = tmp_path / "leads.parquet", tmp_path / "acts.parquet"
    pq.write_table(_leads_table(), leads)
    pq.write_table(pa.table({"lead_id": ["L-1", "L-1", None, "L-9"], "type": ["page_view", "demo_request", "x", "y"],
                             "at": ["2026-11-20T10:00:00Z", "soon", "2026-11-20", "2026-11-20"]}), acts)
    report = ReadReport()
    items = list(read_leads(leads, activities=acts, report=report))
    scored = [i for i in items if isinstance(i, Lead)]
    assert [(i.id, len(i.activities)) for i in scored] == [("L-1", 1), ("L-2", 0)]
    assert [(r.where, r.reason) for r in report.skipped] == [
        (f"{acts}:row 2", "activity left out: at: 'soon' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z")]
    assert [(r.where, r.reason) for r in items if isinstance(r, Rejection)] == [
        (f"{acts}:row 3", "lead_id is missing; every activity needs the id of its lead"),
        (f"{acts}:row 4", "activity for unknown lead 'L-9'; every activity's lead_id must match an id in the leads file"),
    ]


def test_an_empty_parquet_file_has_no_leads(tmp_path: Path) -> None:
    path = tmp_path / "leads.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), path)
    with pytest.raises(InputError) as caught:
        list(read_leads(path))
    assert str(caught.value) == f"{path}: no leads in this file; write one row per lead"


def test_unknown_columns_warn_once_for_a_directory_and_pandas_index_is_not_a_field(tmp_path: Path) -> None:
    folder = tmp_path / "leads"
    folder.mkdir()
    for number in range(2):
        pq.write_table(pa.table({"id": [f"L-{number}"], "Lead Score": [number], "__index_level_0__": [number]}),
                       folder / f"part-{number}.parquet")
    report = ReadReport()
    items = list(read_leads(folder, report=report))
    assert [(i.id, dict(i.fields)) for i in items] == [("L-0", {"lead_score": 0}), ("L-1", {"lead_score": 1})]
    assert report.warnings == [f"{folder}: 1 column kept as custom field: 'Lead Score' -> fields.lead_score; "
                               "map them with --map, or --strict to stop on them"]


# --- output ---------------------------------------------------------------------------------


@pytest.mark.parametrize("explain", [False, True])
def test_parquet_cards_read_back_equal_to_the_json_lines_cards(tmp_path: Path, engines: Any, explain: bool,
                                                               monkeypatch: Any) -> None:
    from leadscore.io import writers

    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP", 10)  # several row groups
    engine = engines["python"]
    leads = [i for i in read_leads(SAMPLES / "leads.jsonl") if isinstance(i, Lead)]
    index = engine.build_accounts(leads) if engine.needs_accounts else None
    cards = list(engine.score(leads, accounts=index))
    categories = ("fit", "intent", "readiness", "revenue", "negative", "account", "topic", "engagement")
    path = tmp_path / "cards.parquet"
    with path.open("wb") as handle:
        with ParquetWriter(handle, explain=explain, categories=categories) as writer:
            for card in cards:
                writer.write(card)
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    rows = pq.read_table(path).to_pylist()
    assert len(rows) == len(cards) == 46
    held = 0
    for row, card in zip(rows, cards):
        expected = card_to_dict(card, explain=explain)
        route = expected["route"] or {}
        assert row["id"] == expected["id"] and row["total"] == expected["total"] and row["band"] == expected["band"]
        assert (row["route_action"], row["route_queue"], row["sla_hours"]) == (
            route.get("action"), route.get("queue"), route.get("sla_hours"))
        assert {c: row[f"score_{c}"] for c in categories if row[f"score_{c}"] is not None} == expected["subscores"]
        assert row["reasons"] == expected["reasons"] and row["packs"] == expected["packs"]
        assert row["as_of"].strftime("%Y-%m-%dT%H:%M:%SZ") == expected["as_of"]
        assert row["points_band"] == expected.get("points_band")
        assert row["gate_notes"] == expected.get("gate_notes")
        held += row["points_band"] is not None
        if explain:
            assert json.loads(row["ledger"]) == expected["ledger"]
        else:
            assert "ledger" not in row
    assert held  # the samples have a lead a gate holds back


@pytest.mark.parametrize("explain", [False, True])
def test_cards_with_their_ledgers_go_in_smaller_row_groups(tmp_path: Path, engines: Any, explain: bool,
                                                           monkeypatch: Any) -> None:
    """A card with its ledger is some kilobytes: with explain a row group holds at most
    PARQUET_EXPLAIN_ROW_GROUP cards, so what the writer holds stays small."""
    from leadscore.io import writers

    monkeypatch.setattr(writers, "PARQUET_EXPLAIN_ROW_GROUP", 4)
    engine = engines["python"]
    leads = [i for i in read_leads(SAMPLES / "leads.jsonl") if isinstance(i, Lead)]
    cards = list(engine.score(leads, accounts=engine.build_accounts(leads) if engine.needs_accounts else None))
    path = tmp_path / "cards.parquet"
    with path.open("wb") as handle:
        with ParquetWriter(handle, explain=explain) as writer:
            for card in cards:
                writer.write(card)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 46 and meta.num_row_groups == (12 if explain else 1)


def test_a_run_that_scored_nothing_still_writes_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "cards.parquet"
    with path.open("wb") as handle:
        ParquetWriter(handle, categories=("fit",)).close()
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.names == ["id", "total", "band", "points_band", "gate_notes", "route_action", "route_queue",
                                  "sla_hours", "score_fit", "reasons", "packs", "as_of"]
    assert str(table.schema.field("reasons").type) == "list<element: string>"

