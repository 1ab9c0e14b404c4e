"""Activity signals: per activity type and per intent tier, counts in 7/30/90-day windows and timestamps.

For each activity type ``T`` (see docs/activities.md; unknown types are kept, in tier ``other``):
``activity.T.count``, ``activity.T.count_7d``, ``activity.T.count_30d``, ``activity.T.count_90d``,
``activity.T.first_at``, ``activity.T.last_at`` and ``activity.T.days_since_last``.
For each tier ``R`` (email, low, medium, high, readiness, negative, other, plus ``any`` and
``beyond_email`` = every tier but email and negative) the same counts as ``intent.R.*``.

Windows are measured back from the scoring time ``as_of``; activities after ``as_of`` are ignored,
so scoring "as of" a past date replays history exactly. A signal's ``observed_at`` is the time of
the latest activity it counts (the earliest for ``first_at``), so decay acts on real behaviour.
A rulepack adds types to tiers with ``[vocabulary.activity_tiers] high = ["roi_calculator"]``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import datetime, timedelta

from leadscore.caching import BoundedCache
from leadscore.default_plugins.extract.lazy import columnar
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import (
    ExtractContext,
    Lead,
    Signal,
    SignalExtractor,
    SignalSpec,
    day_text,
)
from leadscore.taxonomy.activities import AGGREGATE_TIERS, TIERS, tiers_for

METRICS = ("count", "count_7d", "count_30d", "count_90d", "first_at", "last_at", "days_since_last")
_METRIC_TYPES = {"count": "int", "count_7d": "int", "count_30d": "int", "count_90d": "int",
                 "first_at": "datetime", "last_at": "datetime", "days_since_last": "number"}

PROVIDES = tuple(
    SignalSpec(f"activity.*.{m}", _METRIC_TYPES[m], f"{m} of one activity type", vocabulary="activity_types")
    for m in METRICS
) + tuple(
    SignalSpec(f"intent.{tier}.{m}", _METRIC_TYPES[m], f"{m} of activities in tier {tier}")
    for tier in (*TIERS, *AGGREGATE_TIERS) for m in METRICS
)


_COUNTS = ("count", "count_7d", "count_30d", "count_90d")
_ALL_TIER_COUNTS = frozenset(f"intent.{t}.{m}" for t in (*TIERS, *AGGREGATE_TIERS) for m in _COUNTS)


class _Plan:
    """Which types and tiers to count, and which metrics to emit, for one ``wanted`` set."""

    __slots__ = ("all_types", "types", "tiers", "metrics", "zero", "tier_keys")

    def __init__(self, wanted: frozenset[str] | None) -> None:
        self.all_types = wanted is None
        self.types: set[str] = set()
        self.tiers: set[str] = set()
        self.metrics: dict[str, tuple[str, ...]] = {}
        # tier -> the tier keys an activity of that tier counts under (a handful of tiers at most).
        self.tier_keys: dict[str, tuple[str, ...]] = {}
        candidates = _ALL_TIER_COUNTS if wanted is None else wanted
        # The same immutable records for every lead that lacks them.
        self.zero = tuple(Signal(n, 0, None, "none before the scoring time") for n in sorted(
            n for n in candidates if n.rpartition(".")[2] in _COUNTS and n.startswith(("intent.", "activity."))))
        if wanted is None:
            self.tiers = {*TIERS, *AGGREGATE_TIERS}
            return
        for name in wanted:
            parts = name.split(".")
            if len(parts) != 3 or parts[2] not in METRICS:
                continue
            if parts[0] == "activity":
                self.types.add(parts[1])
            elif parts[0] == "intent":
                self.tiers.add(parts[1])
            else:
                continue
            prefix = f"{parts[0]}.{parts[1]}."
            self.metrics[prefix] = (*self.metrics.get(prefix, ()), parts[2])

    def wanted_metrics(self, prefix: str) -> tuple[str, ...]:
        return METRICS if self.all_types or not self.metrics else self.metrics.get(prefix, ())


_PLANS: BoundedCache[frozenset[str] | None, _Plan] = BoundedCache(64)


def _plan_for(wanted: frozenset[str] | None) -> _Plan:
    plan = _PLANS.get(wanted)
    if plan is None:
        plan = _PLANS.put(wanted, _Plan(wanted))
    return plan


def _emit(out: list[Signal], prefix: str, parts: list[list[datetime]], windows: tuple[datetime, ...],
          as_of: datetime, metrics: tuple[str, ...], label: str) -> None:
    """Signals for one type or tier, from the sorted activity times of each type it counts.

    Every metric is a sum, minimum or maximum over the types, so the lists are never merged.
    """
    if not metrics:
        return
    times = parts[0]
    first, last, count = times[0], times[-1], len(times)
    for times in parts[1:]:  # (plain loops: this runs for every lead)
        count += len(times)
        if times[0] < first:
            first = times[0]
        if times[-1] > last:
            last = times[-1]
    evidence = f"{label}: {count} in all, last {day_text(last)}"
    for metric in metrics:
        value: int | float | datetime
        observed: datetime | None
        if metric == "count":
            value, observed = count, last
        elif metric in _WINDOW_INDEX:
            since = windows[_WINDOW_INDEX[metric]]
            value = count
            for times in parts:
                value -= bisect_left(times, since)
            observed = last if value else None
        elif metric == "first_at":
            value = observed = first
        elif metric == "last_at":
            value = observed = last
        else:
            value, observed = round((as_of - last).total_seconds() / 86400.0, 3), last
        out.append(Signal(prefix + metric, value, observed, evidence))


_WINDOW_INDEX = {"count_7d": 0, "count_30d": 1, "count_90d": 2}


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> list[Signal]:
    # Counts of things that never happened are 0, not missing, so `lt`/`eq` rules behave.
    plan = _plan_for(ctx.wanted)
    out = _extract(lead, ctx, plan)
    if plan.zero:
        if not out:
            out.extend(plan.zero)
        else:
            seen = {signal.name for signal in out}
            out.extend([signal for signal in plan.zero if signal.name not in seen])
    return out


_DAYS = (timedelta(days=7), timedelta(days=30), timedelta(days=90))


def _keys_for(plan: _Plan, tiers: Mapping[str, str], kind: str) -> tuple[tuple[str, ...], bool]:
    """(tier keys to count this activity type under, whether to count the type itself)."""
    tier = tiers.get(kind, "other")
    keys = plan.tier_keys.get(tier)
    if keys is None:
        every = (tier, "any") if tier in ("email", "negative") else (tier, "any", "beyond_email")
        keys = plan.tier_keys[tier] = tuple(k for k in every if k in plan.tiers)
    return keys, plan.all_types or kind in plan.types


def _extract(lead: Lead, ctx: ExtractContext, plan: _Plan) -> list[Signal]:
    out: list[Signal] = []
    acts = lead.activities
    if not acts or (not plan.all_types and not plan.types and not plan.tiers):
        return out
    as_of = ctx.as_of
    windows = (as_of - _DAYS[0], as_of - _DAYS[1], as_of - _DAYS[2])
    tiers = tiers_for(ctx.vocabulary)
    all_times = acts.times
    ordered = acts.in_time_order()
    by_type: dict[str, list[datetime]] = {}
    by_tier: dict[str, list[list[datetime]]] = {}  # tier -> the time lists of the types it counts
    # One pass per activity type (the lead's activities grouped once, shared with the matcher).
    time_at = all_times.__getitem__
    for kind, positions in acts.groups().items():
        keys, own = _keys_for(plan, tiers, kind)
        if not keys and not own:
            continue
        times = list(map(time_at, positions))
        if not ordered:  # records built in code may list activities in any order
            times.sort()
        if times[-1] > as_of:  # activities after the scoring time are ignored
            del times[bisect_right(times, as_of):]
            if not times:
                continue
        if own:
            by_type[kind] = times
        for key in keys:
            found = by_tier.get(key)
            if found is None:
                by_tier[key] = [times]
            else:
                found.append(times)
    for kind, times in by_type.items():
        prefix = f"activity.{kind}."
        _emit(out, prefix, [times], windows, as_of, plan.wanted_metrics(prefix), kind)
    for tier, parts in by_tier.items():
        prefix = f"intent.{tier}."
        _emit(out, prefix, parts, windows, as_of, plan.wanted_metrics(prefix), f"{tier}-intent activities")
    return out


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("activities", extract, PROVIDES, __doc__ or "", columnar("activities_columnar"))]
