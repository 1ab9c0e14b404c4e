"""Score card and rejection writers: key order, CSV safety, the table layout and round trips."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from leadscore.errors import ConfigurationError
from leadscore.io import RejectionWriter, card_to_dict, open_writer, rejection_to_dict
from leadscore.io import writers
from leadscore.model import Contribution, Rejection, Route, ScoreCard

AS_OF = datetime(2026, 11, 22, 9, 30, 15, 987654, tzinfo=UTC)
CATEGORIES = ("fit", "intent", "readiness", "negative")


def card(**changes) -> ScoreCard:
    values = dict(
        lead_id="L-1001",
        as_of=AS_OF,
        total=72,
        subscores=(("fit", 35), ("intent", 37), ("readiness", 0), ("negative", 0)),
        band="sql",
        points_band="sql",
        gate_notes=(),
        route=Route(action="assign_to_ae", queue="enterprise-east", sla_hours=4.0),
        ledger=(
            Contribution(
                rule_id="fit.title.vp",
                category="fit",
                points=20,
                raw_points=20,
                reason="VP-level title",
                pack="base",
                signal="title.seniority",
                evidence="VP Marketing",
            ),
            Contribution(
                rule_id="fit.company.size",
                category="fit",
                points=15,
                raw_points=15,
                reason="1000+ employees",
                pack="enterprise",
                signal="company.employees",
                evidence="1200",
            ),
            Contribution(
                rule_id="intent.pricing",
                category="intent",
                points=22,
                raw_points=25,
                decay="half_life_14d",
                decay_factor=0.8908987181403393,
                reason="Visited the pricing page",
                pack="base",
                signal="activity.pricing_page_visit",
                observed_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
                evidence="/pricing",
            ),
            Contribution(
                rule_id="intent.demo",
                category="intent",
                points=15,
                raw_points=15,
                reason="Requested a demo",
                pack="base",
            ),
        ),
        packs=(("base", "1.2.0"), ("enterprise", "0.3.1")),
        account_id="acme.io",
    )
    values.update(changes)
    return ScoreCard(**values)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- card_to_dict -------------------------------------------------------------------------


def test_card_to_dict_key_order_and_values():
    data = card_to_dict(card())
    assert list(data) == ["id", "total", "band", "subscores", "route", "reasons", "packs", "as_of"]
    assert data == {
        "id": "L-1001",
        "total": 72,
        "band": "sql",
        "subscores": {"fit": 35, "intent": 37, "readiness": 0, "negative": 0},
        "route": {"action": "assign_to_ae", "queue": "enterprise-east", "sla_hours": 4},
        "reasons": ["+22 Visited the pricing page", "+20 VP-level title", "+15 1000+ employees"],
        "packs": ["base@1.2.0", "enterprise@0.3.1"],
        "as_of": "2026-11-22T09:30:15Z",
    }


def test_gated_card_shows_the_points_band_and_why():
    data = card_to_dict(
        card(band="mql", points_band="sql", gate_notes=("sql needs a business email",), route=None)
    )
    assert data["route"] is None
    assert list(data)[-2:] == ["points_band", "gate_notes"]
    assert data["points_band"] == "sql"
    assert data["gate_notes"] == ["sql needs a business email"]


def test_explain_adds_the_ledger():
    data = card_to_dict(card(), explain=True, top=1)
    assert data["reasons"] == ["+22 Visited the pricing page"]
    assert data["ledger"][2] == {
        "rule_id": "intent.pricing",
        "kind": "rule",
        "category": "intent",
        "points": 22,
        "raw_points": 25,
        "decay": "half_life_14d",
        "decay_factor": 0.8909,
        "signal": "activity.pricing_page_visit",
        "observed_at": "2026-11-20T10:00:00Z",
        "reason": "Visited the pricing page",
        "pack": "base",
        "evidence": "/pricing",
    }
    assert data["ledger"][3]["observed_at"] is None
    assert sum(line["points"] for line in data["ledger"]) == data["total"]


def test_rejection_to_dict():
    rejection = Rejection("leads.csv:3", "row has 4 cells but the header has 3", "L-2")
    assert list(rejection_to_dict(rejection).items()) == [
        ("where", "leads.csv:3"),
        ("lead_id", "L-2"),
        ("reason", "row has 4 cells but the header has 3"),
    ]


# --- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_round_trip():
    out = io.StringIO()
    cards = [card(), card(lead_id="L-1002", total=-15, band="disqualified", points_band="disqualified")]
    with open_writer("jsonl", out, explain=True) as writer:
        for item in cards:
            writer.write(item)
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [card_to_dict(item, explain=True) for item in cards]
    assert lines[0].startswith('{"id":"L-1001","total":72,"band":"sql","subscores":{"fit":35,')


def test_jsonl_keeps_non_ascii_text():
    out = io.StringIO()
    writer = open_writer("jsonl", out)
    writer.write(card(lead_id="L-Müller"))
    writer.close()
    assert '"id":"L-Müller"' in out.getvalue()


# --- CSV ----------------------------------------------------------------------------------


def test_csv_columns_follow_the_categories():
    out = io.StringIO()
    with open_writer("csv", out, categories=CATEGORIES) as writer:
        writer.write(card())
    assert out.getvalue().splitlines() == [
        "id,total,band,route_action,route_queue,sla_hours,score_fit,score_intent,score_readiness,"
        "score_negative,reasons,packs",
        "L-1001,72,sql,assign_to_ae,enterprise-east,4,35,37,0,0,"
        "'+22 Visited the pricing page | +20 VP-level title | +15 1000+ employees,"
        "base@1.2.0;enterprise@0.3.1",
    ]


def test_csv_escapes_formula_cells():
    out = io.StringIO()
    with open_writer("csv", out, categories=CATEGORIES) as writer:
        writer.write(
            card(
                lead_id="=SUM(A1:A9)",
                band="@cmd",
                route=Route(action="-2+3", queue="\tqueue"),
                ledger=(),
            )
        )
    (row,) = csv_rows(out.getvalue())
    assert row["id"] == "'=SUM(A1:A9)"
    assert row["band"] == "'@cmd"
    assert row["route_action"] == "'-2+3"
    assert row["route_queue"] == "'\tqueue"
    assert row["reasons"] == ""


def test_csv_negative_total_is_a_plain_number():
    out = io.StringIO()
    with open_writer("csv", out, categories=CATEGORIES) as writer:
        writer.write(
            card(
                total=-25,
                subscores=(("fit", 0), ("negative", -25)),
                band="disqualified",
                points_band="disqualified",
                route=None,
                ledger=(Contribution("neg.bounce", "negative", -25, "Email bounced", "base"),),
            )
        )
    (row,) = csv_rows(out.getvalue())
    assert row["total"] == "-25"
    assert row["score_negative"] == "-25"
    # A category the card has no sub-score for is left empty rather than shown as zero.
    assert row["score_intent"] == ""
    assert row["route_action"] == row["route_queue"] == row["sla_hours"] == ""
    assert row["reasons"] == "'-25 Email bounced"


def test_csv_explain_holds_the_ledger_as_json():
    out = io.StringIO()
    with open_writer("csv", out, explain=True, categories=CATEGORIES) as writer:
        writer.write(card())
    (row,) = csv_rows(out.getvalue())
    assert json.loads(row["ledger"]) == card_to_dict(card(), explain=True)["ledger"]


def test_csv_without_categories_uses_the_first_cards():
    out = io.StringIO()
    with open_writer("csv", out) as writer:
        writer.write(card())
    assert out.getvalue().splitlines()[0].split(",")[6:10] == [
        "score_fit",
        "score_intent",
        "score_readiness",
        "score_negative",
    ]


def test_csv_with_no_cards_is_still_a_header():
    out = io.StringIO()
    open_writer("csv", out, categories=("fit",)).close()
    assert out.getvalue() == "id,total,band,route_action,route_queue,sla_hours,score_fit,reasons,packs\n"


# --- table --------------------------------------------------------------------------------


def test_table_layout():
    out = io.StringIO()
    with open_writer("table", out) as writer:
        writer.write(card())
        writer.write(card(lead_id="L-7", total=-5, band="nurture", route=None, ledger=()))
    assert out.getvalue().splitlines() == [
        "id      total  band     action        held  top reason",
        "------  -----  -------  ------------  ----  ----------------------------",
        "L-1001     72  sql      assign_to_ae        +22 Visited the pricing page",
        "L-7        -5  nurture  -",
    ]


def test_table_shows_sub_scores_and_why_a_gate_held_the_lead():
    held = card(band="mql", points_band="sales_ready",
                gate_notes=("sales_ready not reached despite 84 points: requires a business email",))
    out = io.StringIO()
    with open_writer("table", out, categories=("fit", "intent", "readiness")) as writer:
        writer.write(held)
    assert out.getvalue().splitlines() == [
        "id      total  fit  intent  readiness  band  action        held                                             top reason",
        "------  -----  ---  ------  ---------  ----  ------------  -----------------------------------------------  ----------------------------",
        "L-1001     72   35      37          0  mql   assign_to_ae  held at mql: sales_ready needs a business email  +22 Visited the pricing page",
    ]


def test_table_lines_are_cut_to_the_terminal_width_not_wrapped():
    out = io.StringIO()
    with open_writer("table", out, categories=("fit",), width=40) as writer:
        writer.write(card())
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) == 40
    assert lines[2] == "L-1001     72   35  sql   assign_to_ae …"


def test_table_prints_in_bounded_batches(monkeypatch):
    monkeypatch.setattr(writers, "TABLE_BATCH", 2)
    out = io.StringIO()
    writer = open_writer("table", out)
    for n in range(3):
        writer.write(card(lead_id=f"L-{n}", ledger=()))
        if n == 1:
            # The first batch is out before the third card arrives.
            assert out.getvalue().count("L-") == 2
    writer.close()
    lines = out.getvalue().splitlines()
    assert lines[4] == ""
    assert lines[5].startswith("id ")


def test_table_strips_control_characters():
    out = io.StringIO()
    with open_writer("table", out) as writer:
        writer.write(card(lead_id="L-\x1b[31m1", ledger=()))
    assert "\x1b" not in out.getvalue()


def test_table_explain_lists_the_ledger_under_the_row():
    out = io.StringIO()
    with open_writer("table", out, explain=True) as writer:
        writer.write(card())
    lines = out.getvalue().splitlines()
    assert lines[3] == "    +20 fit fit.title.vp: VP-level title"
    assert lines[5] == "    +22 intent intent.pricing: Visited the pricing page [decay half_life_14d x0.89]"


def test_unknown_output_format():
    with pytest.raises(ConfigurationError) as caught:
        open_writer("xlsx", io.StringIO())
    assert str(caught.value) == "unknown output format 'xlsx'; use one of: jsonl, csv, parquet, table"


# --- rejections ---------------------------------------------------------------------------

REJECTIONS = [
    Rejection(
        "leads.jsonl:2",
        "malformed JSON: Expecting value at column 24; each line must be one JSON object",
    ),
    Rejection(
        "leads.jsonl:5",
        "company.employees: 'lots' is not a whole number; write digits such as 1200",
        "=L-5",
    ),
]


def test_rejections_as_jsonl():
    out = io.StringIO()
    with RejectionWriter(out) as writer:
        for rejection in REJECTIONS:
            writer.write(rejection)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        rejection_to_dict(rejection) for rejection in REJECTIONS
    ]


def test_rejections_as_csv_are_escaped():
    out = io.StringIO()
    with RejectionWriter(out, "csv") as writer:
        for rejection in REJECTIONS:
            writer.write(rejection)
    rows = csv_rows(out.getvalue())
    assert rows[0] == {"where": "leads.jsonl:2", "lead_id": "", "reason": REJECTIONS[0].reason}
    assert rows[1]["lead_id"] == "'=L-5"


def test_unknown_rejection_format():
    with pytest.raises(ConfigurationError, match="unknown rejection format 'table'; use one of: jsonl, csv"):
        RejectionWriter(io.StringIO(), "table")
