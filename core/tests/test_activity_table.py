"""The activities file's table: held as objects, or spilled to a temporary SQLite database past
SPILL_ROWS activities; the leads, their activities and the rejections are the same either way."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadscore.errors import InputError
from leadscore.io import read_leads
from leadscore.io import readers
from leadscore.model import Lead

LEADS = [f"L-{n}" for n in range(1, 6)]
TIMES = ["2026-11-19T16:45:00Z", "2026-11-19T16:45:00+01:00", "2026-11-19", "2026-11-20T10:00:00.123456Z",
         "1999-01-01T00:00:00Z", "2026-11-19T16:45:00-08:00", "yesterday", ""]
CELLS = st.one_of(
    st.sampled_from(["", "true", "False", "0", "-7", "2.5", "1e-7", "-0.0", "007", str(2 ** 70), "9" * 30,
                     "1e400", "/pricing", " padded ", "Zürich", "=cmd()"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
)
ROW = st.tuples(
    st.sampled_from([*LEADS, "L-404", "L-405", "", " L-1 "]),
    st.sampled_from(["page_view", "demo_request", " webinar_attendance ", ""]),
    st.sampled_from(TIMES),
    CELLS,
    CELLS,
)


def _files(tmp_path, rows):
    leads = tmp_path / "leads.csv"
    leads.write_text("id,email\n" + "".join(f"{lead},{lead.lower()}@acme.io\n" for lead in LEADS), encoding="utf-8")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["lead_id", "type", "at", "properties.url", "properties.seconds"])
    writer.writerows(rows)
    acts = tmp_path / "acts.csv"
    acts.write_text(buffer.getvalue() + "L-2,page_view,2026-11-19T16:45:00Z,\"unclosed\n", encoding="utf-8")
    return leads, acts


def _read(leads, acts, spill_rows, monkeypatch):
    monkeypatch.setattr(readers._ActivityTable, "SPILL_ROWS", spill_rows)
    return [(type(item).__name__, item) for item in read_leads(leads, activities=acts, name="leads.csv")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, max_size=30), spill_rows=st.integers(1, 12))
@example(rows=[("L-1", "page_view", "2026-11-19T16:45:00Z", str(2 ** 70), "2.5"),
               ("L-404", "page_view", "2026-11-19", "", ""),
               ("L-1", "page_view", "2026-11-20T10:00:00.123456Z", "1e-7", "-0.0"),
               ("L-2", "demo_request", "2026-11-19T16:45:00+01:00", "Zürich", "007")], spill_rows=1)
def test_spilled_table_reads_what_the_held_table_reads(tmp_path, monkeypatch, rows, spill_rows):
    leads, acts = _files(tmp_path, rows)
    held = _read(leads, acts, 10 ** 9, monkeypatch)
    spilled = _read(leads, acts, spill_rows, monkeypatch)
    assert spilled == held
    # Every lead read, its activities equal field by field (a float's bits, a datetime's zone), and
    # each row of an unknown lead rejected once, in the file's order.
    for (_, a), (_, b) in zip(held, spilled):
        if isinstance(a, Lead):
            assert [(x.type, x.at, x.at.tzinfo, repr(dict(x.properties)), x.id) for x in a.activities] == \
                   [(y.type, y.at, y.at.tzinfo, repr(dict(y.properties)), y.id) for y in b.activities]
    assert sum(isinstance(item, Lead) for _, item in held) == len(LEADS)


def test_the_table_spills_past_its_bound(tmp_path, monkeypatch):
    rows = [(lead, "page_view", f"2026-11-{day:02d}T10:00:00Z", f"/p{day}", str(day)) for day in range(1, 21)
            for lead in (*LEADS, "L-404")]
    leads, acts = _files(tmp_path, rows)
    tables = []
    original = readers._activity_table

    def keep(*args, **kwargs):
        table = original(*args, **kwargs)
        tables.append(table)
        return table

    monkeypatch.setattr(readers, "_activity_table", keep)
    held = _read(leads, acts, 10 ** 9, monkeypatch)
    spilled = _read(leads, acts, 50, monkeypatch)
    assert [type(t._store).__name__ for t in tables] == ["_HeldActivities", "_SpilledActivities"]
    assert spilled == held
    first = held[0][1]
    assert isinstance(first, Lead) and len(first.activities) == 20
    assert [item.where for kind, item in held if kind == "Rejection"] == [f"{acts}:7", f"{acts}:122"]


def test_the_spilled_database_is_closed_however_the_reading_ends(tmp_path, monkeypatch):
    rows = [(lead, "page_view", "2026-11-19T16:45:00Z", "", "") for lead in LEADS * 3]
    leads, acts = _files(tmp_path, rows)
    monkeypatch.setattr(readers._ActivityTable, "SPILL_ROWS", 2)
    made = []
    original = readers._SpilledActivities.of

    def keep(held, label):
        spilled = original(held, label)
        made.append(spilled)
        return spilled

    monkeypatch.setattr(readers._SpilledActivities, "of", staticmethod(keep))
    items = read_leads(leads, activities=acts, name="leads.csv")
    next(iter(items))
    items.close()
    (spilled,) = made
    with pytest.raises(Exception, match="closed"):
        spilled._db.execute("SELECT 1")


def test_a_full_disk_is_one_line_naming_the_activities_file(tmp_path, monkeypatch):
    rows = [(lead, "page_view", f"2026-11-{day:02d}T10:00:00Z", "/pricing" * 40, str(day)) for day in range(1, 29)
            for lead in LEADS]
    leads, acts = _files(tmp_path, rows)
    monkeypatch.setattr(readers._ActivityTable, "SPILL_ROWS", 2)
    monkeypatch.setattr(readers._SpilledActivities, "BATCH", 5)
    original = readers._SpilledActivities.__init__

    def small_disk(self, label):
        original(self, label)
        self._db.execute("PRAGMA max_page_count = 12")  # SQLite's "database or disk is full" past 12 pages

    monkeypatch.setattr(readers._SpilledActivities, "__init__", small_disk)
    with pytest.raises(InputError) as caught:
        list(read_leads(leads, activities=acts, name="leads.csv"))
    assert caught.value.where == str(acts)
    assert "could not keep its activities in a temporary file until their leads are read (database or disk is " \
           "full)" in caught.value.what
    assert "TMPDIR" in caught.value.fix


def test_a_file_of_rows_without_a_lead_spills_too(tmp_path, monkeypatch):
    rows = [("", "page_view", "2026-11-19T16:45:00Z", "", "")] * 30 + [("L-404", "page_view", "yesterday", "", "")] * 5
    leads, acts = _files(tmp_path, rows)
    held = _read(leads, acts, 10 ** 9, monkeypatch)
    stores = []
    original = readers._SpilledActivities.of
    monkeypatch.setattr(readers._SpilledActivities, "of",
                        staticmethod(lambda held, label: stores.append(original(held, label)) or stores[-1]))
    spilled = _read(leads, acts, 10, monkeypatch)
    assert len(stores) == 1 and spilled == held
    rejected = [item for kind, item in held if kind == "Rejection"]
    assert [r.where for r in rejected] == [f"{acts}:{n}" for n in range(2, 32)] + [f"{acts}:32", f"{acts}:37"]
    assert rejected[0].reason == "lead_id is missing; every activity needs the id of its lead"
    assert rejected[30].lead_id == "L-404"


def test_a_python_without_sqlite3_says_so_past_the_bound(tmp_path, monkeypatch):
    rows = [(lead, "page_view", "2026-11-19T16:45:00Z", "", "") for lead in LEADS * 3]
    leads, acts = _files(tmp_path, rows)
    monkeypatch.setattr(readers, "sqlite3", None)
    assert len(_read(leads, acts, 100, monkeypatch)) == len(LEADS) + 1  # under the bound: read as records
    monkeypatch.setattr(readers._ActivityTable, "SPILL_ROWS", 4)
    with pytest.raises(InputError) as caught:
        list(read_leads(leads, activities=acts, name="leads.csv"))
    assert caught.value.where == str(acts)
    assert caught.value.what == ("past 4 rows an activities file waits for its leads in a temporary SQLite "
                                 "database, and this Python has no sqlite3 module")


def test_a_long_run_of_one_lead_is_stored_in_parts(tmp_path, monkeypatch):
    rows = [("L-1", "page_view", f"2026-11-{day:02d}T10:00:00Z", f"/p{day}", str(day)) for day in range(1, 26)]
    rows += [("L-2", "page_view", "2026-11-19T16:45:00Z", "", "")] * 3
    leads, acts = _files(tmp_path, rows)
    held = _read(leads, acts, 10 ** 9, monkeypatch)
    monkeypatch.setattr(readers._SpilledActivities, "BATCH", 4)
    stored = []
    original = readers._SpilledActivities._ready

    def keep(self):
        original(self)  # the whole file is written by the first look-up
        if not stored:
            stored.extend(self._db.execute("SELECT lead_id, count(*) FROM activity GROUP BY lead_id ORDER BY 1"))

    monkeypatch.setattr(readers._SpilledActivities, "_ready", keep)
    spilled = _read(leads, acts, 2, monkeypatch)
    assert spilled == held and len(held[0][1].activities) == 25
    assert stored == [("L-1", 7), ("L-2", 1)]  # 25 activities as 4 + 4 + ... + 1: no record holds more than 4
