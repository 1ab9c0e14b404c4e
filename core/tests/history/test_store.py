"""The history store, the same tests against DuckDB and PostgreSQL: migrations, runs whole or not at all."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadscore import Engine
from leadscore.history import HistoryError, open_store
from leadscore.history.recorder import RunRecorder
from leadscore.history.rescore import lead_from_snapshot
from leadscore.history.schema import LATEST, MIGRATIONS, VERSION_TABLE
from leadscore.history.store import VALUES_ROWS, EventRow, LeadState, pack_hash
from leadscore.io import read_leads

SAMPLES = Path(__file__).resolve().parents[3] / "rulepacks" / "samples" / "leads.jsonl"
AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def record(target: str, as_of: datetime = AS_OF, with_ledger: bool = False) -> int:
    store = open_store(target)
    with store, Engine(as_of=as_of) as engine:
        leads = list(read_leads(SAMPLES))
        recorder = RunRecorder(store, engine, source=str(SAMPLES), with_ledger=with_ledger)
        recorder.start(as_of)
        index = engine.build_accounts(leads)
        for _ in recorder.score(leads, lambda items: engine.score(items, accounts=index)):
            pass
        return recorder.commit()


def test_open_runs_every_migration_once(history_target: str) -> None:
    with open_store(history_target) as store:
        assert store.schema_version() == LATEST
    with open_store(history_target) as store:  # opening again applies nothing twice
        assert store.schema_version() == LATEST
        assert store.count("runs") == 0


def test_processes_opening_a_new_history_at_once_all_get_it(history_target: str) -> None:
    """The first open creates the schema; the others wait for it rather than race it."""
    code = "import sys\nfrom leadscore.history import open_store\nwith open_store(sys.argv[1]) as s: print(s.schema_version())"
    children = [subprocess.Popen([sys.executable, "-c", code, history_target], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [child.communicate(timeout=120) for child in children]
    assert [(child.returncode, out.strip()) for child, (out, _) in zip(children, results)] == [(0, str(LATEST))] * 3, \
        [err for _, err in results]


def test_an_older_schema_is_migrated_with_its_data_kept(history_target: str) -> None:
    store = open_store(history_target)
    store.close()
    run_id = record(history_target)
    # Take the database back to schema 1 (drop what migration 2 added), as an older leadscore left it.
    store = open_store(history_target)
    with store.transaction():
        store._x("DROP TABLE events")
        store._x("DROP TABLE alerts")
        store._x("DELETE FROM schema_migrations WHERE version > 1")
    assert store.schema_version() == 1
    store.close()
    with open_store(history_target) as store:
        assert store.schema_version() == LATEST == MIGRATIONS[-1].version
        assert [r.run_id for r in store.runs()] == [run_id]
        assert store.count("cards") == 46
        assert store.count("alerts") == 0


def test_a_newer_schema_is_refused_in_one_line(history_target: str) -> None:
    with open_store(history_target) as store, store.transaction():
        store._x(VERSION_TABLE)
        store._x("INSERT INTO schema_migrations VALUES (99, 'from the future', ?)", [datetime(2030, 1, 1)])
    with pytest.raises(HistoryError) as err:
        open_store(history_target)
    assert "schema version 99 is newer than this leadscore knows" in str(err.value)
    assert "upgrade leadscore" in str(err.value)


def test_a_run_is_stored_with_packs_snapshots_cards_and_lead_state(history_target: str) -> None:
    first = record(history_target, datetime(2026, 11, 1, tzinfo=UTC))
    second = record(history_target, with_ledger=True)
    with open_store(history_target) as store:
        runs = store.runs()
        assert [(r.run_id, r.kind, r.scored, r.rejected, r.complete) for r in runs] == [
            (first, "score", 46, 0, True), (second, "score", 46, 0, True)]
        assert runs[1].with_ledger and not runs[0].with_ledger
        assert runs[0].bands[0] == ("early", 0) and ("sales_ready", 80) in runs[0].bands
        run = store.run(second, with_texts=True)
        assert run is not None
        names = [p.name for p in run.packs if p.active]
        assert "firr-base" in names
        for pack in run.packs:
            assert pack.hash == pack_hash(pack.text) and pack.version
        # Snapshots are kept once for leads that did not change, and read back equal.
        assert store.count("snapshots") == 46
        cards = list(store.run_cards(second))
        texts = store.snapshots(c.snapshot for c in cards)
        originals = {lead.id: lead for lead in read_leads(SAMPLES)}
        for card in cards:
            assert lead_from_snapshot(texts[card.snapshot], card.lead_id) == originals[card.lead_id]
            assert card.ledger is not None and sum(line["points"] for line in card.ledger) == card.total
        assert all(c.ledger is None for c in store.run_cards(first))
        history = store.cards_for_leads(["L-1001"])["L-1001"]
        assert [c.run_id for c in history] == [first, second]
        state = store.lead_states(["L-1001"])["L-1001"]
        assert (state.run_id, state.total, state.band) == (second, history[-1].total, history[-1].band)


def test_bulk_writes_and_array_reads_keep_every_row(history_target: str) -> None:
    """More rows than one INSERT ... VALUES takes go through the bulk path (DuckDB's appender,
    PostgreSQL's COPY), upserts through a temporary table; reads take thousands of keys at once."""
    many = 40 * VALUES_ROWS
    at = datetime(2026, 11, 1, tzinfo=UTC)

    def state(i: int, run_id: int, as_of: datetime, total: int) -> LeadState:
        return LeadState(f"L-{i:05d}", f"acct-{i % 7}", f"s{i}", as_of, run_id, 0, total, "early", None,
                         {"title": "2026-11-01T00:00:00+00:00"} if i % 2 else {})

    with open_store(history_target) as store:
        with store.transaction():
            store.add_snapshots({f"s{i}": f'{{"id": "L-{i:05d}"}}' for i in range(many)})
            store.put_leads([state(i, 1, at, i) for i in range(many)])
            store.add_events([EventRow(1, i, f"e-{i}", f"L-{i:05d}", "activity", at, "applied", "1 card")
                              for i in range(many)])
        with store.transaction():
            # Some snapshots again (kept once), and new states: later ones replace, earlier ones do not.
            store.add_snapshots({f"s{i}": "changed" for i in range(0, many, 2)})
            store.put_leads([state(i, 2, at + timedelta(days=1 if i % 3 else -1), -i) for i in range(many)])
        assert store.count("snapshots") == store.count("leads") == store.count("events") == many
        wanted = [f"L-{i:05d}" for i in range(many)]
        states = store.lead_states([*wanted, "L-nobody"])
        assert sorted(states) == wanted
        for i, lead_id in enumerate(wanted):
            got = states[lead_id]
            assert (got.run_id, got.total) == ((2, -i) if i % 3 else (1, i)), lead_id
            assert got.field_times == ({"title": "2026-11-01T00:00:00+00:00"} if i % 2 else {})
        texts = store.snapshots(f"s{i}" for i in range(many))
        assert len(texts) == many and texts["s0"] == '{"id": "L-00000"}'
        assert len(store.lead_states_for_accounts(["acct-3"])) == len(range(3, many, 7))
        assert store.seen_event_ids(["e-0", f"e-{many - 1}", "e-never"]) == {"e-0", f"e-{many - 1}"}


def test_an_earlier_as_of_does_not_replace_the_current_lead_state(history_target: str) -> None:
    later = record(history_target)
    record(history_target, datetime(2026, 10, 1, tzinfo=UTC))
    with open_store(history_target) as store:
        assert {s.run_id for s in store.lead_states(["L-1001", "L-1002"]).values()} == {later}


def test_an_aborted_run_leaves_the_history_as_it_was(history_target: str) -> None:
    kept = record(history_target)
    store = open_store(history_target)
    with store, Engine(as_of=AS_OF) as engine:
        recorder = RunRecorder(store, engine, source="x")
        recorder.start(AS_OF)
        for card in engine.score(list(read_leads(SAMPLES))[:10]):
            recorder.add(card, next(lead for lead in read_leads(SAMPLES) if lead.id == card.lead_id))
        recorder.flush()
        recorder.abort()
        assert [r.run_id for r in store.runs()] == [kept]
        assert store.count("cards") == 46


def test_reading_a_missing_duckdb_file_says_how_to_make_one(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    missing = tmp_path / "nothing.duckdb"
    with pytest.raises(HistoryError) as err:
        open_store(str(missing), create=False)
    assert str(err.value) == f"{missing}: no history database here; record a run first: leadscore score LEADS --history {missing}"
    assert not missing.exists()


def test_a_duckdb_history_holds_a_bounded_memory(tmp_path: Path) -> None:
    """The history file's connection has DuckDB's memory limit set (DuckDB's own is 80% of the
    machine's RAM, and a run's one transaction grew in it: 986 MB at 100,000 leads, bench/README.md)."""
    pytest.importorskip("duckdb")
    from leadscore.history.duckdb_store import MEMORY_LIMIT

    store = open_store(str(tmp_path / "h.duckdb"))
    try:
        shown = store.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        store.close()
    amount, unit = shown.split()
    assert MEMORY_LIMIT == "256MB" and unit == "MiB" and 200 <= float(amount) <= 256, shown


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("duckdb")
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("these are my notes\n" * 100)
    with pytest.raises(HistoryError) as err:
        open_store(str(bogus))
    assert str(err.value).startswith(f"{bogus}: ") and "\n" not in str(err.value)


def test_an_unreachable_postgresql_server_is_one_line() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://someone:secret@/nodb?host=/nonexistent-socket-dir&port=1"
    with pytest.raises(HistoryError) as err:
        open_store(url)
    text = str(err.value)
    assert text.startswith("postgresql://someone:***@/nodb") and "secret" not in text
    assert text.endswith("check the URL, the credentials and that the server is running")
