"""Account roll-up: group leads into accounts, compute buying-committee signals, score whole accounts.

Leads share an account when they have the same ``account_id``, or, without one, the same business
email domain. A first pass over the leads builds one small summary per account (memory grows with
the number of accounts, not leads); rules then use ``account.*`` signals in the scoring pass, and
a roll-up strategy named by the rulepack's ``[accounts]`` table turns the contacts' scores into an
account score and band.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import define, field, frozen

from leadscore.caching import SeenHashes
from leadscore.model import EMPTY, Lead, ScoreCard, SignalSpec
from leadscore.rulepack.predicates import MISSING, Pred, compile_condition
from leadscore.rulepack.schema import ACCOUNT_OPS, BOOL_OPS, LEAF_OPS, Condition, account_leaf
from leadscore.taxonomy.email import classify_address

# The most contacts an account keeps for its roll-up: the highest-scoring ones (a buying committee
# is rarely larger; this keeps memory bounded per account).
MAX_CONTACTS = 50
SENIOR = ("c_level", "vp", "director")

ACCOUNT_SIGNALS = (
    SignalSpec("account.id", "str", "the account key: account_id, or the business email domain"),
    SignalSpec("account.contacts", "int", "people in the account (leads counted by normalised email)"),
    SignalSpec("account.engaged_contacts", "int", "contacts with engagement beyond email in the last 90 days"),
    SignalSpec("account.senior_engaged_contacts", "int", "engaged contacts at director level or above"),
    SignalSpec("account.functions_engaged", "int", "distinct job functions among engaged contacts"),
    SignalSpec("account.high_intent_30d", "int", "high-intent and hand-raise activities of all contacts, last 30 days"),
    SignalSpec("account.best_lead_score", "int", "the best contact score before account rules"),
)
# Signals a contact needs for its account summary, extracted in the first pass.
CONTACT_SIGNALS = frozenset({
    "intent.beyond_email.count_90d", "intent.high.count_30d", "intent.readiness.count_30d", "title.seniority",
    "title.function", "email.type",
})


def account_key(lead: Lead) -> str | None:
    """The lead's account: its account_id, else its business email domain, else None."""
    if lead.account_id:
        return lead.account_id
    if lead.email:
        kind, domain = classify_address(lead.email)
        if kind == "business":
            return domain
    return None


@frozen
class Contact:
    """One contact as an account roll-up sees it."""

    lead_id: str
    total: int
    seniority: str
    function: str
    title: str
    engaged: bool


def person_key(lead: Lead) -> Any:
    """Who a lead is, for counting an account's contacts: the normalised email (lower case, no
    ``+tag``, no dots in a Gmail local part), else the lead id. The same person submitting a form
    three times, under three lead ids, is one contact."""
    email = (lead.email or "").strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local:
        return ("id", lead.id)
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


@frozen
class AccountEntry:
    """What one lead adds to its account's summary at one scoring time (see ``Engine.account_entry``).

    Entries that compare equal add the same to any summary: they hold everything
    :meth:`AccountIndex.add` reads (the lead itself is carried along, not compared).
    """

    key: str
    lead_id: str
    person: Any
    """``person_key(lead)``: two leads of one person count once in a summary."""
    values: Mapping[str, Any]
    first_total: int | None
    matched: tuple[str, ...]
    lead: Lead = field(eq=False, repr=False)


@define
class AccountSummary:
    key: str
    # People, not leads: the index counts each person (person_key) of an account once.
    contacts: int = 0
    engaged: int = 0
    senior_engaged: int = 0
    functions: set[str] = set()
    high_intent_30d: int = 0
    best_score: int | None = None
    best_lead: str | None = None
    scored: list[Contact] = []
    # same_account signal -> person -> lead id of the distinct contacts meeting its `where` (up to its cap)
    matching: dict[str, dict[Any, str]] = {}

    def signals(self, caps: Mapping[str, int] = EMPTY) -> AccountSignals:
        values = AccountSignals({
            "account.id": self.key,
            "account.contacts": self.contacts,
            "account.engaged_contacts": self.engaged,
            "account.senior_engaged_contacts": self.senior_engaged,
            "account.functions_engaged": len(self.functions),
            "account.high_intent_30d": self.high_intent_30d,
        })
        if self.best_score is not None:
            values["account.best_lead_score"] = self.best_score
        for name in caps:
            ids = set(self.matching.get(name, {}).values())
            values[name] = len(ids)
            shown = ", ".join(sorted(ids)[:5]) + (", ..." if len(ids) > 5 else "")
            values.evidence[name] = (f"{len(ids)} contact{'' if len(ids) == 1 else 's'} of account {self.key}"
                                     + (f": {shown}" if ids else ""))
        return values

    def parts(self, caps: Mapping[str, int] = EMPTY) -> dict[str, Any]:
        """What each of the :meth:`signals` is counted from (see :func:`moved_signals`)."""
        parts = {
            "account.id": self.key,
            "account.contacts": self.contacts,
            "account.engaged_contacts": self.engaged,
            "account.senior_engaged_contacts": self.senior_engaged,
            "account.functions_engaged": self.functions,
            "account.high_intent_30d": self.high_intent_30d,
            "account.best_lead_score": (self.best_score, self.best_lead),
        }
        parts.update((name, self.matching.get(name, {})) for name in caps)
        return parts


def moved_signals(key: str, before: AccountEntry | None, after: AccountEntry | None,
                  caps: Mapping[str, int] = EMPTY) -> frozenset[str]:
    """The signals of account ``key`` that can change, whoever else the account holds, when one
    lead's entry goes from ``before`` to ``after`` (None: the lead is not in the account then).

    An :class:`AccountIndex` adds people up one by one, and each signal is a count, union or
    largest value of its own part of them (a person engaged or not, the functions, the largest
    high-intent count): a part the same for the lead alone before and after leaves that signal
    the same in any account. A lead that becomes another person takes every part it has from
    one person to the other, so each may move.
    """
    was, now = _alone(key, before, caps), _alone(key, after, caps)
    if before is None or after is None or before.person == after.person:
        return frozenset(name for name in was if was[name] != now[name])
    empty = _alone(key, None, caps)
    return frozenset(name for name in empty if was[name] != empty[name] or now[name] != empty[name])


def _alone(key: str, entry: AccountEntry | None, caps: Mapping[str, int]) -> dict[str, Any]:
    """The parts of account ``key`` holding ``entry`` alone (or no one)."""
    index = AccountIndex(caps)
    if entry is not None:
        index.add_entry(entry)
    summary = index.accounts.get(key) or AccountSummary(key, functions=set(), scored=[], matching={})
    return summary.parts(caps)


@frozen
class AccountTests:
    """How a card scored with one pack combination reads its account's signals.

    ``comparisons``: each comparison of an ``account.*`` signal in its conditions (rules, gates,
    every ``applies_when``; a ``same_account`` node as its count ``>= N``), as a predicate over the
    account's values. ``opaque``: the ``account.*`` signals plugin functions (extractors, scorers,
    routers) declare they read, which may use any value.
    """

    comparisons: tuple[tuple[str, Pred], ...]
    opaque: frozenset[str]

    def differ(self, was: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
        """Whether the card can change when the account's values go from ``was`` to ``now``.

        Every condition is a combination of comparisons: when none of those reading an account
        signal changes its truth value, and no signal a plugin function reads changes value, the
        rules that match, the gates that hold and the packs that apply are the same, so the total,
        band and route are too. (A value shown only in a line's evidence, such as a
        ``same_account`` count, does not make a card that is stored: a contact scored again to
        the same total, band and route keeps its card.)
        """
        return (any(was.get(name, MISSING) != now.get(name, MISSING) for name in self.opaque)
                or any(test(was) != test(now) for _, test in self.comparisons))


def account_comparisons(conditions: Iterable[Condition | None]) -> tuple[list[tuple[str, Pred]], set[str]]:
    """(the comparisons of ``account.*`` signals in ``conditions``, the account signals read by
    any other kind of node, which must count as read whole)."""
    comparisons: list[tuple[str, Pred]] = []
    whole: set[str] = set()

    def walk(cond: Condition) -> None:
        if cond.op in BOOL_OPS:
            for child in cond.children:
                walk(child)
        elif cond.op in ACCOUNT_OPS:
            leaf = account_leaf(cond)
            comparisons.append((leaf.signal, compile_condition(leaf)))
        elif cond.op in LEAF_OPS and cond.signal is not None:
            if cond.signal.startswith("account."):
                comparisons.append((cond.signal, compile_condition(cond)))
        else:
            whole.update(n for n in cond.signals() if n.startswith("account."))

    for cond in conditions:
        if cond is not None:
            walk(cond)
    return comparisons, whole


class AccountSignals(dict):
    """An account's signal values, with evidence text for the ones that need more than the account id."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.evidence: dict[str, str] = {}


class AccountIndex:
    """Account key -> summary, built from a first pass over the leads.

    ``caps``: for each ``same_account`` signal the rulepacks use, the most contacts worth
    counting (the largest N any rule asks for), which bounds the memory per account.
    """

    def __init__(self, caps: Mapping[str, int] = EMPTY) -> None:
        self.accounts: dict[str, AccountSummary] = {}
        self.caps = dict(caps)
        self._people, self._engaged, self._senior = SeenHashes(), SeenHashes(), SeenHashes()
        self._high: dict[int, int] = {}

    def add(self, key: str, lead: Lead, values: Mapping[str, Any], first_total: int | None,
            matched: Iterable[str] = (), person: Any = None) -> None:
        """Count one contact of account ``key``; ``matched`` names the same_account signals whose
        ``where`` it meets; ``person`` is ``person_key(lead)`` when the caller has it."""
        summary = self.accounts.get(key)
        if summary is None:
            summary = self.accounts[key] = AccountSummary(key, functions=set(), scored=[], matching={})
        if person is None:
            person = person_key(lead)
        for name in matched:
            ids = summary.matching.setdefault(name, {})
            if person not in ids and len(ids) < self.caps.get(name, 0):
                ids[person] = lead.id
        # Run-wide tables of (account, person) hashes rather than a set per account: most
        # accounts have one or two people, and an empty set alone costs more than 200 bytes.
        who = (key, person)
        if self._people.add(who):
            summary.contacts += 1
        if values.get("intent.beyond_email.count_90d", 0) >= 1:
            if self._engaged.add(who):
                summary.engaged += 1
            if values.get("title.seniority") in SENIOR and self._senior.add(who):
                summary.senior_engaged += 1
            function = values.get("title.function")
            if function and function != "other":
                summary.functions.add(function)
        high = values.get("intent.high.count_30d", 0) + values.get("intent.readiness.count_30d", 0)
        if high:
            # A person's largest count, not the sum over their copies.
            slot = hash(who)
            before = self._high.get(slot, 0)
            if high > before:
                summary.high_intent_30d += high - before
                self._high[slot] = high
        if first_total is not None and (summary.best_score is None or first_total > summary.best_score
                                        or (first_total == summary.best_score and lead.id < (summary.best_lead or ""))):
            summary.best_score = first_total
            summary.best_lead = lead.id

    def add_entry(self, entry: AccountEntry) -> None:
        self.add(entry.key, entry.lead, entry.values, entry.first_total, entry.matched, entry.person)

    def signals_for(self, key: str | None) -> Mapping[str, Any]:
        """The ``account.*`` signal values of account ``key`` (none for a lead without an account)."""
        summary = self.accounts.get(key) if key is not None else None
        return summary.signals(self.caps) if summary is not None else {}

    def record(self, key: str | None, lead: Lead, card: ScoreCard, values: Mapping[str, Any]) -> None:
        """Keep a scored contact of account ``key`` for its roll-up (the MAX_CONTACTS best)."""
        summary = self.accounts.get(key) if key is not None else None
        if summary is None:
            return
        add_contact(summary.scored, lead, card, values)

    def __len__(self) -> int:
        return len(self.accounts)


@frozen
class AccountCard:
    """One account's roll-up: score, band and a buying-committee summary with reasons."""

    account_id: str
    score: int
    band: str
    strategy: str
    contacts: int
    engaged_contacts: int
    senior_engaged_contacts: int
    functions_engaged: tuple[str, ...]
    high_intent_30d: int
    best_lead: str | None
    best_lead_score: int | None
    committee: tuple[str, ...]
    reasons: tuple[str, ...]


def add_contact(scored: list[Contact], lead: Lead, card: ScoreCard, values: Mapping[str, Any]) -> None:
    """A scored contact into its account's ``scored`` list, which keeps the MAX_CONTACTS best (and
    at most twice as many between trims)."""
    scored.append(Contact(lead.id, card.total, str(values.get("title.seniority", "individual")),
                          str(values.get("title.function", "other")), lead.title or "",
                          values.get("intent.beyond_email.count_90d", 0) >= 1))
    if len(scored) > 2 * MAX_CONTACTS:
        scored.sort(key=lambda c: (-c.total, c.lead_id))
        del scored[MAX_CONTACTS:]


def account_card(summary: AccountSummary, strategy_name: str, strategy: Any, params: Mapping[str, Any],
                 bands: Iterable[tuple[str, int]]) -> AccountCard:
    contacts = sorted(summary.scored, key=lambda c: (-c.total, c.lead_id))[:MAX_CONTACTS]
    score, reasons = strategy.fn(contacts, params)
    band = "none"
    for name, minimum in bands:
        if score >= minimum:
            band = name
    best_lead, best_score = summary.best_lead, summary.best_score
    if best_lead is None and contacts:
        best_lead, best_score = contacts[0].lead_id, contacts[0].total
    committee = tuple(f"{c.lead_id} {c.title or c.seniority} ({c.total})" for c in contacts if c.engaged)[:10]
    summary_reasons = [
        f"{summary.engaged} of {summary.contacts} contacts engaged beyond email in 90 days",
        f"{summary.senior_engaged} engaged contacts at director level or above",
    ]
    if summary.functions:
        summary_reasons.append(f"functions engaged: {', '.join(sorted(summary.functions))}")
    if summary.high_intent_30d:
        summary_reasons.append(f"{summary.high_intent_30d} high-intent actions in the last 30 days")
    return AccountCard(summary.key, score, band, strategy_name, summary.contacts, summary.engaged,
                       summary.senior_engaged, tuple(sorted(summary.functions)), summary.high_intent_30d,
                       best_lead, best_score, committee, tuple(summary_reasons) + tuple(reasons))


def account_card_to_dict(card: AccountCard) -> dict[str, Any]:
    return {
        "account_id": card.account_id, "score": card.score, "band": card.band, "strategy": card.strategy,
        "contacts": card.contacts, "engaged_contacts": card.engaged_contacts,
        "senior_engaged_contacts": card.senior_engaged_contacts, "functions_engaged": list(card.functions_engaged),
        "high_intent_30d": card.high_intent_30d, "best_lead": card.best_lead, "best_lead_score": card.best_lead_score,
        "committee": list(card.committee), "reasons": list(card.reasons),
    }
