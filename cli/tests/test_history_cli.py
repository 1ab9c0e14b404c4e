"""The history commands through the CLI: score --history, runs, history, alerts, diff, ingest, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = str(ROOT / "rulepacks" / "samples" / "leads.jsonl")
FIRR = ROOT / "core" / "src" / "leadscore" / "rulepacks" / "firr-base.toml"


def run(*args: str, input: str | None = None):
    cli = build_cli(PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture()
def history(history_target: str) -> str:
    for as_of in ("2026-11-01", "2026-11-23"):
        result = run("score", SAMPLES, "--as-of", as_of, "--history", history_target, "--format", "jsonl")
        assert result.exit_code == 0, result.stderr
    return history_target


def test_score_stores_the_run_and_history_shows_what_changed(history: str) -> None:
    runs = run("runs", "--history", history, "--format", "jsonl")
    rows = [json.loads(line) for line in runs.stdout.splitlines()]
    assert [(r["run_id"], r["as_of"], r["scored"], r["complete"]) for r in rows] == [
        (1, "2026-11-01T00:00:00Z", 46, True), (2, "2026-11-23T00:00:00Z", 46, True)]
    assert any(p.startswith("firr-base@1.0.0#") for p in rows[0]["packs"])
    shown = run("history", "L-1002", "--history", history)
    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[0] == "L-1002: 2 cards"
    assert "+12 intent.webinar-attendance: Attended a webinar or event (new)" in shown.stdout
    rows = [json.loads(line) for line in run("history", "L-1002", "--history", history, "--format", "jsonl").stdout.splitlines()]
    assert rows[1]["delta"] == rows[1]["total"] - rows[0]["total"] and rows[0]["changes"] is None
    csv_out = run("history", "L-1002", "--history", history, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "run_id,seq,as_of,total,delta,band,route,changes,reasons" and len(csv_out) == 3


def test_history_errors_are_one_line(history: str, tmp_path: Path) -> None:
    result = run("history", "L-9999", "--history", history)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("no lead 'L-9999' in the history; check the id (ids are case-sensitive)")
    missing = tmp_path / "none.duckdb"
    result = run("history", "L-1", "--history", str(missing))
    assert result.exit_code == 2
    assert result.stderr == (f"leadscore: {missing}: no history database here; record a run first: "
                             f"leadscore score LEADS --history {missing}\n")
    result = run("score", SAMPLES, "--history-ledger")
    assert result.exit_code == 2
    assert result.stderr == "leadscore: --history-ledger: needs --history TARGET; add --history history.duckdb\n"


def test_alerts_are_sent_once(history: str) -> None:
    first = run("alerts", "--history", history, "--to", "sales_ready")
    alerts = [json.loads(line) for line in first.stdout.splitlines()]
    assert first.exit_code == 0 and alerts
    assert {a["to_band"] for a in alerts} == {"sales_ready"}
    assert all(a["changes"] and a["reasons"] for a in alerts)
    assert first.stderr.strip() == f"alerts: {len(alerts)} sent, 0 failed (retried next time), 0 already delivered"
    second = run("alerts", "--history", history, "--to", "sales_ready")
    assert second.stdout == "" and second.stderr.strip().endswith(f"{len(alerts)} already delivered")
    bad = run("alerts", "--history", history, "--since", "9")
    assert bad.exit_code == 2 and bad.stderr.strip().endswith("--since: no run 9 in " + bad.stderr.split(" in ")[-1].split(";")[0] + "; runs are numbered 1 to 2")
    assert run("alerts", "--history", history, "--cooldown", "soon").exit_code == 2


def test_diff_with_a_gate_and_on_a_stored_run(history: str, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    (new / "firr-base.toml").write_text(FIRR.read_text().replace("min = 80\n", "min = 70\n", 1))
    result = run("diff", SAMPLES, "-r", "firr-base", "--to", str(new), "--as-of", "2026-11-23",
                 "--fail-if", "sales_ready>+10%")
    assert result.exit_code == 1
    assert "band transitions (rows: old band, columns: new band)" in result.stdout
    assert "no ledger line changed: the band thresholds, gates or routing moved" in result.stdout
    assert result.stderr.startswith("leadscore: --fail-if sales_ready>+10%: sales_ready goes from ")
    passing = run("diff", SAMPLES, "-r", "firr-base", "--to", str(new), "--as-of", "2026-11-23",
                  "--fail-if", "sales_ready>+100%", "--format", "json")
    assert passing.exit_code == 0
    data = json.loads(passing.stdout)
    assert data["leads"] == 46 and data["gates"][0]["failed"] is False
    stored = run("diff", "--history", history, "--run", "2", "--to", str(new), "--format", "json")
    assert stored.exit_code == 0, stored.stderr
    assert json.loads(stored.stdout)["leads"] == 46
    assert run("diff", "--history", history, "--run", "7", "--to", str(new)).exit_code == 2
    assert run("diff", "--to", str(new)).stderr == "leadscore: diff: give either LEADS or --history TARGET (to rescore a stored run)\n"


def test_diff_sets_share_bands_from_the_same_leads(tmp_path: Path) -> None:
    # A candidate with "top N%" bands is ranked on the leads being compared, as score would rank them.
    share = tmp_path / "share.toml"
    share.write_text('[pack]\nname = "share"\nversion = "1"\nextends = ["firr-base"]\npriority = 5\n'
                     '[[bands]]\nname = "early"\nmin = 0\n[[bands]]\nname = "mql"\nmin = "top 20%"\n'
                     '[[bands]]\nname = "sales_ready"\nmin = "top 5%"\n')
    result = run("diff", SAMPLES, "-r", "firr-base", "--to", str(share), "--as-of", "2026-11-23", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("leadscore: bands by share (new packs): mql (top 20% of 46 leads) from 104 points; "
                             "sales_ready (top 5% of 46 leads) from 151 points\n")
    data = json.loads(result.stdout)
    assert {band: v["new"] for band, v in data["volume"].items() if v["new"]} == {"early": 36, "mql": 7,
                                                                                 "sales_ready": 3}
    assert data["bands"] == ["early", "engaged", "mql", "sales_ready", "target_account"]


def test_ingest_names_a_plugin_router_that_does_not_declare_what_it_reads(history: str, tmp_path: Path) -> None:
    from leadscore.plugin import Route, hookimpl, reads_signals

    class Surge:
        @hookimpl
        def leadscore_route_lead(self, card, lead, ctx):
            return Route("surge") if ctx["signals"].get("account.high_intent_30d", 0) >= 3 else None

    class Declared:
        @hookimpl
        @reads_signals("account.high_intent_30d")
        def leadscore_route_lead(self, card, lead, ctx):
            return None

    pack = tmp_path / "people.toml"
    pack.write_text('[pack]\nname = "people"\nversion = "1"\nextends = ["firr-base"]\n\n[[rules]]\n'
                    'id = "people.two"\ncategory = "fit"\npoints = 5\nreason = "Two people"\n'
                    'when = { signal = "account.contacts", gte = 2 }\n')
    event = '{"event":"activity","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}\n'
    for plugin, noted in ((Surge(), True), (Declared(), False)):
        pm = PluginManager(entry_points=False)
        pm.register(plugin, "surge")
        result = CliRunner().invoke(build_cli(pm), ["ingest", "-", "--history", history, "-r", str(pack)], input=event,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        note = ("leadscore: note: router of 'surge' does not declare the signals read "
                "(leadscore.plugin.reads_signals), so an event rescores every contact of its account whenever any "
                "account signal moves\n")
        assert (note in result.stderr) is noted


def test_ingest_and_replay(history: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event":"activity","id":"e1","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}\n'
        '{"event":"activity","lead_id":"L-404","activity":{"type":"page_view","at":"2026-11-24T09:00:00Z"}}\n'
        "not json\n")
    result = run("ingest", str(events), "--history", history, "--to", "target_account")
    assert result.exit_code == 1
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["lead_id"], a["to_band"]) for a in alerts] == [("L-1002", "target_account")]
    assert alerts[0]["changes"][0]["rule_id"] == "readiness.demo-request"
    assert f"rejected {events}:2: lead 'L-404' is not in the history" in result.stderr
    assert f"rejected {events}:3: not valid JSON" in result.stderr
    assert "events: applied 1 + duplicate 0 + rejected 2 (run 3)" in result.stderr
    from_stdin = run("ingest", "-", "--history", history, input=events.read_text().splitlines()[0] + "\n")
    assert "events: applied 0 + duplicate 1 + rejected 0 (run 4)" in from_stdin.stderr
    new = tmp_path / "new.toml"
    new.write_text(FIRR.read_text().replace("min = 80\n", "min = 70\n", 1))
    replayed = run("replay", "--history", history, "-r", str(new), "--from", "2026-11-01", "--to", "2026-11-23",
                   "--format", "json")
    assert replayed.exit_code == 0, replayed.stderr
    data = json.loads(replayed.stdout)
    assert [r["run_id"] for r in data["runs"]] == [1, 2]
    assert all(r["cards"] == 46 for r in data["runs"])
    assert data["alerts"]["stored"] >= 1 and isinstance(data["alerts"]["would_fire"], list)
    none = run("replay", "--history", history, "-r", str(new), "--from", "2020-01-01", "--to", "2020-02-01")
    assert none.exit_code == 2 and "no complete run scored between 2020-01-01 and 2020-02-01" in none.stderr
