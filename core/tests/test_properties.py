"""Property tests for the invariants in docs/architecture.md, over generated leads scored with firr-base.

Examples are kept small (a few dozen per property) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.taxonomy.activities import KNOWN_TYPES
from leadscore.model import Activity, Company, ExtractContext, Lead, ScoreCard
from leadscore.plugins import DEFAULT_PLUGINS

# The same instant as conftest's AS_OF; hypothesis strategies are built at import time, before fixtures.
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
WINDOW_SECONDS = 200 * 86400

TITLES = [
    "VP Marketing", "Head of Growth", "CTO & Co-founder", "Marketing Intern", "Director of Sales", "IT Manager",
    "Senior Software Engineer", "CEO", "Chief Financial Officer", "Account Executive", "Student",
    "Demand Gen Manager", "Procurement Lead", "Owner", "Recruiter", "",
]
BUSINESS_DOMAINS = ["acme.io", "globex.com", "initech.com", "eu.acme.io", "umbrella-corp.de"]
OTHER_DOMAINS = ["gmail.com", "yahoo.co.uk", "outlook.com", "mailinator.com", "mit.edu"]
LOCALS = ["dana", "sam.lee", "info", "sales", "j.doe", "priya"]
COUNTRIES = ["US", "DE", "United Kingdom", "BR", "JP", "IR", "ZA", None]
INDUSTRIES = ["saas", "Financial Services", "manufacturing", "Retail", "consulting", None]
SOURCES = ["linkedin_ads", "Google Ads", "webinar", "g2", "partner", "cold_outreach", None]
ACTIVITY_TYPES = [*KNOWN_TYPES, "podcast_listen"]

emails = st.one_of(
    st.none(),
    st.builds(lambda local, domain: f"{local}@{domain}", st.sampled_from(LOCALS),
              st.sampled_from(BUSINESS_DOMAINS + OTHER_DOMAINS)),
)
companies = st.builds(
    Company,
    name=st.sampled_from(["Acme", "Globex", None]),
    domain=st.sampled_from([*BUSINESS_DOMAINS[:3], None]),
    industry=st.sampled_from(INDUSTRIES),
    employees=st.one_of(st.none(), st.integers(1, 20_000)),
    annual_revenue=st.one_of(st.none(), st.integers(0, 3_000_000_000).map(float)),
    country=st.sampled_from(COUNTRIES),
    tier=st.sampled_from([None, "strategic", "target"]),
)
activities = st.lists(
    st.builds(lambda t, s: Activity(t, AS_OF - timedelta(seconds=s)),
              st.sampled_from(ACTIVITY_TYPES), st.integers(0, WINDOW_SECONDS)),
    max_size=25,
).map(lambda acts: tuple(sorted(acts, key=lambda a: a.at)))  # oldest first, as the readers deliver them
fields = st.fixed_dictionaries({}, optional={"budget_confirmed": st.booleans(), "competitor": st.booleans()})


def lead_with_id(index: int):
    return st.builds(Lead, id=st.just(f"L-{index:04d}"), email=emails, title=st.sampled_from(TITLES),
                     source=st.sampled_from(SOURCES), company=companies, fields=fields, activities=activities)


lead_lists = st.integers(1, 12).flatmap(lambda n: st.tuples(*(lead_with_id(i) for i in range(n))))

PROPERTY_SETTINGS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def reference_engine() -> Engine:
    return Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF)


def score_all(engine: Engine, leads) -> list[ScoreCard]:
    out = list(engine.score(leads))
    assert len(out) == len(leads)  # exactly one row per input lead
    assert all(isinstance(c, ScoreCard) for c in out), [c for c in out if not isinstance(c, ScoreCard)]
    return out


@PROPERTY_SETTINGS
@given(lead_lists)
def test_ledger_sums_to_total(leads):
    for card in score_all(reference_engine(), leads):
        assert sum(line.points for line in card.ledger) == card.total
        assert sum(card.subscore_map.values()) + sum(c.points for c in card.ledger if c.category == "total") \
            == card.total


@PROPERTY_SETTINGS
@given(lead_lists, st.randoms(use_true_random=False))
def test_lead_order_does_not_change_cards(leads, rnd):
    engine = reference_engine()
    first = {c.lead_id: c for c in score_all(engine, leads)}
    shuffled = list(leads)
    rnd.shuffle(shuffled)
    second = {c.lead_id: c for c in score_all(engine, shuffled)}
    assert first == second


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lead_lists, st.permutations(DEFAULT_PLUGINS))
def test_plugin_registration_order_does_not_change_cards(leads, order):
    pm = PluginManager(builtins=False, entry_points=False)
    for module_name in order:
        pm.register(importlib.import_module(module_name), name=module_name)
    with Engine(plugins=pm, rulepacks=["firr-base"], as_of=AS_OF) as engine:
        cards = score_all(engine, leads)
    assert cards == score_all(reference_engine(), leads)
    # Byte-identical output: even the text form of each card matches.
    assert [repr(c) for c in cards] == [repr(c) for c in score_all(reference_engine(), leads)]


@PROPERTY_SETTINGS
@given(lead_lists)
def test_subscores_respect_category_caps(leads):
    engine = reference_engine()
    categories = {c.name: c for pack in engine.active_packs() for c in pack.categories}
    for card in score_all(engine, leads):
        assert [name for name, _ in card.subscores] == list(categories)
        for name, value in card.subscores:
            cat = categories[name]
            assert cat.max is None or value <= cat.max, (name, value, cat.max)
            assert cat.min is None or value >= cat.min, (name, value, cat.min)


@PROPERTY_SETTINGS
@given(lead_lists)
def test_band_is_never_above_the_points_band(leads):
    engine = reference_engine()
    order = [b.name for b in engine.active_packs()[0].bands]
    for card in score_all(engine, leads):
        assert order.index(card.band) <= order.index(card.points_band)
        assert (card.band == card.points_band) == (card.gate_notes == ())
        assert card.route is not None and card.route.reason


# --- decay policies ------------------------------------------------------------------------------

positive_days = st.floats(min_value=0.01, max_value=3650, allow_nan=False, allow_infinity=False)


@st.composite
def step_params(draw):
    ages = sorted(draw(st.sets(st.integers(1, 720), min_size=1, max_size=6)))
    factors = sorted(draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=len(ages), max_size=len(ages))),
                     reverse=True)
    return {"steps": [[a, f] for a, f in zip(ages, factors)]}


decay_cases = st.one_of(
    st.just(("none", {})),
    st.tuples(st.just("step"), step_params()),
    st.tuples(st.just("linear"), st.fixed_dictionaries({"lifespan_days": positive_days})),
    st.tuples(st.just("half_life"), st.fixed_dictionaries({"half_life_days": positive_days})),
    st.tuples(st.just("window"), st.fixed_dictionaries({"days": positive_days})),
)


@cache
def policies():
    return PluginManager(entry_points=False).get_decay_policies()


@settings(max_examples=300, deadline=None)
@given(decay_cases, st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=1, max_size=20))
def test_decay_factors_start_at_one_stay_in_range_and_never_increase(case, ages):
    kind, params = case
    factor = policies()[kind].make(params)
    assert factor(0) == 1.0
    values = [factor(age) for age in sorted(ages)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(later <= earlier for earlier, later in zip(values, values[1:]))


@cache
def installed_engine() -> Engine:
    return Engine(as_of=AS_OF)


@PROPERTY_SETTINGS
@given(leads=lead_lists, days=st.integers(-120, 5))
def test_the_account_pass_reads_the_same_contact_signals_from_the_extractors_that_declare_them(leads, days):
    """The account pass runs only the extractors that declare a contact signal (Engine.contact_extractors):
    every contact signal, and every same_account condition a contact meets, is what running every
    extractor gives, under the installed packs (whose plugin extractors it skips)."""
    engine = installed_engine()
    assert len(engine.contact_extractors) < len(engine.extractors)
    when = AS_OF + timedelta(days=days)
    ctx = ExtractContext(when, engine.vocabulary, engine.contact_signals)
    for lead in leads:
        entry = engine.account_entry(lead, when)
        plain = {s.name: s.value for ex in engine.extractors for s in ex.fn(lead, ctx)}
        if entry is None:
            continue
        assert {n: entry.values.get(n) for n in engine.contact_signals} == {
            n: plain.get(n) for n in engine.contact_signals}
        matched = tuple(engine.same_account[r].signal for r, _ in engine.contact_matcher.match(plain, lead.activities,
                                                                                               when))
        assert entry.matched == matched
