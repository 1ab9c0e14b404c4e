"""A team's own export through the command: maps, duplicates, unknown activity types, accounts by person."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from leadscore.plugins import PluginManager
from leadscore_cli.main import build_cli

AS_OF = "2026-11-23T00:00:00Z"
REPO = Path(__file__).resolve().parents[2]


def run(*args: str, plugins: PluginManager | None = None):
    cli = build_cli(plugins or PluginManager(entry_points=False))
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output + result.stderr
    return result


def write_jsonl(path: Path, *leads: dict) -> Path:
    path.write_text("".join(json.dumps(lead) + "\n" for lead in leads))
    return path


def test_a_hubspot_export_scores_with_map_hubspot(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text(
        "Record ID,Email,Job Title,Company Name,Industry,Number of Employees,Lifecycle Stage,Create Date\n"
        "51,dana@quillstone.io,VP Marketing,Quillstone,COMPUTER_SOFTWARE,1000+,lead,2026-11-02 14:23\n")
    result = run("score", str(path), "--map", "hubspot", "--as-of", AS_OF, "--format", "jsonl", "-r", "firr-base")
    assert result.exit_code == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["id"] == "51" and card["subscores"]["fit"] == 50
    assert result.stderr.strip() == "scored 1 + rejected 0 == read 1"


def test_duplicate_ids_are_rejected_after_the_first_or_merged_with_dedupe(tmp_path):
    first = {"id": "L-1", "email": "dana@quillstone.io", "title": "VP Marketing"}
    again = {"id": "L-1", "email": "dana@quillstone.io", "company": {"employees": 400},
             "activities": [{"type": "demo_request", "at": "2026-11-21T09:00:00Z"}]}
    path = write_jsonl(tmp_path / "leads.jsonl", first, again, {"id": "L-2"})
    result = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "-r", "firr-base")
    assert result.exit_code == 1
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["L-1", "L-2"]
    assert (f"rejected lead L-1: duplicate lead id 'L-1': an earlier row of {path} has it and was scored; each lead "
            "id once per input; pass --dedupe to merge the copies into one lead") in result.stderr
    assert "scored 2 + rejected 1 == read 3" in result.stderr

    merged = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "-r", "firr-base", "--dedupe", "--explain")
    assert merged.exit_code == 0, merged.stderr
    cards = {json.loads(line)["id"]: json.loads(line) for line in merged.stdout.splitlines()}
    assert set(cards) == {"L-1", "L-2"}
    rules = {line["rule_id"] for line in cards["L-1"]["ledger"]}
    # The title of the first copy and the company and demo request of the second, on one lead.
    assert {"fit.title.vp", "fit.company.size", "readiness.demo-request"} <= rules
    assert "scored 2 + rejected 0 == read 2" in merged.stderr


def test_unknown_activity_types_are_counted_with_a_did_you_mean(tmp_path):
    lead = {"id": "L-1", "activities": [{"type": "free_trial_signup", "at": "2026-11-20T10:00:00Z"},
                                        {"type": "free_trial_signup", "at": "2026-11-21T10:00:00Z"},
                                        {"type": "competitor_comparison", "at": "2026-11-21T11:00:00Z"}]}
    path = write_jsonl(tmp_path / "leads.jsonl", lead)
    result = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "-r", "firr-base")
    assert result.exit_code == 0
    warning = result.stderr.strip().splitlines()[0]
    assert warning.startswith("leadscore: warning: activity types no rulepack knows, scored nothing: "
                              "free_trial_signup (2, did you mean 'trial_signup'?); competitor_comparison (1")
    explained = run("explain", str(path), "--lead", "L-1", "--as-of", AS_OF, "-r", "firr-base")
    assert "  - free_trial_signup x2 (did you mean 'trial_signup'?)" in explained.stdout


def test_a_map_renames_activity_types_so_they_score(tmp_path):
    lead = {"id": "L-1", "activities": [{"type": "free_trial_signup", "at": "2026-11-20T10:00:00Z"}]}
    path = write_jsonl(tmp_path / "leads.jsonl", lead)
    column_map = tmp_path / "crm.toml"
    column_map.write_text('[lead]\nid = "id"\n[activity_types]\nfree_trial_signup = "trial_signup"\n')
    result = run("score", str(path), "--map", str(column_map), "--as-of", AS_OF, "--format", "jsonl",
                 "-r", "firr-base")
    assert json.loads(result.stdout)["subscores"]["readiness"] > 0
    assert "no rulepack knows" not in result.stderr


def test_one_person_under_three_ids_is_one_contact_of_the_account(tmp_path):
    def submission(n: int) -> dict:
        return {"id": f"F-{n}", "email": "Dana.Reyes+form@quillstone.io" if n else "dana.reyes@quillstone.io",
                "account_id": "quillstone.io", "title": "VP Marketing",
                "activities": [{"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z"}]}
    colleague = {"id": "C-1", "email": "sam@quillstone.io", "account_id": "quillstone.io",
                 "activities": [{"type": "pricing_page_visit", "at": "2026-11-20T10:00:00Z"}]}
    path = write_jsonl(tmp_path / "leads.jsonl", submission(0), submission(1), submission(2), colleague)
    accounts = tmp_path / "accounts.jsonl"
    result = run("score", str(path), "--as-of", AS_OF, "--format", "jsonl", "-r", "firr-base",
                 "--accounts", str(accounts))
    assert result.exit_code == 0, result.stderr
    (account,) = [json.loads(line) for line in accounts.read_text().splitlines()]
    assert account["contacts"] == 2 and account["engaged_contacts"] == 2


def test_x_education_sample_map_file_is_valid():
    from leadscore.io.maps import load_map

    column_map = load_map(REPO / "rulepacks" / "samples" / "maps" / "x-education.toml")
    assert column_map.lead["id"] == ("Lead Number",) and column_map.id_prefix == "XE-"
    assert "Converted" in column_map.excluded


def test_activities_lists_known_types_their_tier_and_the_packs_that_read_them(tmp_path):
    pack = tmp_path / "extra.toml"
    pack.write_text('[pack]\nname = "extra"\nversion = "1"\nextends = ["firr-base"]\n'
                    '[vocabulary]\nactivity_types = ["roadshow_visit"]\n')
    result = run("activities", "-r", "firr-base", "-r", str(pack), "--json")
    rows = {row["type"]: row for row in json.loads(result.stdout)}
    assert rows["demo_request"] == {"type": "demo_request", "tier": "readiness", "packs": ["firr-base"]}
    assert rows["roadshow_visit"] == {"type": "roadshow_visit", "tier": "other", "packs": []}
    text = run("activities", "-r", "firr-base", "-r", str(pack)).stdout
    assert "roadshow_visit               other      (no pack reads it)" in text.splitlines()


def test_signals_lists_the_event_signals_of_rules_with_on():
    rows = {row["signal"]: row for row in json.loads(run("signals", "--json").stdout)}
    assert rows["event.age_days"]["type"] == "number" and rows["event.*"]["extractor"] == "event"


TYPED = """[pack]
name = "acme"
version = "1"
extends = ["firr-base"]

[fields]
time_on_site = "number"

[[rules]]
id = "intent.time"
category = "intent"
points = 9
reason = "Spent five minutes on the site"
when = { signal = "fields.time_on_site", gte = 300 }

[[rules]]
id = "intent.typo"
category = "intent"
points = 9
reason = "never matches"
when = { signal = "fields.time_on_sit", gte = 300 }
"""


def test_check_warns_about_an_undeclared_field_with_a_did_you_mean(tmp_path):
    pack = tmp_path / "acme.toml"
    pack.write_text(TYPED)
    result = run("check", str(pack))
    assert result.exit_code == 0
    assert result.stderr.strip() == (
        f"{pack}:21: warning: rule 'intent.typo' reads 'fields.time_on_sit', which no pack declares in [fields], so "
        "check cannot tell a misspelling or a value of the wrong type; did you mean 'fields.time_on_site'? or declare "
        'it, e.g. [fields] time_on_sit = "number" (or "str", "int", "bool")')
    assert run("check", "--strict", str(pack)).exit_code == 1


def test_a_declared_number_field_scores_from_text(tmp_path):
    pack = tmp_path / "acme.toml"
    pack.write_text(TYPED)
    leads = write_jsonl(tmp_path / "leads.jsonl", {"id": "L-1", "fields": {"time_on_site": "320"}},
                        {"id": "L-2", "fields": {"time_on_site": "a while"}})
    result = run("score", str(leads), "-r", str(pack), "--as-of", AS_OF, "--format", "jsonl", "--explain")
    cards = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[line["rule_id"] for line in card["ledger"]] for card in cards] == [["intent.time"], []]
    # The value that gave no signal is counted on stderr, not dropped in silence.
    assert result.stderr.splitlines()[-2] == (
        "leadscore: warning: custom field values that do not fit their declared type, scored nothing: "
        "fields.time_on_site (1 not a number); fix the values or the type in the pack's [fields] "
        '(docs/rulepacks.md, "Custom fields")')


def test_explain_lists_a_field_that_does_not_fit_its_type(tmp_path):
    pack = tmp_path / "acme.toml"
    pack.write_text(TYPED)
    leads = write_jsonl(tmp_path / "leads.jsonl", {"id": "L-2", "fields": {"time_on_site": "a while"}},
                        {"id": "L-3", "fields": {"time_on_site": 12}})
    text = run("explain", str(leads), "--lead", "L-2", "-r", str(pack), "--as-of", AS_OF).stdout
    assert text.splitlines()[-2:] == [
        "Custom fields whose value does not fit the type declared in [fields] (they scored nothing):",
        "  - fields.time_on_site: not a number"]
    shown = json.loads(run("explain", str(leads), "--lead", "L-3", "-r", str(pack), "--as-of", AS_OF,
                           "--json").stdout)
    assert shown["fields_not_of_declared_type"] == {}
    shown = json.loads(run("explain", str(leads), "--lead", "L-2", "-r", str(pack), "--as-of", AS_OF,
                           "--json").stdout)
    assert shown["fields_not_of_declared_type"] == {"time_on_site": "number"}


def test_score_shows_the_minimums_share_bands_got(tmp_path):
    pack = tmp_path / "share.toml"
    pack.write_text('[pack]\nname = "share"\nversion = "1"\nextends = ["firr-base"]\npriority = 5\n'
                    '[[bands]]\nname = "early"\nmin = 0\n[[bands]]\nname = "mql"\nmin = "top 20%"\n'
                    '[[bands]]\nname = "sales_ready"\nmin = "top 5%"\n')
    samples = REPO / "rulepacks" / "samples" / "leads.jsonl"
    result = run("score", str(samples), "-r", "firr-base", "-r", str(pack), "--as-of", AS_OF, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("leadscore: bands by share this run: mql (top 20% of 46 leads) from 104 "
                                             "points; sales_ready (top 5% of 46 leads) from 151 points")
    bands = [json.loads(line)["band"] for line in result.stdout.splitlines()]
    assert bands.count("sales_ready") == 3 and bands.count("mql") == 7
