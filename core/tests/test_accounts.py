"""Account roll-up: grouping, account signals in rules, the roll-up strategies and their hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore import Engine, PluginManager, hookimpl
from leadscore.accounts import AccountIndex, Contact, account_key
from leadscore.default_plugins.aggregate.accounts import mean_scored, role_weighted, sum_capped
from leadscore.errors import RulepackErrors
from leadscore.model import RollupStrategy

COMMITTEE_PACK = """\
[pack]
name = "committee"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[categories.account]
label = "Account"
max = 40

[accounts]
rollup = "role_weighted"
cap = 400
bands = [["cold", 0], ["warm", 60], ["hot", 150]]

[[rules]]
id = "account.committee"
category = "account"
points = 25
reason = "Three or more colleagues are engaged: a buying committee is forming"
when = { signal = "account.engaged_contacts", gte = 3 }

[[rules]]
id = "account.senior"
category = "account"
points = 15
reason = "A senior colleague is engaged too"
when = { signal = "account.senior_engaged_contacts", gte = 1 }
"""


def contact(lead_id: str, total: int, seniority: str = "manager", engaged: bool = True) -> Contact:
    return Contact(lead_id, total, seniority, "marketing", "", engaged)


def test_account_key_prefers_account_id_then_business_domain(make_lead) -> None:
    assert account_key(make_lead(account_id="ACC-9", email="a@northwind-analytics.com")) == "ACC-9"
    assert account_key(make_lead(email="Ana@Northwind-Analytics.com")) == "northwind-analytics.com"
    assert account_key(make_lead(email="ana@gmail.com")) is None
    assert account_key(make_lead()) is None


def test_account_index_counts_the_buying_committee(make_lead) -> None:
    index = AccountIndex()
    engaged = {"intent.beyond_email.count_90d": 2, "title.seniority": "vp", "title.function": "marketing",
               "intent.high.count_30d": 1, "intent.readiness.count_30d": 1}
    index.add("A", make_lead("L-1", account_id="A"), engaged, 90)
    index.add("A", make_lead("L-2", account_id="A"), {**engaged, "title.seniority": "manager", "title.function": "it"}, 40)
    index.add("A", make_lead("L-3", account_id="A"), {"intent.beyond_email.count_90d": 0}, 10)
    signals = index.signals_for("A")
    assert signals == {"account.id": "A", "account.contacts": 3, "account.engaged_contacts": 2,
                       "account.senior_engaged_contacts": 1, "account.functions_engaged": 2,
                       "account.high_intent_30d": 4, "account.best_lead_score": 90}


def test_account_rules_lift_a_lead_into_a_higher_band(tmp_path: Path, make_lead, as_of) -> None:
    pack = tmp_path / "committee.toml"
    pack.write_text(COMMITTEE_PACK)
    engine = Engine(plugins=PluginManager(entry_points=False), rulepacks=[str(pack)], as_of=as_of)
    assert engine.needs_accounts
    # The manager alone: fit 8 (manager) + 10 (marketing) + 15 (size) + 5 (domain) = 38, intent 22
    # (pricing today) -> 60 = mql. With two engaged colleagues (one a VP): +25 +15 = 100 -> the
    # sales-ready gate holds (business email, pricing today) but target_account needs a demo.
    company = {"name": "Northwind Analytics", "domain": "northwind-analytics.com", "employees": 400}
    leads = [
        make_lead("L-1", email="mo@northwind-analytics.com", title="Marketing Manager", account_id="NW",
                  company=company, activities=[("pricing_page_visit", 0)]),
        make_lead("L-2", email="vi@northwind-analytics.com", title="VP Sales", account_id="NW", company=company,
                  activities=[("webinar_attendance", 3)]),
        make_lead("L-3", email="ed@northwind-analytics.com", title="Data Engineer", account_id="NW",
                  company=company, activities=[("case_study_view", 5)]),
    ]
    alone = engine.score_lead(leads[0])
    assert (alone.total, alone.band) == (60, "mql")
    index = engine.build_accounts(leads)
    cards = {c.lead_id: c for c in engine.score(leads, accounts=index)}
    lifted = cards["L-1"]
    assert lifted.total == 100 and lifted.band == "sales_ready"
    assert {"account.committee", "account.senior"} <= {c.rule_id for c in lifted.ledger}
    assert sum(c.points for c in lifted.ledger) == lifted.total
    [account] = list(engine.account_cards(index))
    assert account.account_id == "NW" and account.strategy == "role_weighted"
    assert account.engaged_contacts == 3 and account.senior_engaged_contacts == 1
    assert account.best_lead == max(cards.values(), key=lambda c: (c.total, c.lead_id)).lead_id
    assert account.band == "hot" and account.score >= 150


def test_builtin_strategies() -> None:
    contacts = [contact("a", 120, "vp"), contact("b", 60, "manager"), contact("c", -20, "student")]
    assert sum_capped(contacts, {"cap": 150})[0] == 150
    assert sum_capped(contacts, {})[0] == 160
    assert mean_scored(contacts, {})[0] == 90
    # 120 x 1.3 + 60 x 1.0 + (-20) x 0 = 216
    assert role_weighted(contacts, {})[0] == 216
    assert role_weighted(contacts, {"weights": {"vp": 2.0}})[0] == 300


def test_unknown_rollup_strategy_is_a_load_error(tmp_path: Path, as_of) -> None:
    pack = tmp_path / "committee.toml"
    pack.write_text(COMMITTEE_PACK.replace('rollup = "role_weighted"', 'rollup = "loudest"'))
    with pytest.raises(RulepackErrors, match="unknown roll-up strategy 'loudest'"):
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[str(pack)], as_of=as_of)


def test_hook_leadscore_rollup_strategies(tmp_path: Path, make_lead, as_of) -> None:
    class BestTwo:
        @hookimpl
        def leadscore_rollup_strategies(self):
            def best_two(contacts, params):
                top = contacts[:2]
                return sum(c.total for c in top), [f"best {len(top)} contacts"]

            return [RollupStrategy("best_two", best_two)]

    pm = PluginManager(entry_points=False)
    pm.register(BestTwo(), "best-two")
    pack = tmp_path / "committee.toml"
    pack.write_text(COMMITTEE_PACK.replace('rollup = "role_weighted"', 'rollup = "best_two"'))
    engine = Engine(plugins=pm, rulepacks=[str(pack)], as_of=as_of)
    leads = [make_lead(f"L-{i}", email=f"p{i}@acme-robotics.com", title="VP Sales",
                       activities=[("demo_request", i)]) for i in range(1, 4)]
    index = engine.build_accounts(leads)
    cards = list(engine.score(leads, accounts=index))
    [account] = list(engine.account_cards(index))
    top_two = sorted((c.total for c in cards), reverse=True)[:2]
    assert account.account_id == "acme-robotics.com"
    assert account.score == sum(top_two) and "best 2 contacts" in account.reasons


def test_the_account_pass_runs_the_extractors_that_declare_a_contact_signal() -> None:
    from leadscore.engine import _extractors_for
    from leadscore.model import SignalExtractor, SignalSpec

    def none(lead, ctx):
        return ()

    activities = SignalExtractor("activities", none, (SignalSpec("intent.*.count_30d", "int"),))
    title = SignalExtractor("title", none, (SignalSpec("title.seniority", "str"),))
    crm = SignalExtractor("crm", none, (SignalSpec("crm.stage", "str"),))
    silent = SignalExtractor("silent", none)
    every = (activities, crm, title, silent)
    assert _extractors_for(every, frozenset({"intent.high.count_30d", "title.seniority"})) == (activities, title,
                                                                                               silent)
    # A name no extractor declares may come from any of them undeclared: every extractor runs.
    assert _extractors_for(every, frozenset({"intent.high.count_30d", "fields.budget"})) == every
