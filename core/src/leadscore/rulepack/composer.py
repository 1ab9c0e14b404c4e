"""Pick the rulepacks that apply to a lead and merge them; the run's questions about its packs.

Merge order is ``(priority, name)``, lowest first. Rules merge by id: a later pack's rule with
the same id replaces the earlier one in place, and ``disable = [...]`` removes rules. Categories
merge by name (the later definition wins); the total caps, bands and routing come whole from the
most specific (highest-priority) pack that defines them; named decays merge by name.

The :class:`Composer` holds the packs a run uses. It answers what the engine needs to know
before the first lead (every combination of packs a lead can meet, the signals the packs read,
the ``same_account`` conditions, the ``[accounts]`` table) and, per lead, which packs apply.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from attrs import frozen

from leadscore.errors import RulepackError, RulepackErrors
from leadscore.model import DecayPolicy, Route
from leadscore.rulepack.predicates import Pred, compile_condition
from leadscore.rulepack.schema import (
    Actions,
    BandDef,
    CategoryDef,
    Condition,
    DecayDef,
    Fact,
    RuleIR,
    Rulepack,
    same_account_nodes,
    with_extends,
)

# Beyond this many conditional packs, combinations are composed when a lead first needs them
# (2**10 combinations are checked at start-up; more would make start-up the slow part).
MAX_CONDITIONAL_AT_START = 10


@frozen
class ComposedPack:
    """The merged result of the packs that apply to a lead."""

    key: tuple[str, ...]
    packs: tuple[tuple[str, str], ...]
    rules: tuple[RuleIR, ...]
    categories: tuple[CategoryDef, ...]
    total_min: int | None
    total_max: int | None
    decays: Mapping[str, DecayDef]
    decay_fns: Mapping[str, Callable[[float], float]]
    bands: tuple[BandDef, ...]
    gates: tuple[Pred | None, ...]
    routing: Mapping[str, Route]
    scorers: tuple[str, ...]
    rule_decay: tuple[tuple[Callable[[float], float] | None, str], ...] = ()
    """Per rule: its decay function (None for no decay) and the name shown in the ledger."""
    actions: Actions = Actions()
    """What next-step suggestions may ask for: the packs' activities (merged) and facts (by text)."""

    @property
    def has_shares(self) -> bool:
        """A band's minimum is a share of the run's leads (``min = "top 5%"``)."""
        return any(band.share is not None for band in self.bands)


@frozen
class SameAccountSpec:
    """One distinct ``same_account`` condition of a run: its derived signal, the contact condition,
    and the most contacts any rule asks for (the count is kept up to that)."""

    signal: str
    where: Condition
    cap: int


@frozen
class Override:
    """A rule id two packs define: where both apply to a lead, ``pack``'s rule replaces ``replaces``'s."""

    rule_id: str
    pack: Rulepack
    replaces: Rulepack


def rule_overrides(packs: Iterable[Rulepack]) -> list[Override]:
    """Every rule that a later pack in merge order replaces, by rule id.

    This is how a team's own pack is meant to change a shipped rule; a plugin doing it
    unannounced would be a surprise, so ``check`` and ``rulepacks`` list these.
    """
    owners: dict[str, list[Rulepack]] = {}
    for pack in sorted(packs, key=lambda p: (p.priority, p.name)):
        for rule in pack.rules:
            owners.setdefault(rule.id, []).append(pack)
    return [Override(rule_id, later, earlier) for rule_id, chain in sorted(owners.items())
            for earlier, later in itertools.pairwise(chain)]


def compose(packs: Sequence[Rulepack], policies: Mapping[str, DecayPolicy]) -> ComposedPack:
    ordered = sorted(packs, key=lambda p: (p.priority, p.name))
    rules: dict[str, RuleIR] = {}
    categories: dict[str, CategoryDef] = {}
    decays: dict[str, DecayDef] = {}
    total: tuple[int | None, int | None] = (None, None)
    bands: tuple[BandDef, ...] = ()
    routing: dict[str, Route] = {}
    scorers: list[str] = []
    disabled: set[str] = set()
    activities: list[str] | None = None
    facts: dict[str, Fact] = {}
    for pack in ordered:
        if pack.actions.activities is not None:
            activities = [*(activities or ()), *pack.actions.activities]
        facts.update((fact.text, fact) for fact in pack.actions.facts)
        for rule in pack.rules:
            rules[rule.id] = rule
        for cat in pack.categories:
            categories[cat.name] = cat
        for d in pack.decays:
            decays[d.name] = d
        if pack.has_total:
            total = (pack.total_min, pack.total_max)
        if pack.bands:
            bands = pack.bands
        if pack.routing:
            routing = dict(pack.routing)
        for s in pack.scorers:
            if s not in scorers:
                scorers.append(s)
        disabled.update(pack.disable)
    errors = []
    band_packs: dict[int, list[Rulepack]] = {}
    for pack in ordered:
        if pack.bands:
            band_packs.setdefault(pack.priority, []).append(pack)
    for priority, same in band_packs.items():
        if len(same) > 1:
            names = ", ".join(f"{p.name} ({p.source})" for p in same)
            errors.append(RulepackError(same[1].source, f"rulepacks {names} both define bands at priority {priority} "
                                        f"and apply to the same leads",
                                        "give the more specific pack a higher priority, or drop one [[bands]] list"))
    for rule in rules.values():
        if rule.category not in categories:
            errors.append(RulepackError(rule.pack, f"rule {rule.id!r} uses category {rule.category!r}, which no "
                                        f"composed pack declares", f"declare [categories.{rule.category}]"))
    if not bands:
        errors.append(RulepackError(", ".join(p.name for p in ordered), "no composed rulepack defines [[bands]]",
                                    "extend a pack that has bands (such as firr-base) or add [[bands]]"))
    if errors:
        raise RulepackErrors(errors)
    decay_fns = {name: policies[d.kind].make(d.params) for name, d in decays.items()}
    decay_fns["none"] = lambda age: 1.0
    kept = tuple(r for rid, r in rules.items() if rid not in disabled)
    rule_decay = tuple(
        (None, "none") if r.decay == "none"
        else (decay_fns[r.decay], decays[r.decay].kind if r.decay.startswith("inline:") else r.decay)
        for r in kept
    )
    return ComposedPack(
        key=tuple(p.name for p in ordered),
        packs=tuple((p.name, p.version) for p in ordered),
        rules=kept,
        categories=tuple(categories.values()),
        total_min=total[0], total_max=total[1],
        decays=decays, decay_fns=decay_fns, bands=bands,
        gates=tuple(compile_condition(b.requires) if b.requires is not None else None for b in bands),
        routing=routing, scorers=tuple(scorers), rule_decay=rule_decay,
        actions=Actions(None if activities is None else tuple(dict.fromkeys(activities)), tuple(facts.values())),
    )


class Composer:
    """The packs a run uses: which apply to a lead (by ``applies_when``), and their merge per combination.

    ``applies_when`` is a selection, not scoring: it is always evaluated in Python, whatever the
    rule backend. Compositions are cached per combination of packs.
    """

    def __init__(self, packs: Sequence[Rulepack], active: Sequence[str], policies: Mapping[str, DecayPolicy]) -> None:
        self.by_name = {p.name: p for p in packs}
        self.policies = policies
        self.active = sorted(with_extends(active, self.by_name), key=lambda n: (self.by_name[n].priority, n))
        # Each conditional pack brings the packs it extends along when it applies.
        self.conditional = [(n, compile_condition(self.by_name[n].applies_when), frozenset(with_extends([n], self.by_name)))
                            for n in self.active if self.by_name[n].applies_when is not None]
        self.always = frozenset(n for n in self.active if self.by_name[n].applies_when is None)
        self._cache: dict[frozenset[str], ComposedPack] = {}

    def packs(self) -> list[Rulepack]:
        """The active packs, in merge order."""
        return [self.by_name[n] for n in self.active]

    def select(self, values: Mapping[str, Any]) -> frozenset[str]:
        """The names of the packs that apply to a lead with these signal values."""
        if not self.conditional:  # the same packs for every lead
            return self.always
        chosen = set(self.always)
        for _, pred, closure in self.conditional:
            if pred(values):
                chosen |= closure
        return frozenset(chosen)

    def get(self, key: frozenset[str]) -> ComposedPack:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = compose([self.by_name[n] for n in key], self.policies)
        return hit

    def combinations(self) -> Iterator[frozenset[str]]:
        """Every non-empty pack combination a lead can meet, when there are few enough to list.

        With more than MAX_CONDITIONAL_AT_START conditional packs: the packs that always apply
        with each conditional pack alone, so every rule still meets its backend at start-up.
        """
        conditional = [closure for _, _, closure in self.conditional]
        if len(conditional) <= MAX_CONDITIONAL_AT_START:
            groups: Iterable[tuple[frozenset[str], ...]] = (
                combo for r in range(len(conditional) + 1) for combo in itertools.combinations(conditional, r))
        else:
            groups = [(), *((closure,) for closure in conditional)]
        seen: set[frozenset[str]] = set()
        for group in groups:
            key = self.always.union(*group)
            if key and key not in seen:
                seen.add(key)
                yield key

    def wanted_signals(self) -> frozenset[str]:
        """Every signal the active packs read (rules, applies_when, gates), ``event.*`` aside."""
        names: set[str] = set()
        for pack in self.packs():
            for rule in pack.rules:
                names.update(rule.signals)
            if pack.applies_when is not None:
                names.update(pack.applies_when.signals())
            for band in pack.bands:
                if band.requires is not None:
                    names.update(band.requires.signals())
        return frozenset(n for n in names if not n.startswith("event."))

    def same_account_specs(self) -> list[SameAccountSpec]:
        """The run's distinct ``same_account`` conditions, by derived signal name."""
        found: dict[str, tuple[Condition, int]] = {}
        for pack in self.packs():
            conditions = [rule.when for rule in pack.rules] + [band.requires for band in pack.bands]
            for cond in conditions:
                for node in same_account_nodes(cond):
                    spec = node.value
                    cap = max(spec.count, found[spec.signal][1]) if spec.signal in found else spec.count
                    found[spec.signal] = (spec.where, cap)
        return [SameAccountSpec(signal, where, cap) for signal, (where, cap) in sorted(found.items())]

    def account_config(self) -> tuple[dict[str, Any], str]:
        """(the ``[accounts]`` table of the most specific active pack that has one, its source).

        Without account bands, accounts use the lead bands by points (gates are per lead).
        """
        config: dict[str, Any] = {}
        source = ""
        default_bands: list[list[Any]] = []
        for pack in self.packs():
            if pack.accounts:
                config, source = dict(pack.accounts), pack.source
            if pack.bands:
                default_bands = [[b.name, b.min_points] for b in pack.bands]
        config.setdefault("rollup", "sum_capped")
        if not config.get("bands"):
            config["bands"] = default_bands
        return config, source
