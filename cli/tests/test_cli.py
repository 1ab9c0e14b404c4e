"""The `leadscore` command through click's CliRunner: output shapes, bad input, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli

AS_OF = "2026-11-23T00:00:00Z"

VP = {
    "id": "L-1", "email": "dana@acme-robotics.com", "title": "VP Marketing", "source": "linkedin_ads",
    "account_id": "acme-robotics.com",
    "company": {"name": "Acme Robotics", "domain": "acme-robotics.com", "industry": "SaaS", "employees": 1200,
                "annual_revenue": 250000000, "country": "US"},
    "activities": [
        {"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z", "properties": {"url": "/pricing"}},
        {"type": "demo_request", "at": "2026-11-21T09:00:00Z"},
    ],
}
STUDENT = {"id": "L-2", "email": "kim@gmail.com", "title": "Marketing Intern",
           "company": {"name": "Self", "employees": 1}}
FORMULA = {"id": "=HYPERLINK(\"x\")", "email": "x@gmail.com", "title": "@SUM(A1)"}


def run(*args: str, input: str | None = None):
    cli = build_cli(PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def write_jsonl(path: Path, *leads: dict | str) -> Path:
    path.write_text("".join((lead if isinstance(lead, str) else json.dumps(lead)) + "\n" for lead in leads))
    return path


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "leads.jsonl", VP, STUDENT)


def test_score_jsonl_one_row_per_lead(leads: Path) -> None:
    result = run("score", str(leads), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["L-1", "L-2"]
    vp, student = rows
    assert vp["band"] == "target_account" and vp["route"]["action"] == "abm_play"
    assert set(vp["subscores"]) == {"fit", "intent", "readiness", "revenue", "negative"}
    assert any("Requested a demo" in r for r in vp["reasons"])
    assert student["band"] == "early" and student["total"] < 0
    assert "scored 2 + rejected 0 == read 2" in result.stderr


def test_score_explain_ledger_sums_to_total(leads: Path) -> None:
    result = run("score", str(leads), "--as-of", AS_OF, "--format", "jsonl", "--explain")
    for line in result.stdout.splitlines():
        row = json.loads(line)
        assert sum(entry["points"] for entry in row["ledger"]) == row["total"]


def test_score_stdin(leads: Path) -> None:
    result = run("score", "-", "--as-of", AS_OF, "--format", "jsonl", input=leads.read_text())
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_score_csv_output_is_spreadsheet_safe(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", FORMULA, STUDENT)
    out = tmp_path / "scores.csv"
    result = run("score", str(src), "--as-of", AS_OF, "-o", str(out))
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["id"] == "'=HYPERLINK(\"x\")"
    assert rows[1]["total"].startswith("-") and int(rows[1]["total"]) < 0  # numbers are not escaped
    assert rows[1]["reasons"].startswith("'")


def test_score_csv_input_with_activities(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(
        "id,email,title,company.domain,company.employees,company.industry,company.country\n"
        "L-1,dana@acme-robotics.com,VP Marketing,acme-robotics.com,1200,SaaS,US\n"
        "L-2,kim@gmail.com,Student,,,,\n")
    (tmp_path / "acts.csv").write_text(
        "lead_id,type,at,properties.url\n"
        "L-1,pricing_page_visit,2026-11-20T10:00:00Z,/pricing\n"
        "L-1,demo_request,2026-11-21T09:00:00Z,\n")
    result = run("score", str(tmp_path / "leads.csv"), "--activities", str(tmp_path / "acts.csv"),
                 "--as-of", AS_OF, "--format", "jsonl", "--explain")
    assert result.exit_code == 0
    first = json.loads(result.stdout.splitlines()[0])
    assert {e["rule_id"] for e in first["ledger"]} >= {"intent.pricing", "readiness.demo-request"}


# --- bad input: one line naming the place, a non-zero exit, nothing lost -----------------------


def test_malformed_json_line_is_rejected_and_the_run_goes_on(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", VP, "{not json", STUDENT)
    result = run("score", str(src), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 2
    assert f"rejected {src}:2: malformed JSON" in result.stderr
    assert "scored 2 + rejected 1 == read 3" in result.stderr


def test_csv_row_with_wrong_number_of_fields(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,email,title\nL-1,a@acme-robotics.com,VP Sales\nL-2,b@x.com\n")
    result = run("score", str(tmp_path / "l.csv"), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 1
    assert f"{tmp_path / 'l.csv'}:3: row has 2 cells but the header has 3" in result.stderr


def test_unknown_csv_columns_are_kept_with_one_warning(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,email,jobtitle,Lead Score\nL-1,a@acme-robotics.com,VP Sales,7\n")
    result = run("score", str(tmp_path / "l.csv"), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 0
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"leadscore: warning: {tmp_path / 'l.csv'}:1: 2 columns kept as custom fields: 'jobtitle' -> fields.jobtitle, "
        "'Lead Score' -> fields.lead_score; map them with --map, or --strict to stop on them",
        "scored 1 + rejected 0 == read 1",
    ]


def test_unknown_csv_columns_stop_the_run_under_strict(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,email,jobtitle,Lead Score\nL-1,a@acme-robotics.com,VP Sales,7\n")
    result = run("score", str(tmp_path / "l.csv"), "--as-of", AS_OF, "--format", "jsonl", "--strict")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"leadscore: {tmp_path / 'l.csv'}:1: 2 unknown columns: 'jobtitle' -> fields.jobtitle, 'Lead Score' -> "
        "fields.lead_score; map them with --map FILE.toml (or list them under [excluded]), or drop --strict to keep "
        "them as custom fields")


def test_a_bad_choice_is_one_usage_line(tmp_path: Path) -> None:
    result = run("score", str(tmp_path / "l.jsonl"), "--format", "xml")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("leadscore: score: Invalid value for '--format': 'xml' is not one of "
                                     "'table', 'jsonl', 'csv', 'parquet'; see 'leadscore score --help'")


def test_non_numeric_employees(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", {"id": "L-9", "company": {"employees": "lots"}})
    result = run("score", str(src), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 1
    assert f"{src}:1: company.employees: 'lots' is not a whole number" in result.stderr


def test_an_unparseable_activity_time_costs_that_activity_and_is_reported(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", {"id": "L-9", "activities": [{"type": "demo_request", "at": "yesterday"},
                                                                         {"type": "page_view", "at": "2026-11-20"}]})
    result = run("score", str(src), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines() == [
        f"skipped {src}:1: activities[0].at: 'yesterday' is not a timestamp; write ISO 8601 such as "
        "2026-11-20T10:00:00Z",
        "scored 1 + rejected 0 == read 1; 1 activity left out (listed above)",
    ]
    assert json.loads(result.stdout)["id"] == "L-9"


def test_activity_for_unknown_lead(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,email\nL-1,a@acme-robotics.com\n")
    (tmp_path / "a.csv").write_text("lead_id,type,at\nL-1,page_view,2026-11-01T00:00:00Z\nL-404,page_view,2026-11-01T00:00:00Z\n")
    result = run("score", str(tmp_path / "l.csv"), "--activities", str(tmp_path / "a.csv"), "--as-of", AS_OF,
                 "--format", "jsonl")
    assert result.exit_code == 1
    assert f"{tmp_path / 'a.csv'}:3: activity for unknown lead 'L-404'" in result.stderr


def test_missing_file(tmp_path: Path) -> None:
    result = run("score", str(tmp_path / "nope.jsonl"), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"leadscore: {tmp_path / 'nope.jsonl'}: file not found; check the path"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    result = run("score", str(tmp_path / "empty.jsonl"), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "no leads in this file" in result.stderr


def test_bad_as_of(leads: Path) -> None:
    result = run("score", str(leads), "--as-of", "last tuesday")
    assert result.exit_code == 2
    assert "--as-of: 'last tuesday' is not a timestamp" in result.stderr


def test_rulepack_failing_validation(leads: Path, tmp_path: Path) -> None:
    pack = tmp_path / "bad.toml"
    pack.write_text('[pack]\nname = "bad"\nversion = "1"\nextends = ["firr-base"]\npriority = 5\n\n'
                    '[[rules]]\nid = "x"\ncategory = "fit"\npoints = 5\nreason = "r"\n'
                    'when = { signal = "title.senority", eq = "vp" }\n')
    result = run("score", str(leads), "-r", str(pack), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert f"{pack}:12: rule 'x': unknown signal 'title.senority'; did you mean 'title.seniority'?" in result.stderr


def test_rejects_file(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "l.jsonl", VP, "[1, 2]")
    rejects = tmp_path / "rejects.jsonl"
    result = run("score", str(src), "--as-of", AS_OF, "--format", "jsonl", "--rejects", str(rejects))
    assert result.exit_code == 1
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rows == [{"where": f"{src}:2", "lead_id": None, "reason": rows[0]["reason"]}]
    assert "not an object" in rows[0]["reason"] or "object" in rows[0]["reason"]
    assert "scored 1 + rejected 1" in result.stderr


# --- other commands ------------------------------------------------------------------------------


def test_explain_shows_each_line_and_the_gate(tmp_path: Path) -> None:
    personal = dict(VP, id="L-5", email="dana@gmail.com")
    src = write_jsonl(tmp_path / "l.jsonl", personal)
    result = run("explain", str(src), "--lead", "L-5", "--as-of", AS_OF)
    assert result.exit_code == 0
    out = result.stdout
    assert "readiness.demo-request" in out and "handraise x0.9" in out
    assert "negative.email.personal" in out
    assert "gates held it at" in out and "business email" in out


def test_explain_unknown_lead(leads: Path) -> None:
    result = run("explain", str(leads), "--lead", "L-404", "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "no lead with id 'L-404'" in result.stderr


def test_check_good_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[pack]\nname = "good"\nversion = "1.0"\nextends = ["firr-base"]\npriority = 3\n\n'
                    '[[rules]]\nid = "fit.cto"\ncategory = "fit"\npoints = 5\nreason = "CTO"\n'
                    'when = { signal = "title.text", matches = ".*cto.*" }\n')
    result = run("check", str(good))
    assert result.exit_code == 0 and "ok" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[pack]\nname = "bad"\nversion = "1.0"\n\n[[rules]]\nid = "a"\ncategory = "fit"\npoints = "ten"\n'
                   'reason = "r"\nwhen = { signal = "title.text", matches = "(" }\n')
    result = run("check", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:8: rule 'a': points must be a whole number" in result.stderr
    assert f"{bad}:10: rule 'a': invalid regex" in result.stderr


def test_test_command_pass_and_fail(tmp_path: Path, leads: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(f'[defaults]\nleads = "{leads.name}"\nas_of = {AS_OF}\n\n'
                     '[[cases]]\nname = "VP with a demo request"\nlead = "L-1"\n[cases.expect]\nband = "target_account"\n'
                     'route = "abm_play"\nrules = ["readiness.demo-request"]\n\n'
                     '[[cases]]\nname = "Intern wrongly expected to be an MQL"\nlead = "L-2"\n[cases.expect]\nband = "mql"\n')
    result = run("test", str(cases))
    assert result.exit_code == 1
    assert f"PASS {cases}:5 VP with a demo request" in result.stdout
    assert f"FAIL {cases}:13 Intern wrongly expected to be an MQL" in result.stdout
    assert "band: expected 'mql', got 'early'" in result.stdout
    assert "1 passed, 1 failed" in result.stdout


def test_plugins_and_rulepacks_listing() -> None:
    result = run("plugins", "--all", "--json")
    names = {p["name"] for p in json.loads(result.stdout)}
    assert "leadscore.default_plugins.extract.activities" in names
    result = run("rulepacks", "--json")
    packs = json.loads(result.stdout)
    assert [p["name"] for p in packs] == ["firr-base"] and packs[0]["rules"] > 30


def test_signals_listing() -> None:
    result = run("signals")
    assert "title.seniority" in result.stdout and "intent.*" not in result.stdout


def test_version_and_help_examples() -> None:
    assert "leadscore, version" in run("--version").stdout
    for command in ("score", "explain", "check", "test", "plugins", "rulepacks", "signals"):
        assert "Example" in run(command, "--help").stdout, command


def test_plugin_command_registered_through_the_hook() -> None:
    import click

    from leadscore import hookimpl

    class HelloPlugin:
        @hookimpl
        def leadscore_register_commands(self, cli):
            @cli.command()
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    pm = PluginManager(entry_points=False)
    pm.register(HelloPlugin(), "hello")
    result = CliRunner().invoke(build_cli(pm), ["hello"])
    assert result.exit_code == 0 and result.stdout == "hello from a plugin\n"


def test_progress_bar_reports_share_of_input_read(tmp_path: Path, capsys) -> None:
    from leadscore_cli.main import _CountingReader, _progress

    data = tmp_path / "big.jsonl"
    data.write_bytes(b"x" * 100 + b"\n" + b"y" * 99 + b"\n")
    with open(data, "rb") as raw:
        reader = _CountingReader(raw)
        lines = list(reader)

        def items():
            for n in range(2000):
                yield n

        assert list(_progress(items(), True, reader, 201)) == list(range(2000))
    assert len(lines) == 2 and reader.read_bytes == 201
    err = capsys.readouterr().err
    assert "[##############################] 100%  2,000 leads" in err and err.endswith("\n")


# --- plugin faults through the command (issue 12) ------------------------------------------------

def test_a_raising_registry_hook_is_one_line_exit_2(leads: Path) -> None:
    from leadscore import hookimpl

    class Broken:
        @hookimpl
        def leadscore_signal_extractors(self):
            raise RuntimeError("API key missing")

    pm = PluginManager(entry_points=False)
    pm.register(Broken(), name="acme-enrich")
    result = CliRunner().invoke(build_cli(pm), ["score", str(leads), "--as-of", AS_OF], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr == ("leadscore: plugin 'acme-enrich': leadscore_signal_extractors failed: RuntimeError: API key "
                             "missing; fix the plugin, or switch it off with LEADSCORE_DISABLE_PLUGINS=acme-enrich\n")


def test_leadscore_test_with_a_raising_extractor_fails_the_cases_naming_the_plugin() -> None:
    from leadscore import hookimpl
    from leadscore.model import SignalExtractor, SignalSpec

    def boom(lead, ctx):
        raise ConnectionError("enrichment API down")

    class Broken:
        @hookimpl
        def leadscore_signal_extractors(self):
            return [SignalExtractor("enrich", boom, (SignalSpec("enrich.seen", "bool"),))]

    pm = PluginManager(entry_points=False)
    pm.register(Broken(), name="acme-enrich")
    cases = Path(__file__).resolve().parents[2] / "rulepacks" / "samples" / "cases.toml"
    result = CliRunner().invoke(build_cli(pm), ["test", str(cases)], catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    assert result.exit_code == 1
    assert ("     could not be scored: plugin 'acme-enrich' (leadscore_signal_extractors): extractor 'enrich' failed: "
            "ConnectionError: enrichment API down") in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith("0 passed, ")


# --- a rule replaced by another pack is announced (issue 12) -------------------------------------

OVERRIDE = ('[pack]\nname = "{name}"\nversion = "1.0.0"\nextends = ["firr-base"]\npriority = 10\n\n'
            '[[rules]]\nid = "fit.title.vp"\ncategory = "fit"\npoints = 25\nreason = "VP: owns the budget"\n'
            'when = {{ signal = "title.seniority", eq = "vp" }}\n')


def test_check_says_which_rule_a_pack_replaces(tmp_path: Path) -> None:
    pack = tmp_path / "acme.toml"
    pack.write_text(OVERRIDE.format(name="acme"))
    result = run("check", str(pack))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"ok {pack}: acme 1.0.0, 1 rules, 0 bands",
        f"note {pack}: rule 'fit.title.vp' of acme ({pack}, priority 10) replaces the one in firr-base (priority 0) "
        f"for every lead both packs apply to"]


def test_rulepacks_lists_the_rules_a_plugin_pack_replaces(tmp_path: Path) -> None:
    from leadscore import hookimpl
    from leadscore.model import RulepackSource

    pack = tmp_path / "vendor.toml"
    pack.write_text(OVERRIDE.format(name="vendor"))

    class Vendor:
        @hookimpl
        def leadscore_rulepacks(self):
            return [RulepackSource("vendor", pack)]

    pm = PluginManager(entry_points=False)
    pm.register(Vendor(), name="leadscore-vendor")
    cli = build_cli(pm)
    text = CliRunner().invoke(cli, ["rulepacks"], catch_exceptions=False).stdout.splitlines()
    assert text[text.index(next(t for t in text if t.startswith("vendor 1.0.0"))) + 1] == (
        "    note: rule 'fit.title.vp' of vendor (plugin leadscore-vendor, priority 10) replaces the one in firr-base "
        "(priority 0) for every lead both packs apply to")
    rows = json.loads(CliRunner().invoke(cli, ["rulepacks", "--json"], catch_exceptions=False).stdout)
    assert {row["name"]: row["overrides"] for row in rows} == {
        "firr-base": [], "vendor": [{"rule_id": "fit.title.vp", "replaces": "firr-base"}]}


# --- rulepacks and case files that are not files (issue 12) --------------------------------------

@pytest.mark.parametrize("args", [["score", "{leads}", "-r", "{folder}"], ["check", "{folder}"], ["test", "{folder}"],
                                  ["score", "{leads}", "-r", "/dev/zero"], ["test", "/dev/zero"]])
def test_a_folder_or_a_device_as_a_rulepack_or_case_file_is_one_line(leads: Path, tmp_path: Path,
                                                                     args: list[str]) -> None:
    folder = tmp_path / "packs"
    folder.mkdir()
    result = run(*(a.format(leads=leads, folder=folder) for a in args))
    assert result.exit_code in (1, 2)  # check reports it as a problem found (1); the others stop (2)
    first = result.stderr.splitlines()[0]
    if "/dev/zero" in args:
        assert first.endswith("/dev/zero: is not a regular file (a device, pipe or socket); save the "
                              f"{'case file' if args[0] == 'test' else 'rulepack'} to a file and pass its path")
    else:
        assert first.endswith(f"{folder}: is a directory; pass the path of a "
                              f"{'case file' if args[0] == 'test' else 'rulepack'}, not of a folder")


def test_check_refuses_a_backreference_with_its_line_and_what_to_write(tmp_path: Path) -> None:
    pack = tmp_path / "rx.toml"
    pack.write_text('[pack]\nname = "rx"\nversion = "1"\nextends = ["firr-base"]\npriority = 10\n\n[[rules]]\n'
                    'id = "fit.twice"\ncategory = "fit"\npoints = 5\nreason = "r"\n'
                    'when = { signal = "title.text", matches = "(vp)\\\\1" }\n')
    result = run("check", str(pack))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{pack}:12: rule 'fit.twice': invalid regex '(vp)\\\\1' for 'title.text': invalid escape sequence: \\1; RE2 "
        f"has no backreferences; spell out the repeated text, or compare it in a second condition")
