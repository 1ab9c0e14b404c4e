"""Account roll-up: grouping, account signals in rules, the roll-up strategies and their hook."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leadscore import Engine, PluginManager, hookimpl
from leadscore.accounts import AccountEntry, AccountIndex, Contact, account_key, moved_signals
from leadscore.default_plugins.aggregate.accounts import mean_scored, role_weighted, sum_capped
from leadscore.errors import RulepackErrors
from leadscore.model import Lead, RollupStrategy

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


# Contacts as the account pass sees them: a few people (two leads may be one person), engaged or
# not, senior or not, in a function, with high-intent counts, a first-pass total and the
# same_account conditions they meet.
SAME = ("account.same_account.a", "account.same_account.b")
ENTRIES = st.builds(
    lambda lead, person, engaged, seniority, function, high, readiness, total, matched: AccountEntry(
        "acme.com", lead, person, {"intent.beyond_email.count_90d": engaged, "title.seniority": seniority,
                                   "title.function": function, "intent.high.count_30d": high,
                                   "intent.readiness.count_30d": readiness},
        total, matched, Lead(lead)),
    st.sampled_from(["L-1", "L-2", "L-3", "L-4"]), st.sampled_from(["ann@acme.com", "bo@acme.com", "cy@acme.com"]),
    st.integers(0, 2), st.sampled_from(["vp", "director", "individual"]),
    st.sampled_from(["sales", "marketing", "other"]), st.integers(0, 2), st.integers(0, 1),
    st.none() | st.integers(0, 60), st.sampled_from([(), SAME[:1], SAME]))


@given(others=st.lists(ENTRIES, max_size=5), before=st.none() | ENTRIES, after=st.none() | ENTRIES)
def test_a_signal_whose_part_a_lead_changes_is_the_only_one_its_account_can_move(others, before, after) -> None:
    """Whoever else is in the account, replacing one lead's entry moves no account signal that
    ``moved_signals`` leaves out (what ``leadscore ingest`` relies on to keep contacts' cards)."""
    if before is not None and after is not None:
        after = AccountEntry(after.key, before.lead_id, after.person, after.values, after.first_total, after.matched,
                             before.lead)  # the same lead, changed
    others = [e for e in others if e.lead_id not in {getattr(before, "lead_id", None), getattr(after, "lead_id", None)}]
    assume(others)  # an account with no one else in it: no contact to keep a card
    caps = {SAME[0]: 2, SAME[1]: 1}

    def signals(entry: AccountEntry | None) -> dict:
        index = AccountIndex(caps)
        for item in [*others, *([entry] if entry is not None else [])]:
            index.add_entry(item)
        return dict(index.signals_for("acme.com"))

    was, now = signals(before), signals(after)
    changed = {name for name in was.keys() | now.keys() if was.get(name) != now.get(name)}
    assert changed <= moved_signals("acme.com", before, after, caps)


def test_moved_signals_names_the_parts_that_moved() -> None:
    def entry(person: str, engaged: int, seniority: str = "individual", function: str = "sales") -> AccountEntry:
        return AccountEntry("acme.com", "L-1", person, {"intent.beyond_email.count_90d": engaged,
                                                         "title.seniority": seniority, "title.function": function},
                            None, (), Lead("L-1"))

    # A colleague becomes engaged: the engaged contacts and functions may move, the people count not.
    assert moved_signals("acme.com", entry("ann", 0), entry("ann", 1)) == {
        "account.engaged_contacts", "account.functions_engaged"}
    # An engaged contact gets a senior title.
    assert moved_signals("acme.com", entry("ann", 1), entry("ann", 1, "vp")) == {"account.senior_engaged_contacts"}
    assert moved_signals("acme.com", entry("ann", 1), entry("ann", 1)) == set()
    # As many functions alone, but another one: with a colleague in sales, the account has one more.
    assert moved_signals("acme.com", entry("ann", 1), entry("ann", 1, function="marketing")) == {
        "account.functions_engaged"}
    # Another person (a changed email address): what the lead brings moves from one to the other.
    assert moved_signals("acme.com", entry("ann", 0), entry("bo", 0)) == {"account.contacts"}
    assert moved_signals("acme.com", None, entry("bo", 1)) == {
        "account.contacts", "account.engaged_contacts", "account.functions_engaged"}
