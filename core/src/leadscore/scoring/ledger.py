"""The ledger: one line per matched rule (per counted activity for rules with ``on``), decayed,
then the caps' lines; the lines of a card sum exactly to its total.

Matches arrive from a backend as ``(rule_index, activity_index)`` pairs sorted by rule and then by
activity (oldest first; -1 for a lead-level rule). Lines are tuples of Contribution's fields in
order (``LedgerLine``, read as ``line[POINTS]``); the :class:`~leadscore.model.Ledger` turns them
into Contribution records when read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from leadscore.model import Activities, Activity, Ledger, LedgerLine, ScoreLine, Signal
from leadscore.rulepack.composer import ComposedPack
from leadscore.rulepack.schema import RuleIR
from leadscore.scoring.caps import apply_caps, cap_line, rule_cap
from leadscore.scoring.decay import DecayFn, decayed, factor_at

Match = tuple[int, int]


def build_ledger(
    composed: ComposedPack,
    matches: Sequence[Match],
    signals: Mapping[str, Signal],
    events: Sequence[Activity],
    as_of: datetime,
    extra: Sequence[tuple[str, ScoreLine]] = (),
) -> tuple[Ledger, list[tuple[str, int]], int]:
    """Return (ledger, sub-scores in category order, total) for one lead."""
    if type(events) is not Activities:
        events = Activities.of(events)
    ledger: list[LedgerLine] = []
    i, n = 0, len(matches)
    while i < n:
        rule_index = matches[i][0]
        j = i + 1
        while j < n and matches[j][0] == rule_index:  # a rule's matches are consecutive
            j += 1
        rule = composed.rules[rule_index]
        fn, label = composed.rule_decay[rule_index]
        start = len(ledger)
        if matches[i][1] < 0:
            ledger.append(_lead_line(rule, fn, label, signals, as_of))
        else:
            _add_activity_lines(ledger, rule, fn, label, matches, i, j, events, as_of)
        if rule.max_points is not None or rule.min_points is not None:
            cap = rule_cap(rule.id, rule.category, rule.pack, rule.max_points, rule.min_points, ledger[start:])
            if cap is not None:
                ledger.append(cap)
        i = j
    for scorer, line in extra:
        fn = None if line.decay == "none" else composed.decay_fns.get(line.decay, composed.decay_fns["none"])
        # A scorer's line without a time is as fresh as can be: age 0 under its curve.
        factor = factor_at(fn, as_of, line.observed_at or as_of)
        ledger.append((line.rule_id, line.category, decayed(line.points, factor), line.reason, f"scorer:{scorer}",
                       "rule", line.points, line.decay, factor, line.signal, line.observed_at, ""))
    subscores, total = apply_caps(composed, ledger)
    return Ledger(ledger, events), subscores, total


def _lead_line(rule: RuleIR, fn: DecayFn | None, label: str, signals: Mapping[str, Signal],
               as_of: datetime) -> LedgerLine:
    """A lead-level rule's line: dated by the latest of its signals, with their evidence."""
    observed: datetime | None = None
    evidence: list[str] = []
    for name in rule.signals:
        sig = signals.get(name)
        if sig is not None:
            if sig.observed_at is not None and (observed is None or sig.observed_at > observed):
                observed = sig.observed_at
            if sig.evidence and sig.evidence not in evidence:
                evidence.append(sig.evidence)
    factor = factor_at(fn, as_of, observed)
    points = rule.points if fn is None or observed is None else decayed(rule.points, factor)
    return (rule.id, rule.category, points, rule.reason, rule.pack, "rule", rule.points, label, factor,
            rule.signals[0] if rule.signals else None, observed, tuple(evidence))


def _newest_each_day(matches: Sequence[Match], first: int, end: int, times: Sequence[datetime],
                     max_days: int | None) -> list[int]:
    """For ``count = "daily"``: the newest match of each UTC calendar day, newest day first, for at
    most ``max_days`` days. Matches arrive oldest first, so days only go back while walking back."""
    chosen: list[int] = []
    last_day = None
    for m in range(end - 1, first - 1, -1):
        day = times[matches[m][1]].date()
        if day != last_day:
            if max_days is not None and len(chosen) == max_days:
                break
            chosen.append(m)
            last_day = day
    return chosen


def _add_activity_lines(ledger: list[LedgerLine], rule: RuleIR, fn: DecayFn | None, label: str,
                        matches: Sequence[Match], first: int, end: int, events: Activities, as_of: datetime) -> None:
    """Append a per-activity rule's lines for ``matches[first:end]`` (its activities, oldest first):
    the occurrences its frequency counts, newest first, then the frequency cap's line when earlier
    ones are not counted."""
    found = end - first
    times, types = events.times, events.types
    if rule.count == "daily":
        counted = _newest_each_day(matches, first, end, times, rule.max_count)
    else:
        keep = 1 if rule.count == "once" else (rule.max_count or found)
        counted = range(end - 1, (end - keep if keep < found else first) - 1, -1)
    for m in counted:
        e = matches[m][1]
        factor = factor_at(fn, as_of, times[e])
        # The evidence is the activity's position; the Ledger turns it into text on read.
        ledger.append((rule.id, rule.category, decayed(rule.points, factor), rule.reason, rule.pack, "rule",
                       rule.points, label, factor, types[e], times[e], e))
    dropped = found - len(counted)
    if dropped:
        if rule.count == "daily":
            limit = "once a day" + (f", on at most {rule.max_count} days" if rule.max_count else "")
        else:
            limit = "once" if rule.count == "once" else f"at most {len(counted)} times"
        ledger.append(cap_line(
            rule.id, rule.category, 0, f"{dropped} earlier matching activit{'y' if dropped == 1 else 'ies'} "
            f"not counted: this rule counts {limit}", rule.pack, "frequency_cap", types[matches[end - 1][1]]))
