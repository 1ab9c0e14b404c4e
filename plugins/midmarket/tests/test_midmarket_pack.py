"""The midmarket pack: case files, heavier hand-raises, faster decay, the evaluation-sprint signal and SDR routing."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from pathlib import Path

import pytest

from leadscore import Engine
from leadscore.cases import load_cases, run_cases
from leadscore.io import read_leads
from leadscore.model import Activity, Company, ExtractContext, Lead
from leadscore.testing import case_params, run_case
from leadscore_midmarket import sprint

CASES = Path(__file__).parent / "cases"
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


def rules_of(package: str, name: str) -> dict[str, dict]:
    text = (files(package) / "rulepacks" / name).read_text(encoding="utf-8")
    return {rule["id"]: rule for rule in tomllib.loads(text)["rules"]}


@pytest.fixture
def engine(midmarket_pm):
    with Engine(plugins=midmarket_pm, rulepacks=["firr-base", "midmarket"], as_of=AS_OF) as engine:
        yield engine


@pytest.mark.parametrize("case", case_params(CASES / "*.toml"))
def test_case(case, midmarket_pm) -> None:
    result = run_case(case, midmarket_pm)
    assert result.passed, "\n".join(result.problems)


def test_every_rule_of_the_pack_is_pinned_by_a_case(midmarket_pm) -> None:
    cases = [case for path in sorted(CASES.glob("*.toml")) for case in load_cases(path)]
    fired = {line.rule_id for result in run_cases(cases, plugins=midmarket_pm) if result.card
             for line in result.card.ledger if line.kind == "rule" and line.points and line.pack == "midmarket"}
    expected = set(rules_of("leadscore_midmarket", "midmarket.toml"))
    assert expected <= fired, f"no case scores {sorted(expected - fired)}"


def test_every_readiness_override_outweighs_the_base_rule_it_replaces() -> None:
    base = rules_of("leadscore", "firr-base.toml")
    overrides = {rid: rule for rid, rule in rules_of("leadscore_midmarket", "midmarket.toml").items() if rid in base}
    assert set(overrides) == {rid for rid, rule in base.items() if rule["category"] == "readiness"}
    for rid, rule in overrides.items():
        assert rule["points"] > base[rid]["points"], rid
        assert {k: v for k, v in rule.items() if k not in ("points", "reason")} == \
            {k: v for k, v in base[rid].items() if k not in ("points", "reason")}, f"{rid} changed more than its points"


def test_every_redefined_decay_is_never_slower_than_the_base_one(engine) -> None:
    base = engine.composer.get(frozenset({"firr-base"}))
    fast = engine.composer.get(frozenset({"firr-base", "midmarket"}))
    for name in ("web", "webinar", "content", "email", "handraise"):
        factors = [(fast.decay_fns[name](age), base.decay_fns[name](age)) for age in range(0, 200)]
        assert all(f <= b for f, b in factors), name
        assert any(f < b for f, b in factors), name


@pytest.mark.parametrize(("employees", "applies"), [(99, False), (100, True), (999, True), (1000, False), (None, False)])
def test_the_pack_applies_from_100_to_999_employees(engine, employees, applies) -> None:
    card = engine.score_lead(Lead("M-1", company=Company(employees=employees)))
    assert ("midmarket" in dict(card.packs)) is applies


def test_sdr_routing_has_a_short_sla(engine) -> None:
    leads = {lead.id: lead for lead in read_leads(CASES / "midmarket-leads.jsonl")}
    mql = engine.score_lead(leads["MM-3"])
    ready = engine.score_lead(leads["MM-1"])
    assert (mql.band, mql.route.queue, mql.route.sla_hours) == ("mql", "midmarket-sdr", 2)
    assert (ready.band, ready.route.queue, ready.route.sla_hours) == ("sales_ready", "midmarket-sdr", 1)


# --- the evaluation-sprint signal ---------------------------------------------------------------------

def sprint_signal(*activities: Activity, vocabulary=None, wanted=None):
    ctx = ExtractContext(AS_OF, vocabulary or {}, wanted)
    return {s.name: s for s in sprint.extract(Lead("M-1", activities=activities), ctx)}


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def test_the_sprint_counts_distinct_buying_action_types_in_14_days() -> None:
    found = sprint_signal(
        Activity("pricing_page_visit", ago(1)), Activity("pricing_page_visit", ago(2)),   # one type, twice
        Activity("demo_request", ago(13.9)),
        Activity("case_study_view", ago(14.5)),                                           # too old
        Activity("page_view", ago(1)), Activity("content_download", ago(1)),              # not buying actions
        Activity("comparison_page_visit", ago(-1)),                                       # after the scoring time
    )[sprint.SIGNAL]
    assert found.value == 2
    assert found.observed_at == ago(1)
    assert found.evidence == "in the last 14 days: demo_request, pricing_page_visit"


def test_a_rulepack_can_add_activity_types_to_the_sprint_tiers() -> None:
    acts = (Activity("roi_workshop", ago(3)), Activity("pricing_page_visit", ago(2)))
    assert sprint_signal(*acts)[sprint.SIGNAL].value == 1
    assert sprint_signal(*acts, vocabulary={"activity_tiers": {"high": ["roi_workshop"]}})[sprint.SIGNAL].value == 2


def test_no_buying_action_is_zero_and_unwanted_is_skipped() -> None:
    assert sprint_signal(Activity("page_view", ago(1)))[sprint.SIGNAL].value == 0
    assert sprint_signal(Activity("demo_request", ago(1)), wanted=frozenset({"title.seniority"})) == {}
