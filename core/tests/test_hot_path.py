"""The fast paths scoring takes must mean exactly what the plain code means.

- ``Activities`` (a lead's activities as columns) behaves as the tuple of records it stands for;
- the JSON reader's column fast path builds the same lead as the record-by-record checked path,
  and still gives the checked path's messages for bad activities;
- the generated lead-rule function agrees with ``compile_condition`` on every condition and value;
- ``Activities.inserted`` (how ``ingest`` adds an activity) is the stable sort of the records, and a
  lead written by ``lead_to_dict`` from its columns reads back equal through ``lead_from_json``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
import orjson

from leadscore import Activities, Activity, Lead
from leadscore.backends.python import compile_lead_rules
from leadscore.rulepack.predicates import compile_condition
from leadscore.errors import InputError
from leadscore.io.readers import _activity, _fast_lead, lead_from_dict, lead_from_json, parse_json_line, read_leads
from leadscore.history.store import canonical_json
from leadscore.io.writers import lead_to_dict
from leadscore.model import EMPTY, NO_ACTIVITIES
from leadscore.rulepack.schema import Condition

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SAMPLES = Path(__file__).resolve().parents[2] / "rulepacks" / "samples"


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


# --- the typed JSON fast path vs lead_from_dict ---------------------------------------------------

_texts = st.one_of(st.none(), st.sampled_from(["", "  ", " Acme ", "VP Sales", "ana@ACME.io ", "x\u00e9"]),
                   st.text(max_size=6), st.integers(-3, 3), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False))
_times = st.one_of(st.sampled_from(["2026-11-03T10:00:00Z", "2026-11-01T08:00:00+02:00", "2026-11-02",
                                    "2026-11-02T09:00:00", " 2026-11-02T09:00:00Z", "2026-11-02T09:00:00.5Z",
                                    "yesterday", "", "2026-13-01T00:00:00Z"]),
                   st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                                timezones=st.just(timezone.utc)).map(lambda d: d.isoformat()),
                   st.none(), st.integers(0, 10))
_activity_items = st.one_of(
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["page_view", "demo_request", " page_view", ""]), _texts),
         "at": _times},
        optional={"properties": st.one_of(st.none(), st.just({}), st.just({"url": "/pricing"}), st.just([1])),
                  "id": st.one_of(st.none(), st.sampled_from(["ev-1", "", " ev-2 "]), st.integers(0, 5)),
                  "colour": st.just("red")}),
    st.sampled_from(["page_view", None, 3]),
)
_numbers = st.one_of(st.none(), st.integers(-5, 10**20), st.floats(allow_nan=False, allow_infinity=False),
                     st.sampled_from(["1200", "1200.0", " 12 ", "", "many", "1e3"]), st.booleans())
_company = st.one_of(
    st.none(), st.just({}), st.sampled_from(["Acme", 3, [1]]),
    st.fixed_dictionaries({}, optional={"name": _texts, "domain": st.sampled_from(["Acme.IO", " acme.io ", ""]),
                                        "industry": _texts, "employees": _numbers, "annual_revenue": _numbers,
                                        "country": _texts, "tier": _texts, "size": st.just(3)}),
)
# Property values nest (the typed fast path takes a few levels, deeper ones go the general way) and
# may be integers past 64 bits: both ways must give the same lead.
_property_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    max_leaves=12)

_lead_dicts = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["L-1", " L-2 ", "", "  "]), st.integers(-2, 2), st.none(), st.booleans())},
    optional={
        "email": _texts, "title": _texts, "source": _texts, "first_name": _texts, "last_name": _texts,
        "created_at": _times, "account_id": st.one_of(_texts, st.integers(0, 10**20)),
        "company": _company,
        "fields": st.one_of(st.none(), st.just([1]), st.dictionaries(
            st.sampled_from(["budget_confirmed", "lead_status", "utm"]),
            st.one_of(_texts, st.just([1]), st.just({"a": 1})), max_size=3)),
        "activities": st.one_of(st.none(), st.just("page_view"), st.lists(_activity_items, max_size=5)),
        "colour": st.just("red"),
    },
)


_clean_text = st.one_of(st.none(), st.sampled_from(["Acme", " Acme ", "", "VP Sales"]), st.text(max_size=4))
_utc_times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                          timezones=st.just(timezone.utc)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
_clean_times = st.one_of(_utc_times, _times)


def _mostly(good: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``good`` nine times in ten: enough clean input to exercise the fast path, some to leave it."""
    return st.integers(0, 9).flatmap(lambda i: rare if i == 0 else good)
_clean_lead_dicts = st.fixed_dictionaries(
    {"id": st.sampled_from(["L-1", " L-2 "])},
    optional={
        "email": _clean_text, "title": _clean_text, "source": _clean_text,
        "created_at": _mostly(_utc_times, _times),
        "account_id": st.one_of(st.none(), st.sampled_from(["A-1", " ", "A-2 "]), st.integers(0, 99)),
        "company": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
            "name": _clean_text, "domain": st.sampled_from(["Acme.IO", " acme.io ", ""]),
            "employees": st.one_of(st.none(), st.integers(-1, 10**6)),
            "annual_revenue": st.one_of(st.none(), st.integers(0, 10**9), st.floats(0, 1e12))})),
        "fields": st.dictionaries(st.sampled_from(["budget_confirmed", "lead_status"]),
                                  st.one_of(_clean_text, st.booleans(), st.integers(0, 9)), max_size=2),
        "activities": st.lists(st.fixed_dictionaries(
            {"type": _mostly(st.sampled_from(["page_view", "demo_request", "email_open"]),
                             st.sampled_from(["page_view ", ""])),
             "at": _mostly(_utc_times, _times)},
            optional={"properties": st.one_of(st.none(), st.just({}), st.just({"url": "/pricing"}),
                                              st.dictionaries(st.sampled_from(["url", "n", "deep"]), _property_values,
                                                              max_size=2)),
                      "id": _mostly(st.sampled_from([None, "ev-1", "ev-2"]), st.sampled_from([" ev-3", ""]))}),
            max_size=6),
    },
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_lead_dicts, _clean_lead_dicts))
# Whole numbers past 64 bits: orjson reads them as floats, which the general path refuses as ids
# and rounds as a head count; the fast path must not read them exactly.
@example({"id": "L-1", "account_id": 2**64})
@example({"id": 2**64 + 1})
@example({"id": "L-1", "company": {"employees": 10**30 + 1}})
def test_the_typed_json_fast_path_builds_what_lead_from_dict_builds(d: dict) -> None:
    raw = json.dumps(d).encode()
    try:
        expected = lead_from_dict(parse_json_line(raw.decode()), "leads.jsonl:1")
    except InputError:
        expected = None
    got = _fast_lead(raw, "leads.jsonl:1")
    if got is not None:
        assert got == expected
        assert got.activities.in_time_order()


def test_the_typed_json_fast_path_takes_clean_sample_leads() -> None:
    sample_leads_path = SAMPLES / "leads.jsonl"
    lines = sample_leads_path.read_bytes().splitlines()
    fast = [_fast_lead(line, "x") for line in lines]
    assert sum(lead is not None for lead in fast) >= len(lines) - 2  # the samples are clean exports
    general = [lead_from_dict(orjson.loads(line), "x") for line in lines]
    assert [f for f in fast if f is not None] == [g for f, g in zip(fast, general) if f is not None]
    assert list(read_leads(sample_leads_path)) == general


@pytest.mark.parametrize("line", [
    b'{"id": "L-1", "id": "L-2"}',
    b'{"id": "L-1", "company": {"employees": 12.0}}',
    b'{"id": "L-1", "company": {"employees": "1200"}}',
    b'{"id": "L-1", "account_id": 42, "email": " Ana@Acme.IO "}',
    b'\xef\xbb\xbf{"id": "L-1"}',
    b'{"id": "L-1", "activities": [{"type": "page_view", "at": "2026-11-02T10:00:00+01:00"}]}',
])
def test_the_typed_json_fast_path_agrees_on_edge_lines(line: bytes) -> None:
    got = _fast_lead(line, "x")
    if got is not None:
        assert got == lead_from_dict(orjson.loads(line), "x")


@settings(max_examples=200, deadline=None)
@given(_clean_lead_dicts, st.data())
def test_an_inserted_activity_lands_where_a_stable_sort_puts_it(d: dict, data: st.DataObject) -> None:
    try:
        lead = lead_from_dict(d, "x")
    except InputError:
        return
    # Often at the instant of an existing activity: ties are where the order can go wrong.
    at = data.draw(st.sampled_from([*lead.activities.times, T0]))
    activity = Activity("demo_request", at, data.draw(st.sampled_from([EMPTY, {"url": "/demo"}])),
                        data.draw(st.sampled_from([None, "ev-new"])))
    got = lead.activities.inserted(activity)
    assert got == tuple(sorted([*lead.activities, activity], key=lambda a: a.at))
    assert got.in_time_order() and got.types == [a.type for a in got]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_lead_dicts, _clean_lead_dicts))
@example({"id": "L-1", "activities": [{"type": "page_view", "at": "2026-11-03T10:00:00Z",
                                       "properties": {"url": -(2**63) - 1}}]})
@example({"id": "L-1", "fields": {"score": 2**64}, "company": {"annual_revenue": 1e19}})
def test_a_lead_written_from_its_columns_reads_back_equal(d: dict) -> None:
    try:
        lead = lead_from_dict(d, "x")
    except InputError:
        return
    data = lead_to_dict(lead)
    assert data.get("activities", []) == [
        {"type": a.type, "at": a.at.isoformat(), **({"properties": dict(a.properties)} if a.properties else {}),
         **({"id": a.id} if a.id is not None else {})} for a in lead.activities]
    # As a snapshot is stored: canonical JSON (integers past 64 bits included).
    assert lead_from_json(canonical_json(data).encode(), "x") == lead


# --- activity signals vs counting by hand ---------------------------------------------------------

_KINDS = ("email_open", "page_view", "blog_visit", "pricing_page_visit", "demo_request", "unsubscribe",
          "webinar_attendance", "made_up_type")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.integers(-5 * 86400, 200 * 86400)), max_size=25),
       st.booleans())
def test_activity_signals_match_counting_by_hand(items: list[tuple[str, int]], shuffled: bool) -> None:
    from leadscore.default_plugins.extract.activities import METRICS, extract
    from leadscore.taxonomy.activities import ACTIVITY_TIERS
    from leadscore.model import ExtractContext

    as_of = datetime(2026, 11, 23, tzinfo=timezone.utc)
    records = [Activity(kind, as_of - timedelta(seconds=s)) for kind, s in items]
    lead = Lead("L-1", activities=records if shuffled else sorted(records, key=lambda a: a.at))
    got = {s.name: s for s in extract(lead, ExtractContext(as_of, {}, None))}
    tier_of = {t: tier for tier, types in ACTIVITY_TIERS.items() for t in types}
    past = [a for a in records if a.at <= as_of]
    groups = {f"activity.{k}": [a.at for a in past if a.type == k] for k in _KINDS}
    for tier in (*ACTIVITY_TIERS, "other"):
        groups[f"intent.{tier}"] = [a.at for a in past if tier_of.get(a.type, "other") == tier]
    groups["intent.any"] = [a.at for a in past]
    groups["intent.beyond_email"] = [a.at for a in past if tier_of.get(a.type, "other") not in ("email", "negative")]
    for prefix, times in groups.items():
        if not times:
            assert f"{prefix}.first_at" not in got
            if prefix.startswith("intent."):
                assert got[f"{prefix}.count"].value == 0
            continue
        last = max(times)
        expected = {"count": len(times), "first_at": min(times), "last_at": last,
                    "days_since_last": round((as_of - last).total_seconds() / 86400.0, 3)}
        for days in (7, 30, 90):
            expected[f"count_{days}d"] = sum(t >= as_of - timedelta(days=days) for t in times)
        for metric in METRICS:
            signal = got[f"{prefix}.{metric}"]
            assert signal.value == expected[metric], (prefix, metric)
            assert signal.observed_at == (min(times) if metric == "first_at" else
                                          None if metric.startswith("count_") and not expected[metric] else last)
        assert got[f"{prefix}.count"].evidence.endswith(f"{len(times)} in all, last {last.isoformat()[:10]}")


# --- reused Signal records ----------------------------------------------------------------------------


def test_reused_title_and_source_signals_follow_the_vocabulary() -> None:
    from leadscore.default_plugins.extract import crm as source, title
    from leadscore.model import ExtractContext

    as_of = datetime(2026, 11, 23, tzinfo=timezone.utc)
    lead = Lead("L-1", title="Growth Ninja", source="G2-Crowd")
    plain = ExtractContext(as_of, {}, None)
    custom = ExtractContext(as_of, {"title_seniority": {"director": ["growth ninja"]},
                                    "source_channels": {"g2_crowd": "referral"}}, None)
    for _ in range(2):  # the second round is served from the caches
        assert {s.name: s.value for s in title.extract(lead, plain)}["title.seniority"] == "individual"
        assert {s.name: s.value for s in title.extract(lead, custom)}["title.seniority"] == "director"
        assert {s.name: s.value for s in source.extract(lead, plain)}["lead.channel"] == "other"
        assert {s.name: s.value for s in source.extract(lead, custom)}["lead.channel"] == "referral"
    assert title.extract(lead, custom) == title.extract(Lead("L-2", title="Growth Ninja"), custom)


def test_reused_field_signals_keep_true_and_1_apart() -> None:
    from leadscore.default_plugins.extract import crm as source
    from leadscore.model import ExtractContext

    ctx = ExtractContext(datetime(2026, 11, 23, tzinfo=timezone.utc), {}, None)
    one = source.extract(Lead("L-1", fields={"budget_confirmed": 1}), ctx)
    true = source.extract(Lead("L-2", fields={"budget_confirmed": True}), ctx)
    assert type(one[0].value) is int and type(true[0].value) is bool
    assert (one[0].evidence, true[0].evidence) == ("budget_confirmed=1", "budget_confirmed=True")
    assert source.extract(Lead("L-3", fields={"budget_confirmed": -0.0}), ctx)[0].evidence == "budget_confirmed=-0.0"
