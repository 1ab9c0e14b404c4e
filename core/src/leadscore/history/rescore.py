"""Scoring stored snapshots again: the ledger behind a stored card, and cards under other packs.

A card stored without its ledger gets it back by rescoring its snapshot as of its time under the
packs stored with its run (with its account's contacts as they were then). If the rescored total
differs from the stored one (a plugin's code changed since), the ledger is reported unavailable
rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from leadscore.history.packs import StoredPackEngine
from leadscore.history.store import HistoryStore, StoredCard
from leadscore.io.readers import lead_from_json
from leadscore.io.writers import contribution_to_dict
from leadscore.model import Lead, ScoreCard
from leadscore.plugins import PluginManager


def lead_from_snapshot(text: str, where: str) -> Lead:
    return lead_from_json(text.encode(), where)


def score_stored(engine: Any, store: HistoryStore, card: StoredCard, kind: str,
                 snapshots: Mapping[str, str] | None = None) -> ScoreCard | None:
    """``card``'s snapshot scored by ``engine`` as of the card's time (None if it cannot be scored)."""
    contacts = store.account_contacts(card, same_run=kind == "score") if engine.needs_accounts else [card]
    wanted = [c.snapshot for c in contacts if snapshots is None or c.snapshot not in snapshots]
    texts = dict(snapshots or {})
    if wanted:
        texts.update(store.snapshots(wanted))
    leads = {c.lead_id: lead_from_snapshot(texts[c.snapshot], f"snapshot {c.snapshot}") for c in contacts}
    index = engine.build_accounts(leads.values(), as_of=card.as_of) if engine.needs_accounts else None
    result = next(engine.score([leads[card.lead_id]], as_of=card.as_of, accounts=index))
    return result if isinstance(result, ScoreCard) else None


class LedgerSource:
    """Ledgers of stored cards: stored ones as they are, the others rebuilt (engines cached per run)."""

    def __init__(self, store: HistoryStore, pm: PluginManager) -> None:
        self.store = store
        self.pm = pm
        self._engines: dict[int, StoredPackEngine] = {}
        self._kinds: dict[int, str] = {}

    def ledger(self, card: StoredCard) -> tuple[Mapping[str, Any], ...] | None:
        if card.ledger is not None:
            return card.ledger
        engine = self._engine(card.run_id)
        if engine is None:
            return None
        rescored = score_stored(engine, self.store, card, self._kinds[card.run_id])
        if rescored is None or rescored.total != card.total:
            return None
        return tuple(contribution_to_dict(line) for line in rescored.ledger)

    def _engine(self, run_id: int) -> Any:
        if run_id not in self._engines:
            run = self.store.run(run_id, with_texts=True)
            if run is None:
                return None
            self._kinds[run_id] = run.kind
            self._engines[run_id] = StoredPackEngine(self.pm, run)
        return self._engines[run_id].engine

    def close(self) -> None:
        for holder in self._engines.values():
            holder.__exit__(None, None, None)
        self._engines.clear()

    def __enter__(self) -> LedgerSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stored_leads(store: HistoryStore, cards: Iterable[StoredCard]) -> dict[str, Lead]:
    cards = list(cards)
    texts = store.snapshots(c.snapshot for c in cards)
    return {c.lead_id: lead_from_snapshot(texts[c.snapshot], f"snapshot {c.snapshot}") for c in cards}
