"""Ledger, caps, decay, gates and routing, worked out by hand from firr-base.toml.

Each expected number has its arithmetic in a comment; decay factors are taken at AS_OF exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.model import Activities, Contribution, Ledger, Route, ScoreCard
from leadscore.rulepack.schema import RuleIR
from leadscore.scoring import decayed, factor_at
from leadscore.scoring.ledger import _add_activity_lines

BUSINESS_VP = dict(
    email="dana@acme.io", title="VP Marketing",
    company={"name": "Acme", "domain": "acme.io", "industry": "saas", "employees": 1200,
             "annual_revenue": 250_000_000, "country": "US"},
)


def check_ledger(card: ScoreCard) -> None:
    """The invariants every card holds: the ledger sums to the total and to each sub-score."""
    assert sum(c.points for c in card.ledger) == card.total
    by_category: dict[str, int] = {}
    for line in card.ledger:
        by_category[line.category] = by_category.get(line.category, 0) + line.points
    total_adjustment = by_category.pop("total", 0)
    subscores = card.subscore_map
    assert {k: v for k, v in by_category.items() if v} == {k: v for k, v in subscores.items() if v}
    assert sum(subscores.values()) + total_adjustment == card.total


def lines(card: ScoreCard, kind: str | None = None) -> list[tuple[str, int]]:
    return [(c.rule_id, c.points) for c in card.ledger if kind is None or c.kind == kind]


def engine_with(write_pack, as_of, text: str) -> Engine:
    return Engine(plugins=PluginManager(entry_points=False), rulepacks=[write_pack(text)], as_of=as_of)


# --- caps ----------------------------------------------------------------------------------------


def test_category_cap(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(
        **BUSINESS_VP, fields={"budget_confirmed": True},
        activities=[("pricing_page_visit", 3), ("demo_request", 2)]))
    # fit: vp 20 + buyer 10 + target industry 10 + 100+ employees 15 + own domain 5 + US 5 = 65, capped at 50.
    # intent: pricing 22 * 0.5**(3/14) = 18.96 -> 19.   readiness: demo 45 * 0.5**(2/30) = 42.97 -> 43, budget 15.
    # revenue: $250M -> 20 (1,200 employees is below the 5,000 headcount rule).
    assert lines(card, "category_cap") == [("cap.fit", -15)]
    cap = [c for c in card.ledger if c.kind == "category_cap"][0]
    assert cap.reason == "Fit capped at 50 points (had 65)"
    assert card.subscores == (("fit", 50), ("intent", 19), ("readiness", 58), ("revenue", 20), ("negative", 0))
    assert card.total == 147
    check_ledger(card)


def test_category_floor(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(
        email="x9@mailinator.com", title="Student", company={"employees": 3, "country": "IR"}))
    # negative: disposable -40, student -35, under 10 employees -10, export-restricted IR -50 = -135,
    # floored at the category's min of -100. Nothing positive applies, so the total is -100.
    assert lines(card, "category_cap") == [("cap.negative", 35)]
    assert [c.reason for c in card.ledger if c.kind == "category_cap"] == ["Negative floored at -100 points (had -135)"]
    assert (card.total, card.band, card.points_band) == (-100, "early", "early")
    check_ledger(card)


TOTAL_CAP_PACK = """\
[pack]
name = "capped"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[total]
max = 100
"""


def test_total_cap(write_pack, as_of, make_lead):
    engine = engine_with(write_pack, as_of, TOTAL_CAP_PACK)
    card = engine.score_lead(make_lead(
        **BUSINESS_VP, fields={"budget_confirmed": True},
        activities=[("pricing_page_visit", 3), ("demo_request", 2)]))
    # Same lead as test_category_cap: 147 after category caps, then the total is capped at 100.
    assert lines(card, "total_cap") == [("cap.total", -47)]
    cap = card.ledger[-1]
    assert (cap.kind, cap.category, cap.reason, cap.pack) == ("total_cap", "total",
                                                              "total capped at 100 points (had 147)", "capped")
    assert card.total == 100
    assert card.band == "target_account"  # 100 >= 100, business email, demo in 30 days, 1,200 employees
    check_ledger(card)


DOCS_PACK = """\
[pack]
name = "docs"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[[rules]]
id = "intent.docs"
category = "intent"
points = 5
count = "each"
on = "page_view"
when = { signal = "event.url", matches = "/docs/.*" }
max_points = 12
reason = "Read the developer docs"
"""


def test_rule_max_points_and_frequency_caps(write_pack, as_of, make_lead):
    engine = engine_with(write_pack, as_of, DOCS_PACK)
    card = engine.score_lead(make_lead(activities=[
        ("page_view", 5, {"url": "/blog/launch"}),
        ("page_view", 4, {"url": "/docs/auth"}),
        ("page_view", 3, {"url": "/docs/webhooks"}),
        ("page_view", 2, {"url": "/docs/sdk"}),
        ("page_view", 1, {"url": "/docs/api"}),
    ]))
    # site-visit: 5 page views, counted at most 3 times (the latest 3) at 2 points, web decay 1.0 -> 6,
    #   plus a 0-point frequency_cap line for the 2 earlier ones.
    # repeat-visitor: 5 low-intent visits in 30 days >= 4 -> 8 (latest visit 1 day ago, factor 1.0).
    # docs: 4 docs pages * 5 = 20, capped at 12 -> a -8 rule_cap line.
    # intent = 6 + 8 + 12 = 26.
    assert lines(card) == [
        ("intent.site-visit", 2), ("intent.site-visit", 2), ("intent.site-visit", 2), ("intent.site-visit", 0),
        ("intent.repeat-visitor", 8),
        ("intent.docs", 5), ("intent.docs", 5), ("intent.docs", 5), ("intent.docs", 5), ("intent.docs", -8),
    ]
    kinds = [c.kind for c in card.ledger]
    assert kinds.count("frequency_cap") == 1 and kinds.count("rule_cap") == 1
    freq = next(c for c in card.ledger if c.kind == "frequency_cap")
    assert freq.reason == "2 earlier matching activities not counted: this rule counts at most 3 times"
    rule_cap = next(c for c in card.ledger if c.kind == "rule_cap")
    assert (rule_cap.reason, rule_cap.pack) == ("rule capped at 12 points (had 20)", "docs")
    assert card.total == card.subscore_map["intent"] == 26
    check_ledger(card)


def test_frequency_caps_keep_the_latest_occurrences(base_engine, make_lead, ago):
    card = base_engine.score_lead(make_lead(activities=[
        ("pricing_page_visit", 28), ("pricing_page_visit", 14), ("pricing_page_visit", 0),
        ("email_open", 50), ("email_open", 40), ("email_open", 3), ("email_open", 2), ("email_open", 1),
        ("email_click", 3), ("email_click", 2), ("email_click", 1),
    ]))
    # email-open: 5 opens, at most 3 counted, the latest (1, 2, 3 days: window decay 1.0) -> 3 * 1.
    # email-click: 3 clicks, at most 2 counted (1, 2 days) -> 2 * 3 = 6.
    # pricing counts once: the latest visit, today, 22 * 0.5**0 = 22.
    # intent = 3 + 6 + 22 = 31.
    opens = [c for c in card.ledger if c.rule_id == "intent.email-open" and c.kind == "rule"]
    assert [c.observed_at for c in opens] == [ago(1), ago(2), ago(3)]
    pricing = [c for c in card.ledger if c.rule_id == "intent.pricing"]
    assert [(c.kind, c.points, c.observed_at) for c in pricing] == [
        ("rule", 22, ago(0)), ("frequency_cap", 0, None)]
    assert pricing[1].reason == "2 earlier matching activities not counted: this rule counts once"
    assert [c.reason for c in card.ledger if c.rule_id == "intent.email-click" and c.kind == "frequency_cap"] == [
        "1 earlier matching activity not counted: this rule counts at most 2 times"]
    assert card.subscore_map["intent"] == card.total == 31
    check_ledger(card)


# --- decay ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("points", "factor", "expected"), [
    (45, 0.5, 23),      # 22.5: halves go away from zero
    (7, 0.5, 4),        # 3.5
    (5, 0.5, 3),        # 2.5
    (22, 0.25, 6),      # 5.5
    (-5, 0.5, -3),      # -2.5: away from zero on the negative side too
    (-25, 0.5, -13),    # -12.5
    (22, 0.8619, 19),   # 18.96
    (1, 0.49, 0),
    (10, 0.0, 0),
    (16, 1.0, 16),
    (-50, 1.0, -50),
])
def test_decayed_rounding(points, factor, expected):
    assert decayed(points, factor) == expected


def test_decay_in_the_ledger(write_pack, as_of, make_lead):
    engine = engine_with(write_pack, as_of, """\
[pack]
name = "stale-unsubscribe"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[[rules]]
id = "negative.unsubscribed"
category = "negative"
points = -25
decay = "web"
on = "unsubscribe"
reason = "Unsubscribed (counts less as it gets old)"
""")
    card = engine.score_lead(make_lead(activities=[
        ("webinar_attendance", 130), ("webinar_registration", 61), ("demo_request", 30), ("unsubscribe", 35),
    ]))
    # webinar-registration: 7 * 0.5 (step, 60+ days) = 3.5 -> 4.
    # webinar-attendance: 12 * 0.0 (step, 120+ days) = 0, still listed so the ledger explains it.
    # demo-request: 45 * 0.5**(30/30) = 22.5 -> 23.
    # unsubscribed (overridden with web decay): -25 * 0.5 (step, 30+ days) = -12.5 -> -13.
    got = {c.rule_id: (c.raw_points, c.decay, c.decay_factor, c.points) for c in card.ledger}
    assert got == {
        "intent.webinar-registration": (7, "webinar", 0.5, 4),
        "intent.webinar-attendance": (12, "webinar", 0.0, 0),
        "readiness.demo-request": (45, "handraise", 0.5, 23),
        "negative.unsubscribed": (-25, "web", 0.5, -13),
    }
    assert card.total == 4 + 0 + 23 - 13
    check_ledger(card)


def test_inline_decay_is_reported_by_kind(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(activities=[("pricing_page_visit", 14)]))
    # intent.pricing has an inline half-life of 14 days: 22 * 0.5 = 11.
    [line] = card.ledger
    assert (line.decay, line.decay_factor, line.points, line.raw_points) == ("half_life", 0.5, 11, 22)
    assert line.evidence == "pricing_page_visit on 2026-11-09"


def test_lead_level_rule_decays_from_its_signals_observed_at(base_engine, make_lead, ago):
    card = base_engine.score_lead(make_lead(activities=[("page_view", d) for d in (40, 38, 36, 34)]))
    # repeat-visitor needs 4+ low-intent visits in 30 days: these are 34-40 days old, so it does not match;
    # each page view still earns site-visit points at web decay 0.5 (30+ days): 2 * 0.5 = 1 each, 3 counted.
    assert "intent.repeat-visitor" not in [c.rule_id for c in card.ledger]
    assert lines(card, "rule") == [("intent.site-visit", 1)] * 3

    recent = base_engine.score_lead(make_lead(activities=[("page_view", d) for d in (29, 20, 10, 5)]))
    repeat = next(c for c in recent.ledger if c.rule_id == "intent.repeat-visitor")
    # The rule's observed_at is the latest visit in the window (5 days), so web decay is still 1.0.
    assert (repeat.observed_at, repeat.points) == (ago(5), 8)


# --- gates and bands -----------------------------------------------------------------------------


def test_gate_holds_a_personal_email_back(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(
        email="dana.smith@gmail.com", title="VP Marketing",
        company={"name": "Acme", "domain": "acme.io", "industry": "saas", "employees": 1200,
                 "annual_revenue": 250_000_000, "country": "US"},
        activities=[("pricing_page_visit", 1), ("demo_request", 1)]))
    # fit: vp 20 + buyer 10 + industry 10 + size 15 + US 5 = 60 -> 50 (gmail is not the company domain).
    # intent: 22 * 0.5**(1/14) = 20.94 -> 21.  readiness: 45 * 0.5**(1/30) = 43.97 -> 44.
    # revenue 20.  negative: personal email -15.   total = 50 + 21 + 44 + 20 - 15 = 120.
    assert card.total == 120
    assert card.points_band == "target_account"
    # target_account and sales_ready both need a business email; mql only needs engagement beyond
    # email in 90 days, which the pricing visit and demo request give.
    assert card.band == "mql"
    assert card.gate_notes == (
        "target_account not reached despite 120 points: requires a business email, a demo or sales request in "
        "the last 30 days, an enterprise or target account, fit (a marketing or sales role, a director or above, "
        "or a target-industry company of 100+ people) and not a competitor",
        "sales_ready not reached despite 120 points: requires a business email, a high-intent action "
        "(pricing, comparison, product page, case study, demo or sales request) in the last 30 days, fit (a "
        "marketing or sales role, a director or above, or a target-industry company of 100+ people) and not a "
        "competitor",
    )
    assert card.route.action == "sdr_follow_up"
    check_ledger(card)


def test_email_engagement_alone_never_reaches_mql(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(
        email="ceo@initech.com", title="CEO",
        company={"name": "Initech", "domain": "initech.com", "industry": "software", "employees": 10_000,
                 "annual_revenue": 2_000_000_000, "country": "US"},
        activities=[("email_open", d) for d in range(1, 11)] + [("email_click", d) for d in range(1, 6)]))
    # fit: c-level 25 + software 10 + size 15 + own domain 5 + US 5 = 60 -> 50 ("CEO" has no buyer function).
    # revenue: $2B 20 + 10,000 employees 8 = 28 -> 25.
    # intent: 3 opens * 1 + 2 clicks * 3 = 9 (all within the 30-day email window).
    # total = 84: sales_ready by points, but no high-intent action and nothing beyond email.
    assert (card.total, card.points_band) == (84, "sales_ready")
    assert card.band == "engaged"
    assert [note.split(":")[0] for note in card.gate_notes] == [
        "sales_ready not reached despite 84 points", "mql not reached despite 84 points"]
    assert "email opens and clicks alone never qualify a lead" in card.gate_notes[1]
    check_ledger(card)


def test_no_gate_notes_when_the_points_band_is_reached(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(**BUSINESS_VP, activities=[("demo_request", 0)]))
    # fit 65 -> 50, revenue 20, demo today 45 (readiness): 115, and every target_account gate holds.
    assert (card.total, card.band, card.points_band, card.gate_notes) == (115, "target_account", "target_account", ())


# --- routing -------------------------------------------------------------------------------------

ROUTE_CASES = {
    # nothing known: 0 points
    "early": ({}, Route("nurture", "marketing-nurture", None, None,
                        "Too early for sales: keep in the nurture programme")),
    # vp 20 + buyer 10 = 30
    "engaged": ({"title": "VP Sales"}, Route("accelerated_nurture", "marketing-nurture", None, None,
                                             "Engaged: send targeted content")),
    # vp 20 + buyer 10 + pricing today 22 + content download today 10 = 62, content is beyond email
    "mql": ({"title": "VP Sales", "activities": [("pricing_page_visit", 0), ("content_download", 0)]},
            Route("sdr_follow_up", "sdr", 24, None, "Marketing qualified: an SDR qualifies within a day")),
    # director 15 + buyer 10 + software 10 + 500 employees 15 + own domain 5 + DE 5 = 60 -> 50,
    # revenue $60M 12, pricing today 22: 84, business email and a high-intent visit
    "sales_ready": ({"title": "Director of Marketing", "email": "kim@globex.com",
                     "company": {"domain": "globex.com", "industry": "software", "employees": 500,
                                 "annual_revenue": 60_000_000, "country": "DE"},
                     "activities": [("pricing_page_visit", 0)]},
                    Route("ae_call", "account-executives", 4, None,
                          "Sales ready: an account executive calls within 4 hours")),
    # as in test_no_gate_notes_when_the_points_band_is_reached: 115
    "target_account": ({**BUSINESS_VP, "activities": [("demo_request", 0)]},
                       Route("abm_play", "abm-team", 2, None,
                             "Target account buying: start the account play within 2 hours")),
}


@pytest.mark.parametrize("band", list(ROUTE_CASES))
def test_route_follows_the_band(base_engine, make_lead, band):
    attributes, route = ROUTE_CASES[band]
    card = base_engine.score_lead(make_lead(**attributes))
    assert card.band == band
    assert card.route == route
    check_ledger(card)


def test_ledger_lines_explain_themselves(base_engine, make_lead):
    card = base_engine.score_lead(make_lead(**BUSINESS_VP, activities=[("pricing_page_visit", 2, {"url": "/pricing"})]))
    for line in card.ledger:
        assert isinstance(line, Contribution)
        assert line.reason and line.pack == "firr-base"
    pricing = next(c for c in card.ledger if c.rule_id == "intent.pricing")
    assert pricing.evidence == "pricing_page_visit on 2026-11-21 (/pricing)"
    assert pricing.signal == "pricing_page_visit"
    size = next(c for c in card.ledger if c.rule_id == "fit.company.size")
    assert (size.signal, size.evidence, size.observed_at) == ("company.employees", "1200 employees", None)


# --- the ledger's written-out decay equals the helpers ---------------------------------------------

_AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
_CURVES = {
    "half_life": lambda p: (lambda age: 0.5 ** (max(age, 0.0) / p)),
    "linear": lambda p: (lambda age: max(0.0, 1.0 - max(age, 0.0) / p)),
    "window": lambda p: (lambda age: 1.0 if age <= p else 0.0),
}


@settings(max_examples=300, deadline=None)
@given(points=st.integers(-500, 500), curve=st.sampled_from([None, *_CURVES]),
       param=st.floats(0.5, 400, allow_nan=False), count=st.sampled_from(["once", "each", "daily"]),
       max_count=st.one_of(st.none(), st.integers(1, 5)),
       offsets=st.lists(st.integers(-5 * 86400, 400 * 86400), min_size=1, max_size=12))
def test_activity_lines_decay_exactly_as_factor_at_and_decayed(points, curve, param, count, max_count, offsets):
    fn = None if curve is None else _CURVES[curve](param)
    times = sorted(_AS_OF - timedelta(seconds=s) for s in offsets)
    events = Activities(["page_view"] * len(times), times)
    rule = RuleIR("r", "intent", points, "reason", "pack", on=("page_view",), count=count,
                  max_count=max_count if count in ("each", "daily") else None)
    made: list = []
    matches = [(0, position) for position in range(len(times))]
    _add_activity_lines(made, rule, fn, curve or "none", matches, 0, len(matches), events, _AS_OF)
    rule_lines = [line for line in Ledger(made, events) if line.kind == "rule"]
    for line in rule_lines:
        factor = factor_at(fn, _AS_OF, line.observed_at)
        assert line.decay_factor == factor
        assert line.points == (points if fn is None else decayed(points, factor))
    if count == "daily":
        newest_each_day = []
        for at in times[::-1]:
            if at.date() not in {seen.date() for seen in newest_each_day}:
                newest_each_day.append(at)
        expected = newest_each_day[:max_count] if max_count else newest_each_day
    else:
        expected = times[::-1][:1 if count == "once" else (max_count or len(times))]
    assert [line.observed_at for line in rule_lines] == expected
    caps = [line for line in Ledger(made, events) if line.kind == "frequency_cap"]
    assert len(caps) == (1 if len(expected) < len(times) else 0) and all(c.points == 0 for c in caps)


def test_daily_counts_the_newest_activity_of_each_utc_day():
    times = [datetime(2026, 11, 20, 9, tzinfo=timezone.utc), datetime(2026, 11, 21, 8, tzinfo=timezone.utc),
             datetime(2026, 11, 21, 12, tzinfo=timezone.utc), datetime(2026, 11, 21, 23, 59, tzinfo=timezone.utc),
             datetime(2026, 11, 22, 0, 1, tzinfo=timezone.utc)]
    events = Activities(["page_view"] * len(times), times)
    rule = RuleIR("intent.visit", "intent", 2, "Visited", "pack", on=("page_view",), count="daily")
    made: list = []
    _add_activity_lines(made, rule, None, "none", [(0, i) for i in range(len(times))], 0, len(times), events, _AS_OF)
    ledger = list(Ledger(made, events))
    assert [(c.kind, c.points, c.observed_at) for c in ledger if c.kind == "rule"] == [
        ("rule", 2, times[4]), ("rule", 2, times[3]), ("rule", 2, times[0])]
    (cap,) = [c for c in ledger if c.kind == "frequency_cap"]
    assert cap.reason == "2 earlier matching activities not counted: this rule counts once a day"
