"""Built-in signal extractors on realistic leads: email, title, firmographics, activities, source and fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.taxonomy import email as email_plugin
from leadscore.model import Activity, ExtractContext, Lead, Signal


@pytest.fixture(scope="module")
def extractors():
    return {e.name: e for e in PluginManager(entry_points=False).get_signal_extractors()}


@pytest.fixture
def extract(extractors, as_of) -> Callable[..., dict[str, Signal]]:
    """``extract(lead, "email", vocabulary={...}, wanted=...)``: one extractor's signals by name."""

    def run(lead: Lead, name: str, vocabulary: Mapping[str, Any] | None = None,
            wanted: frozenset[str] | None = None) -> dict[str, Signal]:
        ctx = ExtractContext(as_of, vocabulary or {}, wanted)
        out: dict[str, Signal] = {}
        for sig in extractors[name].fn(lead, ctx):
            assert sig.name not in out, f"{name} emitted {sig.name} twice"
            out[sig.name] = sig
        return out

    return run


def values(signals: dict[str, Signal]) -> dict[str, Any]:
    return {n: s.value for n, s in signals.items()}


def test_builtin_extractor_names(extractors):
    assert set(extractors) >= {"activities", "crm", "email", "firmographics", "title"}


def test_every_emitted_signal_is_declared(extractors, make_lead, as_of):
    # A rulepack can only use declared signals, so an undeclared one would be unusable.
    from leadscore.rulepack.loader import base_vocabulary
    from leadscore.rulepack.schema import SignalCatalog

    catalog = SignalCatalog([s for e in extractors.values() for s in e.provides], base_vocabulary([]))
    lead = make_lead(email="dana@acme.io", title="VP Marketing", source="linkedin_ads",
                     created_at=as_of - timedelta(days=5), fields={"budget_confirmed": True},
                     company={"name": "Acme", "domain": "acme.io", "industry": "saas", "employees": 1200,
                              "annual_revenue": 2.5e8, "country": "US", "tier": "Target"},
                     activities=[("page_view", 3), ("demo_request", 1)])
    ctx = ExtractContext(as_of, base_vocabulary([]), None)
    for ex in extractors.values():
        for sig in ex.fn(lead, ctx):
            spec, problem = catalog.lookup(sig.name)
            assert spec is not None, problem


# --- email ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "kind", "domain"), [
    ("dana@acme.io", "business", "acme.io"),
    ("priya.natarajan@globex-corp.com", "business", "globex-corp.com"),
    ("dana.smith1987@gmail.com", "personal", "gmail.com"),
    ("j.doe@yahoo.co.uk", "personal", "yahoo.co.uk"),
    ("max.mustermann@web.de", "personal", "web.de"),
    ("asdf@mailinator.com", "disposable", "mailinator.com"),
    ("test123@10minutemail.com", "disposable", "10minutemail.com"),
    ("jsmith@mit.edu", "education", "mit.edu"),
    ("a.student@ox.ac.uk", "education", "ox.ac.uk"),
    ("aluno@usp.edu.br", "education", "usp.edu.br"),
    ("dana@acme", "invalid", "acme"),
    ("dana.acme.io", "invalid", "dana.acme.io"),
    ("dana@@acme.io", "invalid", "acme.io"),
    ("dana smith@acme.io", "invalid", "acme.io"),
])
def test_email_classification(extract, make_lead, email, kind, domain):
    got = values(extract(make_lead(email=email), "email"))
    assert got["email.type"] == kind
    assert got["email.domain"] == domain
    assert got["email.is_business"] is (kind == "business")


def test_email_with_capitals_is_classified_like_lower_case(extract, make_lead):
    # Addresses are case-insensitive and email.domain is documented as lower case; API callers
    # build Lead records directly, without the readers' normalisation.
    got = values(extract(make_lead(email="Dana.Smith@Acme.IO", company={"domain": "acme.io"}), "email"))
    assert got["email.type"] == "business"
    assert got["email.domain"] == "acme.io"
    assert got["email.matches_company"] is True


@pytest.mark.parametrize(("local", "is_role"), [
    ("info", True), ("sales", True), ("no-reply", True), ("marketing", True),
    ("dana", False), ("dana.sales", False), ("infosec-team", False),
])
def test_email_role_mailbox(extract, make_lead, local, is_role):
    assert extract(make_lead(email=f"{local}@acme.io"), "email")["email.is_role"].value is is_role


@pytest.mark.parametrize(("email", "company_domain", "matches"), [
    ("dana@acme.io", "acme.io", True),
    ("dana@acme.io", "www.acme.io", True),          # the www. prefix is not part of the domain
    ("dana@acme.io", "ACME.IO", True),
    ("dana@eu.acme.io", "acme.io", True),           # a subdomain of the company's domain
    ("dana@mail.corp.acme.io", "acme.io", True),
    ("dana@notacme.io", "acme.io", False),          # a suffix, but not on a label boundary
    ("dana@acme.io", "acme.com", False),
    ("dana@gmail.com", "acme.io", False),
    ("dana@acme.io", None, False),
])
def test_email_matches_company(extract, make_lead, email, company_domain, matches):
    sig = extract(make_lead(email=email, company={"domain": company_domain}), "email")["email.matches_company"]
    assert sig.value is matches


def test_email_vocabulary_adds_free_and_competitor_domains(extract, make_lead):
    lead = make_lead(email="pat@initrode.net")
    assert values(extract(lead, "email"))["email.type"] == "business"
    vocab = {"free_email_domains": frozenset({"initrode.net"}), "competitor_domains": frozenset({"globex.com"})}
    assert values(extract(lead, "email", vocab))["email.type"] == "personal"
    assert extract(make_lead(email="spy@globex.com"), "email", vocab)["email.is_competitor"].value is True
    assert extract(make_lead(email="dana@acme.io"), "email", vocab)["email.is_competitor"].value is False


def test_no_email_gives_no_email_signals(extract, make_lead):
    assert extract(make_lead(email=None), "email") == {}
    assert extract(make_lead(email=""), "email") == {}


def test_email_signals_are_timeless_with_evidence(extract, make_lead):
    sig = extract(make_lead(email="dana@acme.io"), "email")["email.type"]
    assert sig.observed_at is None
    assert sig.evidence == "dana@acme.io"


# --- title ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("title", "seniority", "function"), [
    ("Marketing Intern", "student", "marketing"),           # student wins over any other keyword
    ("PhD Student, Computer Science", "student", "other"),
    ("Head of Growth", "vp", "marketing"),                   # "head of" is VP; growth is marketing
    ("CTO & Co-founder", "c_level", "engineering"),
    ("Chief Financial Officer", "c_level", "finance"),
    ("Managing Director", "c_level", "other"),
    ("VP Marketing", "vp", "marketing"),
    ("SVP Sales", "vp", "sales"),
    ("Head of IT", "vp", "it"),
    ("Director of Sales", "director", "sales"),
    ("Principal Engineer", "director", "engineering"),
    ("IT Manager", "manager", "it"),
    ("Product Marketing Manager", "manager", "marketing"),
    ("Team Lead, Data Platform", "manager", "engineering"),
    ("Supply Chain Manager", "manager", "operations"),
    ("Procurement Lead", "manager", "finance"),
    ("Senior Software Engineer", "individual", "engineering"),
    ("Account Executive", "individual", "sales"),
    ("Recruiter", "individual", "hr"),
    ("Directory Services Admin", "individual", "other"),     # whole words: "directory" is not "director"
    ("Leadership Coach", "individual", "other"),             # nor is "leadership" a "lead"
])
def test_title_seniority_and_function(extract, make_lead, title, seniority, function):
    got = values(extract(make_lead(title=title), "title"))
    assert (got["title.seniority"], got["title.function"]) == (seniority, function)
    assert got["title.is_decision_maker"] is (seniority in ("c_level", "vp", "director"))
    assert got["title.text"] == title.lower()


def test_title_vocabulary_extends_the_tables(extract, make_lead):
    partner = make_lead(title="Partner, Deal Advisory")
    assert values(extract(partner, "title"))["title.seniority"] == "individual"
    vocab = {"title_seniority": {"c_level": ["partner"]}}
    assert values(extract(partner, "title", vocab))["title.seniority"] == "c_level"

    csm = make_lead(title="Customer Success Manager")
    assert values(extract(csm, "title"))["title.function"] == "other"
    assert values(extract(csm, "title", {"title_function": {"sales": ["customer success"]}}))["title.function"] == "sales"


def test_title_vocabulary_is_tried_before_the_builtins(extract, make_lead):
    # Built-in order makes "Revenue Operations" sales ("revenue" comes first); a pack can say otherwise.
    lead = make_lead(title="Revenue Operations Manager")
    assert values(extract(lead, "title"))["title.function"] == "sales"
    vocab = {"title_function": {"operations": ["revenue operations"]}}
    assert values(extract(lead, "title", vocab))["title.function"] == "operations"


def test_title_vocabulary_from_a_rulepack_reaches_the_extractor(write_pack, make_lead, as_of):
    path = write_pack("""\
[pack]
name = "advisory"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[vocabulary.title_seniority]
c_level = ["partner"]
""")
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=as_of)
    lead = make_lead(title="Partner, Deal Advisory")
    assert engine.signals(lead)["title.seniority"].value == "c_level"
    card = engine.score_lead(lead)
    assert [(c.rule_id, c.points) for c in card.ledger] == [("fit.title.c-level", 25)]


def test_no_title_gives_no_title_signals(extract, make_lead):
    assert extract(make_lead(title=None), "title") == {}


# --- firmographics -------------------------------------------------------------------------------


@pytest.mark.parametrize(("employees", "band"), [
    (1, "micro"), (9, "micro"), (10, "small"), (99, "small"), (100, "mid_market"), (999, "mid_market"),
    (1000, "enterprise"), (4999, "enterprise"), (5000, "large_enterprise"), (250000, "large_enterprise"),
])
def test_size_band(extract, make_lead, employees, band):
    got = values(extract(make_lead(company={"employees": employees}), "firmographics"))
    assert got == {"company.employees": employees, "company.size_band": band}


@pytest.mark.parametrize(("revenue", "band"), [
    (0, "under_1m"), (999_999, "under_1m"), (1_000_000, "1m_10m"), (9_999_999.99, "1m_10m"),
    (10_000_000, "10m_50m"), (50_000_000, "50m_250m"), (249_999_999, "50m_250m"), (250_000_000, "250m_1b"),
    (1_000_000_000, "over_1b"), (3.2e10, "over_1b"),
])
def test_revenue_band(extract, make_lead, revenue, band):
    got = values(extract(make_lead(company={"annual_revenue": revenue}), "firmographics"))
    assert got["company.revenue_band"] == band
    assert got["company.annual_revenue"] == revenue


@pytest.mark.parametrize(("country", "code", "region"), [
    ("US", "US", "north_america"), ("United States", "US", "north_america"), ("ca", "CA", "north_america"),
    ("United Kingdom", "GB", "europe"), ("Germany", "DE", "europe"), ("de", "DE", "europe"),
    ("Brazil", "BR", "latin_america"), ("MX", "MX", "latin_america"),
    ("ZA", "ZA", "middle_east_africa"), ("AE", "AE", "middle_east_africa"),
    ("Japan", "JP", "asia_pacific"), ("in", "IN", "asia_pacific"), ("AU", "AU", "asia_pacific"),
    ("Atlantis", "ATLANTIS", "unknown"),
])
def test_country_and_region(extract, make_lead, country, code, region):
    got = values(extract(make_lead(company={"country": country}), "firmographics"))
    assert (got["company.country"], got["company.region"]) == (code, region)


@pytest.mark.parametrize(("industry", "normalised"), [
    ("SaaS", "software"), ("Computer Software", "software"), ("Information Technology", "technology"),
    ("Financial Services", "financial_services"), ("Hospital & Health Care", "healthcare"),
    ("Management Consulting", "professional_services"), ("Food & Beverages", "food_beverages"),
    ("Renewable-Energy Storage", "renewable_energy_storage"),
])
def test_industry_normalised(extract, make_lead, industry, normalised):
    sig = extract(make_lead(company={"industry": industry}), "firmographics")["company.industry"]
    assert sig.value == normalised
    assert sig.evidence == industry


def test_industry_aliases_from_vocabulary(extract, make_lead):
    lead = make_lead(company={"industry": "MarTech"})
    assert extract(lead, "firmographics")["company.industry"].value == "martech"
    vocab = {"industry_aliases": {"martech": "software"}}
    assert extract(lead, "firmographics", vocab)["company.industry"].value == "software"


def test_domain_name_and_tier(extract, make_lead):
    got = values(extract(make_lead(company={"name": "Globex", "domain": "WWW.Globex.com", "tier": "Strategic"}),
                         "firmographics"))
    assert got == {"company.domain": "globex.com", "company.name": "Globex", "company.tier": "strategic"}


def test_empty_company_gives_no_signals(extract, make_lead):
    assert extract(make_lead(), "firmographics") == {}


# --- activities ----------------------------------------------------------------------------------


def test_activity_counts_in_windows_relative_to_as_of(extract, make_lead, ago):
    lead = make_lead(activities=[
        ("page_view", 120), ("page_view", 60), ("page_view", 20), ("page_view", 5), ("page_view", 2),
        ("page_view", -1),  # a day after as_of: ignored, as if scoring in the past
    ])
    got = extract(lead, "activities")
    # 5 visits up to as_of; 2 within 7 days (2d, 5d), 3 within 30 (+20d), 4 within 90 (+60d).
    assert [got[f"activity.page_view.{m}"].value for m in ("count", "count_7d", "count_30d", "count_90d")] == [
        5, 2, 3, 4]
    assert got["activity.page_view.first_at"].value == ago(120)
    assert got["activity.page_view.last_at"].value == ago(2)
    assert got["activity.page_view.days_since_last"].value == 2.0
    # page_view is low intent and counts beyond email; the same numbers appear per tier.
    for tier in ("low", "any", "beyond_email"):
        assert got[f"intent.{tier}.count"].value == 5
        assert got[f"intent.{tier}.count_30d"].value == 3


def test_window_edges_are_inclusive(extract, make_lead):
    lead = make_lead(activities=[("pricing_page_visit", 30), ("pricing_page_visit", 7), ("pricing_page_visit", 0)])
    got = values(extract(lead, "activities"))
    # Exactly 7 and 30 days old are still inside their windows; exactly as_of counts too.
    assert got["activity.pricing_page_visit.count_7d"] == 2
    assert got["activity.pricing_page_visit.count_30d"] == 3


def test_just_outside_a_window(extract, make_lead, ago):
    lead = make_lead(activities=[Activity("demo_request", ago(days=7, seconds=1))])
    got = values(extract(lead, "activities"))
    assert got["activity.demo_request.count_7d"] == 0
    assert got["activity.demo_request.count_30d"] == 1


def test_observed_at_is_the_latest_activity_counted(extract, make_lead, ago):
    lead = make_lead(activities=[("content_download", 100), ("content_download", 40), ("content_download", 10)])
    got = extract(lead, "activities")
    assert got["activity.content_download.count"].observed_at == ago(10)
    assert got["activity.content_download.count_90d"].observed_at == ago(10)
    assert got["activity.content_download.first_at"].observed_at == ago(100)
    assert got["activity.content_download.last_at"].observed_at == ago(10)


def test_observed_at_per_window(extract, make_lead, ago):
    lead = make_lead(activities=[("webinar_attendance", 100), ("webinar_attendance", 40)])
    got = extract(lead, "activities")
    # The 90-day count only counts the 40-day-old one, so decay must act on that, not on the older one.
    assert got["activity.webinar_attendance.count_90d"].value == 1
    assert got["activity.webinar_attendance.count_90d"].observed_at == ago(40)
    assert got["activity.webinar_attendance.count_30d"].value == 0


def test_activities_in_any_input_order(extract, make_lead, ago):
    # API callers pass activities as their CRM returns them (often newest first).
    newest_first = make_lead(activities=[("case_study_view", 3), ("case_study_view", 45), ("case_study_view", 80)])
    got = extract(newest_first, "activities")
    assert got["activity.case_study_view.first_at"].value == ago(80)
    assert got["activity.case_study_view.last_at"].value == ago(3)
    assert got["activity.case_study_view.days_since_last"].value == 3.0
    assert got["activity.case_study_view.count"].observed_at == ago(3)


def test_tiers(extract, make_lead):
    lead = make_lead(activities=[
        ("email_open", 3), ("email_click", 3), ("unsubscribe", 2), ("demo_request", 1),
        ("pricing_page_visit", 1), ("webinar_registration", 4), ("podcast_listen", 5),
    ])
    got = values(extract(lead, "activities"))
    assert got["intent.email.count"] == 2
    assert got["intent.negative.count"] == 1
    assert got["intent.readiness.count"] == 1
    assert got["intent.high.count"] == 1
    assert got["intent.medium.count"] == 1
    assert got["intent.other.count"] == 1        # unknown types are kept, in tier "other"
    assert got["activity.podcast_listen.count"] == 1
    assert got["intent.any.count"] == 7
    assert got["intent.beyond_email.count"] == 4  # email and negative tiers excluded


def test_activity_tiers_from_vocabulary(extract, make_lead):
    lead = make_lead(activities=[("roi_calculator", 2)])
    assert values(extract(lead, "activities"))["intent.other.count"] == 1
    got = values(extract(lead, "activities", {"activity_tiers": {"high": ["roi_calculator"]}}))
    assert got["intent.high.count"] == 1
    assert got["intent.other.count"] == 0


def test_wanted_counts_default_to_zero(extract, make_lead):
    wanted = frozenset({"intent.readiness.count_30d", "activity.demo_request.count",
                        "activity.demo_request.last_at", "intent.high.last_at"})
    got = extract(make_lead(), "activities", wanted=wanted)
    # Counts of things that never happened are 0; timestamps of them do not exist.
    assert values(got) == {"intent.readiness.count_30d": 0, "activity.demo_request.count": 0}
    assert got["intent.readiness.count_30d"].observed_at is None


def test_wanted_limits_what_is_emitted(extract, make_lead, ago):
    wanted = frozenset({"intent.high.count_30d", "activity.pricing_page_visit.last_at"})
    got = extract(make_lead(activities=[("pricing_page_visit", 2), ("page_view", 1)]), "activities", wanted=wanted)
    assert values(got) == {"intent.high.count_30d": 1, "activity.pricing_page_visit.last_at": ago(2)}


def test_no_activities_and_no_wanted_list_gives_zero_tier_counts(extract, make_lead):
    got = values(extract(make_lead(), "activities"))
    assert got["intent.beyond_email.count_90d"] == 0
    assert got["intent.email.count"] == 0
    assert all(v == 0 for v in got.values())
    assert not any(n.startswith("activity.") for n in got)


def test_only_future_activities_count_as_none(extract, make_lead):
    got = values(extract(make_lead(activities=[("demo_request", -3)]), "activities"))
    assert got["intent.readiness.count"] == 0
    assert "activity.demo_request.count" not in got


# --- source, age and CRM fields ------------------------------------------------------------------


@pytest.mark.parametrize(("source", "normalised", "channel"), [
    ("LinkedIn Ads", "linkedin_ads", "paid_social"),
    ("google-ads", "google_ads", "paid_search"),
    ("Organic", "organic", "organic_search"),
    ("Trade Show", "trade_show", "event"),
    ("G2", "g2", "referral"),
    ("Content Syndication", "content_syndication", "content_syndication"),
    ("SDR outbound", "sdr_outbound", "outbound"),
    ("Website", "website", "direct"),
    ("Podcast", "podcast", "other"),
])
def test_source_channel(extract, make_lead, source, normalised, channel):
    got = values(extract(make_lead(source=source), "crm"))
    assert (got["lead.source"], got["lead.channel"]) == (normalised, channel)


def test_source_channels_from_vocabulary(extract, make_lead):
    got = values(extract(make_lead(source="Podcast"), "crm", {"source_channels": {"podcast": "organic_social"}}))
    assert got["lead.channel"] == "organic_social"


def test_lead_age(extract, make_lead, ago):
    sig = extract(make_lead(created_at=ago(days=10, hours=12)), "crm")["lead.age_days"]
    assert sig.value == 10.5
    assert sig.observed_at == ago(days=10, hours=12)


def test_custom_fields(extract, make_lead):
    lead = make_lead(fields={"budget_confirmed": True, "seats": 40, "notes": None})
    assert values(extract(lead, "crm")) == {"fields.budget_confirmed": True, "fields.seats": 40}
    only = extract(lead, "crm", wanted=frozenset({"fields.seats"}))
    assert values(only) == {"fields.seats": 40}


def test_declared_custom_fields_arrive_as_their_type(extract, make_lead):
    declared = {"custom_fields": {"seats": ("number", ()), "paid": ("bool", ()), "plan": ("str", ()),
                                  "rank": ("int", ()), "visits": ("number", ())}}
    lead = make_lead(fields={"seats": "40", "paid": "Yes", "plan": 2026, "rank": 3.0, "visits": "lots",
                             "other": "5"})
    # "lots" is no number: no signal rather than a value no comparison can match. Undeclared fields
    # stay as they are.
    assert values(extract(lead, "crm", declared)) == {
        "fields.seats": 40, "fields.paid": True, "fields.plan": "2026", "fields.rank": 3, "fields.other": "5"}


@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("2.5", "number", 2.5), (" 7 ", "number", 7), ("1e3", "number", 1000.0), ("nan", "number", None),
    (True, "number", None), (float("inf"), "number", None), ("3", "int", 3), (3.5, "int", None),
    ("FALSE", "bool", False), ("0", "bool", False), (1, "bool", None), ("maybe", "bool", None),
    (True, "str", None), (4.5, "str", None), ("x", "str", "x"),
])
def test_as_declared(value, kind, expected):
    from leadscore.rulepack.fields import as_declared

    assert as_declared(value, kind) == expected and type(as_declared(value, kind)) is type(expected)


# The address check as one regex, as first written: the extractor now checks the two halves apart
# and remembers each domain's verdict, which must never change a result.
_WHOLE_ADDRESS = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
                            r"([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
_ADDRESS_PARTS = st.text(alphabet="abz09.-_+@ é", max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_ADDRESS_PARTS, st.sampled_from(["", "acme.io", "gmail.com", "uni.edu", "mailinator.com",
                                                           "a-.io", "x.y", "edu.ac.uk"])), min_size=1, max_size=6))
def test_email_type_matches_the_whole_address_check(extractors, as_of, addresses):
    ctx = ExtractContext(as_of, {}, None)
    fn = extractors["email"].fn
    for local, domain in addresses:  # one vocabulary: domains seen earlier come from the cache
        email = f"{local}@{domain}" if domain else local
        got = {s.name: s.value for s in fn(Lead("L", email=email), ctx)}
        address = email.strip().lower()
        if not address:
            assert got == {}
            continue
        expected = "invalid" if not _WHOLE_ADDRESS.match(address) else email_plugin.classify(address)[0]
        assert got["email.type"] == expected
        assert got["email.domain"] == address.rpartition("@")[2]
        assert email_plugin.classify(address) == (expected, address.rpartition("@")[2])
        assert got["email.is_role"] is (address.partition("@")[0] in email_plugin.ROLE_LOCAL_PARTS)
