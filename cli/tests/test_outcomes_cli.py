"""The outcome commands through CliRunner: exit codes, one-line errors, the round trip through check and score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli


def run(*args: str):
    cli = build_cli(PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.fixture(scope="module")
def funnel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from leadscore.outcomes.synthetic import STARTING_PACK, write_funnel

    folder = tmp_path_factory.mktemp("cli-funnel")
    leads, outcomes = write_funnel(folder, leads=1500, seed=5)
    start = folder / "start.toml"
    start.write_text(STARTING_PACK, encoding="utf-8")
    return {"folder": folder, "leads": leads, "outcomes": outcomes, "start": start}


@pytest.mark.parametrize("command", ["backtest", "calibrate", "drift"])
def test_help_shows_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert f"leadscore {command} " in result.output.split("Examples:")[1]


def test_backtest_cli_matches_the_python_api(funnel: dict[str, Path], tmp_path: Path) -> None:
    from leadscore.outcomes import backtest

    out = tmp_path / "bt.json"
    report = tmp_path / "bt.html"
    result = run("backtest", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--within", "90", "--json", str(out), "--report", str(report),
                 "--bootstrap", "100")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("backtest: ")
    assert "ROC AUC" in result.stdout and "channels (by source):" in result.stdout
    api = backtest(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                   plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90, bootstrap=100)
    assert json.loads(out.read_text()) == api.data
    assert report.read_text().startswith("<!DOCTYPE html>")
    assert result.stdout.strip() == api.text().strip()


def test_bad_outcome_rows_are_reported_and_exit_1(funnel: dict[str, Path], tmp_path: Path) -> None:
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(funnel["outcomes"].read_text() + "S-00001,demo,2025-02-01,\nS-00002,won,soon,\nX-1,won,,\n",
                        encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = run("backtest", str(funnel["leads"]), "--outcomes", str(outcomes), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--bootstrap", "0")
    assert result.exit_code == 1
    lines = outcomes.read_text().splitlines()
    n = len(lines)
    assert result.stderr.splitlines() == [
        f"rejected {outcomes}:{n - 2}: unknown stage 'demo'; use one of mql, sal, sql, opportunity, won, lost, or "
        "declare it in leadscore.toml [outcomes] stages",
        f"rejected {outcomes}:{n - 1}: at: 'soon' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z",
        f"rejected {outcomes}:{n}: no lead with id 'X-1' in {funnel['leads']}; check the id (ids are case-sensitive)",
    ]
    assert f"3 of {n - 1} outcome rows rejected" in result.stdout
    result = run("backtest", str(funnel["leads"]), "--outcomes", str(outcomes), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--bootstrap", "0", "--rejects", str(rejects))
    assert result.exit_code == 1 and result.stderr == ""
    assert len(rejects.read_text().splitlines()) == 4  # a header and the three rows


@pytest.mark.parametrize(("args", "message"), [
    (["--outcomes", "{none}"], "leadscore: backtest: no conversions among the"),
    (["--outcomes", "{outcomes}", "--label", "fields.won"],
     "leadscore: --outcomes: give either --outcomes FILE or --label FIELD; e.g. --outcomes outcomes.csv"),
    (["--outcomes", "{outcomes}", "--score-at", "yesterday"],
     "leadscore: --score-at: 'yesterday' is not a scoring time; write created, created+7d or created+12h"),
    (["--outcomes", "{missing}"], "leadscore: {missing}: file not found; check the --outcomes path"),
    (["--outcomes", "{outcomes}", "--target", "signed"], "leadscore: --target: unknown stage 'signed'"),
    (["--outcomes", "{outcomes}", "--as-of", "soon"], "leadscore: --as-of: 'soon' is not a timestamp"),
])
def test_usage_errors_are_one_line_exit_2(funnel: dict[str, Path], tmp_path: Path, args: list[str], message: str) -> None:
    none = tmp_path / "none.csv"
    none.write_text("lead_id,stage\nS-00001,mql\n", encoding="utf-8")
    names = {"none": str(none), "outcomes": str(funnel["outcomes"]), "missing": str(tmp_path / "missing.csv")}
    result = run("backtest", str(funnel["leads"]), "-r", str(funnel["start"]), *(a.format(**names) for a in args))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message.format(**names))


def test_label_column_instead_of_outcomes(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    rows = ["id,title,fields.converted"]
    rows += [f"L-{i},{'VP Sales' if i % 3 == 0 else 'Engineer'},{int(i % 3 == 0 or i % 7 == 0)}" for i in range(60)]
    leads.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run("backtest", str(leads), "--label", "fields.converted", "--as-of", "2026-01-01", "-r", "firr-base",
                 "--bootstrap", "0")
    assert result.exit_code == 0, result.stderr
    assert "outcome: fields.converted is 1/true" in result.stdout


def test_calibrate_then_check_score_explain_test_and_backtest(funnel: dict[str, Path], tmp_path: Path) -> None:
    fitted = tmp_path / "fitted.toml"
    summary = tmp_path / "fit.json"
    result = run("calibrate", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--within", "90", "-o", str(fitted), "--json", str(summary),
                 "--bands", "hot=10%,warm=40%", "--bootstrap", "50")
    assert result.exit_code == 0, result.stderr
    assert "held-out AUC of the fitted pack:" in result.stdout
    assert "SIGN FLIPPED: review its reason" in result.stdout
    assert f"wrote {fitted}" in result.stdout
    assert json.loads(summary.read_text())["pack"] == "synthetic-start-fitted"
    from leadscore.outcomes import calibrate

    api = calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                    plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90,
                    bands="hot=10%,warm=40%", bootstrap=50)
    assert json.loads(summary.read_text()) == api.data

    def undated(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith(("fitted_at = ", "version = "))]

    assert undated(fitted.read_text()) == undated(api.toml)

    checked = run("check", str(fitted))
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.startswith(f"ok {fitted}: synthetic-start-fitted ")

    scored = run("score", str(funnel["leads"]), "-r", str(fitted), "--as-of", "2026-01-01", "--format", "jsonl")
    assert scored.exit_code == 0, scored.stderr
    rows = [json.loads(line) for line in scored.stdout.splitlines()]
    assert len(rows) == 1500 and {r["band"] for r in rows} <= {"cold", "warm", "hot"}

    explained = run("explain", str(funnel["leads"]), "--lead", rows[0]["id"], "-r", str(fitted), "--as-of", "2026-01-01")
    assert explained.exit_code == 0
    assert f"Band {rows[0]['band']}: " in explained.stdout and "(observed_conversion)" in explained.stdout
    as_json = json.loads(run("explain", str(funnel["leads"]), "--lead", rows[0]["id"], "-r", str(fitted),
                             "--as-of", "2026-01-01", "--json").stdout)
    assert 0 <= as_json["band_observed_conversion"] <= 1

    cases = tmp_path / "cases.toml"
    cases.write_text(f'[defaults]\nleads = "{funnel["leads"]}"\nas_of = 2026-01-01T00:00:00Z\nrulepacks = ["{fitted}"]\n\n'
                     f'[[cases]]\nname = "fitted band"\nlead = "{rows[0]["id"]}"\n[cases.expect]\n'
                     f'band = "{rows[0]["band"]}"\ntotal = {rows[0]["total"]}\n', encoding="utf-8")
    tested = run("test", str(cases))
    assert tested.exit_code == 0, tested.stdout
    assert "1 passed, 0 failed" in tested.stdout

    review = run("backtest", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--candidate", str(fitted), "--score-at", "created+7d", "--within", "90", "--bootstrap", "0")
    assert review.exit_code == 0, review.stderr
    assert "candidate (synthetic-start-fitted " in review.stdout and "band transitions" in review.stdout


def test_drift_exit_codes(funnel: dict[str, Path], tmp_path: Path) -> None:
    same = run("drift", "--reference", str(funnel["leads"]), "--current", str(funnel["leads"]), "-r", str(funnel["start"]))
    assert same.exit_code == 0, same.stderr
    assert "no drift beyond the thresholds" in same.stdout
    out = tmp_path / "drift.json"
    split = run("drift", "--reference", str(funnel["leads"]), "--split-at", "2025-07-01", "-r", str(funnel["start"]),
                "--psi-threshold", "0.0001", "--json", str(out))
    assert split.exit_code == 1
    assert "drift flagged:" in split.stdout
    assert json.loads(out.read_text())["flagged"]
    bad = run("drift", "--reference", str(funnel["leads"]), "-r", str(funnel["start"]))
    assert bad.exit_code == 2
    assert bad.stderr.startswith("leadscore: --current: give either --current FILE or --split-at DATE")


def test_missing_leads_file_is_one_line(tmp_path: Path, funnel: dict[str, Path]) -> None:
    missing = tmp_path / "nope.jsonl"
    for command in (["backtest", str(missing), "--outcomes", str(funnel["outcomes"])],
                    ["calibrate", str(missing), "--outcomes", str(funnel["outcomes"]), "-o", str(tmp_path / "f.toml")],
                    ["drift", "--reference", str(missing), "--current", str(funnel["leads"])]):
        result = run(*command)
        assert result.exit_code == 2
        assert result.stderr == f"leadscore: {missing}: file not found; check the path\n"
    assert not (tmp_path / "f.toml").exists()


def test_calibrate_band_conversion_cli_matches_the_python_api(funnel: dict[str, Path], tmp_path: Path) -> None:
    from leadscore.outcomes import calibrate

    fitted, summary = tmp_path / "fitted.toml", tmp_path / "fit.json"
    result = run("calibrate", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--within", "90", "-o", str(fitted), "--json", str(summary),
                 "--band-conversion", "hot=50%,warm=25%", "--bootstrap", "50")
    assert result.exit_code == 0, result.stderr
    assert "set from conversion rates: hot 50%, warm 25%" in result.stdout
    api = calibrate(funnel["leads"], funnel["outcomes"], rulepacks=[funnel["start"]],
                    plugins=PluginManager(entry_points=False), score_at="created+7d", within_days=90,
                    band_conversion="hot=50%,warm=25%", bootstrap=50)
    assert json.loads(summary.read_text()) == api.data
    assert api.data["band_basis"]["kind"] == "conversion"

    def undated(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith(("fitted_at = ", "version = "))]

    assert undated(fitted.read_text()) == undated(api.toml)
    checked = run("check", str(fitted))
    assert checked.exit_code == 0, checked.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--band-conversion", "hot=50%", "--bands", "hot=10%"],
     "leadscore: --band-conversion: cannot be combined with --bands; set bands by shares of leads (--bands) or by "
     "conversion rates (--band-conversion), not both"),
    (["--band-conversion", "hot=25%,warm=50%"],
     "leadscore: --band-conversion: hot is above warm but starts at 25%, not above warm's 50%; give each band a "
     "higher rate than the bands below it"),
    (["--band-conversion", "hot=1.5"],
     "leadscore: --band-conversion: 'hot=1.5': a rate must be above 0% and below 100%; write each band with the "
     "conversion at which it starts, e.g. sales_ready=50%,mql=25%,engaged=10%"),
    (["--band-conversion", "sales_ready=50%"],
     "leadscore: --band-conversion: 'sales_ready' is not a band of synthetic-start; name bands above 'cold': warm, hot"),
])
def test_bad_band_conversion_is_one_line_exit_2(funnel: dict[str, Path], tmp_path: Path, args: list[str],
                                                 message: str) -> None:
    out = tmp_path / "fitted.toml"
    result = run("calibrate", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "-o", str(out), *args)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"
    assert not out.exists()


# --- outputs: never over an input, whole or not at all (issue 12) --------------------------------

@pytest.mark.parametrize(("command", "option", "target"), [
    ("calibrate", "-o", "leads"), ("calibrate", "-o", "start"), ("backtest", "--report", "outcomes"),
    ("backtest", "--json", "leads"),
])
def test_an_outcome_output_naming_an_input_is_refused(funnel: dict[str, Path], command: str, option: str,
                                                      target: str) -> None:
    before = funnel[target].read_bytes()
    extra = [] if option == "-o" else ["-o", "unused.toml"] if command == "calibrate" else []
    result = run(command, str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 option, str(funnel[target]), *extra)
    assert result.exit_code == 2
    kind = {"leads": "input", "start": "rulepack", "outcomes": "outcomes file"}[target]
    assert result.stderr.startswith(f"leadscore: {funnel[target]}: {option} would overwrite the {kind} ")
    assert funnel[target].read_bytes() == before


def test_an_outcome_report_on_a_full_device_is_one_line(funnel: dict[str, Path]) -> None:
    result = run("backtest", str(funnel["leads"]), "--outcomes", str(funnel["outcomes"]), "-r", str(funnel["start"]),
                 "--score-at", "created+7d", "--report", "/dev/full", "--bootstrap", "20")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == ("leadscore: /dev/full: cannot write: No space left on device; free some "
                                              "space or choose another place")
