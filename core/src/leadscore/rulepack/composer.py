"""Pick the rulepacks that apply to a lead and merge them; each combination is composed and compiled once.

Merge order is ``(priority, name)``, lowest first. Rules merge by id: a later pack's rule with
the same id replaces the earlier one in place, and ``disable = [...]`` removes rules. Categories
merge by name (the later definition wins); the total caps, bands and routing come whole from the
most specific (highest-priority) pack that defines them; named decays merge by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from leadscore.backends import Backend, Matcher
from leadscore.backends.python import Pred, compile_condition
from leadscore.errors import RulepackError, RulepackErrors
from leadscore.model import DecayPolicy
from leadscore.rulepack.schema import BandDef, CategoryDef, DecayDef, RouteDef, RuleIR, Rulepack


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
    routing: Mapping[str, RouteDef]
    scorers: tuple[str, ...]
    rule_decay: tuple[tuple[Callable[[float], float] | None, str], ...] = ()
    """Per rule: its decay function (None for no decay) and the name shown in the ledger."""


def compose(packs: Sequence[Rulepack], policies: Mapping[str, DecayPolicy]) -> ComposedPack:
    ordered = sorted(packs, key=lambda p: (p.priority, p.name))
    rules: dict[str, RuleIR] = {}
    categories: dict[str, CategoryDef] = {}
    decays: dict[str, DecayDef] = {}
    total: tuple[int | None, int | None] = (None, None)
    bands: tuple[BandDef, ...] = ()
    routing: dict[str, RouteDef] = {}
    scorers: list[str] = []
    disabled: set[str] = set()
    for pack in ordered:
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
    )


class Composer:
    """Selects packs per lead by ``applies_when`` and caches (composed pack, matcher) per combination.

    ``applies_when`` is a selection, not scoring: it is always evaluated in Python, whatever the
    rule backend.
    """

    def __init__(self, packs: Sequence[Rulepack], active: Sequence[str], policies: Mapping[str, DecayPolicy],
                 backend: Backend) -> None:
        self.by_name = {p.name: p for p in packs}
        self.policies = policies
        self.backend = backend
        closure: list[str] = []
        todo = list(active)
        while todo:
            name = todo.pop(0)
            if name not in closure:
                closure.append(name)
                todo.extend(self.by_name[name].extends)
        self.active = sorted(closure, key=lambda n: (self.by_name[n].priority, n))
        self.conditional = [(n, compile_condition(self.by_name[n].applies_when))
                            for n in self.active if self.by_name[n].applies_when is not None]
        self.always = [n for n in self.active if self.by_name[n].applies_when is None]
        self._always_key = frozenset(self.always)
        self._cache: dict[frozenset[str], tuple[ComposedPack, Matcher]] = {}

    def select(self, values: Mapping[str, Any]) -> frozenset[str]:
        if not self.conditional:  # the same packs for every lead (and one key object, hashed once)
            return self._always_key
        chosen = set(self.always)
        for name, pred in self.conditional:
            if pred(values):
                chosen.add(name)
                todo = list(self.by_name[name].extends)
                while todo:
                    ext = todo.pop()
                    if ext not in chosen:
                        chosen.add(ext)
                        todo.extend(self.by_name[ext].extends)
        return frozenset(chosen)

    def get(self, key: frozenset[str]) -> tuple[ComposedPack, Matcher]:
        hit = self._cache.get(key)
        if hit is None:
            composed = compose([self.by_name[n] for n in key], self.policies)
            hit = self._cache[key] = (composed, self.backend.compile(composed))
        return hit

    def close(self) -> None:
        for _, matcher in self._cache.values():
            matcher.close()
        self._cache.clear()
