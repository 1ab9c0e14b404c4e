"""Activity signals: per activity type and per intent tier, counts in 7/30/90-day windows and timestamps.

For each activity type ``T`` (see ACTIVITY_TIERS; unknown types are kept, in tier ``other``):
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

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from leadscore.hookspecs import hookimpl
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec

ACTIVITY_TIERS: dict[str, tuple[str, ...]] = {
    "email": ("email_open", "email_click", "email_reply"),
    "low": ("page_view", "blog_visit", "social_engagement", "ad_click", "chat_started"),
    "medium": ("content_download", "webinar_registration", "webinar_attendance", "event_registration",
               "event_attendance", "form_submission", "video_view", "newsletter_signup", "repeat_visit"),
    "high": ("pricing_page_visit", "comparison_page_visit", "service_page_visit", "case_study_view",
             "integration_page_visit", "roi_calculator_use", "security_page_visit"),
    "readiness": ("demo_request", "contact_sales", "trial_signup", "meeting_booked", "quote_request"),
    "negative": ("unsubscribe", "email_bounce", "spam_complaint"),
}
TIERS = (*ACTIVITY_TIERS, "other")
AGGREGATE_TIERS = ("any", "beyond_email")
KNOWN_TYPES = tuple(t for types in ACTIVITY_TIERS.values() for t in types)
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


def tier_table(vocabulary: Mapping) -> dict[str, str]:
    """Activity type -> tier, with a rulepack's ``activity_tiers`` taking precedence."""
    table = {t: tier for tier, types in ACTIVITY_TIERS.items() for t in types}
    for tier, types in (vocabulary.get("activity_tiers") or {}).items():
        for t in types:
            table[t] = tier
    return table


_TIER_CACHE: dict[int, tuple[Mapping, dict[str, str]]] = {}


def _tiers_for(vocabulary: Mapping) -> dict[str, str]:
    cached = _TIER_CACHE.get(id(vocabulary))
    if cached is None or cached[0] is not vocabulary:
        cached = (vocabulary, tier_table(vocabulary))
        _TIER_CACHE[id(vocabulary)] = cached
    return cached[1]


class _Acc:
    """Running counts for one activity type or tier (activities arrive oldest first)."""

    __slots__ = ("count", "c7", "c30", "c90", "first", "last", "last7", "last30", "last90")

    def __init__(self) -> None:
        self.count = self.c7 = self.c30 = self.c90 = 0
        self.first = self.last = self.last7 = self.last30 = self.last90 = None

    def add(self, at: datetime, w7: datetime, w30: datetime, w90: datetime) -> None:
        self.count += 1
        if self.first is None:
            self.first = at
        self.last = at
        if at >= w90:
            self.c90 += 1
            self.last90 = at
            if at >= w30:
                self.c30 += 1
                self.last30 = at
                if at >= w7:
                    self.c7 += 1
                    self.last7 = at


def _emit(prefix: str, acc: _Acc, as_of: datetime, wanted: frozenset[str] | None, label: str) -> Iterator[Signal]:
    values = (
        ("count", acc.count, acc.last), ("count_7d", acc.c7, acc.last7), ("count_30d", acc.c30, acc.last30),
        ("count_90d", acc.c90, acc.last90), ("first_at", acc.first, acc.first), ("last_at", acc.last, acc.last),
        ("days_since_last", round((as_of - acc.last).total_seconds() / 86400.0, 3), acc.last),
    )
    for metric, value, observed in values:
        name = prefix + metric
        if wanted is None or name in wanted:
            yield Signal(name, value, observed, f"{label}: {acc.count} in all, last {acc.last:%Y-%m-%d}")


_COUNTS = ("count", "count_7d", "count_30d", "count_90d")
_ALL_TIER_COUNTS = frozenset(f"intent.{t}.{m}" for t in (*TIERS, *AGGREGATE_TIERS) for m in _COUNTS)


def _zero_counts(names: frozenset[str], wanted: frozenset[str] | None, seen: set[str]) -> Iterator[Signal]:
    """Counts of things that never happened are 0, not missing, so `lt`/`eq` rules behave."""
    for name in names if wanted is None else wanted:
        if name not in seen and name.rpartition(".")[2] in _COUNTS and name.startswith(("intent.", "activity.")):
            yield Signal(name, 0, None, "none before the scoring time")


def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    seen: set[str] = set()
    for signal in _extract(lead, ctx):
        seen.add(signal.name)
        yield signal
    yield from _zero_counts(_ALL_TIER_COUNTS, ctx.wanted, seen)


def _extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if not lead.activities:
        return
    as_of = ctx.as_of
    w7, w30, w90 = as_of - timedelta(days=7), as_of - timedelta(days=30), as_of - timedelta(days=90)
    tiers = _tiers_for(ctx.vocabulary)
    by_type: dict[str, _Acc] = {}
    by_tier: dict[str, _Acc] = {}
    for activity in lead.activities:
        at = activity.at
        if at > as_of:
            continue
        acc = by_type.get(activity.type)
        if acc is None:
            acc = by_type[activity.type] = _Acc()
        acc.add(at, w7, w30, w90)
        tier = tiers.get(activity.type, "other")
        for key in (tier, "any") if tier in ("email", "negative") else (tier, "any", "beyond_email"):
            acc = by_tier.get(key)
            if acc is None:
                acc = by_tier[key] = _Acc()
            acc.add(at, w7, w30, w90)
    wanted = ctx.wanted
    for type_, acc in by_type.items():
        yield from _emit(f"activity.{type_}.", acc, as_of, wanted, type_)
    for tier, acc in by_tier.items():
        yield from _emit(f"intent.{tier}.", acc, as_of, wanted, f"{tier}-intent activities")


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("activities", extract, PROVIDES, __doc__ or "")]
