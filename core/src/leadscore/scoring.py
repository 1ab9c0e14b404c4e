"""From matches to a ledger: decay each line, apply frequency, rule, category and total caps, pick the band.

Points are whole numbers. A decayed line is ``round(raw × factor)`` with halves rounded away from
zero, so ``sum(ledger) == total`` holds exactly, and every cap that bites is its own ledger line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from leadscore.model import Activities, Activity, Ledger, ScoreLine, Signal
from leadscore.rulepack.composer import ComposedPack
from leadscore.rulepack.schema import RuleIR

_DAY = 86400.0


def decayed(points: int, factor: float) -> int:
    """Whole points after decay, halves away from zero; never larger in size than ``points``."""
    scaled = abs(points) * factor
    whole = int(scaled + 0.5)
    return whole if points >= 0 else -whole


def _age_days(as_of: datetime, observed_at: datetime | None) -> float:
    if observed_at is None:
        return 0.0
    return max(0.0, (as_of - observed_at).total_seconds() / _DAY)


Line = tuple  # a ledger line in Contribution's field order (see leadscore.model.Ledger)


def _rule_line(rule: RuleIR, decay: tuple[Callable[[float], float] | None, str], as_of: datetime,
               observed_at: datetime | None, signal: str | None, evidence: Any) -> Line:
    fn, label = decay
    if fn is None or observed_at is None:
        factor, points = 1.0, rule.points
    else:
        age = (as_of - observed_at).total_seconds() / _DAY
        factor = fn(age if age > 0.0 else 0.0)
        points = decayed(rule.points, factor)
    return (rule.id, rule.category, points, rule.reason, rule.pack, "rule", rule.points, label, factor, signal,
            observed_at, evidence)


def _cap_line(rule_id: str, category: str, points: int, reason: str, pack: str, kind: str,
              signal: str | None = None) -> Line:
    return (rule_id, category, points, reason, pack, kind, 0, "none", 1.0, signal, None, "")


def build_ledger(
    composed: ComposedPack,
    matches: Sequence[tuple[int, int]],
    signals: Mapping[str, Signal],
    events: Sequence[Activity],
    as_of: datetime,
    extra: Sequence[tuple[str, ScoreLine]] = (),
) -> tuple[Ledger, list[tuple[str, int]], int]:
    """Return (ledger, subscores in category order, total) for one lead."""
    ledger: list[Line] = []
    if type(events) is not Activities:
        events = Activities.of(events)
    times, types = events.times, events.types
    rules = composed.rules
    rule_decay = composed.rule_decay
    i, n = 0, len(matches)
    append = ledger.append
    while i < n:
        r_index = matches[i][0]
        j = i + 1
        while j < n and matches[j][0] == r_index:
            j += 1
        rule = rules[r_index]
        start = len(ledger)
        fn, label = rule_decay[r_index]
        points = rule.points
        if matches[i][1] < 0:
            observed = None
            evidence: list[str] = []
            for name in rule.signals:
                sig = signals.get(name)
                if sig is not None:
                    if sig.observed_at is not None and (observed is None or sig.observed_at > observed):
                        observed = sig.observed_at
                    if sig.evidence and sig.evidence not in evidence:
                        evidence.append(sig.evidence)
            append(_rule_line(rule, rule_decay[r_index], as_of, observed,
                              rule.signals[0] if rule.signals else None, tuple(evidence)))
        else:
            # Matches come oldest first; the most recent occurrences are the ones that count.
            found = j - i
            keep = 1 if rule.count == "once" else (rule.max_count or found)
            first = j - keep if keep < found else i
            rid, category, reason, pack = rule.id, rule.category, rule.reason, rule.pack
            size, negative = abs(points), points < 0
            for m in range(j - 1, first - 1, -1):
                e = matches[m][1]
                at = times[e]
                # (_rule_line and decayed() inlined: this loop runs for most ledger lines.)
                if fn is None:
                    factor, got = 1.0, points
                else:
                    age = (as_of - at).total_seconds() / _DAY
                    factor = fn(age if age > 0.0 else 0.0)
                    got = int(size * factor + 0.5)
                    if negative:
                        got = -got
                # The evidence is the activity's position; the Ledger turns it into text on read.
                append((rid, category, got, reason, pack, "rule", points, label, factor, types[e], at, e))
            dropped = first - i
            if dropped:
                limit = "once" if rule.count == "once" else f"at most {keep} times"
                append(_cap_line(
                    rule.id, rule.category, 0, f"{dropped} earlier matching activit{'y' if dropped == 1 else 'ies'} "
                    f"not counted: this rule counts {limit}", rule.pack, "frequency_cap",
                    types[matches[j - 1][1]],
                ))
        if rule.max_points is not None or rule.min_points is not None:
            _rule_cap(rule.id, rule.category, rule.pack, rule.max_points, rule.min_points, ledger, start)
        i = j
    for scorer, line in extra:
        fn = composed.decay_fns.get(line.decay, composed.decay_fns["none"])
        factor = fn(_age_days(as_of, line.observed_at)) if line.decay != "none" else 1.0
        ledger.append((line.rule_id, line.category, decayed(line.points, factor), line.reason, f"scorer:{scorer}",
                       "rule", line.points, line.decay, factor, line.signal, line.observed_at, ""))
    return _caps(composed, ledger, events)


def _rule_cap(rule_id: str, category: str, pack: str, max_points: int | None, min_points: int | None,
              ledger: list[Line], start: int) -> None:
    got = sum(line[2] for line in ledger[start:])
    if max_points is not None and got > max_points:
        ledger.append(_cap_line(rule_id, category, max_points - got, f"rule capped at {max_points} points (had {got})",
                                pack, "rule_cap"))
    elif min_points is not None and got < min_points:
        ledger.append(_cap_line(rule_id, category, min_points - got,
                                f"rule floored at {min_points} points (had {got})", pack, "rule_cap"))


def _caps(composed: ComposedPack, ledger: list[Line], events: Activities) -> tuple[Ledger, list[tuple[str, int]], int]:
    sums: dict[str, int] = {c.name: 0 for c in composed.categories}
    for line in ledger:
        sums[line[1]] = sums.get(line[1], 0) + line[2]
    pack = composed.key[-1]
    for cat in composed.categories:
        got = sums[cat.name]
        if cat.max is not None and got > cat.max:
            ledger.append(_cap_line(f"cap.{cat.name}", cat.name, cat.max - got,
                                    f"{cat.label or cat.name} capped at {cat.max} points (had {got})", pack,
                                    "category_cap"))
            sums[cat.name] = cat.max
        elif cat.min is not None and got < cat.min:
            ledger.append(_cap_line(f"cap.{cat.name}", cat.name, cat.min - got,
                                    f"{cat.label or cat.name} floored at {cat.min} points (had {got})", pack,
                                    "category_cap"))
            sums[cat.name] = cat.min
    total = sum(sums.values())
    if composed.total_max is not None and total > composed.total_max:
        ledger.append(_cap_line("cap.total", "total", composed.total_max - total,
                                f"total capped at {composed.total_max} points (had {total})", pack, "total_cap"))
        total = composed.total_max
    elif composed.total_min is not None and total < composed.total_min:
        ledger.append(_cap_line("cap.total", "total", composed.total_min - total,
                                f"total floored at {composed.total_min} points (had {total})", pack, "total_cap"))
        total = composed.total_min
    return Ledger(ledger, events), list(sums.items()), total


def choose_band(composed: ComposedPack, total: int, values: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(band, band by points alone, notes on gates that held the lead back)."""
    bands = composed.bands
    points_index = 0
    for index, band in enumerate(bands):
        if total >= band.min_points:
            points_index = index
    notes: list[str] = []
    for index in range(points_index, -1, -1):
        gate = composed.gates[index]
        if gate is None or gate(values):
            return bands[index].name, bands[points_index].name, tuple(notes)
        band = bands[index]
        notes.append(f"{band.name} not reached despite {total} points: requires {band.gate_reason}")
    return bands[0].name, bands[points_index].name, tuple(notes)
