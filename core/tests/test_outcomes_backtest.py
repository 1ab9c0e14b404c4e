"""Backtest and drift on a small funnel whose figures can be counted by hand."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from leadscore import PluginManager
from leadscore.errors import ConfigurationError, InputError
from leadscore.outcomes import backtest, drift

AS_OF = datetime(2026, 5, 5, tzinfo=timezone.utc)  # after every lead was created, before any sale

CURRENT = """\
[pack]
name = "current"
version = "1.0"
[categories.fit]
[categories.negative]
[[rules]]
id = "fit.vp"
category = "fit"
points = 50
reason = "VP"
when = { signal = "title.seniority", eq = "vp" }
[[rules]]
id = "negative.student"
category = "negative"
points = -20
reason = "Student"
when = { signal = "title.seniority", eq = "student" }
[[bands]]
name = "low"
min = 0
[[bands]]
name = "high"
min = 40
observed_conversion = 0.9
"""

CANDIDATE = """\
[pack]
name = "candidate"
version = "2.0"
[categories.fit]
[[rules]]
id = "fit.vp"
category = "fit"
points = 10
reason = "VP"
when = { signal = "title.seniority", eq = "vp" }
[[rules]]
id = "fit.student"
category = "fit"
points = 30
reason = "Student"
when = { signal = "title.seniority", eq = "student" }
[[bands]]
name = "low"
min = 0
[[bands]]
name = "high"
min = 25
"""

# (title, source, leads, of which converted)
GROUPS = [("VP Sales", "partner", 10, 7), ("Engineer", "google_ads", 10, 2), ("Student", "google_ads", 10, 5)]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    leads, outcomes = [], ["lead_id,stage,at,amount"]
    n = 0
    for title, source, count, won in GROUPS:
        for k in range(count):
            n += 1
            lead_id = f"L-{n:02d}"
            leads.append(json.dumps({"id": lead_id, "title": title, "source": source,
                                     "created_at": "2026-05-01T00:00:00Z"}))
            outcomes.append(f"{lead_id},mql,2026-05-02,")
            if k < won:
                outcomes.append(f"{lead_id},sal,2026-05-10,")
                outcomes.append(f"{lead_id},won,2026-05-20,1000")
    paths = {"leads": tmp_path / "leads.jsonl", "outcomes": tmp_path / "outcomes.csv",
             "current": tmp_path / "current.toml", "candidate": tmp_path / "candidate.toml"}
    paths["leads"].write_text("\n".join(leads) + "\n", encoding="utf-8")
    paths["outcomes"].write_text("\n".join(outcomes) + "\n", encoding="utf-8")
    paths["current"].write_text(CURRENT, encoding="utf-8")
    paths["candidate"].write_text(CANDIDATE, encoding="utf-8")
    return paths


def run(files: dict[str, Path], **kw):
    return backtest(files["leads"], files["outcomes"], rulepacks=[files["current"]],
                    plugins=PluginManager(entry_points=False), as_of=AS_OF, bootstrap=200, min_support=5, **kw)


def test_backtest_figures_by_hand(files: dict[str, Path]) -> None:
    data = run(files).data
    assert data["counts"]["evaluated"] == 30 and data["counts"]["positives"] == 14
    assert data["base_rate"] == pytest.approx(14 / 30)
    current = data["current"]
    scores = [50] * 10 + [0] * 10 + [-20] * 10
    labels = [k < 7 for k in range(10)] + [k < 2 for k in range(10)] + [k < 5 for k in range(10)]
    assert current["auc"]["value"] == pytest.approx(roc_auc_score(labels, scores)) == pytest.approx(132 / 224)
    assert current["auc"]["low"] < current["auc"]["value"] < current["auc"]["high"]
    low, high = current["bands"]
    assert (low["band"], low["leads"], low["positives"], low["conversion"]) == ("low", 20, 7, 0.35)
    assert (high["band"], high["leads"], high["positives"], high["conversion"]) == ("high", 10, 7, 0.7)
    assert high["lift"] == pytest.approx(0.7 / (14 / 30))
    assert high["revenue"] == 7000
    assert current["top_bottom"] == {"top": "high", "bottom": "low", "ratio": pytest.approx(2.0), "note": ""}
    # The top 30% is 9 of the 10 tied VPs: 9/10 of their 7 conversions, out of 14.
    capture = {c["top_share"]: c["captured"] for c in current["capture"]}
    assert capture[0.3] == pytest.approx(7 * 0.9 / 14)
    assert current["calibration"] == [{"band": "high", "stated": 0.9, "observed": 0.7, "low": pytest.approx(0.397, abs=1e-3),
                                       "high": pytest.approx(0.892, abs=1e-3), "leads": 10, "within_interval": False}]
    rules = {r["rule"]: r for r in current["rules"]}
    assert rules["fit.vp"]["fires"] == 10 and rules["fit.vp"]["conversion_when_fires"] == 0.7
    assert rules["fit.vp"]["verdict"] == "agrees (not significant)"
    # Students convert at 50% against 45% for the others, yet lose points.
    assert rules["negative.student"]["conversion_otherwise"] == pytest.approx(9 / 20)
    assert rules["negative.student"]["verdict"] == "wrong way (not significant)"
    channels = {c["channel"]: c for c in current["channels"]}
    assert channels["partner"]["leads"] == 10 and channels["partner"]["median_score"] == 50
    assert channels["partner"]["also"] == ["partner"]
    assert channels["google_ads"]["conversion"] == pytest.approx(7 / 20)
    assert channels["google_ads"]["median_score"] == -10
    assert channels["google_ads"]["reached"] == {"mql": 1.0, "sal": 0.35, "won": 0.35}
    funnel = {f["band"]: f for f in current["funnel"]}
    assert funnel["high"]["reached"] == {"lead": 10, "mql": 10, "sal": 7, "won": 7}
    assert funnel["high"]["step_conversion"] == {"lead->mql": 1.0, "mql->sal": 0.7, "sal->won": 1.0}
    assert data["funnel_stages"] == ["mql", "sal", "won"]


def test_candidate_side_by_side_with_transitions_and_movers(files: dict[str, Path]) -> None:
    data = run(files, candidate=[files["candidate"]]).data
    assert data["candidate"]["packs"] == ["candidate 2.0"]
    comparison = data["comparison"]
    matrix = {row["from"]: row["to"] for row in comparison["matrix"]}
    assert matrix["high"] == {"low": {"leads": 10, "positives": 7}, "high": {"leads": 0, "positives": 0}}
    assert matrix["low"] == {"low": {"leads": 10, "positives": 2}, "high": {"leads": 10, "positives": 5}}
    movers = comparison["movers"]
    assert (movers["up"]["leads"], movers["up"]["rate"]) == (10, 0.5)
    assert (movers["down"]["leads"], movers["down"]["rate"]) == (10, 0.7)
    assert (movers["same"]["leads"], movers["same"]["rate"]) == (10, 0.2)
    assert data["candidate"]["top_bottom"]["ratio"] == pytest.approx(0.5 / (9 / 20))
    text = run(files, candidate=[files["candidate"]]).text()
    assert "current (current 1.0)" in text and "candidate (candidate 2.0)" in text
    assert "movers: up 10 leads, 50.0% converted; same 10 leads, 20.0% converted; down 10 leads, 70.0% converted" in text


def test_same_inputs_same_figures_and_report(files: dict[str, Path]) -> None:
    first, second = run(files, candidate=[files["candidate"]]), run(files, candidate=[files["candidate"]])
    assert first.data == second.data
    assert first.html() == second.html()


def test_channel_by_normalised_channel(files: dict[str, Path]) -> None:
    channels = {c["channel"]: c for c in run(files, channel_by="channel").data["current"]["channels"]}
    assert set(channels) == {"partner", "paid_search"}
    assert channels["paid_search"]["also"] == ["google_ads"]


def test_no_conversions_stops_with_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "none.csv"
    empty.write_text("lead_id,stage\nL-01,mql\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        backtest(files["leads"], empty, rulepacks=[files["current"]], plugins=PluginManager(entry_points=False),
                 as_of=AS_OF)
    assert str(err.value).startswith("backtest: no conversions among the 30 evaluated leads")


def test_report_is_one_offline_html_file(files: dict[str, Path]) -> None:
    page = run(files, candidate=[files["candidate"]]).html()
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page and "<script" not in page
    assert page.count('<img src="data:image/svg+xml;base64,') == 4
    assert "http://" not in page and "https://" not in page
    assert "Current vs candidate" in page and "wrong way" in page


def test_drift_flags_a_shift_and_not_the_same_population(files: dict[str, Path], tmp_path: Path) -> None:
    pm = PluginManager(entry_points=False)
    same = drift(files["leads"], files["leads"], rulepacks=[files["current"]], plugins=pm, as_of=AS_OF)
    assert not same.flagged and same.data["flagged"] == []
    assert all(s["psi"] == pytest.approx(0.0, abs=1e-9) for s in same.data["scores"])
    shifted = tmp_path / "shifted.jsonl"
    shifted.write_text("".join(json.dumps({"id": f"N-{i}", "title": "Student", "created_at": "2026-05-01"}) + "\n"
                               for i in range(25)) +
                       "".join(json.dumps({"id": f"V-{i}", "title": "VP Sales"}) + "\n" for i in range(5)),
                       encoding="utf-8")
    moved = drift(files["leads"], shifted, rulepacks=[files["current"]], plugins=pm, as_of=AS_OF)
    assert moved.flagged
    bands = {b["band"]: b for b in moved.data["bands"]}
    assert bands["high"]["change"] == pytest.approx(5 / 30 - 10 / 30)
    rules = {r["rule"]: r for r in moved.data["rules"]}
    assert rules["negative.student"]["change"] == pytest.approx(25 / 30 - 10 / 30)
    assert "total PSI" in " ".join(moved.data["flagged"])
    assert "rule negative.student fires +50.0 pts" in moved.data["flagged"]
    assert "DRIFT" in moved.text()


def test_drift_split_of_one_file_by_created_at(files: dict[str, Path], tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps({"id": f"A-{i}", "title": "VP Sales", "created_at": "2026-01-05"}) + "\n"
                             for i in range(10)) +
                     "".join(json.dumps({"id": f"B-{i}", "title": "Student", "created_at": "2026-03-05"}) + "\n"
                             for i in range(10)) + json.dumps({"id": "C"}) + "\n", encoding="utf-8")
    result = drift(mixed, split_at=datetime(2026, 2, 1, tzinfo=timezone.utc), rulepacks=[files["current"]],
                   plugins=PluginManager(entry_points=False), as_of=AS_OF)
    assert result.data["reference"]["leads"] == 10 and result.data["current"]["leads"] == 10
    assert result.flagged
    assert [r.reason for r in result.rejections] == ["has no created_at, so --split-at cannot place it; add created_at"]
    with pytest.raises(ConfigurationError, match="--current: give either --current FILE or --split-at DATE"):
        drift(mixed, rulepacks=[files["current"]], plugins=PluginManager(entry_points=False))


def test_missing_learn_extra_is_one_line(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)
    with pytest.raises(ConfigurationError) as err:
        run(files)
    assert str(err.value) == ("leadscore outcomes: sklearn is not installed (backtest, calibrate and drift need the "
                              "learn extra); install the extra: pip install 'leadscore[learn]' (in this workspace: "
                              "uv sync)")


def test_core_imports_and_scores_without_the_learn_extra() -> None:
    # A fresh interpreter where numpy, scikit-learn and matplotlib cannot be imported.
    import subprocess
    import sys

    code = ("import sys\n"
            "for name in ('numpy', 'sklearn', 'matplotlib'): sys.modules[name] = None\n"
            "import leadscore, leadscore.outcomes\n"
            "from leadscore import Engine, PluginManager, Lead\n"
            "e = Engine(plugins=PluginManager(entry_points=False), rulepacks=['firr-base'])\n"
            "print(e.score_lead(Lead('x', title='VP Sales')).total)\n"
            "try:\n"
            "    leadscore.outcomes.backtest('x.jsonl', label='fields.y')\n"
            "except Exception as err:\n"
            "    print(type(err).__name__, err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "30"
    assert out[1].startswith("ConfigurationError leadscore outcomes: numpy is not installed")
    assert np is not None  # this test process has the extra; only the child went without it


def test_a_sensitive_column_no_rule_reads_is_reported_by_group(files: dict[str, Path]) -> None:
    # Give the leads a gender no rule reads: 8 of the 10 VPs (the only leads placed high) are "f".
    genders = {"VP Sales": ["f"] * 8 + ["m"] * 2, "Engineer": ["f"] * 5 + ["m"] * 5, "Student": ["f"] * 2 + ["m"] * 8}
    seen: dict[str, int] = {}
    lines = []
    for line in files["leads"].read_text().splitlines():
        lead = json.loads(line)
        k = seen[lead["title"]] = seen.get(lead["title"], -1) + 1
        lead["fields"] = {"gender": genders[lead["title"]][k]}
        lines.append(json.dumps(lead))
    files["leads"].write_text("\n".join(lines) + "\n")
    [column] = run(files).data["current"]["fairness"]
    assert (column["column"], column["attribute"], column["selected_from"]) == ("fields.gender", "gender", "high")
    groups = {g["value"]: g for g in column["groups"]}
    assert groups["f"]["leads"] == groups["m"]["leads"] == 15
    assert groups["f"]["selected"] == pytest.approx(8 / 15) and groups["m"]["selected"] == pytest.approx(2 / 15)
    assert groups["f"]["impact_ratio"] == 1.0 and groups["m"]["impact_ratio"] == pytest.approx(0.25)
    assert groups["m"]["flagged"] and not groups["f"]["flagged"]
    assert groups["f"]["band_shares"] == {"low": pytest.approx(7 / 15), "high": pytest.approx(8 / 15)}
    result = run(files)
    assert "fields.gender (gender) is in the data but no rule reads it" in result.text()
    assert "<h2>Fairness: fields.gender</h2>" in result.html()


def test_no_fairness_section_without_a_sensitive_column(files: dict[str, Path]) -> None:
    assert run(files).data["current"]["fairness"] == []
