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

from leadscore.plugin import ExtractContext, Lead, Signal, SignalSpec, activity_tiers

WINDOW_DAYS = 14
SPRINT_TIERS = frozenset({"high", "readiness"})
SIGNAL = "midmarket.high_intent_types_14d"

PROVIDES = (
    SignalSpec(SIGNAL, "int", "distinct high-intent and hand-raise activity types in the last 14 days"),
)



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
