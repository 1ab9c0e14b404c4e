"""Events one at a time: apply each to the stored lead, rescore only what it touches, alert as it crosses.

An event is one JSON object: a new activity for a lead, a change of some of a lead's fields, or a
new lead. Events are applied in batches (one transaction each): :meth:`Ingestor.prepare` reads
what the batch touches, :meth:`Ingestor.apply` applies one event in memory and scores it,
:meth:`Ingestor.commit` writes the batch whole. Alerts go out after their batch is committed.
"""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import define, frozen

from leadscore import __version__
from leadscore.accounts import AccountEntry, AccountIndex, account_key, moved_signals
from leadscore.errors import InputError
from leadscore.history.alerts import Alert, AlertPolicy, crossings
from leadscore.history.recorder import engine_bands, engine_packs, snapshot_of, stored_card
from leadscore.history.rescore import lead_from_snapshot
from leadscore.history.store import EventRow, HistoryStore, LeadState, StoredCard, utcnow
from leadscore.io.readers import NotJson, lead_from_dict, parse_json_line
from leadscore.io.timestamps import parse_timestamp
from leadscore.io.writers import lead_to_dict
from leadscore.model import Lead, ScoreCard, evolve
from leadscore.rulepack.predicates import MISSING
from leadscore.taxonomy.email import classify_address

EVENT_KINDS = ("activity", "update", "lead")
EVENT_KEYS = frozenset({"event", "id", "lead_id", "at", "activity", "set", "lead"})
UPDATABLE = ("email", "title", "source", "created_at", "account_id", "first_name", "last_name")
COMPANY_FIELDS = ("name", "domain", "industry", "employees", "annual_revenue", "country", "tier")
# Leads kept in memory between batches (their state, history and parsed lead).
CACHE_LEADS = 20_000


@frozen
class Event:
    line: int
    where: str
    kind: str
    lead_id: str
    at: datetime
    event_id: str | None
    body: Mapping[str, Any]


def parse_event(raw: str | bytes, where: str, line: int) -> Event:
    """One event from its JSON text; raises InputError naming ``where`` for anything wrong."""
    try:
        # The readers' rules: finite numbers, whole surrogate pairs, at most MAX_JSON_DEPTH levels.
        data = parse_json_line(raw.rstrip(b"\r\n" if isinstance(raw, bytes) else "\r\n"))
    except NotJson as err:
        raise InputError(where, f"not valid JSON ({err})", "write one JSON object per line") from None
    if not isinstance(data, dict):
        raise InputError(where, "an event must be a JSON object", 'write {"event": "activity", "lead_id": ..., ...}')
    unknown = sorted(set(data) - EVENT_KEYS)
    if unknown:
        raise InputError(where, f"unknown key {unknown[0]!r}", f"use: {', '.join(sorted(EVENT_KEYS))}")
    kind = data.get("event")
    if kind not in EVENT_KINDS:
        raise InputError(where, f"event {kind!r} is not a kind of event", f"use one of: {', '.join(EVENT_KINDS)}")
    event_id = data.get("id")
    if event_id is not None and not isinstance(event_id, (str, int)):
        raise InputError(where, "id must be text", "write the event id in double quotes")
    at_text = data.get("at")
    if kind == "lead":
        lead = data.get("lead")
        if not isinstance(lead, dict):
            raise InputError(where, "a lead event needs a lead object", 'write "lead": {"id": ..., ...}')
        lead_id = lead.get("id")
    else:
        lead_id = data.get("lead_id")
        if kind == "activity":
            activity = data.get("activity")
            if not isinstance(activity, dict):
                raise InputError(where, "an activity event needs an activity object",
                                 'write "activity": {"type": "demo_request", "at": "2026-11-24T10:00:00Z"}')
            at_text = at_text if at_text is not None else activity.get("at")
        elif not isinstance(data.get("set"), dict) or not data["set"]:
            raise InputError(where, "an update event needs a non-empty set object",
                             'write "set": {"title": "VP Sales", "company.employees": 1200}')
    if not isinstance(lead_id, (str, int)) or str(lead_id).strip() == "":
        raise InputError(where, "lead_id is missing", "every event names its lead, such as \"lead_id\": \"L-1001\"")
    if at_text is None:
        raise InputError(where, "at is missing", "give the time of the event, such as \"at\": \"2026-11-24T10:00:00Z\"")
    at = parse_timestamp(at_text, where, "at")
    return Event(line, where, kind, str(lead_id).strip(), at, None if event_id is None else str(event_id), data)


@define
class _Entry:
    """A lead in the working set: its stored state, parsed lead and card history (oldest first)."""

    state: LeadState
    lead: Lead
    history: list[StoredCard]
    packs: frozenset[str] | None = None
    """The packs its card was scored with (None until known; see ``Ingestor._reads_any``)."""


@frozen
class Outcome:
    """What one event did: ``status`` is applied, duplicate or rejected."""

    event: Event | None
    status: str
    detail: str
    cards: tuple[StoredCard, ...] = ()
    alerts: tuple[Alert, ...] = ()


class Ingestor:
    """Applies events to a history with one engine (the packs the stream is scored with)."""

    def __init__(self, store: HistoryStore, engine: Any, *, source: str | None, policy: AlertPolicy | None = None,
                 engine_name: str = "python") -> None:
        self.store = store
        self.engine = engine
        self.source = source
        self.policy = policy
        self.engine_name = engine_name
        self.run_id: int | None = None
        self._started = False  # the run's row is committed: later batches only update it
        self.bands = engine_bands(engine)
        self._caps = {spec.signal: spec.cap for spec in engine.same_account}
        self._band_table = {name: (rank, points) for rank, (name, points) in enumerate(self.bands)}
        self._run_bands: dict[int, dict[str, tuple[int, int]]] = {}
        self.cache: dict[str, _Entry] = {}
        # Account key -> ids of the cached leads in it; ``_whole`` names the accounts whose every
        # stored lead is cached (with account rules, a lead is only scored with its whole account).
        self._members: dict[str, set[str]] = {}
        self._whole: set[str] = set()
        self._seq: dict[str, int] = {}
        self._seen_ids: set[str] = set()
        self._line = 0
        self.applied = self.duplicates = self.rejected = 0
        self._staged_cards: list[StoredCard] = []
        self._staged_snapshots: dict[str, str] = {}
        self._staged_states: dict[str, LeadState] = {}
        self._staged_events: list[EventRow] = []
        self.pending_alerts: list[Alert] = []

    # --- reading what a batch touches ------------------------------------------------------

    def prepare(self, events: Sequence[Event]) -> None:
        """Load the leads (and their accounts' contacts) that ``events`` touch, and the ids already seen."""
        if self.run_id is None:
            self.run_id = self._peek_run_id()
        if len(self.cache) > CACHE_LEADS:
            self._forget()  # everything in it is committed: it can be read again
        touched = {e.lead_id for e in events}
        event_ids = [e.event_id for e in events if e.event_id is not None and e.event_id not in self._seen_ids]
        if event_ids:
            self._seen_ids.update(self.store.seen_event_ids(event_ids))
        missing = touched - self.cache.keys()
        states = self.store.lead_states(missing) if missing else {}
        if self.engine.needs_accounts:
            keys = {s.account_key for s in states.values() if s.account_key}
            keys.update(e.state.account_key for i in touched if (e := self.cache.get(i)) and e.state.account_key)
            for event in events:
                keys.update(_accounts_named(event))
            keys -= self._whole
            if keys:
                for lead_id, state in self.store.lead_states_for_accounts(keys).items():
                    if lead_id not in self.cache:
                        states[lead_id] = state
        self._load(states)
        if self.engine.needs_accounts and keys:
            self._whole.update(keys)
        # The working set (and what earlier batches added to it) lives for many batches: out of
        # the collector's generations, a full collection no longer walks it in the middle of an
        # event (up to 0.5 s at 20k cached leads).
        gc.freeze()

    def _load(self, states: Mapping[str, LeadState]) -> None:
        if not states:
            return
        texts = self.store.snapshots(s.snapshot for s in states.values())
        histories = self.store.cards_for_leads(states) if self.policy is not None else {}
        for lead_id, state in states.items():
            lead = lead_from_snapshot(texts[state.snapshot], f"lead {lead_id}")
            self._keep(_Entry(state, lead, histories.get(lead_id, [])))

    def _keep(self, entry: _Entry, previous_key: str | None = None) -> None:
        """Put ``entry`` in the working set (``previous_key``: the account it was cached under)."""
        lead_id, key = entry.state.lead_id, entry.state.account_key
        self.cache[lead_id] = entry
        if previous_key != key and previous_key is not None:
            self._members[previous_key].discard(lead_id)
        if key is not None:
            self._members.setdefault(key, set()).add(lead_id)

    def _whole_account(self, key: str) -> list[_Entry]:
        """Every lead of account ``key`` (read from the store the first time it is needed)."""
        if key not in self._whole:
            self._load({i: s for i, s in self.store.lead_states_for_accounts([key]).items() if i not in self.cache})
            self._whole.add(key)
        return [self.cache[i] for i in sorted(self._members.get(key, ()))]

    def account_size(self, lead_id: str) -> int:
        """Leads in the working set's copy of ``lead_id``'s account (1 for a lead without one)."""
        entry = self.cache.get(lead_id)
        key = entry.state.account_key if entry is not None else None
        return max(1, len(self._members.get(key, ()))) if key is not None else 1

    def _forget(self) -> None:
        self.cache.clear()
        self._members.clear()
        self._whole.clear()
        gc.unfreeze()  # what the working set held can be collected again

    def _peek_run_id(self) -> int:
        runs = self.store.runs()
        return (runs[-1].run_id if runs else 0) + 1

    # --- one event ---------------------------------------------------------------------------

    def apply(self, event: Event) -> Outcome:
        """Apply one prepared event in memory: the lead's new snapshot, its card(s) and any alerts."""
        if event.event_id is not None and event.event_id in self._seen_ids:
            return self._record(event, "duplicate", f"event {event.event_id} was applied before")
        entry = self.cache.get(event.lead_id)
        try:
            if event.kind == "lead":
                if entry is not None:
                    return self._reject(event, f"lead {event.lead_id!r} is already in the history",
                                        "send update or activity events for it")
                lead = lead_from_dict(event.body["lead"], event.where)
                times = {"*": event.at.isoformat()}
                as_of, added = event.at, None
            else:
                if entry is None:
                    return self._reject(event, f"lead {event.lead_id!r} is not in the history",
                                        'send a {"event": "lead", ...} event for it first, or score it with --history')
                lead, times, added, note = self._changed(entry, event)
                if note:
                    return self._record(event, "duplicate", note)
                as_of = max(event.at, entry.state.as_of)
            cards = self._score(event.lead_id, lead, times, as_of, added)
        except InputError as err:
            return self._reject(event, err.what, err.fix)
        alerts = self._alerts(cards)
        if event.event_id is not None:
            self._seen_ids.add(event.event_id)
        self.applied += 1
        outcome = Outcome(event, "applied", f"{len(cards)} card{'s' if len(cards) != 1 else ''}", tuple(cards),
                          tuple(alerts))
        self._staged_events.append(self._event_row(event, "applied", outcome.detail))
        self.pending_alerts.extend(alerts)
        return outcome

    def reject_line(self, where: str, problem: str, fix: str) -> Outcome:
        """A line that is not an event at all (bad JSON, missing keys): recorded, never dropped."""
        self._line += 1
        self.rejected += 1
        detail = f"{problem}; {fix}" if fix else problem
        self._staged_events.append(EventRow(self._run(), self._line, None, None, None, None, "rejected",
                                            f"{where}: {detail}"))
        return Outcome(None, "rejected", f"{where}: {detail}")

    def _changed(self, entry: _Entry, event: Event) -> tuple[Lead, dict[str, str], datetime | None, str]:
        """The lead after ``event``, its field times, the time of the activity it adds (None: it
        changes fields) and a note when nothing changes."""
        times = dict(entry.state.field_times)
        lead = entry.lead
        if event.kind == "activity":
            raw = dict(event.body["activity"])
            raw.setdefault("at", event.body.get("at"))
            activity = lead_from_dict({"id": lead.id, "activities": [raw]}, event.where).activities.record(0)
            known = lead.activities.ids
            if activity.id is not None and known is not None and activity.id in known:
                return lead, times, None, f"activity {activity.id} is already on lead {lead.id}"
            return evolve(lead, activities=lead.activities.inserted(activity)), times, activity.at, ""
        data = lead_to_dict(lead)
        base = times.get("*", "")
        applied = 0
        for name, value in event.body["set"].items():
            if not _updatable(name):
                raise InputError(event.where, f"set: {name!r} is not a lead field",
                                 f"use one of: {', '.join(UPDATABLE)}, company.<field> or fields.<name>")
            if event.at.isoformat() < times.get(name, base):
                continue  # an older change than the one stored: the later value stays
            _set(data, name, value)
            times[name] = event.at.isoformat()
            applied += 1
        if not applied:
            return lead, times, None, "every field in it was changed later already"
        return lead_from_dict(data, event.where), times, None, ""

    def _score(self, lead_id: str, lead: Lead, times: dict[str, str], at: datetime,
               added: datetime | None) -> list[StoredCard]:
        """Score ``lead`` after its event, and the contacts of its account(s) whose cards it moves
        (``added``: the time of the activity the event adds to it, None for any other change)."""
        if not self.engine.needs_accounts:
            return [self._stage(lead, self._card(lead, at, None), times)]
        old = self.cache.get(lead_id)
        old_key = old.state.account_key if old is not None else None
        keys = sorted({k for k in (old_key, account_key(lead)) if k is not None})
        others = {key: [e for e in self._whole_account(key) if e.state.lead_id != lead_id] for key in keys}
        # Scored at the latest time any of them holds: a card never goes back in time.
        as_of = max([at, *(e.state.as_of for group in others.values() for e in group)])
        was_mine = self.engine.account_entry(old.lead, as_of) if old is not None else None
        now_mine = self.engine.account_entry(lead, as_of)
        # The rest of the account matters at this time only to a card reading an account signal:
        # the lead's own, or a contact's when the lead's part moves a signal the run reads.
        whole = bool(keys) and (any(self._moves_read(key, was_mine, now_mine) for key in keys)
                                or self._reads_accounts(lead, as_of))
        before, after = self._index(), self._index()
        for group in others.values() if whole else ():
            for entry in group:
                found = self.engine.account_entry(entry.lead, as_of)
                if found is not None:
                    before.add_entry(found)
                    after.add_entry(found)
        if was_mine is not None:
            before.add_entry(was_mine)
        if now_mine is not None:
            after.add_entry(now_mine)
        mine = self._card(lead, as_of, after)
        moved = {key: (before.signals_for(key), after.signals_for(key)) if whole else None for key in keys}
        again = [(entry, self._card(entry.lead, as_of, after)) for key in keys
                 for entry in self._moved_contacts(key, others[key], old, lead, as_of, moved[key], added)]
        # Staged only once every card is made: a lead that cannot be scored leaves nothing half done.
        cards = [self._stage(lead, mine, times)]
        for entry, card in again:
            if _same(entry.state, card):
                self._restamp(entry, card)
            else:
                cards.append(self._stage(entry.lead, card, entry.state.field_times, entry.state.snapshot))
        return cards

    def _moved_contacts(self, key: str, others: list[_Entry], old: _Entry | None, lead: Lead, as_of: datetime,
                        values: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
                        added: datetime | None) -> list[_Entry]:
        """The contacts of account ``key`` whose card the event can move, to score again at ``as_of``.

        ``values``: the account's signals before and after the event at ``as_of`` (None: it moves
        no signal the run reads then). A contact whose card can differ with those
        (``_changes_card``), for the event to show on its card at once. And one held at an earlier
        time, which otherwise keeps its card and time, whose card can differ with the account's
        values before and after the event at its own time (an activity sent late, a changed
        title): its card must stay the one scoring it from scratch gives. Those values are worked
        out only for a contact reading a signal that the lead's part of the account moved then
        (``moved_signals``), once per time. An activity added after that time (``added``) moves
        nothing then: the lead's part of the account at a time leaves its later activities out
        (``Engine.account_entry``), so it is the part it had before the event.
        """
        entries: dict[tuple[int, datetime], AccountEntry | None] = {}
        moved_then: dict[datetime, frozenset[str]] = {}
        values_then: dict[datetime, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
        old_lead = old.lead if old is not None else None

        def entry_at(contact: Lead | None, when: datetime) -> AccountEntry | None:
            if (id(contact), when) not in entries:
                entries[id(contact), when] = self._entry_in(contact, key, when)
            return entries[id(contact), when]

        def moved_at(when: datetime) -> frozenset[str]:
            if when not in moved_then:
                moved_then[when] = frozenset() if added is not None and added > when else moved_signals(
                    key, entry_at(old_lead, when), entry_at(lead, when), self._caps)
            return moved_then[when]

        def values_at(when: datetime) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
            if when not in values_then:
                then_before, then_after = self._index(), self._index()
                for entry in others:
                    if (found := entry_at(entry.lead, when)) is not None:
                        then_before.add_entry(found)
                        then_after.add_entry(found)
                if (found := entry_at(old_lead, when)) is not None:
                    then_before.add_entry(found)
                if (found := entry_at(lead, when)) is not None:
                    then_after.add_entry(found)
                values_then[when] = then_before.signals_for(key), then_after.signals_for(key)
            return values_then[when]

        def moves(entry: _Entry) -> bool:
            if values is not None and self._changes_card(entry, *values):
                return True
            then = entry.state.as_of
            return then < as_of and self._reads_any(entry, moved_at(then)) and self._changes_card(
                entry, *values_at(then))

        return [entry for entry in others if moves(entry)]

    def _entry_in(self, lead: Lead | None, key: str, as_of: datetime) -> AccountEntry | None:
        """What ``lead`` adds to account ``key`` as of ``as_of`` (None: nothing, it is not in it)."""
        entry = self.engine.account_entry(lead, as_of) if lead is not None else None
        return entry if entry is not None and entry.key == key else None

    def _reads_accounts(self, lead: Lead, as_of: datetime) -> bool:
        """Whether ``lead``'s card at ``as_of`` can read an account signal (its packs': see
        ``Engine.account_reads_for``)."""
        if self.engine.account_reads_everywhere is None:
            return True
        packs = self.engine.packs_for(lead, as_of)
        reads = self.engine.account_reads_for(packs) if packs is not None else None
        return reads is None or bool(reads)

    def _moves_read(self, key: str, was: AccountEntry | None, now: AccountEntry | None) -> bool:
        """Whether the lead's part of account ``key`` going from ``was`` to ``now`` (its entries at
        one time) can move a signal the run reads, whoever else the account holds."""
        reads = self.engine.account_reads
        moved = moved_signals(key, was if was is not None and was.key == key else None,
                              now if now is not None and now.key == key else None, self._caps)
        return bool(moved) and (reads is None or not moved.isdisjoint(reads))

    def _reads_any(self, entry: _Entry, moved: Collection[str]) -> bool:
        """Whether the contact's card can read one of the ``moved`` account signals: one its own
        packs read (``Engine.account_reads_for``, its packs looked up the first time they are
        needed)."""
        reads = self.engine.account_reads
        if not moved or (reads is not None and reads.isdisjoint(moved)):
            return False
        if self.engine.account_reads_everywhere is None:
            return True  # whatever its packs
        if entry.packs is None:
            entry.packs = self.engine.packs_for(entry.lead, entry.state.as_of)
        reads = self.engine.account_reads_for(entry.packs) if entry.packs is not None else None
        return reads is None or not reads.isdisjoint(moved)

    def _changes_card(self, entry: _Entry, was: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
        """Whether the contact's card can differ when its account's signals go from ``was`` to
        ``now``: a moved signal its packs read (``_reads_any``) that changes the truth of one of
        their comparisons, or that a plugin function reads (``Engine.account_tests_for``)."""
        moved = {n for n in was.keys() | now.keys() if was.get(n, MISSING) != now.get(n, MISSING)}
        if not self._reads_any(entry, moved):
            return False
        tests = self.engine.account_tests_for(entry.packs) if entry.packs is not None else None
        return tests is None or tests.differ(was, now)

    def _index(self) -> AccountIndex:
        return AccountIndex(self._caps)

    def _card(self, lead: Lead, as_of: datetime, accounts: AccountIndex | None) -> ScoreCard:
        result = next(self.engine.score([lead], as_of=as_of, accounts=accounts))
        if not isinstance(result, ScoreCard):
            raise InputError(f"lead {lead.id}", result.reason)
        return result

    def _stage(self, lead: Lead, card: ScoreCard, times: Mapping[str, str], snapshot: str | None = None) -> StoredCard:
        """Stage ``card`` and the lead's new state (``snapshot``: the hash of a lead that did not change)."""
        if snapshot is None:
            snapshot, text = snapshot_of(lead)
            self._staged_snapshots[snapshot] = text
        seq = self._seq.get(lead.id, -1) + 1
        self._seq[lead.id] = seq
        key = account_key(lead)
        stored = stored_card(card, self._run(), seq, snapshot, True, key)
        state = LeadState(lead.id, key, snapshot, card.as_of, self._run(), seq, card.total, card.band,
                          None if card.route is None else card.route.action, dict(times))
        self._staged_cards.append(stored)
        self._staged_states[lead.id] = state
        entry = self.cache.get(lead.id)
        if entry is None:
            self._keep(_Entry(state, lead, [stored], _packs(card)))
        else:
            previous_key = entry.state.account_key
            entry.state, entry.lead, entry.packs = state, lead, _packs(card)
            entry.history.append(stored)
            self._keep(entry, previous_key)
        return stored

    def _restamp(self, entry: _Entry, card: ScoreCard) -> None:
        """A contact scored again to the same card: its state moves to the card's time, no card is stored."""
        entry.state, entry.packs = evolve(entry.state, as_of=card.as_of), _packs(card)
        self._staged_states[entry.state.lead_id] = entry.state

    def _alerts(self, cards: Iterable[StoredCard]) -> list[Alert]:
        if self.policy is None:
            return []
        out: list[Alert] = []
        for card in cards:
            history = self.cache[card.lead_id].history
            out.extend(a for a in crossings(history, self.policy, self._bands) if a.card is card)
        return out

    def _bands(self, run_id: int) -> Mapping[str, tuple[int, int]]:
        if run_id == self.run_id:
            return self._band_table
        table = self._run_bands.get(run_id)
        if table is None:
            run = self.store.run(run_id)
            table = self._run_bands[run_id] = {} if run is None else {
                name: (rank, points) for rank, (name, points) in enumerate(run.bands)}
        return table

    def _run(self) -> int:
        if self.run_id is None:
            self.run_id = self._peek_run_id()
        return self.run_id

    def _record(self, event: Event, status: str, detail: str) -> Outcome:
        if status == "duplicate":
            self.duplicates += 1
        self._staged_events.append(self._event_row(event, status, detail))
        return Outcome(event, status, detail)

    def _reject(self, event: Event, problem: str, fix: str) -> Outcome:
        self.rejected += 1
        detail = f"{event.where}: {problem}; {fix}"
        self._staged_events.append(self._event_row(event, "rejected", detail))
        return Outcome(event, "rejected", detail)

    def _event_row(self, event: Event, status: str, detail: str) -> EventRow:
        self._line += 1
        return EventRow(self._run(), self._line, event.event_id, event.lead_id, event.kind, event.at, status, detail)

    # --- writing -------------------------------------------------------------------------------

    def commit(self) -> list[Alert]:
        """Write the staged batch in one transaction; returns the alerts to deliver now."""
        with self.store.transaction():
            if not self._started and self.store.run(self._run()) is None:
                got = self.store.new_run(kind="ingest", started_at=utcnow(), as_of=None, engine=self.engine_name,
                                         source=self.source, leadscore_version=__version__, with_ledger=True,
                                         bands=self.bands, packs=engine_packs(self.engine))
                if got != self.run_id:
                    raise RuntimeError(f"another process started run {self.run_id} meanwhile")
            self.store.add_snapshots(self._staged_snapshots)
            self.store.add_cards(self._staged_cards)
            self.store.put_leads(list(self._staged_states.values()))
            self.store.add_events(self._staged_events)
            self.store.finish_run(self._run(), scored=self.applied, rejected=self.rejected, finished_at=utcnow())
        self._started = True
        self._staged_cards, self._staged_snapshots, self._staged_states, self._staged_events = [], {}, {}, []
        alerts, self.pending_alerts = self.pending_alerts, []
        return alerts

    def rollback(self) -> None:
        """Forget the staged batch (after a failed commit): the cache is reloaded from the store."""
        self._staged_cards, self._staged_snapshots, self._staged_states, self._staged_events = [], {}, {}, []
        self.pending_alerts = []
        self._forget()


def _packs(card: ScoreCard) -> frozenset[str]:
    return frozenset(name for name, _ in card.packs)


def _same(state: LeadState, card: ScoreCard) -> bool:
    return (state.total == card.total and state.band == card.band
            and state.route_action == (None if card.route is None else card.route.action))


def _accounts_named(event: Event) -> set[str]:
    """Accounts a lead event or a change of account_id or email may move a lead into (read ahead)."""
    if event.kind == "lead":
        try:
            key = account_key(lead_from_dict(event.body["lead"], event.where))
        except InputError:
            return set()
        return {key} if key else set()
    if event.kind != "update":
        return set()
    found = set()
    changes = event.body["set"]
    if isinstance(changes.get("account_id"), str) and changes["account_id"].strip():
        found.add(changes["account_id"].strip())
    if isinstance(changes.get("email"), str):
        kind, domain = classify_address(changes["email"].strip().lower())
        if kind == "business":
            found.add(domain)
    return found


def _updatable(name: str) -> bool:
    if name in UPDATABLE:
        return True
    head, _, rest = name.partition(".")
    return bool(rest) and ((head == "company" and rest in COMPANY_FIELDS) or head == "fields")


def _set(data: dict[str, Any], name: str, value: Any) -> None:
    head, _, rest = name.partition(".")
    if not rest:
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
        return
    inner = dict(data.get(head) or {})
    if value is None:
        inner.pop(rest, None)
    else:
        inner[rest] = value
    data[head] = inner
