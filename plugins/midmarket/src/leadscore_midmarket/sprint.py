"""Evaluation sprints: how many different kinds of buying action a lead took in the last two weeks.

Mid-market companies buy with small teams and short cycles: one person reads the pricing page,
compares us with an alternative and asks for a demo within days. A count of actions cannot tell
that apart from one person reloading the pricing page; the number of *different* high-intent or
hand-raise activity types in a short window can.

Signal ``midmarket.high_intent_types_14d``: distinct activity types of the ``high`` and
``readiness`` tiers (pricing, comparison, service, integration and security pages, case studies,
ROI calculator; demo, sales and quote requests, trials, meetings, plus any types a rulepack adds
to those tiers with ``[vocabulary.activity_tiers]``) in the 14 days up to the scoring time.
Its ``observed_at`` is the latest such activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from leadscore.plugin import ExtractContext, Lead, Signal, SignalSpec, activity_tiers, reads_signals

WINDOW_DAYS = 14
SPRINT_TIERS = frozenset({"high", "readiness"})
SIGNAL = "midmarket.high_intent_types_14d"

PROVIDES = (
    SignalSpec(SIGNAL, "int", "distinct high-intent and hand-raise activity types in the last 14 days"),
)



@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> Iterator[Signal]:
    if ctx.wanted is not None and SIGNAL not in ctx.wanted:
        return
    as_of = ctx.as_of
    since = as_of - timedelta(days=WINDOW_DAYS)
    tiers = activity_tiers(ctx.vocabulary)
    latest: dict[str, Any] = {}
    for activity in lead.activities:
        if since <= activity.at <= as_of and tiers.get(activity.type) in SPRINT_TIERS:
            if activity.type not in latest or activity.at > latest[activity.type]:
                latest[activity.type] = activity.at
    if not latest:
        yield Signal(SIGNAL, 0, None, f"no high-intent action in the last {WINDOW_DAYS} days")
        return
    kinds = ", ".join(sorted(latest))
    yield Signal(SIGNAL, len(latest), max(latest.values()), f"in the last {WINDOW_DAYS} days: {kinds}")


def columnar(ctx):
    """The same signal for a batch of leads, as SQL (the columnar engine's form of :func:`extract`)."""
    from leadscore.columnar.api import emit, q
    from sqlglot import exp

    if SIGNAL not in ctx.wanted:
        return None
    tiers = activity_tiers(ctx.vocabulary)
    types = sorted(t for t, tier in tiers.items() if tier in SPRINT_TIERS)
    since = ctx.as_of_us - WINDOW_DAYS * 86_400_000_000
    t, at = q.col("type"), q.col("at")
    window = (q.select(q.col("k"), exp.Count(this=exp.Distinct(expressions=[t])).as_("n"), q.fn("max", at).as_("last"),
                       q.call("list", exp.Distinct(expressions=[t])).as_("kinds"))
              .from_(q.table(ctx.activities))
              .where(q.and_(exp.GTE(this=at, expression=q.lit(since)), exp.LTE(this=at, expression=q.lit(ctx.as_of_us)),
                            q.in_(t, types)))
              .group_by(q.col("k")))
    some = q.not_null(q.col("n", "w"))
    sorted_kinds = q.fn("array_to_string", q.fn("list_sort", q.col("kinds", "w")), q.lit(", "))
    return (q.select(q.col("k", "l").as_("k"),
                     *emit(SIGNAL, q.case([(some, q.cast(q.col("n", "w"), "BIGINT"))], q.lit(0)),
                           q.case([(some, q.col("last", "w"))]),
                           q.case([(some, q.concat(q.lit(f"in the last {WINDOW_DAYS} days: "), sorted_kinds))],
                                  q.lit(f"no high-intent action in the last {WINDOW_DAYS} days"))))
            .from_(q.table(ctx.leads, "l"))
            .join(window.subquery("w"), on=q.col("k", "l").eq(q.col("k", "w")), join_type="left"))
