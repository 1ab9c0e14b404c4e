"""``same_account``: N distinct contacts of the lead's account meeting a condition.

The account pass evaluates each ``where`` on every contact with the run's backend and counts
distinct contacts per account; the lead's rule compares that count. These tests check the
language (validation), the meaning against a brute-force oracle, the edges (no account, duplicate
ids, the count cap, bands), and that both backends agree on generated packs and leads.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.accounts import account_key
from leadscore.errors import RulepackErrors
from leadscore.io import card_to_dict
from leadscore.io.readers import read_leads
from leadscore.model import Activity, Lead, Rejection, ScoreCard
from leadscore.rulepack.patterns import SAME_ACCOUNT_PREFIX

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
SAMPLES = Path(__file__).resolve().parents[2] / "rulepacks" / "samples" / "leads.jsonl"
ENGAGED = {"signal": "intent.beyond_email.count_90d", "gte": 1}


def _at(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def write_pack(tmp_path: Path, rules: list[dict], **extra: Any) -> Path:
    body = {
        "pack": {"name": "committee", "version": "1"},
        "categories": {"fit": {}, "intent": {}},
        "rules": [{"id": f"r.{i}", "reason": f"rule {i}", "category": "fit", "points": 10, **r}
                  for i, r in enumerate(rules)],
        "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 20}],
        **extra,
    }
    path = tmp_path / "committee.toml"
    path.write_text(tomli_w.dumps(body), encoding="utf-8")
    return path


def engine(path: Path, backend: str = "python") -> Engine:
    return Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=AS_OF, backend=backend)


def score_all(eng: Engine, leads: list[Any]) -> list[Any]:
    index = eng.build_accounts(leads)
    return list(eng.score(leads, accounts=index))


def fired(card: ScoreCard) -> set[str]:
    return {line.rule_id for line in card.ledger if line.kind == "rule"}


def sample_leads() -> list[Any]:
    return list(read_leads(SAMPLES))


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("when", "message"), [
    ({"same_account": 0, "where": ENGAGED}, "whole number of contacts from 1 to 100"),
    ({"same_account": 101, "where": ENGAGED}, "whole number of contacts from 1 to 100"),
    ({"same_account": True, "where": ENGAGED}, "whole number of contacts"),
    ({"same_account": "3", "where": ENGAGED}, "whole number of contacts"),
    ({"same_account": 2}, "needs `where`"),
    ({"same_account": 2, "where": ENGAGED, "within_days": 3}, "unknown key `within_days`"),
    ({"same_account": 2, "where": {"signal": "account.contacts", "gte": 2}}, "cannot read 'account.contacts'"),
    ({"same_account": 2, "where": {"same_account": 1, "where": ENGAGED}}, "not in applies_when, nor inside"),
    ({"same_account": 2, "where": {"signal": "title.senority", "eq": "vp"}}, "did you mean 'title.seniority'"),
    ({"same_account": 2, "where": {"at_least": 2, "of": "demo_requst", "within_days": 7}}, "did you mean"),
    ({"same_account": 2, "where": ENGAGED, "signal": "x"}, "has no `signal`"),
    ({"same_account": 2, "where": ENGAGED, "at_least": 2}, "cannot share a table"),
])
def test_invalid_same_account_is_a_load_error_with_the_line(tmp_path: Path, when: dict, message: str) -> None:
    path = write_pack(tmp_path, [{"when": when}])
    with pytest.raises(RulepackErrors) as err:
        engine(path)
    text = str(err.value)
    assert message in text
    assert f"{path}:" in text and "rule 'r.0'" in text


def test_same_account_is_refused_in_applies_when(tmp_path: Path) -> None:
    path = write_pack(tmp_path, [{"when": ENGAGED}])
    text = path.read_text().replace('version = "1"', 'version = "1"\napplies_when = { same_account = 2, where = '
                                    '{ signal = "intent.beyond_email.count_90d", gte = 1 } }')
    path.write_text(text)
    with pytest.raises(RulepackErrors, match="same_account can only be used in a rule's `when` or a band's"):
        engine(path)


# --- meaning ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["python", "durable"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_counts_distinct_engaged_contacts_per_account_like_a_brute_force_oracle(tmp_path: Path, backend: str,
                                                                                n: int) -> None:
    if backend == "durable":
        pytest.importorskip("durable_rules_engine", reason="the durable backend needs durable-rules (Python <= 3.12)")
    leads = [lead for lead in sample_leads() if not isinstance(lead, Rejection)]
    # Oracle: each contact's own signal value, grouped by account key, counted by hand.
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF) as base:
        engaged_by_account: dict[str, set[str]] = defaultdict(set)
        for lead in leads:
            key = account_key(lead)
            value = base.signals(lead)["intent.beyond_email.count_90d"].value
            if key is not None and value >= 1:
                engaged_by_account[key].add(lead.id)
    expected = {lead.id for lead in leads
                if account_key(lead) is not None and len(engaged_by_account[account_key(lead)]) >= n}
    assert 0 < len(expected) < len(leads)  # the samples make this a real test for every n

    path = write_pack(tmp_path, [{"when": {"same_account": n, "where": ENGAGED}}])
    with engine(path, backend) as eng:
        cards = score_all(eng, leads)
    got = {card.lead_id for card in cards if "r.0" in fired(card)}
    assert got == expected


def test_evidence_names_the_contacts_and_the_rule_reads_a_derived_signal(tmp_path: Path) -> None:
    leads = sample_leads()
    path = write_pack(tmp_path, [{"when": {"same_account": 2, "where": ENGAGED}}])
    with engine(path) as eng:
        card = next(c for c in score_all(eng, leads) if c.lead_id == "L-1002")
    line = next(line for line in card.ledger if line.rule_id == "r.0")
    assert line.signal.startswith(SAME_ACCOUNT_PREFIX)
    assert line.evidence == "2 contacts of account quillstone-analytics.com: L-1001, L-1002"


def test_where_can_hold_activity_patterns_and_not_excludes_the_lead_itself(tmp_path: Path) -> None:
    demo = {"at_least": 1, "of": "demo_request", "within_days": 30}
    colleague_demo = {"all": [{"same_account": 1, "where": demo}, {"not": demo}]}
    leads = [
        Lead("A-1", email="ana@northwind.example.com", activities=(Activity("demo_request", _at(3)),)),
        Lead("A-2", email="ben@northwind.example.com", activities=(Activity("page_view", _at(1)),)),
        Lead("A-3", email="cy@northwind.example.com", activities=(Activity("demo_request", _at(45)),)),
        Lead("B-1", email="dee@contoso.example.com", activities=(Activity("page_view", _at(2)),)),
    ]
    path = write_pack(tmp_path, [{"when": colleague_demo}])
    with engine(path) as eng:
        cards = {c.lead_id: c for c in score_all(eng, leads)}
    # have a colleague with a recent demo request; A-1 is that colleague; B-1 has none.
    assert {lid for lid, c in cards.items() if "r.0" in fired(c)} == {"A-2", "A-3"}


def test_leads_without_an_account_never_match_and_not_same_account_holds_for_them(tmp_path: Path) -> None:
    leads = [Lead("P-1", email="someone@gmail.com", activities=(Activity("demo_request", _at(1)),)),
             Lead("P-2", email="other@gmail.com", activities=(Activity("demo_request", _at(1)),))]
    rule = {"same_account": 1, "where": {"signal": "email.type", "exists": True}}
    path = write_pack(tmp_path, [{"when": rule}, {"when": {"not": rule}}])
    with engine(path) as eng:
        cards = score_all(eng, leads)
    assert [sorted(fired(c)) for c in cards] == [["r.1"], ["r.1"]]


def test_a_contact_listed_twice_counts_once(tmp_path: Path) -> None:
    engaged = (Activity("demo_request", _at(2)),)
    leads = [Lead("D-1", account_id="acct-9", activities=engaged),
             Lead("D-1", account_id="acct-9", activities=engaged),
             Lead("D-2", account_id="acct-9")]
    path = write_pack(tmp_path, [{"when": {"same_account": 2, "where": ENGAGED}},
                                 {"when": {"same_account": 1, "where": ENGAGED}}])
    with engine(path) as eng:
        cards = score_all(eng, leads)
    assert [sorted(fired(c)) for c in cards] == [["r.1"], ["r.1"], ["r.1"]]


def test_count_is_kept_up_to_the_largest_n_and_identical_conditions_share_it(tmp_path: Path) -> None:
    leads = [Lead(f"C-{i}", account_id="big", activities=(Activity("demo_request", _at(1)),)) for i in range(9)]
    path = write_pack(tmp_path, [{"when": {"same_account": 3, "where": ENGAGED}},
                                 {"when": {"same_account": 5, "where": ENGAGED}},
                                 {"when": {"same_account": 10, "where": ENGAGED}}])
    with engine(path) as eng:
        index = eng.build_accounts(leads)
        (signal,) = index.caps
        assert index.caps[signal] == 10
        assert index.signals_for("big")[signal] == 9
        cards = list(eng.score(leads, accounts=index))
    assert all(sorted(fired(c)) == ["r.0", "r.1"] for c in cards)


def test_memory_per_account_is_bounded_by_the_cap(tmp_path: Path) -> None:
    leads = [Lead(f"M-{i}", account_id="huge", activities=(Activity("demo_request", _at(1)),)) for i in range(500)]
    path = write_pack(tmp_path, [{"when": {"same_account": 4, "where": ENGAGED}}])
    with engine(path) as eng:
        index = eng.build_accounts(leads)
    (ids,) = index.accounts["huge"].matching.values()
    assert len(ids) == 4


def test_band_requires_can_ask_for_a_buying_committee(tmp_path: Path) -> None:
    leads = [Lead("E-1", account_id="acme", activities=(Activity("demo_request", _at(1)),)),
             Lead("E-2", account_id="acme", activities=(Activity("pricing_page_visit", _at(1)),)),
             Lead("F-1", account_id="solo", activities=(Activity("demo_request", _at(1)),))]
    bands = [{"name": "cold", "min": 0},
             {"name": "committee", "min": 5, "requires": {"same_account": 2, "where": ENGAGED},
              "gate_reason": "two engaged contacts at the account"}]
    path = write_pack(tmp_path, [{"when": ENGAGED}], bands=bands)
    with engine(path) as eng:
        cards = {c.lead_id: c for c in score_all(eng, leads)}
    assert cards["E-1"].band == cards["E-2"].band == "committee"
    assert cards["F-1"].band == "cold" and cards["F-1"].points_band == "committee"


def test_a_scoring_run_without_the_account_pass_leaves_same_account_false(tmp_path: Path) -> None:
    path = write_pack(tmp_path, [{"when": {"same_account": 1, "where": ENGAGED}}])
    with engine(path) as eng:
        assert eng.needs_accounts
        card = next(eng.score([Lead("G-1", account_id="x", activities=(Activity("demo_request", _at(1)),))]))
    assert "r.0" not in fired(card)


# --- both backends agree on generated packs and accounts -----------------------------------------

TYPES = ("demo_request", "pricing_page_visit", "email_open", "webinar_attendance")
where_leaf = st.one_of(
    st.builds(lambda n: {"signal": "intent.beyond_email.count_90d", "gte": n}, st.integers(0, 3)),
    st.builds(lambda s: {"signal": "title.seniority", "in": s},
              st.lists(st.sampled_from(("c_level", "vp", "director", "manager", "individual")), min_size=1,
                       max_size=3, unique=True)),
    st.builds(lambda t: {"signal": "email.type", "eq": t}, st.sampled_from(("business", "personal", "disposable"))),
    st.builds(lambda n, t, w: {"at_least": n, "of": t, "within_days": w}, st.integers(1, 3),
              st.sampled_from(TYPES), st.sampled_from((1, 7, 30))),
    st.builds(lambda a, b, w: {"sequence": [a, b], "within_days": w}, st.sampled_from(TYPES),
              st.sampled_from(TYPES), st.sampled_from((2, 14))),
)
where = st.recursive(where_leaf, lambda inner: st.one_of(
    st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda c: {"not": c}, inner)), max_leaves=4)
rule_when = st.one_of(
    st.builds(lambda n, w: {"same_account": n, "where": w}, st.integers(1, 4), where),
    st.builds(lambda n, w, other: {"any": [{"same_account": n, "where": w}, other]}, st.integers(1, 4), where,
              where_leaf),
    st.builds(lambda n, w: {"not": {"same_account": n, "where": w}}, st.integers(1, 4), where),
)
contacts = st.builds(
    lambda i, who, title, acts: Lead(f"K-{i}", email=who, title=title, activities=tuple(acts)),
    st.integers(0, 30),
    st.sampled_from(("a@acme.io", "b@acme.io", "c@globex.io", "d@gmail.com", None)),
    st.sampled_from(("VP Sales", "Director of IT", "Analyst", "CEO", None)),
    st.lists(st.builds(lambda t, d: Activity(t, _at(d)), st.sampled_from(TYPES),
                       st.sampled_from((0, 1, 3, 10, 40, 100, -2))), max_size=6),
)


@pytest.mark.skipif(importlib.util.find_spec("durable_rules_engine") is None,
                    reason="the durable backend needs durable-rules (Python <= 3.12)")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(rule_when, min_size=1, max_size=4), st.lists(contacts, min_size=1, max_size=10))
def test_generated_same_account_rules_score_identically(tmp_path_factory: pytest.TempPathFactory,
                                                       whens: list[dict], leads: list[Lead]) -> None:
    path = write_pack(tmp_path_factory.mktemp("pack"), [{"when": w} for w in whens])
    results = []
    for backend in ("python", "durable"):
        with engine(path, backend) as eng:
            results.append([card_to_dict(c, explain=True) for c in score_all(eng, leads)])
    assert results[0] == results[1]
