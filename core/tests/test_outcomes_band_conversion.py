"""Bands by expected conversion: the curve, the thresholds it gives, what they are fitted on, bad specs."""

from __future__ import annotations

import json
import math
import random
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leadscore import Engine, PluginManager
from leadscore.errors import ConfigurationError, InputError
from leadscore.model import Lead
from leadscore.outcomes import calibrate
from leadscore.outcomes.calibration import (
    comparison_shares,
    conversion_curve,
    conversion_thresholds,
    parse_band_conversion,
)

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
FIRR_BANDS = ["early", "engaged", "mql", "sales_ready", "target_account"]

# A funnel whose conversion curve is known exactly: each of three facts adds 1 to the log-odds, so a
# lead with k facts converts with probability sigmoid(-2.5 + k): 7.6%, 18.2%, 37.8%, 62.2%.
BASE_LOG_ODDS = -2.5
FACT_LOG_ODDS = 1.0
TRUE_RATE = [1 / (1 + math.exp(-(BASE_LOG_ODDS + FACT_LOG_ODDS * k))) for k in range(4)]
# Rates that fall between those of k and k + 1 facts, several points from each: the lead with k
# facts belongs in band k.
RATES = "engaged=12%,mql=28%,sales_ready=50%"
BAND_OF = ["early", "engaged", "mql", "sales_ready"]

# The pack a team starts from: one rule per fact, each at +10, and four bands named like firr-base's.
PACK = """\
[pack]
name = "facts"
version = "1.0.0"

[categories.fit]
""" + "".join(f"""
[[rules]]
id = "fit.{name}"
category = "fit"
points = 10
reason = "Has fact {name}"
when = {{ signal = "fields.{name}", eq = true }}
""" for name in "abc") + "".join(f"""
[[bands]]
name = "{band}"
min = {10 * i}
""" for i, band in enumerate(BAND_OF))


def facts_funnel(n: int, seed: int) -> list[dict[str, Any]]:
    """Leads created over a year, each with three independent facts and a drawn 0/1 ``won``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        facts = {name: rng.random() < 0.5 for name in "abc"}
        won = rng.random() < TRUE_RATE[sum(facts.values())]
        created = START + timedelta(days=365 * i / n)
        rows.append({"id": f"F-{i:05d}", "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "fields": {**facts, "won": int(won)}})
    return rows


def write(rows: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def fit(leads: Path, pack: Path, **extra: Any) -> Any:
    options = {"label": "fields.won", "score_at": "created", "rulepacks": [pack], "band_conversion": RATES,
               "plugins": PluginManager(entry_points=False), "bootstrap": 0, "now": NOW}
    return calibrate(leads, **{**options, **extra})


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("facts")
    rows = facts_funnel(4000, seed=3)
    pack = folder / "facts.toml"
    pack.write_text(PACK, encoding="utf-8")
    leads = write(rows, folder / "leads.jsonl")
    return {"folder": folder, "rows": rows, "pack": pack, "leads": leads, "result": fit(leads, pack)}


def test_the_curve_and_thresholds_recover_a_known_logistic_curve() -> None:
    rng = np.random.default_rng(5)
    intercept, slope = -2.0, 0.04
    totals = rng.integers(-20, 151, size=20000).astype(float)
    labels = rng.random(20000) < 1 / (1 + np.exp(-(intercept + slope * totals)))
    a, b = conversion_curve(totals, labels)
    assert a == pytest.approx(intercept, abs=0.1) and b == pytest.approx(slope, rel=0.05)
    spec = [("engaged", 0.1), ("mql", 0.3), ("sales_ready", 0.6)]
    truth = [math.ceil((math.log(r / (1 - r)) - intercept) / slope) for _, r in spec]
    got = conversion_thresholds((a, b), spec)
    assert [name for name, _ in got] == ["engaged", "mql", "sales_ready"]
    assert all(abs(m - t) <= 3 for (_, m), t in zip(got, truth, strict=True)), (got, truth)
    # Each min is the first whole score whose predicted rate reaches the band's rate.
    for (_, minimum), (_, rate) in zip(got, spec, strict=True):
        assert 1 / (1 + math.exp(-(a + b * minimum))) >= rate > 1 / (1 + math.exp(-(a + b * (minimum - 1))))


def test_thresholds_stay_strictly_increasing_on_a_steep_curve() -> None:
    # 50% is reached at 0 points and 51% a fraction of a point later: the second band starts one point up.
    assert conversion_thresholds((0.0, 10.0), [("mql", 0.5), ("sales_ready", 0.51)]) == [("mql", 0), ("sales_ready", 1)]


def test_gradient_boosting_is_compared_at_the_shares_of_bands_that_hold_enough_leads() -> None:
    totals = np.array([0.0] * 60 + [20] * 30 + [40] * 9 + [90])
    bands = [("engaged", 10), ("mql", 30), ("sales_ready", 80)]
    # sales_ready holds 1 lead and mql 10 with it: the top share is engaged-or-above's, 40%.
    assert comparison_shares(totals, bands, 30) == (0.4, 0.6)
    assert comparison_shares(totals, bands, 10) == (0.1, 0.6)
    assert comparison_shares(totals, bands, 1) == (0.01, 0.6)
    assert comparison_shares(totals, [("engaged", 100)], 1) is None  # no lead in any named band
    assert comparison_shares(totals, [("engaged", -5)], 1) is None  # none below it


def test_a_curve_that_does_not_rise_is_refused() -> None:
    totals = np.array([0.0, 10, 20, 30] * 50)
    with pytest.raises(InputError) as err:
        conversion_curve(totals, totals < 15)
    assert str(err.value) == ("calibrate: on the training leads, conversion does not rise with the fitted pack's total, "
                              "so no score marks a conversion rate; use --bands with shares, or check the outcome "
                              "definition")
    with pytest.raises(InputError, match="every training lead has the same total \\(5 points\\)"):
        conversion_curve(np.full(40, 5.0), np.arange(40) % 2 == 0)
    with pytest.raises(InputError, match="the conversion curve is too flat to reach 50% for mql at any score"):
        conversion_thresholds((-5.0, 1e-16), [("mql", 0.5)])


def test_bands_land_where_the_known_curve_puts_them(funnel: dict[str, Any]) -> None:
    result = funnel["result"]
    doc = tomllib.loads(result.toml)
    assert [b["name"] for b in doc["bands"]] == BAND_OF
    # The curve is fitted on the pack's points, which are log-odds at 20 points per doubling.
    curve = result.data["band_basis"]["curve"]
    assert curve["slope"] == pytest.approx(math.log(2) / 20, rel=0.15)
    fitted = funnel["folder"] / "fitted.toml"
    fitted.write_text(result.toml, encoding="utf-8")
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[fitted]) as engine:
        for k in range(4):
            facts = {name: i < k for i, name in enumerate("abc")}
            card = engine.score_lead(Lead("K", fields=facts), NOW)
            assert card.band == BAND_OF[k], (k, card.total, doc["bands"])
    # Each band's held-out conversion is that of its leads' true rate (one group of k facts per band).
    for row in result.data["bands"]:
        k = BAND_OF.index(row["band"])
        spread = 3 * math.sqrt(TRUE_RATE[k] * (1 - TRUE_RATE[k]) / row["heldout_leads"])
        assert row["conversion"] == pytest.approx(TRUE_RATE[k], abs=spread)
        # The training curve's prediction for those held-out leads is their true rate too.
        assert row["predicted"] == pytest.approx(TRUE_RATE[k], abs=0.04)
        if k:
            assert row["starts_at"] == {"engaged": 0.12, "mql": 0.28, "sales_ready": 0.5}[row["band"]]
            assert row["predicted_at_min"] >= row["starts_at"]
    assert "conversion_curve" in doc["provenance"]
    assert doc["provenance"]["bands_from"].startswith("conversion rates: sales_ready 50%, mql 28%, engaged 12% (")
    assert "set from conversion rates: sales_ready 50%, mql 28%, engaged 12%" in result.text()


def test_held_out_labels_never_move_the_thresholds(funnel: dict[str, Any]) -> None:
    result = funnel["result"]
    held = set(result.heldout_ids)
    assert 0 < len(held) < len(funnel["rows"])
    flipped = [dict(r, fields={**r["fields"], "won": 1 - r["fields"]["won"]}) if r["id"] in held else r
               for r in funnel["rows"]]
    again = fit(write(flipped, funnel["folder"] / "flipped.jsonl"), funnel["pack"])
    assert again.heldout_ids == result.heldout_ids
    before, after = tomllib.loads(result.toml), tomllib.loads(again.toml)
    # Same points, same curve, same band mins: everything fitted comes from the training leads.
    assert after["rules"] == before["rules"]
    assert after["provenance"]["conversion_curve"] == before["provenance"]["conversion_curve"]
    assert [(b["name"], b["min"]) for b in after["bands"]] == [(b["name"], b["min"]) for b in before["bands"]]
    # What is measured on held-out leads does change: their conversion per band, and the AUC.
    observed = [b["observed_conversion"] for b in before["bands"]]
    assert [b["observed_conversion"] for b in after["bands"]] == pytest.approx([1 - o for o in observed], abs=1e-3)
    assert again.data["heldout"]["auc"] == pytest.approx(1 - result.data["heldout"]["auc"], abs=1e-9)


def test_bad_band_conversion_specs_are_one_line() -> None:
    def message(spec: str) -> str:
        with pytest.raises(ConfigurationError) as err:
            parse_band_conversion(spec, FIRR_BANDS, "firr-base")
        return str(err.value)

    fix = "write each band with the conversion at which it starts, e.g. sales_ready=50%,mql=25%,engaged=10%"
    assert message("mql=120%") == f"--band-conversion: 'mql=120%': a rate must be above 0% and below 100%; {fix}"
    assert message("mql=0%") == f"--band-conversion: 'mql=0%': a rate must be above 0% and below 100%; {fix}"
    assert message("mql=35") == f"--band-conversion: 'mql=35': a rate must be above 0% and below 100%; {fix}"
    assert message("mql") == f"--band-conversion: 'mql' is not name=rate; {fix}"
    assert message("mql=lots") == f"--band-conversion: 'mql=lots' is not name=rate; {fix}"
    assert message("sales_ready=30%,mql=35%,engaged=15%") == (
        "--band-conversion: sales_ready is above mql but starts at 30%, not above mql's 35%; "
        "give each band a higher rate than the bands below it")
    assert message("mql=20%,engaged=20%") == (
        "--band-conversion: mql is above engaged but starts at 20%, not above engaged's 20%; "
        "give each band a higher rate than the bands below it")
    assert message("hot=50%") == ("--band-conversion: 'hot' is not a band of firr-base; "
                                  "name bands above 'early': engaged, mql, sales_ready, target_account")
    assert message("early=5%") == ("--band-conversion: 'early' is the lowest band, which takes every lead below the "
                                   "others; name only the bands above it")
    assert message("mql=20%,mql=30%") == "--band-conversion: a band is named twice; name each band once"
    # Written in any order, read lowest band first; fractions and percentages alike.
    assert parse_band_conversion("sales_ready=0.6, engaged=15%,mql=35%", FIRR_BANDS) == [
        ("engaged", 0.15), ("mql", 0.35), ("sales_ready", 0.6)]


def test_band_conversion_and_bands_are_exclusive(funnel: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as err:
        fit(funnel["leads"], funnel["pack"], bands="sales_ready=5%")
    assert str(err.value) == ("--band-conversion: cannot be combined with --bands; set bands by shares of leads "
                              "(--bands) or by conversion rates (--band-conversion), not both")
    with pytest.raises(ConfigurationError, match="--band-conversion: 'hot' is not a band of facts; name bands above "
                                                 "'early': engaged, mql, sales_ready"):
        fit(funnel["leads"], funnel["pack"], band_conversion="hot=40%")
