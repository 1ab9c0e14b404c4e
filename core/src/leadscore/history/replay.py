"""Replay: the stored leads of past runs scored again under other packs, as of each card's own time.

Answers "what would last quarter have looked like under the new pack": per run, how many leads
would have had another band, and which alerts would (or would not) have fired. Nothing is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from attrs import frozen

from leadscore.history.alerts import Alert, AlertPolicy, band_table, crossings
from leadscore.history.rescore import lead_from_snapshot, score_stored
from leadscore.history.store import BATCH_ROWS, HistoryStore, RunInfo, StoredCard
from leadscore.model import ScoreCard


@frozen
class RunReplay:
    run: RunInfo
    cards: int
    band_changes: int
    transitions: dict[tuple[str, str], int]
    unscored: int


@frozen
class ReplayReport:
    runs: tuple[RunReplay, ...]
    stored_alerts: tuple[Alert, ...]
    replayed_alerts: tuple[Alert, ...]

    def only_stored(self) -> list[Alert]:
        keys = {_alert_id(a) for a in self.replayed_alerts}
        return [a for a in self.stored_alerts if _alert_id(a) not in keys]

    def only_replayed(self) -> list[Alert]:
        keys = {_alert_id(a) for a in self.stored_alerts}
        return [a for a in self.replayed_alerts if _alert_id(a) not in keys]


def _alert_id(alert: Alert) -> tuple[str, int, int, str]:
    return (alert.lead_id, alert.run_id, alert.seq, alert.to_band)


def runs_between(store: HistoryStore, start: datetime | None, end: datetime | None) -> list[RunInfo]:
    """Complete runs whose scoring time (as_of, else start time) lies in [start, end]."""
    out = []
    for run in store.runs():
        when = run.as_of or run.started_at
        if run.complete and (start is None or when >= start) and (end is None or when <= end):
            out.append(run)
    return out


def _rescored(card: StoredCard, new: ScoreCard) -> StoredCard:
    route = new.route
    return StoredCard(card.run_id, card.lead_id, card.seq, card.account_key, card.as_of, new.total, new.band,
                      new.points_band, None if route is None else route.action, None if route is None else route.queue,
                      dict(new.subscores), tuple(new.top_reasons(3)), None, card.snapshot)


def _replay_run(store: HistoryStore, engine: Any, run: RunInfo) -> Iterator[tuple[StoredCard, StoredCard | None]]:
    """(stored card, replayed card or None) for every card of ``run``."""
    if run.kind != "score":
        for card in store.run_cards(run.run_id):
            new = score_stored(engine, store, card, run.kind)
            yield card, None if new is None else _rescored(card, new)
        return
    index = None
    if engine.needs_accounts:
        def every_lead() -> Iterator[Any]:
            page: list[StoredCard] = []
            for card in store.run_cards(run.run_id):
                page.append(card)
                if len(page) >= BATCH_ROWS:
                    yield from _leads(store, page)
                    page = []
            yield from _leads(store, page)
        index = engine.build_accounts(every_lead(), as_of=run.as_of)
    page = []
    for card in store.run_cards(run.run_id):
        page.append(card)
        if len(page) >= BATCH_ROWS:
            yield from _score_page(store, engine, page, index)
            page = []
    yield from _score_page(store, engine, page, index)


def _leads(store: HistoryStore, cards: list[StoredCard]) -> Iterator[Any]:
    texts = store.snapshots(c.snapshot for c in cards)
    for card in cards:
        yield lead_from_snapshot(texts[card.snapshot], f"snapshot {card.snapshot}")


def _score_page(store: HistoryStore, engine: Any, cards: list[StoredCard],
                index: Any) -> Iterator[tuple[StoredCard, StoredCard | None]]:
    for card, lead in zip(cards, _leads(store, cards)):
        new = next(engine.score([lead], as_of=card.as_of, accounts=index))
        yield card, _rescored(card, new) if isinstance(new, ScoreCard) else None


def replay(store: HistoryStore, engine: Any, runs: list[RunInfo], policy: AlertPolicy) -> ReplayReport:
    """Rescore ``runs`` with ``engine`` and compare bands and alerts with what was stored."""
    stored: dict[str, list[StoredCard]] = {}
    replayed: dict[str, list[StoredCard]] = {}
    reports = []
    for run in runs:
        transitions: Counter[tuple[str, str]] = Counter()
        cards = changes = unscored = 0
        for card, new in _replay_run(store, engine, run):
            cards += 1
            stored.setdefault(card.lead_id, []).append(_light(card))
            if new is None:
                unscored += 1
                continue
            replayed.setdefault(card.lead_id, []).append(_light(new))
            transitions[(card.band, new.band)] += 1
            changes += card.band != new.band
        reports.append(RunReplay(run, cards, changes, dict(transitions), unscored))
    bands = band_table(store)
    order = _order
    stored_alerts = [a for cards in stored.values() for a in crossings(sorted(cards, key=order), policy, bands)]
    replayed_alerts = [a for cards in replayed.values() for a in crossings(sorted(cards, key=order), policy, bands)]
    stored_alerts.sort(key=lambda a: (a.as_of, a.lead_id))
    replayed_alerts.sort(key=lambda a: (a.as_of, a.lead_id))
    return ReplayReport(tuple(reports), tuple(stored_alerts), tuple(replayed_alerts))


def _order(card: StoredCard) -> tuple[datetime, int, int]:
    return (card.as_of, card.run_id, card.seq)


def _light(card: StoredCard) -> StoredCard:
    """The card without what alert rules do not read (a replay may hold many)."""
    return StoredCard(card.run_id, card.lead_id, card.seq, None, card.as_of, card.total, card.band, card.points_band,
                      card.route_action, card.route_queue, {}, card.reasons[:3], None, "")
