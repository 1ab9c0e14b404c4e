"""The segment plugins end to end through the installed command: entry points, switches, failures, conflicts, cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from leadscore.cases import load_cases

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
AS_OF = "2026-11-23T00:00:00Z"
SEGMENTS = {"enterprise": 30, "midmarket": 20, "syndication": 40}

# A syndicated VP Marketing at a 60-person software company (no other segment applies), with a
# relevant download and a nurture click: the table gives 15 + 15 + 20 + 8 + 10 = 68 (MQL).
SYNDICATED = {
    "id": "E2E-1", "email": "ivy.calder@foxglove-metrics.io", "title": "VP Marketing", "source": "content_syndication",
    "company": {"name": "Foxglove Metrics", "domain": "foxglove-metrics.io", "industry": "Software", "employees": 60,
                "annual_revenue": 8000000, "country": "US"},
    "activities": [
        {"type": "content_download", "at": "2026-11-10T09:00:00Z", "properties": {"asset": "The Lead Scoring Playbook"}},
        {"type": "email_click", "at": "2026-11-14T10:00:00Z"},
    ],
}


def leadscore_exe() -> str:
    exe = Path(sys.executable).parent / "leadscore"
    found = str(exe) if exe.exists() else shutil.which("leadscore")
    assert found, "the leadscore command is not installed in this environment"
    return found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command with a clean plugin environment plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADSCORE_") and k != "PYTHONPATH"}
    return subprocess.run([leadscore_exe(), *args], capture_output=True, text=True, env={**base, **(env or {})},
                          timeout=120, cwd=ROOT)


@pytest.fixture
def syndicated_leads(tmp_path: Path) -> Path:
    path = tmp_path / "syndicated.jsonl"
    path.write_text(json.dumps(SYNDICATED) + "\n", encoding="utf-8")
    return path


def score_one(path: Path, env: dict[str, str] | None = None) -> dict:
    result = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "--explain", env=env)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines()]
    return row


def installed_plugins(env: dict[str, str] | None = None) -> dict[str, dict]:
    result = run("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}


def test_plugins_json_lists_the_three_segment_plugins_with_versions() -> None:
    plugins = installed_plugins()
    for name in SEGMENTS:
        plugin = plugins[name]
        assert plugin["distribution"] == f"leadscore-{name}"
        assert plugin["version"] == version(f"leadscore-{name}") == "0.1.0"
        assert {"leadscore_rulepacks", "leadscore_signal_extractors"} <= set(plugin["hooks"])
        assert plugin["builtin"] is False
    assert "leadscore_route_lead" in plugins["enterprise"]["hooks"]


def test_rulepacks_lists_the_segment_packs_with_their_priorities() -> None:
    result = run("rulepacks", "--json")
    assert result.returncode == 0, result.stderr
    packs = {p["name"]: p for p in json.loads(result.stdout)}
    for name, priority in SEGMENTS.items():
        assert packs[name]["plugin"] == name
        assert packs[name]["priority"] == priority
        assert packs[name]["extends"] == ["firr-base"]
    assert packs["syndication"]["applies_when"] == "lead.channel eq 'content_syndication'"


def test_the_syndication_pack_scores_a_syndicated_lead_with_the_table(syndicated_leads: Path) -> None:
    row = score_one(syndicated_leads)
    assert row["packs"] == ["firr-base@1.0.0", "syndication@1.0.0"]
    assert row["total"] == 68 and row["band"] == "mql"
    assert {line["pack"] for line in row["ledger"]} == {"syndication"}


@pytest.mark.parametrize("name", ["syndication", "leadscore-syndication"])
def test_disabling_syndication_by_entry_point_or_distribution_name(syndicated_leads: Path, name: str) -> None:
    env = {"LEADSCORE_DISABLE_PLUGINS": name}
    plugins = installed_plugins(env)
    assert "syndication" not in plugins and {"enterprise", "midmarket"} <= set(plugins)
    row = score_one(syndicated_leads, env)
    # firr-base alone: fit VP 20 + marketing 10 + software 10 + domain 5 + US 5 = 50, download 10,
    # click 3 = 63 (no company-size points under 100 employees).
    assert row["packs"] == ["firr-base@1.0.0"]
    assert row["total"] == 63
    assert {line["pack"] for line in row["ledger"]} == {"firr-base"}


def write_broken_plugin(folder: Path, error: str) -> None:
    (folder / "broken_mod.py").write_text(f'raise {error}("this plugin cannot start")\n', encoding="utf-8")
    info = folder / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[leadscore]\nbroken = broken_mod\n", encoding="utf-8")


@pytest.mark.parametrize("error", ["ImportError", "RuntimeError"])
def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path: Path, syndicated_leads: Path,
                                                                       error: str) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_broken_plugin(site, error)
    env = {"PYTHONPATH": str(site)}
    result = run("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert (f"plugin broken (broken-plugin 0.1) failed to load: {error}: this plugin cannot start"
            in result.stderr)
    assert "LEADSCORE_DISABLE_PLUGINS=broken" in result.stderr
    assert "Traceback" not in result.stderr
    names = {p["name"] for p in json.loads(result.stdout)}
    assert set(SEGMENTS) <= names and "broken" not in names
    assert score_one(syndicated_leads, env)["packs"] == ["firr-base@1.0.0", "syndication@1.0.0"]
    # The operator's switch silences it.
    quiet = run("plugins", "--json", env={**env, "LEADSCORE_DISABLE_PLUGINS": "broken"})
    assert quiet.returncode == 0 and quiet.stderr == ""


RIVAL = """\
[pack]
name = "events-team"
version = "1.0.0"
priority = 40
extends = ["firr-base"]
applies_when = {{ signal = "lead.channel", eq = "event" }}
{disable}
[[bands]]
name = "cold"
min = 0

[[bands]]
name = "hot"
min = 50
"""


def test_a_pack_that_cannot_merge_with_syndication_is_a_load_time_error(tmp_path: Path,
                                                                        syndicated_leads: Path) -> None:
    rival = tmp_path / "events-team.toml"
    rival.write_text(RIVAL.format(disable=""), encoding="utf-8")
    result = run("score", str(syndicated_leads), "-r", "syndication", "-r", str(rival), "--as-of", AS_OF)
    assert result.returncode == 2 and result.stdout == ""
    assert "rulepacks events-team" in result.stderr and "syndication" in result.stderr
    assert "both define bands at priority 40" in result.stderr
    assert "give the more specific pack a higher priority" in result.stderr


def test_disabling_a_misspelt_syndication_rule_is_a_load_time_error(tmp_path: Path, syndicated_leads: Path) -> None:
    rival = tmp_path / "events-team.toml"
    rival.write_text(RIVAL.format(disable='disable = ["syndication.fit.industri"]'), encoding="utf-8")
    result = run("score", str(syndicated_leads), "-r", "syndication", "-r", str(rival), "--as-of", AS_OF)
    assert result.returncode == 2
    assert (f"{rival}:7: disable names rule 'syndication.fit.industri', which no loaded rulepack defines"
            in result.stderr)


def test_every_case_file_passes_through_the_installed_command() -> None:
    files = ["rulepacks/samples/segment-cases.toml",
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "plugins").glob("*/tests/cases/*.toml"))]
    expected = sum(len(load_cases(ROOT / f)) for f in files)
    assert expected >= 50
    result = run("test", "-q", *files)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().splitlines()[-1] == f"{expected} passed, 0 failed"


def test_the_firr_base_sample_cases_are_unchanged_by_the_plugins() -> None:
    result = run("test", "-q", "rulepacks/samples/cases.toml")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "48 passed, 0 failed"


def test_the_sample_leads_compose_every_segment_pack(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.jsonl"
    result = run("score", "rulepacks/samples/leads.jsonl", "--as-of", AS_OF, "--format", "jsonl",
                 "--accounts", str(accounts))
    assert result.returncode == 0, result.stderr
    rows = {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}
    packs = {row_id: {p.split("@")[0] for p in row["packs"]} for row_id, row in rows.items()}
    # Larkspur (6,200 people, tier target): a syndicated intern gets enterprise and syndication.
    assert packs["L-1008"] == {"firr-base", "enterprise", "syndication"}
    # Orchard Lane (950 people), syndicated: midmarket and syndication.
    assert packs["L-1031"] == {"firr-base", "midmarket", "syndication"}
    # Tidewater Ledger: 180 people but a target tier: midmarket and enterprise.
    assert packs["L-1012"] == {"firr-base", "midmarket", "enterprise"}
    assert packs["L-1015"] == {"firr-base"}
    assert {r["band"] for r in rows.values()} == {"early", "engaged", "mql", "sales_ready", "target_account"}
    # enterprise's [accounts] table chooses the roll-up for the whole run.
    strategies = {json.loads(line)["strategy"] for line in accounts.read_text().splitlines()}
    assert strategies == {"role_weighted"}
