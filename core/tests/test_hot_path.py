"""The fast paths scoring takes must mean exactly what the plain code means.

- ``Activities`` (a lead's activities as columns) behaves as the tuple of records it stands for;
- the JSON reader's column fast path builds the same lead as the record-by-record checked path,
  and still gives the checked path's messages for bad activities;
- the generated lead-rule function agrees with ``compile_condition`` on every condition and value.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore import Activities, Activity, Lead
from leadscore.backends.python import compile_condition, compile_lead_rules
from leadscore.errors import InputError
from leadscore.io.readers import _activity, lead_from_dict
from leadscore.model import EMPTY, NO_ACTIVITIES
from leadscore.rulepack.schema import Condition

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _records() -> tuple[Activity, ...]:
    return (Activity("page_view", T0, {"url": "/pricing"}), Activity("email_open", T0 + timedelta(days=1)),
            Activity("page_view", T0 + timedelta(days=2), EMPTY, "ev-3"))


def test_activities_are_the_tuple_of_their_records() -> None:
    records = _records()
    acts = Activities.of(records)
    assert acts == records and records == acts and len(acts) == 3
    assert list(acts) == list(records) and acts[1] == records[1] and acts[-1].id == "ev-3"
    assert acts.types == ["page_view", "email_open", "page_view"] and acts.times[2] == T0 + timedelta(days=2)
    assert acts.groups() == {"page_view": [0, 2], "email_open": [1]}
    assert acts.properties(0) == {"url": "/pricing"} and acts.properties(1) == EMPTY
    assert Lead("L-1", activities=records).activities == acts
    assert Lead("L-1", activities=list(records)) == Lead("L-1", activities=acts)
    assert Lead("L-1").activities is NO_ACTIVITIES and not Lead("L-1").activities


def test_columns_build_the_same_records_lazily() -> None:
    acts = Activities(["demo_request", "page_view"], [T0, T0], None, None)
    assert acts.record(0) == Activity("demo_request", T0)
    assert tuple(acts) == (Activity("demo_request", T0), Activity("page_view", T0))


def test_by_time_is_a_stable_sort_and_leaves_ordered_input_alone() -> None:
    late, early = Activity("a", T0 + timedelta(days=3)), Activity("b", T0)
    tie = Activity("c", T0)
    acts = Activities.of((late, early, tie))
    assert not acts.in_time_order()
    assert tuple(acts.by_time()) == (early, tie, late)
    ordered = acts.by_time()
    assert ordered.by_time() is ordered


def test_activities_refuse_anything_but_records() -> None:
    with pytest.raises(TypeError, match="Activity records"):
        Lead("L-1", activities=[{"type": "page_view"}])


LEAD = {"id": "L-9", "email": "ana@acme.io"}
RAW = [
    {"type": "page_view", "at": "2026-11-03T10:00:00Z", "properties": {"url": "/pricing"}},
    {"type": "email_open", "at": "2026-11-01T08:00:00Z"},
    {"type": "page_view", "at": "2026-11-03T10:00:00Z", "id": "x-1"},
    {"type": "demo_request", "at": "2026-11-02T00:00:00+02:00"},  # an offset: the checked path
]


@pytest.mark.parametrize("raw", [RAW[:3], RAW, [RAW[1]], []])
def test_the_column_fast_path_builds_what_the_checked_path_builds(raw: list[dict]) -> None:
    lead = lead_from_dict({**LEAD, "activities": raw}, "leads.jsonl:1")
    checked = sorted((_activity(item, "leads.jsonl:1", f"activities[{i}]") for i, item in enumerate(raw)),
                     key=lambda a: a.at)
    assert lead.activities == tuple(checked)
    assert lead.activities.in_time_order()


@pytest.mark.parametrize(("item", "message"), [
    ({"type": "page_view", "at": "yesterday"}, "activities[1].at"),
    ({"type": ["page_view"], "at": "2026-11-03T10:00:00Z"}, "activities[1].type"),
    ({"type": "page_view", "at": "2026-11-03T10:00:00Z", "colour": "red"}, "unknown key 'colour'"),
    ({"type": "page_view", "at": "2026-11-03T10:00:00Z", "properties": [1]}, "activities[1].properties"),
    ("page_view", "activities[1]: "),
    ({"at": "2026-11-03T10:00:00Z"}, "activities[1].type is missing"),
])
def test_bad_activities_still_get_the_checked_paths_message(item: object, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        lead_from_dict({**LEAD, "activities": [RAW[0], item]}, "leads.jsonl:1")


# --- generated lead rules vs compile_condition ----------------------------------------------------

SIGNALS = ("a", "b", "c")
VALUES = st.one_of(
    st.sampled_from((0, 1, 2, -3, 2**53 + 1, True, False, "x", "y", "", T0, T0 + timedelta(days=1))),
    st.sampled_from((0.0, 1.0, 2.5, math.nan, math.inf, -0.0)),
)
COMPARANDS = st.sampled_from((0, 1, 2, 2.5, -3, True, False, "x", "y", T0, math.nan, 1.0))


def _leaf() -> st.SearchStrategy[Condition]:
    signal = st.sampled_from(SIGNALS)
    return st.one_of(
        st.builds(lambda op, s, v: Condition(op, s, v), st.sampled_from(("eq", "ne", "lt", "lte", "gt", "gte")),
                  signal, COMPARANDS),
        st.builds(lambda op, s, vs: Condition(op, s, tuple(vs)), st.sampled_from(("in", "not_in")), signal,
                  st.lists(COMPARANDS, min_size=1, max_size=3)),
        st.builds(lambda s, lo, hi: Condition("between", s, (min(lo, hi), max(lo, hi))), signal,
                  st.sampled_from((0, 1, 2, 2.5)), st.sampled_from((0, 1, 2, 2.5))),
        st.builds(lambda s, v: Condition("exists", s, v), signal, st.booleans()),
    )


conditions = st.recursive(_leaf(), lambda inner: st.one_of(
    st.builds(lambda cs: Condition("all", children=tuple(cs)), st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda cs: Condition("any", children=tuple(cs)), st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda c: Condition("not", children=(c,)), inner),
), max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=5),
       st.dictionaries(st.sampled_from(SIGNALS), VALUES, max_size=3))
def test_generated_lead_rules_agree_with_compile_condition(conds: list[Condition], values: dict) -> None:
    match = compile_lead_rules(list(enumerate(conds)))
    expected = [(i, -1) for i, cond in enumerate(conds) if compile_condition(cond)(values)]
    assert match(values) == expected
