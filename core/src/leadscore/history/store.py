"""The history store: one small interface over a database of runs, cards, lead snapshots and alerts.

:class:`HistoryStore` is what the rest of leadscore calls. :class:`SqlStore` implements it once in
portable SQL; the DuckDB and PostgreSQL stores only say how to connect, bind parameters, load many
rows and lock for a migration. :func:`open_store` picks one from the target (a file path or a
``postgresql://`` URL).
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from attrs import field, frozen

from leadscore.columnar import stop_if_interrupted
from leadscore.errors import LeadscoreError
from leadscore.history.schema import LATEST, MIGRATIONS, VERSION_TABLE, Migration

# Rows per statement when loading many (bounded memory, few round trips).
BATCH_ROWS = 5000
# Up to this many rows go in one INSERT ... VALUES; more are bulk loaded.
VALUES_ROWS = 64
HISTORY_FIX = "install the history extra: pip install 'leadscore[history]'"


class HistoryError(LeadscoreError):
    """A history database that cannot be opened, read or written (one line, names the target)."""


# --- records --------------------------------------------------------------------------------


@frozen
class StoredPack:
    """A rulepack as a run used it: name, version, a hash of its text, and where it came from."""

    name: str
    version: str
    hash: str
    origin: str
    active: bool = True
    """False for a pack stored only because an active pack extends it."""
    text: str = field(default="", repr=False)


@frozen
class RunInfo:
    """One stored run: a ``score --history`` run (kind ``score``) or an ``ingest`` stream."""

    run_id: int
    kind: str
    started_at: datetime
    finished_at: datetime | None
    as_of: datetime | None
    engine: str
    source: str | None
    leadscore_version: str
    scored: int
    rejected: int
    with_ledger: bool
    bands: tuple[tuple[str, int], ...]
    packs: tuple[StoredPack, ...] = ()

    @property
    def complete(self) -> bool:
        return self.finished_at is not None


@frozen
class StoredCard:
    """One lead's card in one run (``seq`` numbers a lead's cards within an ingest run)."""

    run_id: int
    lead_id: str
    seq: int
    account_key: str | None
    as_of: datetime
    total: int
    band: str
    points_band: str
    route_action: str | None
    route_queue: str | None
    subscores: Mapping[str, int]
    reasons: tuple[str, ...]
    ledger: Sequence[Mapping[str, Any]] | None
    """JSON-ready ledger lines (a tuple, or LedgerDicts made on first read), None unless stored."""
    snapshot: str

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.run_id, self.lead_id, self.seq)


@frozen
class LeadState:
    """A lead as the history holds it now: its latest snapshot and card (what ``ingest`` updates)."""

    lead_id: str
    account_key: str | None
    snapshot: str
    as_of: datetime
    run_id: int
    seq: int
    total: int
    band: str
    route_action: str | None
    field_times: Mapping[str, str] = field(factory=dict)


@frozen
class AlertRecord:
    """An alert as delivered (or tried): the key makes delivery idempotent."""

    alert_key: str
    lead_id: str
    run_id: int
    seq: int
    as_of: datetime
    from_band: str | None
    to_band: str
    channel: str
    status: str
    attempts: int
    last_error: str | None
    payload: str
    first_tried_at: datetime
    delivered_at: datetime | None


@frozen
class EventRow:
    run_id: int
    line: int
    event_id: str | None
    lead_id: str | None
    kind: str | None
    occurred_at: datetime | None
    status: str
    detail: str


# --- helpers ----------------------------------------------------------------------------------


def snapshot_hash(text: str) -> str:
    """The name of a stored lead snapshot: 128 bits of SHA-256 over its canonical JSON."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def pack_hash(text: str) -> str:
    """The content hash of a rulepack's TOML text, as stored with each run."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def canonical_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits (the readers accept them): the standard library's JSON
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def to_db_time(value: datetime | None) -> datetime | None:
    """UTC without a zone, as the schema stores every time."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)


def from_db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the interface ----------------------------------------------------------------------------


class HistoryStore(abc.ABC):
    """Runs, cards, snapshots, current lead state, events and alert deliveries.

    Writes happen inside :meth:`transaction`: a run, an ingest batch or an alert delivery commits
    whole or not at all. Reads may happen anywhere.
    """

    target: str

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> Any:
        """A context manager: commit on normal exit, roll back on an exception."""

    # writes
    @abc.abstractmethod
    def new_run(self, *, kind: str, started_at: datetime, as_of: datetime | None, engine: str,
                source: str | None, leadscore_version: str, with_ledger: bool,
                bands: Sequence[tuple[str, int]], packs: Sequence[StoredPack]) -> int: ...

    @abc.abstractmethod
    def finish_run(self, run_id: int, *, scored: int, rejected: int, finished_at: datetime) -> None: ...

    @abc.abstractmethod
    def add_cards(self, cards: Sequence[StoredCard]) -> None: ...

    @abc.abstractmethod
    def add_snapshots(self, snapshots: Mapping[str, str]) -> None: ...

    @abc.abstractmethod
    def add_rejections(self, run_id: int, rows: Sequence[tuple[int, str | None, str, str]]) -> None: ...

    @abc.abstractmethod
    def put_leads(self, states: Sequence[LeadState]) -> None: ...

    @abc.abstractmethod
    def add_events(self, rows: Sequence[EventRow]) -> None: ...

    @abc.abstractmethod
    def put_alert(self, record: AlertRecord) -> None: ...

    # reads
    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def runs(self) -> list[RunInfo]: ...

    @abc.abstractmethod
    def run(self, run_id: int, with_texts: bool = False) -> RunInfo | None: ...

    @abc.abstractmethod
    def cards_for_leads(self, lead_ids: Iterable[str]) -> dict[str, list[StoredCard]]: ...

    @abc.abstractmethod
    def lead_histories(self, min_run: int | None = None) -> Iterator[tuple[str, list[StoredCard]]]: ...

    @abc.abstractmethod
    def run_cards(self, run_id: int) -> Iterator[StoredCard]: ...

    @abc.abstractmethod
    def account_contacts(self, card: StoredCard, same_run: bool) -> list[StoredCard]: ...

    @abc.abstractmethod
    def snapshots(self, hashes: Iterable[str]) -> dict[str, str]: ...

    @abc.abstractmethod
    def lead_states(self, lead_ids: Iterable[str]) -> dict[str, LeadState]: ...

    @abc.abstractmethod
    def lead_states_for_accounts(self, keys: Iterable[str]) -> dict[str, LeadState]: ...

    @abc.abstractmethod
    def seen_event_ids(self, event_ids: Iterable[str]) -> set[str]: ...

    @abc.abstractmethod
    def alert_records(self, keys: Iterable[str] | None = None) -> dict[str, AlertRecord]: ...

    @abc.abstractmethod
    def count(self, table: str) -> int: ...

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the portable SQL implementation ------------------------------------------------------------

_CARD_COLUMNS = ("run_id", "lead_id", "seq", "account_key", "as_of", "total", "band", "points_band",
                 "route_action", "route_queue", "subscores", "reasons", "ledger", "snapshot")
_LEAD_COLUMNS = ("lead_id", "account_key", "snapshot", "as_of", "run_id", "seq", "total", "band",
                 "route_action", "field_times")
_ALERT_COLUMNS = ("alert_key", "lead_id", "run_id", "seq", "as_of", "from_band", "to_band", "channel", "status",
                  "attempts", "last_error", "payload", "first_tried_at", "delivered_at")
_EVENT_COLUMNS = ("run_id", "line", "event_id", "lead_id", "kind", "occurred_at", "status", "detail")
_RUN_COLUMNS = ("run_id", "kind", "started_at", "finished_at", "as_of", "engine", "source", "leadscore_version",
                "scored", "rejected", "with_ledger", "bands")
TABLES = ("runs", "packs", "run_packs", "snapshots", "cards", "rejections", "leads", "events", "alerts")


def _card_row(card: StoredCard) -> tuple[Any, ...]:
    return (card.run_id, card.lead_id, card.seq, card.account_key, to_db_time(card.as_of), card.total, card.band,
            card.points_band, card.route_action, card.route_queue, canonical_json(dict(card.subscores)),
            canonical_json(list(card.reasons)), None if card.ledger is None else canonical_json(list(card.ledger)),
            card.snapshot)


def _card(row: Sequence[Any]) -> StoredCard:
    ledger = row[12]
    return StoredCard(row[0], row[1], row[2], row[3], from_db_time(row[4]), row[5], row[6], row[7], row[8], row[9],
                      orjson.loads(row[10]), tuple(orjson.loads(row[11])),
                      None if ledger is None else tuple(orjson.loads(ledger)), row[13])


def _lead_row(state: LeadState) -> tuple[Any, ...]:
    return (state.lead_id, state.account_key, state.snapshot, to_db_time(state.as_of), state.run_id, state.seq,
            state.total, state.band, state.route_action, canonical_json(dict(state.field_times)))


def _lead_state(row: Sequence[Any]) -> LeadState:
    return LeadState(row[0], row[1], row[2], from_db_time(row[3]), row[4], row[5], row[6], row[7], row[8],
                     orjson.loads(row[9]) if row[9] else {})


def _alert_row(rec: AlertRecord) -> tuple[Any, ...]:
    return (rec.alert_key, rec.lead_id, rec.run_id, rec.seq, to_db_time(rec.as_of), rec.from_band, rec.to_band,
            rec.channel, rec.status, rec.attempts, rec.last_error, rec.payload, to_db_time(rec.first_tried_at),
            to_db_time(rec.delivered_at))


def _alert(row: Sequence[Any]) -> AlertRecord:
    return AlertRecord(row[0], row[1], row[2], row[3], from_db_time(row[4]), row[5], row[6], row[7], row[8], row[9],
                       row[10], row[11], from_db_time(row[12]), from_db_time(row[13]))


class SqlStore(HistoryStore):
    """The store in SQL that DuckDB and PostgreSQL both run; subclasses supply the connection."""

    placeholder = "?"

    def __init__(self, target: str) -> None:
        self.target = target
        self._depth = 0

    # --- what a database-specific store provides -----------------------------------------

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns a cursor-like object with fetchone/fetchall."""

    @abc.abstractmethod
    def _bulk(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Load many ``rows`` into ``table`` the database's fast way (no conflict handling)."""

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    def _lock_schema(self) -> None:
        """Hold a lock on schema changes until the transaction ends (PostgreSQL; DuckDB has one writer)."""

    @abc.abstractmethod
    def _failure(self, err: Exception, doing: str) -> HistoryError | None:
        """The one-line error for a database failure, or None when ``err`` is not the database's."""

    # --- plumbing -------------------------------------------------------------------------

    def _insert_many(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                     conflict: str = "") -> None:
        """Insert ``rows``; ``conflict`` is an ``ON CONFLICT ...`` clause or empty.

        A few rows go in one ``INSERT ... VALUES``; more are bulk loaded (DuckDB's appender,
        PostgreSQL's COPY), through a temporary table when a conflict clause must see them.
        """
        if not rows:
            return
        names = ", ".join(columns)
        if len(rows) <= VALUES_ROWS:
            one = "(" + ", ".join("?" * len(columns)) + ")"
            self._x(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(rows))} {conflict}",
                    [value for row in rows for value in row])
            return
        if not conflict:
            self._bulk(table, columns, rows)
            return
        incoming = f"{table}_incoming"
        self._x(f"CREATE TEMPORARY TABLE IF NOT EXISTS {incoming} AS SELECT {names} FROM {table} LIMIT 0")
        self._bulk(incoming, columns, rows)
        self._x(f"INSERT INTO {table} ({names}) SELECT {names} FROM {incoming} {conflict}")
        self._x(f"DELETE FROM {incoming}")

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._execute(self._sql(sql), params).fetchall())

    def _x(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._execute(self._sql(sql), params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on normal exit, roll back on an exception; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._guard(self._begin, "start a transaction")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            try:
                self._rollback()
            except Exception:  # the original error is the one to report
                pass
            raise
        self._depth = 0
        self._guard(self._commit, "commit")

    def _guard(self, fn: Any, doing: str) -> Any:
        try:
            return fn()
        except Exception as err:
            stop_if_interrupted(err)  # Ctrl-C or SIGTERM during a DuckDB statement: a stop, not a failure
            failure = self._failure(err, doing)
            if failure is None:
                raise
            raise failure from err

    def migrate(self) -> None:
        """Bring the schema to the latest version (each migration in its own transaction)."""
        with self.transaction():
            # Two processes opening a new PostgreSQL history at once would both create the table
            # (and one fail on the catalog's unique index) without this lock.
            self._lock_schema()
            self._x(VERSION_TABLE)
        current = self.schema_version()
        if current > LATEST:
            raise HistoryError(self.target, f"schema version {current} is newer than this leadscore knows ({LATEST})",
                               "upgrade leadscore to read this history")
        for migration in MIGRATIONS:
            if migration.version > current:
                self._apply(migration)

    def _apply(self, migration: Migration) -> None:
        with self.transaction():
            self._lock_schema()
            # Another process may have applied it while this one waited for the lock.
            if self._q("SELECT 1 FROM schema_migrations WHERE version = ?", [migration.version]):
                return
            for statement in migration.statements:
                self._x(statement)
            self._x("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [migration.version, migration.name, to_db_time(utcnow())])

    def schema_version(self) -> int:
        rows = self._q("SELECT max(version) FROM schema_migrations")
        return rows[0][0] or 0

    # --- writes ---------------------------------------------------------------------------

    def new_run(self, *, kind: str, started_at: datetime, as_of: datetime | None, engine: str,
                source: str | None, leadscore_version: str, with_ledger: bool,
                bands: Sequence[tuple[str, int]], packs: Sequence[StoredPack]) -> int:
        run_id = (self._q("SELECT max(run_id) FROM runs")[0][0] or 0) + 1
        self._x("INSERT INTO runs (run_id, kind, started_at, as_of, engine, source, leadscore_version, with_ledger, "
                "bands) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, kind, to_db_time(started_at), to_db_time(as_of), engine, source, leadscore_version,
                 with_ledger, canonical_json([list(b) for b in bands])])
        self._insert_many("packs", ("hash", "name", "version", "text"),
                          [(p.hash, p.name, p.version, p.text) for p in {p.hash: p for p in packs}.values()],
                          "ON CONFLICT (hash) DO NOTHING")
        self._insert_many("run_packs", ("run_id", "position", "hash", "name", "version", "origin", "active"),
                          [(run_id, i, p.hash, p.name, p.version, p.origin, p.active) for i, p in enumerate(packs)])
        return run_id

    def finish_run(self, run_id: int, *, scored: int, rejected: int, finished_at: datetime) -> None:
        self._x("UPDATE runs SET scored = ?, rejected = ?, finished_at = ? WHERE run_id = ?",
                [scored, rejected, to_db_time(finished_at), run_id])

    def add_cards(self, cards: Sequence[StoredCard]) -> None:
        self._insert_many("cards", _CARD_COLUMNS, [_card_row(c) for c in cards])

    def add_snapshots(self, snapshots: Mapping[str, str]) -> None:
        self._insert_many("snapshots", ("hash", "lead"), list(snapshots.items()), "ON CONFLICT (hash) DO NOTHING")

    def add_rejections(self, run_id: int, rows: Sequence[tuple[int, str | None, str, str]]) -> None:
        self._insert_many("rejections", ("run_id", "line", "lead_id", "place", "reason"),
                          [(run_id, *row) for row in rows])

    def put_leads(self, states: Sequence[LeadState]) -> None:
        # A lead twice in one batch: the last state wins (one row per key per statement).
        latest = {s.lead_id: s for s in states}
        updates = ", ".join(f"{c} = excluded.{c}" for c in _LEAD_COLUMNS[1:])
        # A state older than the stored one (a run with an earlier --as-of) does not replace it.
        self._insert_many("leads", _LEAD_COLUMNS, [_lead_row(s) for s in latest.values()],
                          f"ON CONFLICT (lead_id) DO UPDATE SET {updates} WHERE excluded.as_of >= leads.as_of")

    def add_events(self, rows: Sequence[EventRow]) -> None:
        self._insert_many("events", _EVENT_COLUMNS,
                          [(r.run_id, r.line, r.event_id, r.lead_id, r.kind, to_db_time(r.occurred_at), r.status,
                            r.detail) for r in rows])

    def put_alert(self, record: AlertRecord) -> None:
        updates = ", ".join(f"{c} = excluded.{c}" for c in ("status", "attempts", "last_error", "delivered_at",
                                                             "channel", "payload"))
        self._insert_many("alerts", _ALERT_COLUMNS, [_alert_row(record)],
                          f"ON CONFLICT (alert_key) DO UPDATE SET {updates}")

    # --- reads ----------------------------------------------------------------------------

    def _run_info(self, row: Sequence[Any], packs: tuple[StoredPack, ...]) -> RunInfo:
        bands = tuple((name, int(points)) for name, points in orjson.loads(row[11]))
        return RunInfo(row[0], row[1], from_db_time(row[2]), from_db_time(row[3]), from_db_time(row[4]), row[5],
                       row[6], row[7], row[8], row[9], bool(row[10]), bands, packs)

    def runs(self) -> list[RunInfo]:
        packs: dict[int, list[StoredPack]] = {}
        for run_id, name, version, hash_, origin, active in self._q(
                "SELECT run_id, name, version, hash, origin, active FROM run_packs ORDER BY run_id, position"):
            packs.setdefault(run_id, []).append(StoredPack(name, version, hash_, origin, bool(active)))
        rows = self._q(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY run_id")
        return [self._run_info(row, tuple(packs.get(row[0], ()))) for row in rows]

    def run(self, run_id: int, with_texts: bool = False) -> RunInfo | None:
        rows = self._q(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", [run_id])
        if not rows:
            return None
        text = "p.text" if with_texts else "''"
        packs = tuple(StoredPack(name, version, hash_, origin, bool(active), body)
                      for name, version, hash_, origin, active, body in self._q(
            f"SELECT r.name, r.version, r.hash, r.origin, r.active, {text} FROM run_packs r JOIN packs p ON p.hash = r.hash "
            "WHERE r.run_id = ? ORDER BY r.position", [run_id]))
        return self._run_info(rows[0], packs)

    def _in(self, sql: str, values: Iterable[Any]) -> list[tuple[Any, ...]]:
        """``sql``, whose ``= ANY(?)`` is given ``values`` as one array: one statement for any number."""
        values = sorted(set(values))
        return self._q(sql, [values]) if values else []

    def cards_for_leads(self, lead_ids: Iterable[str]) -> dict[str, list[StoredCard]]:
        ids = sorted(set(lead_ids))
        found: dict[str, list[StoredCard]] = {i: [] for i in ids}
        rows = self._in(f"SELECT {', '.join(_CARD_COLUMNS)} FROM cards WHERE lead_id = ANY(?)", ids)
        for row in sorted(rows, key=lambda r: (r[1], r[4], r[0], r[2])):
            found[row[1]].append(_card(row))
        return found

    def lead_histories(self, min_run: int | None = None) -> Iterator[tuple[str, list[StoredCard]]]:
        """Every lead's cards in time order (as_of, then run, then seq), lead by lead in id order.

        With ``min_run``, only leads that have a card in that run or a later one (with their
        whole history, which alert rules need).
        """
        last = ""
        while True:
            if min_run is None:
                ids = [r[0] for r in self._q(
                    "SELECT DISTINCT lead_id FROM cards WHERE lead_id > ? ORDER BY lead_id LIMIT ?",
                    [last, BATCH_ROWS // 5])]
            else:
                ids = [r[0] for r in self._q(
                    "SELECT DISTINCT lead_id FROM cards WHERE lead_id > ? AND run_id >= ? ORDER BY lead_id LIMIT ?",
                    [last, min_run, BATCH_ROWS // 5])]
            if not ids:
                return
            histories = self.cards_for_leads(ids)
            for lead_id in ids:
                yield lead_id, histories[lead_id]
            last = ids[-1]

    def run_cards(self, run_id: int) -> Iterator[StoredCard]:
        """A run's cards in (lead id, seq) order, read a page at a time."""
        last_id, last_seq = "", -1
        while True:
            rows = self._q(
                f"SELECT {', '.join(_CARD_COLUMNS)} FROM cards WHERE run_id = ? "
                "AND (lead_id > ? OR (lead_id = ? AND seq > ?)) ORDER BY lead_id, seq LIMIT ?",
                [run_id, last_id, last_id, last_seq, BATCH_ROWS])
            if not rows:
                return
            for row in rows:
                yield _card(row)
            last_id, last_seq = rows[-1][1], rows[-1][2]

    def account_contacts(self, card: StoredCard, same_run: bool) -> list[StoredCard]:
        """The latest card, at or before ``card``, of every lead sharing its account (itself included).

        ``same_run`` keeps to the cards of ``card``'s run (a batch run scored its whole population).
        """
        if card.account_key is None:
            return [card]
        rows = self._q(f"SELECT {', '.join(_CARD_COLUMNS)} FROM cards WHERE account_key = ? AND as_of <= ?",
                       [card.account_key, to_db_time(card.as_of)])
        latest: dict[str, StoredCard] = {}
        for row in rows:
            other = _card(row)
            if same_run and other.run_id != card.run_id:
                continue
            if (other.as_of, other.run_id, other.seq) > (card.as_of, card.run_id, card.seq):
                continue
            seen = latest.get(other.lead_id)
            if seen is None or (other.as_of, other.run_id, other.seq) > (seen.as_of, seen.run_id, seen.seq):
                latest[other.lead_id] = other
        latest[card.lead_id] = card
        return [latest[k] for k in sorted(latest)]

    def snapshots(self, hashes: Iterable[str]) -> dict[str, str]:
        return dict(self._in("SELECT hash, lead FROM snapshots WHERE hash = ANY(?)", hashes))

    def lead_states(self, lead_ids: Iterable[str]) -> dict[str, LeadState]:
        rows = self._in(f"SELECT {', '.join(_LEAD_COLUMNS)} FROM leads WHERE lead_id = ANY(?)", lead_ids)
        return {row[0]: _lead_state(row) for row in rows}

    def lead_states_for_accounts(self, keys: Iterable[str]) -> dict[str, LeadState]:
        rows = self._in(f"SELECT {', '.join(_LEAD_COLUMNS)} FROM leads WHERE account_key = ANY(?)", keys)
        return {row[0]: _lead_state(row) for row in rows}

    def seen_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        rows = self._in("SELECT event_id FROM events WHERE status = 'applied' AND event_id = ANY(?)", event_ids)
        return {r[0] for r in rows}

    def alert_records(self, keys: Iterable[str] | None = None) -> dict[str, AlertRecord]:
        columns = ", ".join(_ALERT_COLUMNS)
        if keys is None:
            rows = self._q(f"SELECT {columns} FROM alerts ORDER BY as_of, alert_key")
        else:
            rows = self._in(f"SELECT {columns} FROM alerts WHERE alert_key = ANY(?)", keys)
        return {row[0]: _alert(row) for row in rows}

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return self._q(f"SELECT count(*) FROM {table}")[0][0]


def optional_module(name: str, target: str) -> Any:
    """Import a database driver, or say in one line how to install it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise HistoryError(target, f"the {name} package is not installed", HISTORY_FIX) from err
