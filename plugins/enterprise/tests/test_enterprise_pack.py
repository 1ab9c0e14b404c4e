"""The enterprise pack: case files, named-account tiers, slower decay, ABM routing and the role-weighted roll-up."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from importlib.resources import files
from pathlib import Path

import pytest

from leadscore import Engine
from leadscore.cases import load_cases, run_cases
from leadscore.hookspecs import declared_reads
from leadscore.io import read_leads
from leadscore.model import Company, ExtractContext, Lead, Rejection, ScoreCard
from leadscore.testing import case_params, run_case
from leadscore_enterprise import leadscore_route_lead, strong_signal, tiers

CASES = Path(__file__).parent / "cases"
ABM_LIST = Path(__file__).parent / "packs" / "abm-list.toml"
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def pack_rule_ids() -> set[str]:
    text = (files("leadscore_enterprise") / "rulepacks" / "enterprise.toml").read_text(encoding="utf-8")
    return {rule["id"] for rule in tomllib.loads(text)["rules"]}


@pytest.fixture
def engine(enterprise_pm):
    with Engine(plugins=enterprise_pm, rulepacks=["firr-base", "enterprise", ABM_LIST], as_of=AS_OF) as engine:
        yield engine


@pytest.mark.parametrize("case", case_params(CASES / "*.toml"))
def test_case(case, enterprise_pm) -> None:
    result = run_case(case, enterprise_pm)
    assert result.passed, "\n".join(result.problems)


def test_every_rule_of_the_pack_is_pinned_by_a_case(enterprise_pm) -> None:
    cases = [case for path in sorted(CASES.glob("*.toml")) for case in load_cases(path)]
    fired = {line.rule_id for result in run_cases(cases, plugins=enterprise_pm) if result.card
             for line in result.card.ledger if line.kind == "rule" and line.points and line.pack == "enterprise"}
    assert pack_rule_ids() <= fired, f"no case scores {sorted(pack_rule_ids() - fired)}"


# --- the account tier ------------------------------------------------------------------------------

def test_target_account_entries_parse_to_tiers() -> None:
    table = tiers.parse_target_accounts(["Quarrymoor-Logistics.com=Strategic", "www.saltmarsh-robotics.io",
                                         "@birchwold-media.com = target", "quarrymoor-logistics.com=target"])
    assert table == {"quarrymoor-logistics.com": "strategic", "saltmarsh-robotics.io": "target",
                     "birchwold-media.com": "target"}


@pytest.mark.parametrize(("entry", "message"), [
    ("acme.example=gold", "tier 'gold' is not strategic or target"),
    ("acme=strategic", "'acme' is not a domain"),
    ("https://acme.example/", "is not a domain"),
    (42, "is not a string"),
])
def test_a_malformed_entry_is_an_error_naming_it(entry, message) -> None:
    with pytest.raises(ValueError, match="target_accounts entry") as err:
        tiers.parse_target_accounts([entry])
    assert message in str(err.value)


def tier_of(lead: Lead, entries=("quarrymoor-logistics.com=strategic", "saltmarsh-robotics.io")) -> str:
    ctx = ExtractContext(AS_OF, {"target_accounts": list(entries)}, None)
    return {s.name: s.value for s in tiers.extract(lead, ctx)}["enterprise.account_tier"]


@pytest.mark.parametrize(("lead", "tier"), [
    (Lead("T-1", company=Company(domain="eu.quarrymoor-logistics.com")), "strategic"),
    (Lead("T-2", email="mei@saltmarsh-robotics.io"), "target"),
    (Lead("T-3", email="mei.saltmarsh@gmail.com", company=Company(domain="gmail.com")), "none"),
    (Lead("T-4", company=Company(tier="TARGET")), "target"),
    (Lead("T-5", company=Company(tier="Tier 3", domain="example-widgets.com")), "none"),
    (Lead("T-6", company=Company(tier="target", domain="quarrymoor-logistics.com")), "strategic"),
    (Lead("T-7", company=Company(tier="strategic", domain="saltmarsh-robotics.io")), "strategic"),
    (Lead("T-8", company=Company(domain="notquarrymoor-logistics.com")), "none"),
])
def test_the_tier_is_the_higher_of_the_crm_and_the_list(lead, tier) -> None:
    assert tier_of(lead) == tier


def test_free_mail_on_the_list_is_ignored_for_email_domains() -> None:
    # A personal address says nothing about the employer, even if someone listed the provider.
    assert tier_of(Lead("T-9", email="someone@gmail.com"), entries=("gmail.com=strategic",)) == "none"


def test_a_malformed_list_rejects_each_lead_with_the_reason(enterprise_pm, tmp_path) -> None:
    pack = tmp_path / "bad-list.toml"
    pack.write_text('[pack]\nname = "bad-list"\nversion = "1"\n[vocabulary]\ntarget_accounts = ["acme.example=gold"]\n')
    with Engine(plugins=enterprise_pm, rulepacks=["firr-base", "enterprise", pack], as_of=AS_OF) as engine:
        [result] = list(engine.score([Lead("B-1", company=Company(employees=5000))]))
    assert isinstance(result, Rejection)
    assert "target_accounts entry 'acme.example=gold'" in result.reason


@pytest.mark.parametrize(("employees", "tier", "applies"), [
    (999, None, False), (1000, None, True), (120, "strategic", True), (120, "target", True), (120, "tier 2", False),
    (None, None, False),
])
def test_the_pack_applies_to_large_and_named_accounts(engine, employees, tier, applies) -> None:
    card = engine.score_lead(Lead("A-1", company=Company(employees=employees, tier=tier)))
    assert ("enterprise" in dict(card.packs)) is applies


# --- slower decay ----------------------------------------------------------------------------------

def test_every_redefined_decay_is_never_faster_than_the_base_one(engine) -> None:
    base = engine.composer.get(frozenset({"firr-base", "cases-abm-list"}))
    slow = engine.composer.get(frozenset({"firr-base", "enterprise", "cases-abm-list"}))
    for name in ("web", "webinar", "content", "handraise"):
        assert slow.decays[name] != base.decays[name], f"{name} is not redefined"
        factors = [(slow.decay_fns[name](age), base.decay_fns[name](age)) for age in range(0, 400)]
        assert all(s >= b for s, b in factors), name
        assert any(s > b for s, b in factors), name
    assert slow.decays["email"] == base.decays["email"]


# --- ABM routing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("band", "signals", "strong"), [
    ("target_account", {}, True),
    ("sales_ready", {}, True),
    ("mql", {"intent.readiness.count_30d": 1}, True),
    ("mql", {"account.senior_engaged_contacts": 2}, True),
    ("mql", {"account.senior_engaged_contacts": 1, "intent.readiness.count_30d": 0}, False),
    ("engaged", {"intent.readiness.count_30d": 2, "account.senior_engaged_contacts": 4}, False),
    ("early", {}, False),
])
def test_what_counts_as_a_strong_signal(band, signals, strong) -> None:
    assert (strong_signal(band, signals) is not None) is strong


def card(band: str) -> ScoreCard:
    return ScoreCard("R-1", AS_OF, 100, (), band, band, (), None, (), (("enterprise", "1.0.0"),))


@pytest.mark.parametrize(("tier", "queue", "sla"), [("strategic", "abm-strategic", 1), ("target", "abm-target", 2)])
def test_a_named_account_with_a_strong_signal_goes_to_its_abm_queue(tier, queue, sla) -> None:
    ctx = {"packs": ("firr-base", "enterprise"), "routing": {},
           "signals": {"enterprise.account_tier": tier, "account.id": "quarrymoor-logistics.com"}}
    route = leadscore_route_lead(card("sales_ready"), Lead("R-1"), ctx)
    assert (route.action, route.queue, route.sla_hours) == ("abm_play", queue, sla)
    assert route.owner_hint == "named account owner of quarrymoor-logistics.com"
    assert route.reason.startswith(f"{tier.capitalize()} account with a sales-ready score")


@pytest.mark.parametrize(("packs", "tier", "band"), [
    (("firr-base",), "strategic", "target_account"),            # enterprise pack not applied
    (("firr-base", "enterprise"), "none", "target_account"),    # not a named account
    (("firr-base", "enterprise"), "strategic", "engaged"),      # no strong signal
])
def test_otherwise_the_router_has_no_opinion(packs, tier, band) -> None:
    ctx = {"packs": packs, "routing": {}, "signals": {"enterprise.account_tier": tier}}
    assert leadscore_route_lead(card(band), Lead("R-1"), ctx) is None


class WatchedSignals(dict):
    """A lead's signals that note each name read."""

    def __init__(self, values: dict, read: list[str]) -> None:
        super().__init__(values)
        self.read = read

    def get(self, key, default=None):
        self.read.append(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.append(key)
        return super().__getitem__(key)


def test_the_router_reads_signals_for_the_enterprise_packs_leads_only() -> None:
    """What the scoped reads_signals declaration rests on (leadscore ingest rescores a contact for
    a moved senior count only when its packs hold the enterprise pack): outside the pack the
    router reads no signal; inside, only what it declares."""
    read: list[str] = []
    signals = WatchedSignals({"enterprise.account_tier": "strategic", "account.senior_engaged_contacts": 4,
                              "intent.readiness.count_30d": 0, "account.id": "quarrymoor-logistics.com"}, read)
    for band in ("target_account", "mql", "engaged"):
        assert leadscore_route_lead(card(band), Lead("R-1"), {"packs": ("firr-base", "midmarket"), "routing": {},
                                                              "signals": signals}) is None
    assert read == []
    reads = declared_reads(leadscore_route_lead)
    assert reads is not None and reads.for_packs({"firr-base", "midmarket"}) == set()
    for band in ("target_account", "mql", "engaged"):
        leadscore_route_lead(card(band), Lead("R-1"), {"packs": ("firr-base", "enterprise"), "routing": {},
                                                       "signals": signals})
    assert "account.senior_engaged_contacts" in read and set(read) <= reads.for_packs({"firr-base", "enterprise"})


def test_the_router_routes_by_the_senior_count_only_through_two_or_more() -> None:
    """What its compares={"gte": 2} declaration rests on (leadscore ingest then rescores a contact
    only when the count crosses 2): for every tier, band and readiness, the route's action, queue,
    SLA and owner are the same for any two counts on the same side of 2."""
    reads = declared_reads(leadscore_route_lead)
    assert reads is not None and reads.comparisons("account.senior_engaged_contacts") == (("gte", 2),)

    def route(tier, band, ready, senior):
        found = leadscore_route_lead(card(band), Lead("R-1"), {"packs": ("firr-base", "enterprise"), "routing": {},
                                                                "signals": {"enterprise.account_tier": tier,
                                                                            "account.senior_engaged_contacts": senior,
                                                                            "intent.readiness.count_30d": ready,
                                                                            "account.id": "quarrymoor-logistics.com"}})
        return None if found is None else (found.action, found.queue, found.sla_hours, found.owner_hint)

    for tier in ("strategic", "target", None):
        for band in ("early", "engaged", "mql", "sales_ready", "target_account"):
            for ready in (0, 1):
                routes = {senior: route(tier, band, ready, senior) for senior in range(6)}
                assert routes[0] == routes[1] and len({routes[n] for n in range(2, 6)}) == 1
    assert route("strategic", "mql", 0, 1) is None and route("strategic", "mql", 0, 2)[0] == "abm_play"


def test_the_router_wins_over_the_routing_table_through_the_engine(engine) -> None:
    leads = {lead.id: lead for lead in read_leads(CASES / "enterprise-leads.jsonl")}
    strategic = engine.score_lead(leads["EQ-1"]).route
    untiered = engine.score_lead(leads["EK-1"]).route
    assert (strategic.action, strategic.queue, strategic.sla_hours) == ("abm_play", "abm-strategic", 1)
    assert (untiered.action, untiered.queue, untiered.sla_hours) == ("ae_call", "enterprise-ae", 4)


# --- account roll-up -------------------------------------------------------------------------------

def test_accounts_roll_up_role_weighted_into_the_enterprise_account_bands(engine) -> None:
    leads = list(read_leads(CASES / "enterprise-leads.jsonl"))
    index = engine.build_accounts(leads)
    scored = {c.lead_id: c.total for c in engine.score(leads, accounts=index)}
    cards = {c.account_id: c for c in engine.account_cards(index)}
    quarrymoor = cards["quarrymoor-logistics.com"]
    assert quarrymoor.strategy == "role_weighted"
    # COO x1.5 + IT director x1.2 + VP Finance x1.3 + coordinator (individual) x0.8, capped at 500.
    weighted = scored["EQ-1"] * 1.5 + scored["EQ-2"] * 1.2 + scored["EQ-3"] * 1.3 + scored["EQ-4"] * 0.8
    assert quarrymoor.score == min(int(weighted + 0.5), 500)
    assert quarrymoor.band == "buying"
    assert cards["saltmarsh-robotics.io"].band == "engaged"
