"""The fairness check: rules reading protected attributes or proxies are flagged; reviewed rules are not."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore import Engine, PluginManager
from leadscore.errors import RulepackErrors
from leadscore.rulepack.fairness import DEFAULT_ATTRIBUTES, attributes_for, check_fairness, reads
from leadscore_cli.main import build_cli

HEADER = """\
[pack]
name = "fair-test"
version = "1.0.0"
extends = ["firr-base"]
priority = 10
"""


def rule(rid: str, signal: str, extra: str = "", op: str = 'eq = "x"') -> str:
    return f"""
[[rules]]
id = "{rid}"
category = "fit"
points = 5
when = {{ signal = "{signal}", {op} }}
reason = "r"
{extra}"""


def pack(tmp_path: Path, body: str, name: str = "fair.toml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def warnings_of(path: Path):
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path]) as engine:
        return check_fairness([p for p in engine.packs if p.source == str(path)])


@pytest.mark.parametrize(("signal", "attribute"), [
    ("fields.gender", "gender"), ("fields.Sex", "gender"), ("fields.date_of_birth", "age"), ("fields.age", "age"),
    ("fields.birth_year", "age"), ("fields.ethnicity", "race or ethnicity"), ("fields.religion", "religion"),
    ("fields.nationality", "nationality or citizenship"), ("fields.visa_status", "nationality or citizenship"),
    ("fields.marital_status", "marital or family status"), ("fields.number_of_children", "marital or family status"),
    ("fields.disability", "disability"), ("fields.zip", "postcode or ZIP (a proxy)"),
    ("fields.postal_code", "postcode or ZIP (a proxy)"), ("fields.first_name", "first name (a proxy)"),
    ("fields.photo_url", "photo (a proxy)"), ("event.gender", "gender"), ("crmplus.contact_religion", "religion"),
])
def test_protected_attributes_and_proxies_are_recognised(signal: str, attribute: str):
    found = reads(signal, DEFAULT_ATTRIBUTES)
    assert found is not None and found.name == attribute


@pytest.mark.parametrize("signal", [
    "lead.age_days", "company.country", "title.seniority", "email.domain", "fields.agency", "fields.page_views",
    "fields.usage_stage", "fields.sussex_office", "activity.webinar_attendance.count", "fields.budget_confirmed",
])
def test_ordinary_signals_are_not_flagged(signal: str):
    assert reads(signal, DEFAULT_ATTRIBUTES) is None


def test_a_rule_on_a_protected_field_is_flagged_with_its_line(tmp_path: Path):
    path = pack(tmp_path, rule("fit.ok", "fields.budget_confirmed", op="eq = true") + rule("fit.age", "fields.age",
                                                                                            op="lt = 40"))
    [warning] = warnings_of(path)
    assert warning.line() == (
        f"{path}:18: warning: rule 'fit.age' reads 'fields.age', age: a protected characteristic in equality law "
        "in many places (EU, UK, US); age discrimination law covers older and younger people alike; remove it, "
        'or if the team has reviewed it write fairness = "reviewed: <why>" on the rule')


def test_a_reviewed_rule_is_not_flagged_and_the_review_is_kept(tmp_path: Path):
    path = pack(tmp_path, rule("fit.zip", "fields.zip", 'fairness = "reviewed: the NYC office covers these ZIPs"'))
    assert warnings_of(path) == []
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path]) as engine:
        [fit_zip] = [r for p in engine.packs for r in p.rules if r.id == "fit.zip"]
    assert fit_zip.fairness == "the NYC office covers these ZIPs"


@pytest.mark.parametrize("value", ['"ok"', '"reviewed:"', "true", '"reviewed:   "'])
def test_a_review_must_say_why(tmp_path: Path, value: str):
    path = pack(tmp_path, rule("fit.zip", "fields.zip", f"fairness = {value}"))
    with pytest.raises(RulepackErrors) as info:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[path])
    assert "rule 'fit.zip': fairness must be \"reviewed: <why the team accepts this rule>\"" in str(info.value)


def test_gates_and_applies_when_are_checked_too(tmp_path: Path):
    path = pack(tmp_path, """
        [[bands]]
        name = "early"
        min = 0

        [[bands]]
        name = "hot"
        min = 50
        requires = { signal = "fields.gender", eq = "f" }
        """)
    [warning] = warnings_of(path)
    assert warning.subject == "band 'hot' requires" and warning.attribute.name == "gender"


def test_a_pack_adds_attributes_and_exempts_defaults(tmp_path: Path):
    path = pack(tmp_path, """
        [fairness]
        protected = { "union membership" = ["union", "trade_union"] }
        exempt = ["photo (a proxy)"]
        """ + rule("fit.union", "fields.union_member") + rule("fit.photo", "fields.photo"))
    warnings = warnings_of(path)
    assert [(w.subject, w.attribute.name) for w in warnings] == [("rule 'fit.union'", "union membership")]
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path]) as engine:
        names = [a.name for a in attributes_for(engine.packs)]
    assert "union membership" in names and "photo (a proxy)" not in names


def test_a_bad_fairness_table_is_a_load_error_with_its_line(tmp_path: Path):
    path = pack(tmp_path, """
        [fairness]
        exempt = ["hair colour"]
        """)
    with pytest.raises(RulepackErrors) as info:
        Engine(plugins=PluginManager(entry_points=False), rulepacks=[path])
    assert str(info.value).startswith(f"{path}:7: [fairness] exempt names 'hair colour', which is no attribute")


def test_the_shipped_packs_read_no_protected_attribute():
    with Engine(plugins=PluginManager()) as engine:
        assert check_fairness(engine.packs) == []


# --- through the command line ---------------------------------------------------------------------


def test_check_prints_warnings_and_fails_only_under_strict(tmp_path: Path):
    # The field is declared, so the only warning is the fairness one.
    path = pack(tmp_path, rule("fit.age", "fields.age", op="lt = 40") + '\n[fields]\nage = "number"\n')
    cli = build_cli(PluginManager(entry_points=False))
    relaxed = CliRunner().invoke(cli, ["check", str(path)])
    assert relaxed.exit_code == 0
    assert f"{path}:11: warning: rule 'fit.age' reads 'fields.age', age" in relaxed.output
    strict = CliRunner().invoke(cli, ["check", "--strict", str(path)])
    assert strict.exit_code == 1
    assert strict.output.endswith("1 warning (--strict): failing\n")


def test_explain_shows_the_review_of_a_rule_that_scored(tmp_path: Path):
    path = pack(tmp_path, rule("fit.zip", "fields.zip", 'fairness = "reviewed: territory rule, NYC office"',
                               op='eq = "10001"'))
    leads = tmp_path / "leads.jsonl"
    leads.write_text(json.dumps({"id": "L-1", "fields": {"zip": "10001"}}) + "\n")
    cli = build_cli(PluginManager(entry_points=False))
    args = ["explain", str(leads), "--lead", "L-1", "-r", str(path), "--as-of", "2026-11-23"]
    text = CliRunner().invoke(cli, args)
    assert text.exit_code == 0, text.output
    assert "Rules that read a protected attribute, reviewed by the team:\n  - fit.zip: territory rule, NYC office" \
        in text.output
    as_json = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert as_json["fairness_reviews"] == {"fit.zip": "territory rule, NYC office"}
