"""What would move a lead into a band: the smallest sets of actions and confirmed facts, read from the rule IR.

Candidates come from the packs that apply to the lead: every activity type a rule, pattern or gate
of those packs reads (through ``on``, ``activity.<type>.*``, ``intent.<tier>.*`` or a pattern) and
that the packs let a lead be asked for (``[actions] activities``; by default every type outside the
email, negative and unknown tiers), and every ``[[actions.facts]]`` entry whose signals a rule or
gate reads (a business email, a confirmed budget). Firmographics are never suggested unless a pack
lists them as a fact.

Each candidate set is scored by the engine itself, with one new activity of each type at the
scoring time and the facts' signal values assumed, so the points, decay, caps and gates of a
suggestion are exact: applying it to the lead gives the card it promises. Sets are tried smallest
first (one change, then two, then three), over the candidates that move the card at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen

from leadscore.model import Activity, Lead, ScoreCard, evolve
from leadscore.rulepack.composer import ComposedPack
from leadscore.rulepack.schema import ACCOUNT_OPS, PATTERN_OPS, Condition, Fact, describe
from leadscore.taxonomy.activities import tiers_for

# Tiers whose activities are not something to ask of a lead (email opens, unsubscribes) or unknown.
NOT_ASKED = ("email", "negative", "other")
MAX_CHANGES = 3
# How many of the most useful single changes are combined into pairs and triples.
_WIDTH = {2: 10, 3: 7}


@frozen
class Change:
    """One step: a new activity of ``activity`` type, or a confirmed ``fact``.

    ``alike`` are other activity types the packs read in exactly the same places (the same rules,
    patterns and tier counts), so any of them would do the same: they are scored once.
    """

    activity: str | None = None
    fact: Fact | None = None
    alike: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        if not self.activity:
            return self.fact.text  # type: ignore[union-attr]
        alike = f" (or {', '.join(self.alike)})" if self.alike else ""
        return f"a new {self.activity}{alike}"


@frozen
class Effect:
    """What one change does on its own: points, and the new ledger line that moves most."""

    change: Change
    points: int
    reason: str = ""
    decay: str = "none"


@frozen
class Option:
    """A set of changes and the card it leads to."""

    changes: tuple[Change, ...]
    total: int
    band: str


@frozen
class NextSteps:
    lead_id: str
    target: str
    band: str
    total: int
    target_min: int
    gate: str
    gate_met: bool
    reached: bool
    options: tuple[Option, ...]
    effects: tuple[Effect, ...]

    @property
    def points_needed(self) -> int:
        return max(0, self.target_min - self.total)


def _activity_types(cond: Condition | None, tiers: Mapping[str, str]) -> set[str]:
    """Activity types a condition reads: ``activity.T.*``, every type of ``intent.R.*``, pattern types."""
    if cond is None:
        return set()
    found: set[str] = set()
    if cond.op in PATTERN_OPS:
        found.update(cond.value.types())
    elif cond.op in ACCOUNT_OPS:
        pass  # other contacts' activities: not something this lead can do
    for signal in ([cond.signal] if cond.signal else []):
        parts = signal.split(".")
        if len(parts) == 3 and parts[0] == "activity":
            found.add(parts[1])
        elif len(parts) == 3 and parts[0] == "intent":
            if parts[1] == "any":
                found.update(tiers)
            elif parts[1] == "beyond_email":
                found.update(t for t, tier in tiers.items() if tier not in ("email", "negative"))
            else:
                found.update(t for t, tier in tiers.items() if tier == parts[1])
    for child in cond.children:
        found |= _activity_types(child, tiers)
    return found


def _places(composed: ComposedPack, tiers: Mapping[str, str]) -> dict[str, set[tuple[str, int]]]:
    """Activity type -> every place that reads it: ("on", rule), ("when", rule), ("gate", band)."""
    places: dict[str, set[tuple[str, int]]] = {}
    for index, rule in enumerate(composed.rules):
        for t in rule.on:
            places.setdefault(t, set()).add(("on", index))
        for t in _activity_types(rule.when, tiers):
            places.setdefault(t, set()).add(("when", index))
    for index, band in enumerate(composed.bands):
        for t in _activity_types(band.requires, tiers):
            places.setdefault(t, set()).add(("gate", index))
    return places


def candidates(composed: ComposedPack, vocabulary: Mapping[str, Any], values: Mapping[str, Any]) -> list[Change]:
    """The changes worth trying for a lead scored with ``composed`` (signal ``values``).

    Activity types read in exactly the same places (and so of the same tier) do exactly the same
    to any lead: one of them is tried, the others are named in its ``alike``.
    """
    tiers = tiers_for(vocabulary)
    conditions = [r.when for r in composed.rules] + [b.requires for b in composed.bands]
    places = _places(composed, tiers)
    allowed = composed.actions.activities
    if allowed is None:
        allowed = tuple(t for t, tier in tiers.items() if tier not in NOT_ASKED)
    groups: dict[tuple[str, frozenset[tuple[str, int]]], list[str]] = {}
    for t in allowed:
        if t in places:
            groups.setdefault((tiers.get(t, "other"), frozenset(places[t])), []).append(t)
    changes = [Change(activity=types[0], alike=tuple(types[1:])) for types in groups.values()]
    signals_read = {s for cond in conditions if cond is not None for s in cond.signals()}
    for fact in composed.actions.facts:
        if any(name in signals_read for name, _ in fact.set) and any(values.get(n) != v for n, v in fact.set):
            changes.append(Change(fact=fact))
    return changes


def _apply(lead: Lead, changes: Iterable[Change], when: datetime) -> tuple[Lead, dict[str, Any]]:
    """The lead with the changes' activities (at the scoring time) and the signal values they assume."""
    new = [Activity(c.activity, when) for c in changes if c.activity]
    assume = {name: value for c in changes if c.fact for name, value in c.fact.set}
    if new:
        lead = evolve(lead, activities=(*lead.activities, *new))
    return lead, assume


def next_steps(engine: Any, lead: Lead, target: str | None = None, as_of: datetime | None = None,
               account: Mapping[str, Any] | None = None, max_options: int = 3) -> NextSteps:
    """The smallest sets of changes that put ``lead`` in band ``target`` (default: the band above its own).

    ``engine`` is a :class:`leadscore.Engine`; ``account`` the lead's account signals, as for
    :meth:`Engine.score_lead`. Raises ValueError for a band the lead's packs do not define.
    """
    when = engine._resolve_as_of(as_of)
    base, values = engine._score(lead, when, account)
    composed, _ = engine.plan(engine.composer.select(values))
    names = [b.name for b in composed.bands]
    if target is None:
        index = names.index(base.band)
        target = names[min(index + 1, len(names) - 1)]
    if target not in names:
        raise ValueError(f"band {target!r} is not a band of {', '.join(composed.key)}; use one of {', '.join(names)}")
    goal = names.index(target)
    band_def = composed.bands[goal]
    gate_met = band_def.requires is None or composed.gates[goal](values)

    def reached(card: ScoreCard) -> bool:
        return card.band in names and names.index(card.band) >= goal

    steps = dict(lead_id=lead.id, target=target, band=base.band, total=base.total, target_min=band_def.min_points,
                 gate=band_def.gate_reason, gate_met=gate_met)
    if reached(base):
        return NextSteps(**steps, reached=True, options=(), effects=())

    def score(changes: Sequence[Change]) -> ScoreCard:
        changed, assume = _apply(lead, changes, when)
        return engine._score(changed, when, account, assume)[0]

    singles: list[tuple[Change, ScoreCard]] = []
    effects = []
    for change in candidates(composed, engine.vocabulary, values):
        card = score([change])
        if card.total != base.total or card.band != base.band or card.gate_notes != base.gate_notes:
            singles.append((change, card))
            effects.append(_effect(change, base, card))
    # Most points first; a change that moves no points but opens a gate stays in (ranked last).
    singles.sort(key=lambda item: (-(item[1].total - base.total), item[0].text))
    found = [Option((c,), card.total, card.band) for c, card in singles if reached(card)]
    for size in range(2, MAX_CHANGES + 1):
        if found:
            break
        pool = [c for c, _ in singles[:_WIDTH[size]]]
        for combo in itertools.combinations_with_replacement(pool, size):
            if sum(1 for c in combo if c.fact) != len({c.fact for c in combo if c.fact}):
                continue  # a fact confirmed twice is the same fact
            card = score(combo)
            if reached(card):
                found.append(Option(combo, card.total, card.band))
    # Among sets of the smallest size: actions before facts sales must confirm, then the lightest
    # ask that still gets there (the least overshoot), so a case-study view comes before a demo.
    found.sort(key=lambda o: (sum(1 for c in o.changes if c.fact), o.total, [c.text for c in o.changes]))
    return NextSteps(**steps, reached=False, options=tuple(found[:max_options]), effects=tuple(effects))


def _effect(change: Change, base: ScoreCard, card: ScoreCard) -> Effect:
    before = {(c.rule_id, c.points) for c in base.ledger}
    new = [c for c in card.ledger if c.kind == "rule" and (c.rule_id, c.points) not in before]
    new.sort(key=lambda c: (-abs(c.points), c.rule_id))
    if not new:
        return Effect(change, card.total - base.total)
    return Effect(change, card.total - base.total, new[0].reason, new[0].decay)


def to_dict(steps: NextSteps) -> dict[str, Any]:
    """The next steps in the shape JSON output uses."""
    effect = {e.change: e for e in steps.effects}

    def change(c: Change) -> dict[str, Any]:
        e = effect.get(c)
        head = {"activity": c.activity, **({"or": list(c.alike)} if c.alike else {})} if c.activity else {"fact": c.text}
        return {**head, "points_alone": e.points if e else 0, **({"reason": e.reason} if e and e.reason else {})}

    return {
        "target": steps.target, "band": steps.band, "total": steps.total, "reached": steps.reached,
        "points_needed": steps.points_needed, "gate": steps.gate, "gate_met": steps.gate_met,
        "options": [{"changes": [change(c) for c in o.changes], "total": o.total, "band": o.band}
                    for o in steps.options],
    }


def render(steps: NextSteps) -> str:
    """The next steps as a few lines of text for a sales rep."""
    if steps.reached:
        return f"{steps.lead_id} is already {steps.band} (the target, {steps.target}, is reached)."
    needs = []
    if steps.points_needed:
        needs.append(f"+{steps.points_needed} points")
    if not steps.gate_met and steps.gate:
        needs.append(f"the {steps.target} gate: {steps.gate}")
    lines = [f"To reach {steps.target} (from {steps.band}, {steps.total} points), it needs "
             + (" and ".join(needs) or "a change of band") + "."]
    effect = {e.change: e for e in steps.effects}
    for number, option in enumerate(steps.options, 1):
        parts = []
        for c in option.changes:
            e = effect.get(c)
            detail = ""
            if e is not None and e.points:
                decay = f", fades: {e.decay}" if e.decay != "none" else ""
                detail = f" ({e.points:+d}{': ' + e.reason if e.reason else ''}{decay})"
            parts.append(c.text + detail)
        lines.append(f"  {number}. {' and '.join(parts)} -> {option.total} points, {option.band}")
    if not steps.options:
        lines.append(f"  No set of up to {MAX_CHANGES} actions or confirmed facts gets there: what is missing is "
                     f"not something the lead can do or sales can confirm (firmographics, for instance).")
    return "\n".join(lines)


# --- the account view: the buying-committee gap ---------------------------------------------------

_COMMITTEE_WORDS = {
    "account.senior_engaged_contacts": "engaged contact{s} at director level or above",
    "account.engaged_contacts": "contact{s} engaged beyond email in the last 90 days",
    "account.functions_engaged": "job function{s} engaged (with an engaged contact in each)",
    "account.high_intent_30d": "high-intent action{s} by anyone at the account in the last 30 days",
    "account.contacts": "known contact{s}",
}


def _shortfall(cond: Condition, value: Any) -> int:
    """How much more of a count signal the leaf needs (0 when met or not a count comparison)."""
    current = value if isinstance(value, int) and not isinstance(value, bool) else 0
    wanted = cond.value
    if isinstance(wanted, bool) or not isinstance(wanted, int):
        return 0
    need = {"gte": wanted, "gt": wanted + 1, "eq": wanted}.get(cond.op)
    return max(0, need - current) if need is not None else 0


def _account_leaves(cond: Condition | None) -> list[Condition]:
    """The parts of a condition that read the account: ``account.*`` comparisons and same_account."""
    if cond is None:
        return []
    if cond.op in ACCOUNT_OPS or (cond.signal and cond.signal.startswith("account.")):
        return [cond]
    return [leaf for child in cond.children for leaf in _account_leaves(child)]


def account_gaps(engine: Any, card: Any, values: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(the account's next band, what it lacks): the roll-up points to that band, and the contacts
    or roles that the active packs' account rules ask for and the account does not have yet.

    ``card`` is an :class:`~leadscore.accounts.AccountCard`; ``values`` its ``account.*`` signals.
    """
    bands = [(name, minimum) for name, minimum in engine.account_config.get("bands", [])]
    names = [name for name, _ in bands]
    following = bands[names.index(card.band) + 1] if card.band in names and names.index(card.band) + 1 < len(bands) \
        else (bands[0] if card.band not in names and bands else None)
    gaps: list[str] = []
    if following is not None and following[1] > card.score:
        gaps.append(f"+{following[1] - card.score} roll-up points ({card.strategy}) for {following[0]}")
    seen: set[tuple[str, int]] = set()
    for pack in engine.active_packs():
        for rule in pack.rules:
            for leaf in _account_leaves(rule.when):
                if leaf.op in ACCOUNT_OPS:
                    spec = leaf.value
                    need = max(0, spec.count - int(values.get(spec.signal, 0) or 0))
                    what = f"contact{'s' if need != 1 else ''} with {describe(spec.where)}"
                    signal = spec.signal
                else:
                    need = _shortfall(leaf, values.get(leaf.signal))
                    words = _COMMITTEE_WORDS.get(leaf.signal)
                    if words is None:
                        continue
                    what = words.format(s="s" if need != 1 else "")
                    signal = leaf.signal
                if need and (signal, need) not in seen:
                    seen.add((signal, need))
                    gaps.append(f"{need} more {what}, for '{rule.reason}' ({rule.points:+d} a contact)")
    return (following[0] if following else None), gaps
