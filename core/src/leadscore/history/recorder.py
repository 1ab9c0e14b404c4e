"""Recording a scoring run in the history: one transaction, streamed in batches, whole or nothing.

Each card is stored with the lead's snapshot (its input JSON, named by a hash, kept once however
many runs see it unchanged), so replay and diff later need no source files.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from leadscore import __version__
from leadscore.accounts import account_key
from leadscore.history.store import (
    BATCH_ROWS,
    HistoryStore,
    LeadState,
    StoredCard,
    StoredPack,
    canonical_json,
    pack_hash,
    snapshot_hash,
    utcnow,
)
from leadscore.io.writers import contribution_to_dict, lead_to_dict
from leadscore.model import Contribution, LazyRecords, Lead, Rejection, ScoreCard

# Top reasons kept with every card (the full ledger only with ledgers on).
STORED_REASONS = 5


def engine_packs(engine: Any) -> list[StoredPack]:
    """The packs a run used: the active ones, then every pack they extend (to rebuild the run later)."""
    by_name = {p.name: p for p in engine.packs}
    active = [p.name for p in engine.active_packs()]
    needed: list[str] = []
    todo = list(active)
    while todo:
        name = todo.pop(0)
        if name in needed:
            continue
        needed.append(name)
        todo.extend(by_name[name].extends)
    return [StoredPack(name, by_name[name].version, pack_hash(by_name[name].text),
                       _origin(engine, by_name[name]), name in active, by_name[name].text) for name in needed]


def _origin(engine: Any, pack: Any) -> str:
    plugin = engine.pack_origin.get(pack.name)
    if plugin and pack.source.startswith(f"{plugin}:"):
        return f"plugin {plugin}"
    return f"file {pack.source}"


def engine_bands(engine: Any) -> list[tuple[str, int]]:
    """Every band the run's packs define, lowest first (a later, more specific pack's threshold wins).

    A "top N%" band has no minimum of its own (0 here): among bands of the same minimum, a smaller
    share ranks higher."""
    found: dict[str, tuple[int, float]] = {}
    for pack in sorted(engine.packs, key=lambda p: p.priority):
        for band in pack.bands:
            found[band.name] = (band.min_points, 0.0 if band.share is None else 1.0 - band.share)
    order = sorted(found.items(), key=lambda item: (item[1], item[0]))
    return [(name, minimum) for name, (minimum, _) in order]


def stored_card(card: ScoreCard, run_id: int, seq: int, snapshot: str, with_ledger: bool,
                account: str | None) -> StoredCard:
    route = card.route
    return StoredCard(
        run_id, card.lead_id, seq, account, card.as_of, card.total, card.band, card.points_band,
        None if route is None else route.action, None if route is None else route.queue, dict(card.subscores),
        tuple(card.top_reasons(STORED_REASONS)),
        LedgerDicts(card.ledger) if with_ledger else None, snapshot)


class LedgerDicts(LazyRecords):
    """A card's ledger as the JSON-ready dicts a store writes, made on first read: ``ingest``
    stores the cards of many contacts per event, which only its batch's commit (and an alert
    that shows what changed) reads."""

    __slots__ = ("_ledger", "_dicts")

    def __init__(self, ledger: Sequence[Contribution]) -> None:
        self._ledger: Sequence[Contribution] | None = ledger
        self._dicts: tuple[dict[str, Any], ...] | None = None

    def _all(self) -> tuple[dict[str, Any], ...]:
        if self._dicts is None:
            self._dicts = tuple(contribution_to_dict(line) for line in self._ledger or ())
            self._ledger = None  # kept once, as dicts
        return self._dicts

    def __len__(self) -> int:
        return len(self._all()) if self._ledger is None else len(self._ledger)


def snapshot_of(lead: Lead) -> tuple[str, str]:
    """(hash, canonical JSON text) of a lead."""
    text = canonical_json(lead_to_dict(lead))
    return snapshot_hash(text), text


class RunRecorder:
    """Writes one run: :meth:`start`, then :meth:`score` (or :meth:`add`), then :meth:`commit`.

    Everything happens in one transaction; :meth:`abort` (or an exception) leaves the history as
    it was before the run.
    """

    def __init__(self, store: HistoryStore, engine: Any, *, source: str | None, with_ledger: bool = False,
                 engine_name: str = "python", kind: str = "score") -> None:
        self.store = store
        self.engine = engine
        self.source = source
        self.with_ledger = with_ledger
        self.engine_name = engine_name
        self.kind = kind
        self.run_id = 0
        self.scored = self.rejected = 0
        self._tx: Any = None
        self._cards: list[StoredCard] = []
        self._snapshots: dict[str, str] = {}
        self._states: list[LeadState] = []
        self._rejections: list[tuple[int, str | None, str, str]] = []

    def start(self, as_of: datetime | None) -> int:
        self._tx = self.store.transaction()
        self._tx.__enter__()
        try:
            self.run_id = self.store.new_run(
                kind=self.kind, started_at=utcnow(), as_of=as_of, engine=self.engine_name, source=self.source,
                leadscore_version=__version__, with_ledger=self.with_ledger, bands=engine_bands(self.engine),
                packs=engine_packs(self.engine))
        except BaseException as err:
            self._close_tx(err)
            raise
        return self.run_id

    def score(self, leads: Iterable[Lead | Rejection],
              scorer: Callable[[Iterable[Lead | Rejection]], Iterator[ScoreCard | Rejection]]) -> Iterator[Any]:
        """``scorer(leads)`` with every card recorded beside the lead it came from; yields what it yields.

        Cards are paired with their leads by id, so a scorer may work in batches or reorder.
        """
        pending: dict[str, deque[Lead]] = {}

        def tap() -> Iterator[Lead | Rejection]:
            for item in leads:
                if isinstance(item, Lead):
                    pending.setdefault(item.id, deque()).append(item)
                yield item

        for out in scorer(tap()):
            lead_id = out.lead_id
            queue = pending.get(lead_id) if lead_id is not None else None
            lead = None
            if queue:
                lead = queue.popleft()
                if not queue:
                    del pending[lead_id]
            if isinstance(out, ScoreCard):
                self.add(out, lead)
            else:
                self.reject(out)
            yield out

    def add(self, card: ScoreCard, lead: Lead | None) -> None:
        if lead is None:
            raise ValueError(f"no input lead for the card of {card.lead_id!r}")
        digest, text = snapshot_of(lead)
        self._snapshots[digest] = text
        key = account_key(lead)
        self._cards.append(stored_card(card, self.run_id, 0, digest, self.with_ledger, key))
        self._states.append(LeadState(card.lead_id, key, digest, card.as_of, self.run_id, 0,
                                      card.total, card.band, None if card.route is None else card.route.action,
                                      {"*": card.as_of.isoformat()}))
        self.scored += 1
        if len(self._cards) >= BATCH_ROWS:
            self.flush()

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        self._rejections.append((self.scored + self.rejected, rejection.lead_id, rejection.where, rejection.reason))
        if len(self._rejections) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        self.store.add_snapshots(self._snapshots)
        self.store.add_cards(self._cards)
        self.store.put_leads(self._states)
        self.store.add_rejections(self.run_id, self._rejections)
        self._snapshots, self._cards, self._states, self._rejections = {}, [], [], []

    def commit(self) -> int:
        """Store what is left, close the run and commit; returns the run id."""
        try:
            self.flush()
            self.store.finish_run(self.run_id, scored=self.scored, rejected=self.rejected, finished_at=utcnow())
        except BaseException as err:
            self._close_tx(err)
            raise
        self._close_tx(None)
        return self.run_id

    def abort(self) -> None:
        if self._tx is not None:
            self._close_tx(RuntimeError("run aborted"))

    def _close_tx(self, err: BaseException | None) -> None:
        tx, self._tx = self._tx, None
        if tx is None:
            return
        if err is None:
            tx.__exit__(None, None, None)
        else:
            tx.__exit__(type(err), err, err.__traceback__)
