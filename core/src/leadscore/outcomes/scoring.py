"""Scoring an evaluation set with an Engine: one score per case at its own scoring time, and what
the report needs to know about the packs (band order, each rule's points).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from attrs import frozen

from leadscore.engine import Engine
from leadscore.model import Lead, Rejection, ScoreCard
from leadscore.outcomes.data import Case
from leadscore.rulepack.schema import Rulepack

T = TypeVar("T")


@frozen
class Scored:
    """What an evaluation keeps of a score card."""

    total: int
    band: str
    subscores: tuple[tuple[str, int], ...]
    fired: frozenset[str]
    """Ids of the rules (and scorer lines) that added non-zero points to the total."""


@frozen
class BandInfo:
    name: str
    min_points: int
    label: str = ""
    observed_conversion: float | None = None


@frozen
class RuleInfo:
    id: str
    points: int
    category: str
    reason: str
    pack: str


def summarise(card: ScoreCard) -> Scored:
    fired = frozenset(line.rule_id for line in card.ledger if line.kind == "rule" and line.points != 0)
    return Scored(card.total, card.band, tuple(card.subscores), fired)


def score_cases(engine: Engine, cases: Sequence[Case], keep: Callable[[ScoreCard], T] = summarise  # type: ignore[assignment]
                ) -> tuple[list[T | None], list[Rejection], str]:
    """Score every case as of its own time; a case the engine cannot score becomes a Rejection.

    Returns (``keep(card)`` or None per case, rejections, a note on the account pass). Account
    signals need one scoring time for the whole account, so the account pass runs when every
    case shares one scoring time (``--as-of``) and a pack uses account signals.
    """
    index = None
    note = ""
    if engine.needs_accounts:
        times = {case.when for case in cases}
        if len(times) == 1:
            index = engine.build_accounts([case.lead for case in cases], next(iter(times)))
        else:
            note = ("the packs use account signals, which need one scoring time for a whole account: with a scoring "
                    "time per lead they were left out (pass --as-of to include them)")
    results: list[T | None] = []
    rejections: list[Rejection] = []
    for case in cases:
        out = next(engine.score([case.lead], as_of=case.when, accounts=index))
        if isinstance(out, Rejection):
            rejections.append(out)
            results.append(None)
        else:
            results.append(keep(out))
    return results, rejections, note


def band_order(packs: Iterable[Rulepack]) -> list[BandInfo]:
    """Every band the packs define, lowest first; a band defined twice takes the most specific pack's."""
    found: dict[str, BandInfo] = {}
    for pack in packs:  # active packs come in (priority, name) order: later ones are more specific
        for band in pack.bands:
            found[band.name] = BandInfo(band.name, band.min_points, band.label,
                                        band.observed_conversion)
    return sorted(found.values(), key=lambda b: (b.min_points, b.name))


def rule_table(packs: Sequence[Rulepack]) -> list[RuleInfo]:
    """The rules the packs compose to (by id, later packs win, ``disable`` removes), in pack order."""
    rules: dict[str, RuleInfo] = {}
    disabled: set[str] = set()
    for pack in packs:
        for rule in pack.rules:
            rules[rule.id] = RuleInfo(rule.id, rule.points, rule.category, rule.reason, pack.name)
        disabled.update(pack.disable)
    return [info for rid, info in rules.items() if rid not in disabled]


def pack_names(engine: Engine) -> list[str]:
    return [f"{p.name} {p.version}" for p in engine.active_packs()]


def channel_namer(engine: Engine, when: datetime) -> Any:
    """A function from a lead's raw source to (source, channel) as the source extractor names them."""
    cache: dict[str | None, tuple[str, str]] = {}

    def name(source: str | None) -> tuple[str, str]:
        hit = cache.get(source)
        if hit is None:
            if not source:
                hit = ("(none)", "(none)")
            else:
                values = engine.signals(Lead("channel", source=source), when)
                source_signal = values.get("lead.source")
                channel_signal = values.get("lead.channel")
                hit = (source_signal.value if source_signal else source,
                       channel_signal.value if channel_signal else "other")
            cache[source] = hit
        return hit

    return name
