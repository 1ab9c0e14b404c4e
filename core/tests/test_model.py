"""Records: every attrs class in leadscore.model is frozen and slotted; ScoreCard helpers order reasons."""

from __future__ import annotations

from datetime import date, datetime, timezone
import inspect
from importlib.resources import files

import attrs
import pytest
from attrs.exceptions import FrozenInstanceError
from hypothesis import given
from hypothesis import strategies as st

from leadscore import model
from leadscore.model import RollupStrategy
from leadscore.model import (
    Activity,
    Company,
    Contribution,
    DecayPolicy,
    ExtractContext,
    Lead,
    Ledger,
    Rejection,
    Route,
    RulepackSource,
    ScoreCard,
    ScoreLine,
    Scorer,
    Signal,
    SignalExtractor,
    SignalSpec,
    day_text,
    evolve,
)

WHEN = datetime(2026, 11, 23, tzinfo=timezone.utc)


def _card(ledger: tuple[Contribution, ...] = (), **changes) -> ScoreCard:
    total = sum(c.points for c in ledger)
    card = ScoreCard("L-1", WHEN, total, (("fit", total),), "early", "early", (), None, ledger,
                     (("firr-base", "1.0.0"),))
    return evolve(card, **changes) if changes else card


# One realistic instance per record class; the first attribute of each is the one we try to assign.
SAMPLES = {
    Company: Company(name="Acme", domain="acme.io", employees=1200),
    Activity: Activity("pricing_page_visit", WHEN, {"url": "/pricing"}),
    Lead: Lead("L-1", email="dana@acme.io", title="VP Marketing"),
    Signal: Signal("title.seniority", "vp", None, "VP Marketing"),
    Contribution: Contribution("fit.title.vp", "fit", 20, "VP-level title", "firr-base"),
    Route: Route("sdr_follow_up", "sdr", 24),
    ScoreCard: _card(),
    Rejection: Rejection("leads.jsonl:3", "missing id"),
    SignalSpec: SignalSpec("email.type", "str"),
    ExtractContext: ExtractContext(WHEN),
    SignalExtractor: SignalExtractor("crm", lambda lead, ctx: ()),
    RulepackSource: RulepackSource("firr-base", files("leadscore") / "rulepacks" / "firr-base.toml"),
    ScoreLine: ScoreLine("acme.phone", "fit", 5, "Gave a phone number"),
    Scorer: Scorer("acme-phone", lambda lead, signals, ctx: ()),
    DecayPolicy: DecayPolicy("cliff", lambda params: (lambda age: 1.0)),
    RollupStrategy: RollupStrategy("best_one", lambda contacts, params: (contacts[0].total, [])),
}


def test_every_record_class_has_a_sample():
    # A new record added to model.py must be added to SAMPLES, so the frozen/slotted checks cover it.
    record_classes = {obj for obj in vars(model).values()
                      if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == model.__name__}
    assert record_classes == set(SAMPLES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_records_are_frozen(cls):
    record = SAMPLES[cls]
    first = attrs.fields(cls)[0].name
    with pytest.raises(FrozenInstanceError):
        setattr(record, first, getattr(record, first))


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_records_are_slotted(cls):
    record = SAMPLES[cls]
    assert "__slots__" in cls.__dict__
    assert not hasattr(record, "__dict__")
    # Slotted and frozen: an unknown attribute can be neither added nor assigned.
    with pytest.raises((FrozenInstanceError, AttributeError)):
        record.not_a_field = 1


def test_evolve_returns_a_copy_and_leaves_the_original_alone():
    lead = SAMPLES[Lead]
    changed = evolve(lead, title="CMO")
    assert changed.title == "CMO"
    assert lead.title == "VP Marketing"
    assert changed.id == lead.id and changed is not lead


def test_lead_defaults_are_empty_and_not_shared_mutably():
    a, b = Lead("L-1"), Lead("L-2")
    assert a.activities == () and a.fields == {} and a.company == Company()
    # A plugin writing into one lead's default `fields` must not change every other lead: the
    # default mapping should be read-only (TypeError) or private to the record.
    try:
        a.fields["budget_confirmed"] = True  # type: ignore[index]
    except TypeError:
        pass
    try:
        seen_by_other_lead = dict(b.fields)
        seen_by_new_activity = dict(Activity("page_view", WHEN).properties)
    finally:
        if isinstance(a.fields, dict):  # undo the leak so later tests see clean defaults
            a.fields.pop("budget_confirmed", None)
    assert seen_by_other_lead == {}
    assert seen_by_new_activity == {}


def _line(rule_id: str, points: int, kind: str = "rule", reason: str | None = None) -> Contribution:
    return Contribution(rule_id, "fit", points, reason or f"reason for {rule_id}", "firr-base", kind)


def test_top_reasons_orders_by_absolute_points_then_rule_id():
    ledger = (
        _line("fit.title.vp", 20, reason="VP-level title"),
        _line("negative.email.personal", -15, reason="Personal email"),
        _line("fit.company.size", 15, reason="100+ employees"),
        _line("fit.industry.target", 10, reason="Target industry"),
        _line("intent.pricing", 22, reason="Looked at pricing"),
    )
    card = _card(ledger)
    # |22| > |20| > |-15| == |15| (tie broken by rule id: fit.company.size < negative.email.personal) > |10|.
    assert card.top_reasons(4) == [
        "+22 Looked at pricing",
        "+20 VP-level title",
        "+15 100+ employees",
        "-15 Personal email",
    ]
    assert card.top_reasons() == card.top_reasons(4)[:3]


def test_top_reasons_skips_caps_and_zero_point_lines():
    ledger = (
        _line("fit.title.vp", 20, reason="VP-level title"),
        _line("cap.fit", -40, kind="category_cap", reason="Fit capped"),
        _line("intent.email-open", 0, kind="frequency_cap", reason="2 earlier not counted"),
        _line("intent.webinar-registration", 0, reason="Registered long ago (fully decayed)"),
        _line("fit.region.core", 5, reason="Core region"),
    )
    assert _card(ledger).top_reasons(10) == ["+20 VP-level title", "+5 Core region"]


def test_top_reasons_on_an_empty_ledger():
    assert _card(()).top_reasons() == []


def test_subscore_map():
    card = _card((), subscores=(("fit", 50), ("intent", 19), ("negative", -15)))
    assert card.subscore_map == {"fit": 50, "intent": 19, "negative": -15}


@given(st.datetimes(timezones=st.just(timezone.utc)) | st.datetimes())
def test_day_text_is_the_iso_day_of_the_value(value):
    assert day_text(value) == value.isoformat()[:10]
    assert day_text(value.date()) == value.isoformat()[:10]


def test_day_text_pads_early_years_and_stays_bounded():
    assert day_text(datetime(987, 3, 4, tzinfo=timezone.utc)) == "0987-03-04"
    start = date(2000, 1, 1).toordinal()
    for offset in range(5000):
        day_text(date.fromordinal(start + offset))
    assert model._ordinal_text.cache_info().currsize <= 4096


def test_ledger_top_reasons_agree_for_ledger_lines_and_records():
    records = (
        _line("fit.title.vp", 20, reason="VP-level title"),
        _line("negative.email.personal", -15, reason="Personal email"),
        _line("cap.fit", -40, kind="category_cap", reason="Fit capped"),
        _line("fit.company.size", 15, reason="100+ employees"),
        _line("intent.webinar", 0, reason="Registered long ago"),
    )
    raw = [attrs.astuple(c, recurse=False) for c in records]
    expected = ["+20 VP-level title", "+15 100+ employees", "-15 Personal email"]
    assert Ledger(raw).top_reasons(5) == expected
    assert Ledger(records).top_reasons(5) == expected
    assert _card(records).top_reasons(5) == expected
    assert _card(Ledger(raw)).top_reasons(2) == expected[:2]


def test_lead_init_converts_activities_and_keeps_defaults():
    acts = [Activity("page_view", WHEN), Activity("demo_request", WHEN)]
    lead = Lead("L1", activities=acts)
    assert type(lead.activities).__name__ == "Activities" and lead.activities == tuple(acts)
    assert Lead("L2").activities == () and Lead("L2").company == Company() and Lead("L2").fields == {}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'id'"):
        Lead()


def test_ledger_line_positions_follow_contribution_fields():
    names = ["RULE_ID", "CATEGORY", "POINTS", "REASON", "PACK", "KIND", "RAW_POINTS", "DECAY", "DECAY_FACTOR",
             "SIGNAL", "OBSERVED_AT", "EVIDENCE"]
    assert [f.name.upper() for f in attrs.fields(Contribution)] == names
    assert [getattr(model, name) for name in names] == list(range(len(names)))
