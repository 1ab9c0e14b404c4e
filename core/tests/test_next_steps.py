"""Next steps: the smallest sets of actions and facts that put a lead in a band, each exact when applied."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore import Engine, PluginManager
from leadscore.io import read_leads
from leadscore.model import Activity, Lead, evolve
from leadscore.next_steps import Change, candidates, next_steps, render, to_dict
from leadscore_cli.main import build_cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "rulepacks" / "samples" / "leads.jsonl"
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def engine():
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF) as engine:
        yield engine


@pytest.fixture(scope="module")
def sample_leads() -> list[Lead]:
    return [lead for lead in read_leads(SAMPLES) if isinstance(lead, Lead)]


def apply(engine: Engine, lead: Lead, changes: tuple[Change, ...]):
    """The suggestion done for real: new activities now, fields.* facts written into the lead's fields,
    other facts (a derived signal such as email.type) assumed, as the suggestion states them."""
    fields = dict(lead.fields)
    assume = {}
    for change in changes:
        for name, value in change.fact.set if change.fact else ():
            if name.startswith("fields."):
                fields[name.removeprefix("fields.")] = value
            else:
                assume[name] = value
    new = [Activity(c.activity, AS_OF) for c in changes if c.activity]
    changed = evolve(lead, fields=fields, activities=(*lead.activities, *new))
    return engine.score_lead(changed, assume=assume)


def test_every_suggestion_reaches_its_band_when_applied(engine, sample_leads):
    tried = 0
    for lead in sample_leads:
        card = engine.score_lead(lead)
        composed, _ = engine.plan(engine.composer.select({k: s.value for k, s in engine.signals(lead).items()}))
        names = [b.name for b in composed.bands]
        for target in names[names.index(card.band) + 1:]:
            steps = next_steps(engine, lead, target)
            for option in steps.options:
                reached = apply(engine, lead, option.changes)
                assert names.index(reached.band) >= names.index(target), (lead.id, target, option)
                assert (reached.total, reached.band) == (option.total, option.band)
                tried += 1
    assert tried > 30  # the samples exercise many suggestions, not a handful


def test_options_use_the_fewest_changes_there_are(engine, sample_leads):
    for lead in sample_leads[:20]:
        for target in ("mql", "sales_ready"):
            steps = next_steps(engine, lead, target)
            if steps.reached or not steps.options:
                continue
            size = len(steps.options[0].changes)
            assert all(len(o.changes) == size for o in steps.options)
            if size > 1:  # then no single candidate gets there
                values = {k: s.value for k, s in engine.signals(lead).items()}
                composed, _ = engine.plan(engine.composer.select(values))
                names = [b.name for b in composed.bands]
                for change in candidates(composed, engine.vocabulary, values):
                    band = apply(engine, lead, (change,)).band
                    assert names.index(band) < names.index(target), (lead.id, target, change)


def test_a_lead_held_back_by_the_business_email_gate_is_told_so(engine):
    # A VP on a personal address with a fresh pricing visit: points for sales_ready, gate not met.
    lead = Lead("G-1", email="dana@gmail.com", title="VP Marketing",
                company=evolve(Lead("x").company, industry="saas", employees=1200, country="US"),
                activities=[Activity("pricing_page_visit", AS_OF), Activity("demo_request", AS_OF)])
    steps = next_steps(engine, lead, "sales_ready")
    assert not steps.gate_met and steps.points_needed == 0
    assert steps.options[0].changes == (Change(fact=[f for f in engine.composer.get(engine.composer.always)
                                                     .actions.facts if f.text == "a business email"][0]),)
    assert "1. a business email (+15) -> " in render(steps)  # and the personal-email penalty goes


def test_a_lead_already_in_the_band_needs_nothing(engine, sample_leads):
    lead = sample_leads[0]
    band = engine.score_lead(lead).band
    steps = next_steps(engine, lead, band)
    assert steps.reached and steps.options == ()
    assert render(steps) == f"{lead.id} is already {band} (the target, {band}, is reached)."


def test_firmographics_are_never_suggested(engine, sample_leads):
    for lead in sample_leads:
        steps = next_steps(engine, lead, "target_account")
        for option in steps.options:
            for change in option.changes:
                assert change.activity or not any(n.startswith("company.") for n, _ in change.fact.set)


def test_actions_limit_the_activities_a_pack_may_ask_for(tmp_path):
    pack = tmp_path / "asks.toml"
    pack.write_text(textwrap.dedent("""\
        [pack]
        name = "asks"
        version = "1.0.0"
        extends = ["firr-base"]
        priority = 10

        [actions]
        activities = ["case_study_view"]
        """))
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[pack], as_of=AS_OF) as limited:
        lead = Lead("A-1", email="dana@acme.io", title="VP Marketing")
        values = {k: s.value for k, s in limited.signals(lead).items()}
        composed, _ = limited.plan(limited.composer.select(values))
        asked = [c.activity for c in candidates(composed, limited.vocabulary, values) if c.activity]
    assert asked == ["case_study_view"]


def test_default_activities_leave_out_email_and_negative_ones(engine):
    lead = Lead("A-2", email="dana@acme.io")
    values = {k: s.value for k, s in engine.signals(lead).items()}
    composed, _ = engine.plan(engine.composer.select(values))
    asked = {c.activity for c in candidates(composed, engine.vocabulary, values) if c.activity}
    assert {"demo_request", "pricing_page_visit", "case_study_view"} <= asked
    assert not asked & {"email_open", "email_click", "unsubscribe", "email_bounce"}


def test_an_unknown_band_is_a_value_error(engine, sample_leads):
    with pytest.raises(ValueError, match="band 'vip' is not a band of firr-base; use one of early, engaged, mql"):
        next_steps(engine, sample_leads[0], "vip")


# --- through the command line ---------------------------------------------------------------------


def cli_run(*args: str):
    return CliRunner().invoke(build_cli(PluginManager(entry_points=False)), list(args))


def test_explain_to_prints_the_next_steps_after_the_ledger():
    result = cli_run("explain", str(SAMPLES), "--lead", "L-1004", "--to", "sales_ready", "--as-of", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "\n\nTo reach sales_ready (from " in result.output
    assert "  1. a new " in result.output


def test_explain_to_in_json_has_a_next_steps_object():
    result = cli_run("explain", str(SAMPLES), "--lead", "L-1004", "--to", "sales_ready", "--as-of", "2026-11-23",
                     "--json")
    data = json.loads(result.output)
    assert data["next_steps"]["target"] == "sales_ready"
    assert data["next_steps"]["options"] and "changes" in data["next_steps"]["options"][0]


def test_explain_to_an_unknown_band_is_a_usage_error():
    result = cli_run("explain", str(SAMPLES), "--lead", "L-1004", "--to", "vip", "--as-of", "2026-11-23")
    assert result.exit_code == 2
    assert result.output.startswith("leadscore: --to: band 'vip' is not a band of ")


def test_score_next_steps_adds_a_field_per_lead_and_needs_json_lines(engine, sample_leads):
    result = cli_run("score", str(SAMPLES), "--as-of", "2026-11-23", "-r", "firr-base", "--next-steps",
                     "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(rows) == len(sample_leads)
    assert rows[1]["next_steps"] == to_dict(next_steps(engine, sample_leads[1]))
    refused = cli_run("score", str(SAMPLES), "--as-of", "2026-11-23", "--next-steps", "--format", "csv")
    assert refused.exit_code == 2
    assert "--next-steps: adds a field to JSON Lines output, not csv; add --format jsonl" in refused.output


# --- the account view ---------------------------------------------------------------------------------


def test_an_account_is_told_the_roll_up_points_and_the_roles_it_lacks(tmp_path):
    from leadscore.next_steps import account_gaps

    pack = tmp_path / "committee.toml"
    pack.write_text(textwrap.dedent("""\
        [pack]
        name = "committee"
        version = "1.0.0"
        extends = ["firr-base"]
        priority = 10

        [accounts]
        rollup = "sum_capped"
        bands = [["cold", 0], ["warm", 200]]

        [[rules]]
        id = "committee.seniors"
        category = "fit"
        points = 10
        when = { signal = "account.senior_engaged_contacts", gte = 2 }
        reason = "Two senior people engaged"

        [[rules]]
        id = "committee.pricing"
        category = "intent"
        points = 5
        when = { same_account = 3, where = { signal = "activity.pricing_page_visit.count_30d", gte = 1 } }
        reason = "Three people looked at pricing"
        """))
    leads = [Lead("C-1", email="vp@acme.io", title="VP Sales", account_id="acme",
                  activities=[Activity("pricing_page_visit", AS_OF)]),
             Lead("C-2", email="ic@acme.io", title="Analyst", account_id="acme",
                  activities=[Activity("webinar_attendance", AS_OF)])]
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[pack], as_of=AS_OF) as engine:
        index = engine.build_accounts(leads)
        list(engine.score(leads, accounts=index))
        [card] = engine.account_cards(index)
        next_band, gaps = account_gaps(engine, card, index.accounts["acme"].signals(index.caps))
    assert (card.band, next_band) == ("cold", "warm")
    assert gaps == [
        f"+{200 - card.score} roll-up points (sum_capped) for warm",
        "1 more engaged contact at director level or above, for 'Two senior people engaged' (+10 a contact)",
        "2 more contacts with activity.pricing_page_visit.count_30d gte 1, for 'Three people looked at pricing' "
        "(+5 a contact)",
    ]


def test_the_accounts_file_carries_next_band_and_gaps(tmp_path):
    accounts = tmp_path / "accounts.jsonl"
    result = cli_run("score", str(SAMPLES), "--as-of", "2026-11-23", "--accounts", str(accounts),
                     "-o", str(tmp_path / "scores.jsonl"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in accounts.read_text().splitlines()]
    assert rows and all({"next_band", "gaps"} <= set(row) for row in rows)
    below_top = [row for row in rows if row["next_band"] is not None]
    assert below_top and all(row["gaps"][0].startswith("+") for row in below_top)
