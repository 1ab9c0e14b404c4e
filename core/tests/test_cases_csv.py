"""Case files on CSV leads: the activities file is named (or explicitly absent), never silently missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.cases import load_cases, run_cases
from leadscore.errors import InputError
from leadscore.plugins import PluginManager

SAMPLES = Path(__file__).resolve().parents[2] / "rulepacks" / "samples"


def cases_file(tmp_path: Path, defaults: str, body: str = "") -> Path:
    path = tmp_path / "cases.toml"
    path.write_text(f"[defaults]\nas_of = 2026-11-23T00:00:00Z\nrulepacks = [\"firr-base\"]\n{defaults}\n"
                    + (body or '[[cases]]\nname = "demo request"\nlead = "L-1001"\n[cases.expect]\nband = "target_account"\n'))
    return path


def test_a_case_on_csv_leads_scores_with_its_activities_file(tmp_path):
    path = cases_file(tmp_path, f'leads = "{SAMPLES / "leads.csv"}"\nactivities = "{SAMPLES / "activities.csv"}"')
    [result] = run_cases(load_cases(path), plugins=PluginManager(entry_points=False))
    assert result.passed, result.problems


def test_the_sample_cases_pass_on_the_csv_samples_too(tmp_path):
    text = (SAMPLES / "cases.toml").read_text(encoding="utf-8").replace(
        'leads = "leads.jsonl"', f'leads = "{SAMPLES / "leads.csv"}"\nactivities = "{SAMPLES / "activities.csv"}"')
    path = tmp_path / "cases.toml"
    path.write_text(text, encoding="utf-8")
    results = list(run_cases(load_cases(path), plugins=PluginManager(entry_points=False)))
    assert len(results) == 48 and all(r.passed for r in results), [r.problems for r in results if not r.passed]


def test_a_case_on_csv_leads_without_an_activities_file_fails_loudly(tmp_path):
    path = cases_file(tmp_path, f'leads = "{SAMPLES / "leads.csv"}"')
    with pytest.raises(InputError) as caught:
        load_cases(path)
    assert str(caught.value) == (
        f"{path}:5: case 'demo request': the leads file {SAMPLES / 'leads.csv'} is CSV, whose activities live in a "
        'separate file, and the case names none; add activities = "activities.csv" (relative to the case file), or '
        "activities = false when these leads have none")


def test_activities_false_says_the_leads_have_none(tmp_path):
    path = cases_file(tmp_path, f'leads = "{SAMPLES / "leads.csv"}"\nactivities = false',
                      '[[cases]]\nname = "no activities"\nlead = "L-1004"\n[cases.expect]\nband = "engaged"\n')
    [result] = run_cases(load_cases(path), plugins=PluginManager(entry_points=False))
    assert result.passed, result.problems


def test_an_activity_the_reader_leaves_out_fails_the_case_file(tmp_path):
    activities = tmp_path / "activities.csv"
    activities.write_text("lead_id,type,at\nL-1001,demo_request,last week\n")
    path = cases_file(tmp_path, f'leads = "{SAMPLES / "leads.csv"}"\nactivities = "activities.csv"')
    with pytest.raises(InputError) as caught:
        load_cases(path)
    assert str(caught.value) == (f"{activities}:2: sample activity left out: at: 'last week' is not a timestamp; "
                                 "write ISO 8601 such as 2026-11-20T10:00:00Z; fix the activities")
