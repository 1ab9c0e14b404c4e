"""The public API: ``leadscore.score`` and ``Engine``, user rulepacks that extend firr-base, and rejections."""

from __future__ import annotations

import pytest

import leadscore
from leadscore import Engine, PluginManager, hookimpl
from leadscore.errors import ConfigurationError, RulepackErrors
from leadscore.model import Rejection, ScoreCard, Signal, SignalExtractor, SignalSpec
from leadscore.plugins import LOAD_ENV


@pytest.fixture
def leads(make_lead):
    return [
        # vp 20 + buyer 10 + saas 10 + 1,200 employees 15 + own domain 5 + US 5 = 65 -> 50; revenue $250M 20;
        # pricing 2 days ago 22 * 0.5**(2/14) = 19.96 -> 20; demo today 45: 135, and every target gate holds.
        make_lead("L-1001", email="dana@acme.io", title="VP Marketing", source="linkedin_ads",
                  company={"name": "Acme", "domain": "acme.io", "industry": "saas", "employees": 1200,
                           "annual_revenue": 250_000_000, "country": "US"},
                  activities=[("pricing_page_visit", 2, {"url": "/pricing"}), ("demo_request", 0)]),
        # personal email -15, nothing else: floored by nothing (negative min is -100), band early.
        make_lead("L-1002", email="sam.lee@gmail.com"),
    ]


def test_score_function(leads, as_of, monkeypatch):
    # Only the core's own plugins: an empty allow-list keeps installed plugins out of this test.
    monkeypatch.setenv(LOAD_ENV, "")
    cards = list(leadscore.score(leads, as_of=as_of))
    assert [c.lead_id for c in cards] == ["L-1001", "L-1002"]
    assert [(c.total, c.band) for c in cards] == [(135, "target_account"), (-15, "early")]
    assert all(c.as_of == as_of and c.packs == (("firr-base", "1.0.0"),) for c in cards)
    assert cards[0].route.action == "abm_play"


def test_score_function_with_explicit_plugins_and_packs(leads, as_of):
    cards = list(leadscore.score(leads, rulepacks=["firr-base"], as_of=as_of,
                                 plugins=PluginManager(entry_points=False)))
    assert [(c.total, c.band) for c in cards] == [(135, "target_account"), (-15, "early")]


def test_naive_as_of_is_utc(leads, as_of):
    naive = as_of.replace(tzinfo=None)
    [card, _] = leadscore.score(leads, rulepacks=["firr-base"], as_of=naive, plugins=PluginManager(entry_points=False))
    assert card.as_of == as_of and card.as_of.tzinfo is not None
    assert card.total == 135


def test_rejections_pass_through_in_order(leads, as_of):
    bad = Rejection("leads.jsonl:2", "missing `id`")
    out = list(leadscore.score([leads[0], bad, leads[1]], rulepacks=["firr-base"], as_of=as_of,
                               plugins=PluginManager(entry_points=False)))
    assert [type(x).__name__ for x in out] == ["ScoreCard", "Rejection", "ScoreCard"]
    assert out[1] is bad


def test_engine_as_of_per_call_overrides_the_default(base_engine, make_lead, ago):
    lead = make_lead(activities=[("pricing_page_visit", 0)])
    assert base_engine.score_lead(lead).total == 22
    # Fourteen days later the pricing visit is one half-life old: 22 * 0.5 = 11.
    later = ago(-14)
    card = base_engine.score_lead(lead, as_of=later)
    assert (card.total, card.as_of) == (11, later)
    # Scoring in the past ignores activities that had not happened yet.
    assert base_engine.score_lead(lead, as_of=ago(1)).ledger == ()


def test_engine_signals(base_engine, make_lead):
    signals = base_engine.signals(make_lead(email="dana@acme.io", title="Head of Growth"))
    assert signals["email.type"].value == "business"
    assert (signals["title.seniority"].value, signals["title.function"].value) == ("vp", "marketing")


def test_engine_is_a_context_manager(as_of, make_lead):
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=as_of) as engine:
        assert engine.score_lead(make_lead(title="CMO")).total == 35  # c-level 25 + "cmo" is marketing 10


def test_unknown_rulepack_name(as_of):
    with pytest.raises(ConfigurationError) as info:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-bse"], as_of=as_of)
    assert str(info.value) == ("--rulepack: no installed rulepack named 'firr-bse'; "
                               "use a path to a .toml file or one of: firr-base")


def test_missing_rulepack_file(tmp_path, as_of):
    missing = tmp_path / "nope.toml"
    with pytest.raises(RulepackErrors) as info:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[missing], as_of=as_of)
    assert str(info.value) == (f"{missing}: rulepack file not found; "
                               f"check the path, or name an installed rulepack (leadscore rulepacks)")


def test_unknown_backend(as_of):
    with pytest.raises(ConfigurationError, match=r"^--engine: unknown backend 'rete'; use one of python, durable, duckdb$"):
        Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], backend="rete", as_of=as_of)


# --- user rulepacks ------------------------------------------------------------------------------

USER_PACK = """\
[pack]
name = "acme-revops"
version = "2.1.0"
extends = ["firr-base"]
priority = 10
disable = ["negative.email.personal"]

# Our champions are VPs: worth more than firr-base's 20.
[[rules]]
id = "fit.title.vp"
category = "fit"
points = 30
reason = "VP: our champion persona"
when = { signal = "title.seniority", eq = "vp" }
"""


def test_user_pack_extends_overrides_and_disables(write_pack, as_of, make_lead, base_engine):
    path = write_pack(USER_PACK, "acme-revops.toml")
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=[str(path)], as_of=as_of)
    lead = make_lead(email="dana.smith@gmail.com", title="VP Marketing")

    base = base_engine.score_lead(lead)
    # firr-base: vp 20 + buyer 10 - personal email 15 = 15.
    assert (base.total, base.band) == (15, "early")

    card = engine.score_lead(lead)
    # acme-revops: vp 30 (overridden) + buyer 10, and the personal-email penalty is disabled: 40.
    assert (card.total, card.band) == (40, "engaged")
    assert card.packs == (("firr-base", "1.0.0"), ("acme-revops", "2.1.0"))
    vp = next(c for c in card.ledger if c.rule_id == "fit.title.vp")
    assert (vp.points, vp.pack, vp.reason) == (30, "acme-revops", "VP: our champion persona")
    assert "negative.email.personal" not in [c.rule_id for c in card.ledger]
    # The override keeps the rule's place: it is still the first fit line, before the function rule.
    assert [c.rule_id for c in card.ledger] == ["fit.title.vp", "fit.function.buyer"]


def test_user_pack_can_be_passed_as_a_path(write_pack, as_of, make_lead):
    path = write_pack(USER_PACK, "acme-revops.toml")
    [card] = leadscore.score([make_lead(title="VP Sales")], rulepacks=[path], as_of=as_of,
                             plugins=PluginManager(entry_points=False))
    assert card.total == 40  # vp 30 + buyer 10


ENTERPRISE_PACK = """\
[pack]
name = "acme-enterprise"
version = "0.3.0"
extends = ["firr-base"]
priority = 20
applies_when = { signal = "company.employees", gte = 1000 }

[[rules]]
id = "enterprise.security-review"
category = "intent"
points = 10
on = "security_page_visit"
reason = "Enterprise buyer read the security page: procurement is starting"
"""


def test_applies_when_selects_packs_per_lead(write_pack, as_of, make_lead):
    path = write_pack(ENTERPRISE_PACK, "enterprise.toml")
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=as_of)
    visit = [("security_page_visit", 1)]
    big = engine.score_lead(make_lead("L-1", company={"employees": 2500}, activities=visit))
    small = engine.score_lead(make_lead("L-2", company={"employees": 40}, activities=visit))
    unknown = engine.score_lead(make_lead("L-3", activities=visit))

    # big: service-page 16 (web decay 1.0 at 1 day) + security review 10 + 100+ employees 15 = 41.
    assert big.packs == (("firr-base", "1.0.0"), ("acme-enterprise", "0.3.0"))
    assert [(c.rule_id, c.points) for c in big.ledger] == [
        ("fit.company.size", 15), ("intent.service-page", 16), ("enterprise.security-review", 10)]
    assert big.total == 41
    # small: service-page 16 only; unknown size: the pack does not apply either.
    for card in (small, unknown):
        assert card.packs == (("firr-base", "1.0.0"),)
        assert "enterprise.security-review" not in [c.rule_id for c in card.ledger]
    assert (small.total, unknown.total) == (16, 16)


def test_copy_of_firr_base_loads_as_a_standalone_pack(write_pack, firr_base_text, as_of, base_engine, make_lead):
    # firr-base invites users to copy it; a renamed copy is used instead of, not with, the installed
    # firr-base, so the two never compose and their equal priority is no conflict.
    copy = firr_base_text.replace('name = "firr-base"', 'name = "acme-scoring"', 1)
    path = write_pack(copy, "acme-scoring.toml")
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=as_of)
    lead = make_lead(title="VP Marketing", activities=[("demo_request", 0)])
    card = engine.score_lead(lead)
    assert card.packs == (("acme-scoring", "1.0.0"),)
    assert card.total == base_engine.score_lead(lead).total == 75  # vp 20 + buyer 10 + demo 45


def test_an_edited_copy_of_an_installed_pack_replaces_it_for_the_run(write_pack, firr_base_text, as_of, make_lead):
    # Checking or trying a change to an installed pack: the file keeps the pack's name and wins.
    edited = firr_base_text.replace('reason = "VP-level title: owns the budget"',
                                    'reason = "VP: owns the budget (edited)"', 1)
    assert edited != firr_base_text
    path = write_pack(edited, "firr-base.toml")
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=as_of) as engine:
        assert engine.replaced == {"firr-base": "leadscore.default_plugins.compose.rulepacks"}
        assert [p.source for p in engine.packs] == [str(path)]
        card = engine.score_lead(make_lead(title="VP Marketing"))
    assert "+20 VP: owns the budget (edited)" in card.top_reasons(3)


# --- one output per lead -------------------------------------------------------------------------


class FlakyEnrichment(Exception):
    """What a third-party enrichment client might raise (not a built-in exception type)."""


def _raising_plugin(exc: BaseException):
    class Enrichment:
        @hookimpl
        def leadscore_signal_extractors(self):
            def fn(lead, ctx):
                if lead.id == "L-2":
                    raise exc
                yield Signal("enrich.found", True)

            return [SignalExtractor("enrich", fn, (SignalSpec("enrich.found", "bool"),))]

    return Enrichment()


@pytest.mark.parametrize("exc", [
    ValueError("employees is not a number: 'n/a'"),
    KeyError("domain"),
    RuntimeError("enrichment API returned HTTP 503"),
    ConnectionError("enrichment API unreachable"),
    FlakyEnrichment("quota exceeded"),
], ids=lambda e: type(e).__name__)
def test_extractor_failure_yields_a_rejection(make_lead, as_of, exc):
    pm = PluginManager(entry_points=False)
    pm.register(_raising_plugin(exc), name="leadscore-enrich")
    leads = [make_lead("L-1", title="VP Sales"), make_lead("L-2", title="VP Sales"), make_lead("L-3")]
    out = list(leadscore.score(leads, rulepacks=["firr-base"], as_of=as_of, plugins=pm))

    assert [type(x).__name__ for x in out] == ["ScoreCard", "Rejection", "ScoreCard"]
    rejection = out[1]
    assert (rejection.lead_id, rejection.where) == ("L-2", "lead L-2")
    assert rejection.reason.startswith("could not be scored: ")
    assert str(exc) in rejection.reason
    assert out[0].total == 30 and out[2].total == 0  # vp 20 + buyer 10; nothing


def test_engine_collects_registries_once(monkeypatch, as_of, make_lead):
    # The hot path calls plain functions: scoring must not go back to the plugin manager.
    pm = PluginManager(entry_points=False)
    engine = Engine(plugins=pm, rulepacks=["firr-base"], as_of=as_of)

    def fail(*args, **kwargs):
        raise AssertionError("the plugin manager was consulted while scoring")

    for name in ("get_signal_extractors", "get_decay_policies", "get_scorers", "get_router",
                 "get_rulepack_sources"):
        monkeypatch.setattr(pm, name, fail)
    card = engine.score_lead(make_lead(title="Head of Growth", activities=[("demo_request", 0)]))
    assert isinstance(card, ScoreCard) and card.total == 75  # vp 20 + marketing 10 + demo 45


def test_activity_order_does_not_change_the_card(base_engine, make_lead):
    # Leads built in code (or by a plugin) need not list activities oldest first; CRMs often
    # return them newest first.
    activities = [("pricing_page_visit", 40), ("pricing_page_visit", 1), ("email_open", 45), ("email_open", 3),
                  ("email_open", 2), ("email_open", 1), ("email_open", 20), ("content_download", 100),
                  ("content_download", 5)]
    oldest_first = sorted(activities, key=lambda a: -a[1])
    newest_first = sorted(activities, key=lambda a: a[1])
    cards = [base_engine.score_lead(make_lead(activities=order)) for order in (oldest_first, newest_first)]
    # Pricing counts once, the latest visit (1 day): 22 * 0.5**(1/14) = 20.94 -> 21; opens: the latest 3
    # (1, 2, 3 days, inside the 30-day window) -> 3; downloads: both, 5 days 10 + 100 days 10 * 0.5 = 15.
    assert [c.total for c in cards] == [21 + 3 + 15] * 2
    assert cards[1] == cards[0]
