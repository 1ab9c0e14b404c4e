"""The history schema, as numbered migrations that every store runs on open.

One schema serves DuckDB and PostgreSQL: plain SQL types only (times are UTC ``TIMESTAMP``
without a zone, JSON is kept as ``TEXT``), so both stores run the same statements. A migration
is never edited once released; a change to the schema is a new migration at the end.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, packs, lead snapshots, cards and current lead state", (
        """CREATE TABLE runs (
            run_id BIGINT PRIMARY KEY,
            kind TEXT NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP,
            as_of TIMESTAMP,
            engine TEXT NOT NULL,
            source TEXT,
            leadscore_version TEXT NOT NULL,
            scored INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            with_ledger BOOLEAN NOT NULL DEFAULT FALSE,
            bands TEXT NOT NULL
        )""",
        """CREATE TABLE packs (
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        """CREATE TABLE run_packs (
            run_id BIGINT NOT NULL,
            position INTEGER NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            origin TEXT NOT NULL,
            active BOOLEAN NOT NULL,
            PRIMARY KEY (run_id, position)
        )""",
        """CREATE TABLE snapshots (
            hash TEXT PRIMARY KEY,
            lead TEXT NOT NULL
        )""",
        """CREATE TABLE cards (
            run_id BIGINT NOT NULL,
            lead_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            account_key TEXT,
            as_of TIMESTAMP NOT NULL,
            total INTEGER NOT NULL,
            band TEXT NOT NULL,
            points_band TEXT NOT NULL,
            route_action TEXT,
            route_queue TEXT,
            subscores TEXT NOT NULL,
            reasons TEXT NOT NULL,
            ledger TEXT,
            snapshot TEXT NOT NULL,
            PRIMARY KEY (run_id, lead_id, seq)
        )""",
        "CREATE INDEX cards_by_lead ON cards (lead_id)",
        """CREATE TABLE rejections (
            run_id BIGINT NOT NULL,
            line INTEGER NOT NULL,
            lead_id TEXT,
            place TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, line)
        )""",
        """CREATE TABLE leads (
            lead_id TEXT PRIMARY KEY,
            account_key TEXT,
            snapshot TEXT NOT NULL,
            as_of TIMESTAMP NOT NULL,
            run_id BIGINT NOT NULL,
            seq INTEGER NOT NULL,
            total INTEGER NOT NULL,
            band TEXT NOT NULL,
            route_action TEXT,
            field_times TEXT
        )""",
        "CREATE INDEX leads_by_account ON leads (account_key)",
    )),
    Migration(2, "ingested events and alert deliveries", (
        """CREATE TABLE events (
            run_id BIGINT NOT NULL,
            line INTEGER NOT NULL,
            event_id TEXT,
            lead_id TEXT,
            kind TEXT,
            occurred_at TIMESTAMP,
            status TEXT NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (run_id, line)
        )""",
        "CREATE INDEX events_by_id ON events (event_id)",
        """CREATE TABLE alerts (
            alert_key TEXT PRIMARY KEY,
            lead_id TEXT NOT NULL,
            run_id BIGINT NOT NULL,
            seq INTEGER NOT NULL,
            as_of TIMESTAMP NOT NULL,
            from_band TEXT,
            to_band TEXT NOT NULL,
            channel TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT,
            payload TEXT NOT NULL,
            first_tried_at TIMESTAMP NOT NULL,
            delivered_at TIMESTAMP
        )""",
    )),
)

LATEST = MIGRATIONS[-1].version

# Kept apart from the migrations: it must exist before the first one runs.
VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMP NOT NULL
)"""
