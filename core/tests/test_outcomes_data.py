"""Outcomes in: reading outcome files, the funnel config, scoring times, labels, and no leakage."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from leadscore import Engine, PluginManager
from leadscore.errors import ConfigurationError, InputError
from leadscore.hookspecs import hookimpl
from leadscore.model import Activity, Lead, Signal, SignalExtractor, SignalSpec
from leadscore.outcomes import (
    Funnel,
    OutcomeDefinition,
    ScoringTime,
    as_seen_at,
    evaluation_set,
    load_funnel,
    read_outcomes,
)
from leadscore.outcomes.scoring import score_cases

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def lead(lead_id: str, days: float = 0, **kw) -> Lead:
    return Lead(lead_id, created_at=T0 + timedelta(days=days), **kw)


# --- reading outcome files ---------------------------------------------------------------------


def test_bad_rows_are_rejected_with_file_and_line_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "outcomes.csv", "lead_id,stage,at,amount\n"
                 "L-1,mql,2026-01-02,\n"
                 "L-1,won,2026-01-20T10:00:00Z,1200\n"
                 "L-2,demo,2026-01-03,\n"
                 "L-3,won,last tuesday,\n"
                 ",won,2026-01-03,\n"
                 "L-4,won,2026-01-03,lots\n"
                 "L-5,,2026-01-03,\n")
    table = read_outcomes(path)
    assert table.rows == 7
    assert [e.stage for e in table.events["L-1"]] == ["mql", "won"]
    assert table.events["L-1"][1].amount == 1200.0
    got = [(r.where, r.reason) for r in table.rejections]
    assert got == [
        (f"{path}:4", "unknown stage 'demo'; use one of mql, sal, sql, opportunity, won, lost, or declare it in "
                      "leadscore.toml [outcomes] stages"),
        (f"{path}:5", "at: 'last tuesday' is not a timestamp; write ISO 8601 such as 2026-11-20T10:00:00Z"),
        (f"{path}:6", "lead_id is missing; every outcome row names the lead it belongs to"),
        (f"{path}:7", "amount: 'lots' is not a number; write the deal amount as a plain number such as 12500.50"),
        (f"{path}:8", "stage is missing; use one of mql, sal, sql, opportunity, won, lost"),
    ]


def test_outcome_rows_for_unknown_leads_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "outcomes.csv", "lead_id,stage\nL-1,won\nL-9,won\nL-9,mql\n")
    evaluation = evaluation_set([lead("L-1"), lead("L-2")], read_outcomes(path), OutcomeDefinition(),
                                ScoringTime(), leads_label="leads.jsonl")
    assert evaluation.counts["outcome_rows"] == 3
    assert evaluation.counts["outcome_rows_rejected"] == 2
    assert [(r.where, r.reason) for r in evaluation.rejections] == [
        (f"{path}:3", "no lead with id 'L-9' in leads.jsonl; check the id (ids are case-sensitive)"),
        (f"{path}:4", "no lead with id 'L-9' in leads.jsonl; check the id (ids are case-sensitive)"),
    ]
    assert [c.positive for c in evaluation.cases] == [True, False]


def test_jsonl_outcomes_and_their_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "outcomes.jsonl", '{"lead_id": "L-1", "stage": "won", "at": "2026-01-05"}\n'
                 "not json\n"
                 '{"lead_id": "L-2", "stage": "won", "when": "2026-01-05"}\n'
                 '[1, 2]\n\n'
                 '{"lead_id": 7, "stage": "WON"}\n')
    table = read_outcomes(path)
    assert set(table.events) == {"L-1", "7"}
    assert table.events["7"][0].stage == "won"
    assert [r.where for r in table.rejections] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert table.rejections[1].reason == "unknown key 'when'; use lead_id, stage, at, amount"


@pytest.mark.parametrize(("text", "message"), [
    ("", "no header row; write the header lead_id,stage,at,amount then one row per outcome"),
    ("lead_id,stage,when\n", "unknown column 'when'; use lead_id, stage, at, amount"),
    ("lead_id,at\n", "missing column 'stage'; the header needs at least lead_id,stage"),
])
def test_a_bad_outcomes_file_stops_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "outcomes.csv", text)
    with pytest.raises(InputError) as err:
        read_outcomes(path)
    assert str(err.value).endswith(message)
    assert "\n" not in str(err.value)


def test_missing_outcomes_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found; check the --outcomes path"):
        read_outcomes(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="name the outcomes file .csv or .jsonl"):
        read_outcomes(write(tmp_path, "outcomes.txt", "lead_id,stage\n"))


def test_the_funnel_comes_from_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, "leadscore.toml", '[outcomes]\nstages = ["MQL", "demo", "won"]\nclosed = ["lost", "spam"]\n')
    funnel = load_funnel(config)
    assert funnel == Funnel(("mql", "demo", "won"), ("lost", "spam"))
    table = read_outcomes(io.StringIO("lead_id,stage\nL-1,demo\nL-2,sal\n"), funnel, name="o.csv")
    assert [r.reason.split(";")[0] for r in table.rejections] == ["unknown stage 'sal'"]
    monkeypatch.chdir(tmp_path)
    assert load_funnel() == funnel  # ./leadscore.toml is found without --config
    monkeypatch.chdir(tmp_path.parent)
    assert load_funnel() == Funnel()


@pytest.mark.parametrize(("text", "message"), [
    ("[outcomes]\nstages = \"won\"\n", "leadscore.toml:2: [outcomes] stages must be a list of stage names"),
    ("[outcomes]\nstages = []\n", "leadscore.toml:2: [outcomes] stages is empty"),
    ("[outcomes]\nstage = [\"won\"]\n", "leadscore.toml:2: unknown key 'stage' in [outcomes]; use stages or closed"),
    ("[outcomes]\nstages = [\"won\"]\nclosed = [\"won\"]\n", "leadscore.toml:3: stage 'won' is both a funnel stage"),
    ("[outcomes\n", "leadscore.toml:1: malformed TOML"),
])
def test_bad_funnel_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, "leadscore.toml", text)
    with pytest.raises(ConfigurationError) as err:
        load_funnel(config)
    assert message in str(err.value).replace(str(tmp_path) + "/", "")


def test_reaching_a_stage_implies_the_ones_before_it() -> None:
    funnel = Funnel()
    assert funnel.reached(["won"]) == {"mql", "sal", "sql", "opportunity", "won"}
    assert funnel.reached(["lost"]) == frozenset()
    assert funnel.reached(["sal", "mql"]) == {"mql", "sal"}


# --- scoring times and labels --------------------------------------------------------------------


def test_score_at_parsing() -> None:
    assert ScoringTime.parse(None) == ScoringTime(timedelta(0), None)
    assert ScoringTime.parse("created+7d").delay == timedelta(days=7)
    assert ScoringTime.parse("created + 12h").delay == timedelta(hours=12)
    assert ScoringTime.parse("created+1.5d").text() == "created+36h"
    assert ScoringTime.parse("created+48h").text() == "created+2d"
    fixed = ScoringTime.parse(None, T0)
    assert fixed.delay is None and fixed.for_lead(Lead("x")) == T0
    both = ScoringTime.parse("created+7d", T0)
    assert both.for_lead(lead("a", 3)) == T0 + timedelta(days=10)
    assert both.for_lead(Lead("b")) == T0
    with pytest.raises(ConfigurationError) as err:
        ScoringTime.parse("signup+7d")
    assert str(err.value) == ("--score-at: 'signup+7d' is not a scoring time; write created, created+7d or created+12h "
                              "(or pass --as-of for one fixed time)")


def test_labels_windows_and_exclusions(tmp_path: Path) -> None:
    path = write(tmp_path, "o.csv", "lead_id,stage,at,amount\n"
                 "A,won,2026-01-20,100\n"      # scored at Jan 8: won 12 days later
                 "B,won,2026-01-05,\n"         # won before its scoring time: left out
                 "C,won,2026-06-01,\n"         # won, but outside a 90-day window: a non-conversion
                 "D,mql,2026-01-09,\n"
                 "E,won,,\n"                   # no time: always counts
                 "G,won,2026-03-30,\n")        # the latest outcome: observation ends here
    leads = [lead(x) for x in "ABCDEF"] + [lead("G", 80), lead("H", 85)]
    evaluation = evaluation_set(leads, read_outcomes(path), OutcomeDefinition(within_days=90),
                                ScoringTime(timedelta(days=7)))
    by_id = {c.lead.id: c for c in evaluation.cases}
    assert sorted(by_id) == ["A", "C", "D", "E", "F", "G"]
    assert [by_id[x].positive for x in "ACDEFG"] == [True, False, False, True, False, True]
    assert by_id["A"].amount == 100 and by_id["A"].stages == Funnel().reached(["won"])
    assert by_id["D"].stages == {"mql"}
    counts = evaluation.counts
    # H (created Mar 27, scored Apr 3) has a window ending in July, after the last outcome (Mar 30).
    assert (counts["excluded_converted_before"], counts["excluded_censored"]) == (1, 1)
    assert counts["leads_read"] == 8 and counts["evaluated"] == 6 and counts["positives"] == 3
    assert evaluation.funnel_stages == ("mql", "won")


def test_leads_without_a_scoring_time_or_with_a_duplicate_id_are_rejected() -> None:
    evaluation = evaluation_set([lead("A"), Lead("B"), lead("A")], None, OutcomeDefinition(label="fields.x"),
                                ScoringTime(timedelta(days=7)), leads_label="in.jsonl")
    assert [(r.where, r.reason) for r in evaluation.rejections] == [
        ("in.jsonl: lead A", "fields.x is missing; write 0/1 or true/false"),
        ("in.jsonl: lead B", "has no created_at, so its scoring time (created+7d) is unknown; add created_at or "
                             "pass --as-of"),
        ("in.jsonl: lead A", "duplicate lead id; an outcome cannot tell which of the two it belongs to: give each "
                             "lead its own id"),
    ]
    assert evaluation.counts["leads_rejected"] == 3


def test_label_column_is_read_and_removed_before_scoring() -> None:
    leads = [lead(str(i), fields={"converted": value, "size": 3}) for i, value in
             enumerate([1, 0, "true", "No", True, "maybe"])]
    evaluation = evaluation_set(leads, None, OutcomeDefinition(label="fields.converted"), ScoringTime())
    assert [c.positive for c in evaluation.cases] == [True, False, True, False, True]
    assert all("converted" not in c.lead.fields and c.lead.fields["size"] == 3 for c in evaluation.cases)
    assert evaluation.rejections[0].reason == "fields.converted is 'maybe'; write 0/1 or true/false"
    with pytest.raises(ConfigurationError, match="--label: 'converted' is not a custom field"):
        evaluation_set(leads, None, OutcomeDefinition(label="converted"), ScoringTime())


def test_no_positives_or_no_negatives_stop_with_one_line(tmp_path: Path) -> None:
    none_won = evaluation_set([lead("A"), lead("B")], read_outcomes(write(tmp_path, "o.csv", "lead_id,stage\nA,mql\n")),
                              OutcomeDefinition(), ScoringTime())
    with pytest.raises(InputError) as err:
        none_won.check_both_classes("backtest")
    assert str(err.value) == ("backtest: no conversions among the 2 evaluated leads (won after the scoring time "
                              "(any time)); check --target, --within and the outcomes file (a score cannot be "
                              "judged without them)")
    all_won = evaluation_set([lead("A")], read_outcomes(write(tmp_path, "p.csv", "lead_id,stage\nA,won\n")),
                             OutcomeDefinition(), ScoringTime())
    with pytest.raises(InputError, match="every one of the 1 evaluated leads converted"):
        all_won.check_both_classes("backtest")


def test_unknown_target_stage() -> None:
    with pytest.raises(ConfigurationError, match="--target: unknown stage 'closed_won'"):
        evaluation_set([], read_outcomes(io.StringIO("lead_id,stage\n"), name="o.csv"),
                       OutcomeDefinition(target="closed_won"), ScoringTime())


# --- no leakage ------------------------------------------------------------------------------------


class Peeking:
    """A signal plugin that ignores the scoring time: it counts every activity it is handed."""

    @hookimpl
    def leadscore_signal_extractors(self):
        def extract(lead, ctx):
            return [Signal("peek.activities", len(lead.activities))]

        return [SignalExtractor("peek", extract, (SignalSpec("peek.activities", "int"),))]


PEEK_PACK = """\
[pack]
name = "peek"
version = "1"
[categories.fit]
[categories.intent]
[[rules]]
id = "peek.busy"
category = "fit"
points = 30
reason = "Did something"
when = { signal = "peek.activities", gte = 1 }
[[rules]]
id = "intent.meeting"
category = "intent"
points = 40
on = "meeting_booked"
reason = "Booked a meeting"
[[rules]]
id = "intent.pricing"
category = "intent"
points = 10
on = "pricing_page_visit"
reason = "Pricing"
[[bands]]
name = "cold"
min = 0
"""


def test_nothing_after_the_scoring_time_affects_the_score(tmp_path: Path) -> None:
    created = T0
    before = [Activity("pricing_page_visit", created + timedelta(days=2))]
    after = [Activity("meeting_booked", created + timedelta(days=9)),
             Activity("pricing_page_visit", created + timedelta(days=30))]
    seen = Lead("A", created_at=created, activities=before)
    full = Lead("A", created_at=created, activities=after + before)  # unsorted, as an API caller might pass
    silent = Lead("B", created_at=created)
    only_later = Lead("B", created_at=created, activities=after)
    pack = write(tmp_path, "peek.toml", PEEK_PACK)
    pm = PluginManager(entry_points=False)
    pm.register(Peeking(), "peek")
    won_after = read_outcomes(io.StringIO("lead_id,stage,at\nA,won,2026-01-20\nB,won,2026-01-21\n"), name="o.csv")
    nothing = read_outcomes(io.StringIO("lead_id,stage,at\n"), name="o.csv")
    timing = ScoringTime(timedelta(days=7))

    def cards(leads, outcomes):
        evaluation = evaluation_set(leads, outcomes, OutcomeDefinition(), timing)
        with Engine(plugins=pm, rulepacks=[pack]) as engine:
            from leadscore.io import card_to_dict

            got, _, _ = score_cases(engine, evaluation.cases, keep=lambda c: card_to_dict(c, explain=True))
        return got

    reference = cards([seen, silent], nothing)
    assert reference[0]["total"] == 40  # busy (30) and the pricing visit (10) before day 7
    assert reference[1]["total"] == 0
    # Later activities (a meeting, more pricing visits) and the outcomes change nothing.
    assert cards([full, only_later], nothing) == reference
    assert cards([full, only_later], won_after) == reference
    assert as_seen_at(full, created + timedelta(days=7)).activities == tuple(before)
    # The plugin itself would have seen the future without the cut: it counts what it is handed.
    with Engine(plugins=pm, rulepacks=[pack]) as engine:
        assert engine.score_lead(only_later, created + timedelta(days=7)).total == 30


def test_a_lead_as_seen_at_a_time_has_its_earlier_activities_oldest_first_as_the_engine_reads_them() -> None:
    from leadscore.engine import seen_at

    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    written = [Activity("pricing_page_visit", day + timedelta(days=3)), Activity("webinar_attendance", day),
               Activity("demo_request", day + timedelta(days=9)), Activity("page_view", day + timedelta(days=1))]
    lead = Lead(id="L-1", email="ana@acme.example", activities=written, fields={"stage": "sql", "region": "emea"})
    seen = as_seen_at(lead, day + timedelta(days=5), drop_fields=["stage"])
    assert [a.type for a in seen.activities] == ["webinar_attendance", "page_view", "pricing_page_visit"]
    assert seen.fields == {"region": "emea"}
    assert seen.activities == seen_at(lead, day + timedelta(days=5)).activities  # the account pass's cut
    whole = as_seen_at(seen, day + timedelta(days=30))
    assert whole is seen  # nothing later, nothing dropped: the same record


def test_an_overlong_jsonl_outcome_line_is_rejected_and_the_rest_read(tmp_path: Path) -> None:
    path = write(tmp_path, "o.jsonl", '{"lead_id": "A", "stage": "won"}\n' + '{"lead_id": "' + "x" * (2 << 20) + '"}\n'
                 + '{"lead_id": "B", "stage": "mql"}\n')
    table = read_outcomes(path)
    assert set(table.events) == {"A", "B"}
    assert [(r.where, r.reason) for r in table.rejections] == [
        (f"{path}:2", "line is longer than 1 MiB; each line must be one JSON object")]
