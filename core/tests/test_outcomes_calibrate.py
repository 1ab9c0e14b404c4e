"""Calibrate on a synthetic funnel whose true effects are known, and the pack it writes."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.errors import ConfigurationError, InputError, RulepackErrors
from leadscore.io import read_leads
from leadscore.model import Activity, Company, Lead
from leadscore.outcomes import calibrate
from leadscore.outcomes.calibration import _thresholds, parse_bands, share_ratio
from leadscore.outcomes.synthetic import RULE_FACTS, STARTING_PACK, TRUE_EFFECTS, write_funnel

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("funnel")
    leads, outcomes = write_funnel(folder, leads=2500, seed=11)
    start = folder / "start.toml"
    start.write_text(STARTING_PACK, encoding="utf-8")
    return {"folder": folder, "leads": leads, "outcomes": outcomes, "start": start}


@pytest.fixture(scope="module")
def refit(funnel: dict[str, Path]) -> Any:
    return calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                     plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90,
                     bootstrap=100, now=NOW)


@pytest.fixture(scope="module")
def fitted_path(refit: Any, funnel: dict[str, Path]) -> Path:
    path = funnel["folder"] / "fitted.toml"
    path.write_text(refit.toml, encoding="utf-8")
    return path


def test_calibrate_recovers_the_order_and_signs_of_the_true_effects(refit: Any) -> None:
    after = {r["rule"]: r["after"] for r in refit.data["refit"]}
    effect = {rule: TRUE_EFFECTS[fact] for rule, fact in RULE_FACTS.items()}
    real = [rule for rule in effect if effect[rule] != 0]
    # Same order as the true effects (strictly separated ones), and the same signs.
    by_truth = sorted(real, key=lambda r: effect[r])
    assert sorted(real, key=lambda r: after[r]) == by_truth
    assert all((after[r] > 0) == (effect[r] > 0) for r in real)
    # The noise rule ends near zero, smaller than every real effect.
    assert abs(after["fit.red"]) < min(abs(after[r]) for r in real)
    # Points are on the stated scale: 20 points double the odds (within the sampling noise).
    assert after["fit.vp"] == pytest.approx(TRUE_EFFECTS["vp_title"] * 20 / 0.6931, rel=0.35)
    # The student rule started at +10 and the data say it hurts: reported, not hidden.
    assert refit.data["flipped"] == ["fit.student"]
    # The leakage trap (a meeting booked after the scoring time) never fires, so it is never fitted.
    assert "readiness.meeting" in refit.data["unfitted"]


def test_the_fitted_pack_records_what_it_was_fitted_on(refit: Any) -> None:
    doc = tomllib.loads(refit.toml)
    provenance = doc["provenance"]
    assert provenance["from_packs"] == ["synthetic-start 1.0.0"]
    assert provenance["outcome"] == "won within 90 days of the scoring time"
    assert provenance["scoring_time"] == "created+7d"
    assert provenance["split"].startswith("by time at ")
    assert provenance["data_fingerprint"].startswith("sha256:") and provenance["leads_sha256"].startswith("sha256:")
    assert provenance["fitted_at"] == "2026-11-30T00:00:00Z"
    assert provenance["heldout_auc"] == round(refit.data["heldout"]["auc"], 4)
    assert provenance["sign_flipped"] == ["fit.student"]
    # Each band states its held-out conversion, and those rise band by band.
    stated = [b["observed_conversion"] for b in doc["bands"]]
    assert stated == sorted(stated) and all(0 <= s <= 1 for s in stated)
    rules = {r["id"]: r for r in doc["rules"]}
    assert rules["fit.student"]["reason"] == "Student or intern" and rules["fit.student"]["points"] < 0
    assert refit.toml.startswith("# synthetic-start-fitted: points fitted by leadscore calibrate")


def test_a_fitted_pack_is_reproducible(funnel: dict[str, Path], refit: Any) -> None:
    again = calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                      plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90,
                      bootstrap=100, now=NOW)
    assert again.toml == refit.toml


def test_fitted_pack_loads_and_scores(fitted_path: Path, funnel: dict[str, Path]) -> None:
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[fitted_path]) as engine:
        (pack,) = engine.active_packs()
        assert pack.name == "synthetic-start-fitted"
        assert all(b.observed_conversion is not None for b in pack.bands)
        cards = list(engine.score(read_leads(funnel["leads"]), as_of=NOW))
    assert len(cards) == 2500 and all(c.band in {"cold", "warm", "hot"} for c in cards)


def _lead_strategy() -> Any:
    types = st.sampled_from(["pricing_page_visit", "meeting_booked", "page_view", "demo_request"])
    activity = st.builds(lambda kind, days: Activity(kind, datetime(2026, 11, 20, tzinfo=timezone.utc).replace(
        day=1 + days)), types, st.integers(0, 27))
    return st.builds(
        lambda title, source, employees, colour, acts: Lead(
            "H-1", title=title, source=source, created_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
            company=Company(employees=employees), fields={"colour": colour} if colour else {}, activities=acts),
        st.sampled_from([None, "VP Marketing", "Student", "Engineer", "Head of IT"]),
        st.sampled_from([None, "partner", "google_ads"]), st.one_of(st.none(), st.integers(0, 20000)),
        st.sampled_from([None, "red", "blue"]), st.lists(activity, max_size=8))


@pytest.fixture(scope="module")
def fitted_engine(fitted_path: Path) -> Any:
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[fitted_path]) as engine:
        yield engine


@given(lead=_lead_strategy(), day=st.integers(1, 30))
@settings(max_examples=150, deadline=None)
def test_a_fitted_packs_ledger_sums_exactly_to_its_total(fitted_engine: Engine, lead: Lead, day: int) -> None:
    card = fitted_engine.score_lead(lead, datetime(2026, 11, day, tzinfo=timezone.utc))
    assert sum(line.points for line in card.ledger) == card.total
    assert any(line.kind == "rule" for line in card.ledger) or card.total == 0


@pytest.mark.slow  # a discovery fit and two baselines: about 5-10 s on a shared 2-core VM
def test_discover_proposes_rules_from_signals_and_sets_bands_by_share(funnel: dict[str, Path]) -> None:
    result = calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                       plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90,
                       discover=True, bands="hot=10%,warm=40%", baseline=True, bootstrap=50, now=NOW)
    data = result.data
    assert data["features"]["candidates"] > 10
    doc = tomllib.loads(result.toml)
    assert [b["name"] for b in doc["bands"]] == ["cold", "warm", "hot"]
    # Held-out shares land near the targets (the split is by time, so not exactly).
    held = {b["band"]: b["heldout_leads"] / data["heldout"]["leads"] for b in data["bands"]}
    assert held["hot"] == pytest.approx(0.10, abs=0.06)
    assert held["hot"] + held["warm"] == pytest.approx(0.40, abs=0.1)
    # Discovered rules are ordinary rules with a reason that states the evidence.
    learned = [r for r in doc["rules"] if r["id"].startswith("learned.")]
    for rule in learned:
        assert "training leads converted" in rule["reason"] and rule["category"] in {"fit", "intent", "negative"}
    # The baselines are measured on the same split; the pack stays close to them.
    baselines = data["baselines"]
    assert 0.5 < baselines["gradient_boosting"] < 1 and 0.5 < baselines["logistic"] < 1
    assert data["heldout"]["auc"] > 0.95 * baselines["gradient_boosting"]
    assert baselines["gradient_boosting_top_bottom"] > 1


def test_bad_calibrate_arguments_are_one_line(funnel: dict[str, Path], tmp_path: Path) -> None:
    common = {"plugins": PluginManager(entry_points=False), "score_at": "created+7d", "bootstrap": 0}
    with pytest.raises(ConfigurationError) as err:
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]], bands="hot=10%,warm", **common)
    assert str(err.value) == ("--bands: 'warm' is not name=share; write names with the share of leads in that band "
                              "or above, e.g. sales_ready=5%,mql=20%,engaged=50%")
    with pytest.raises(ConfigurationError, match="--bands: 'cold' is the lowest band"):
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]], bands="cold=30%", **common)
    with pytest.raises(ConfigurationError) as err:
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]], bands="hott=10%", **common)
    assert str(err.value) == ("--bands: 'hott' is not a band of synthetic-start; did you mean 'hot'? name bands "
                              "above 'cold': warm, hot")
    with pytest.raises(ConfigurationError, match="--name: a rulepack named 'firr-base' is already loaded"):
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]], name="firr-base", **common)
    with pytest.raises(InputError, match="the held-out part of the split has no leads"):
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                  split_at=datetime(2030, 1, 1, tzinfo=timezone.utc), **common)
    conditional = tmp_path / "cond.toml"
    conditional.write_text(STARTING_PACK.replace('version = "1.0.0"', 'version = "1.0.0"\napplies_when = '
                                                 '{ signal = "company.employees", gte = 1000 }'), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="applies only when company.employees gte 1000; calibrate fits one"):
        calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[conditional], **common)


def test_parse_bands_and_thresholds() -> None:
    assert parse_bands("sales_ready=5%,mql=20%, engaged=0.5") == [("sales_ready", 0.05), ("mql", 0.2), ("engaged", 0.5)]
    with pytest.raises(ConfigurationError, match="a band is named twice"):
        parse_bands("a=5%,a=20%")
    with pytest.raises(ConfigurationError, match="'Hot Leads' is not a valid band name"):
        parse_bands("Hot Leads=5%")
    import numpy as np

    totals = np.array([0] * 50 + [10] * 30 + [20] * 15 + [30] * 5, dtype=float)
    assert _thresholds(totals, [("top", 0.05), ("mid", 0.2), ("low", 0.5)]) == [("low", 10), ("mid", 20), ("top", 30)]
    # Ties cannot be split: bands still get strictly increasing mins.
    flat = np.zeros(100)
    assert _thresholds(flat, [("top", 0.05), ("mid", 0.5)]) == [("mid", 0), ("top", 1)]
    assert share_ratio(np.arange(10, dtype=float), np.array([0] * 5 + [1] * 5, dtype=bool), 0.2, 0.5) is None
    assert share_ratio(np.arange(10, dtype=float), np.array([1, 0, 0, 0, 0, 0, 0, 0, 1, 1], dtype=bool),
                       0.2, 0.5) == pytest.approx(5.0)


def test_observed_conversion_is_validated_by_the_loader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = STARTING_PACK.replace('name = "hot"\nmin = 40', 'name = "hot"\nmin = 40\nobserved_conversion = 42')
    bad.write_text(text, encoding="utf-8")
    line = text.splitlines().index("observed_conversion = 42") + 1
    with pytest.raises(RulepackErrors) as err:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[bad])
    assert str(err.value) == (f"{bad}:{line}: band 'hot': observed_conversion must be a share between 0 and 1, not 42; "
                              "e.g. observed_conversion = 0.42 for 42%")


def test_discover_never_proposes_a_protected_attribute(tmp_path: Path) -> None:
    import json
    import random

    rng = random.Random(4)
    rows = []
    for i in range(800):
        gender = rng.choice(["f", "m"])
        plan = rng.choice(["pro", "free"])
        converted = rng.random() < 0.15 + 0.3 * (gender == "f") + 0.3 * (plan == "pro")
        rows.append({"id": f"G-{i}", "fields": {"gender": gender, "plan": plan, "won": int(converted)}})
    leads = tmp_path / "leads.jsonl"
    leads.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = calibrate(leads, label="fields.won", as_of=NOW, rulepacks=["firr-base"],
                       plugins=PluginManager(entry_points=False), discover=True, bootstrap=0, now=NOW)
    assert result.data["not_proposed_protected"] == [{"signal": "fields.gender", "attribute": "gender"}]
    learned = [r["condition"] for r in result.data["discovered"]]
    assert any("fields.plan" in c for c in learned)
    assert not any("gender" in c for c in learned) and "gender" not in result.toml.split("[provenance]")[0]
    assert "not proposed (a protected attribute" in result.text()
    # The pack it starts from keeps its [actions] (next-step suggestions) in the fitted pack.
    assert tomllib.loads(result.toml)["actions"]["facts"]
