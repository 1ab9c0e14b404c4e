"""The durable adapter: exact encodings, the C engine's limits and the bugs it works around, lifecycle.

Most tests compare DurableMatcher with PythonMatcher (the reference) on rules built directly from
the IR, so they can use comparands and values the rulepack loader would never produce.
"""

from __future__ import annotations

import gc
import math
import re
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from leadscore.backends.python import PythonBackend
from leadscore.errors import ConfigurationError
from leadscore.model import Activity
from leadscore.rulepack.patterns import AbsentPattern, AtLeastPattern, SequencePattern
from leadscore.rulepack.schema import Condition, RuleIR

pytest.importorskip("durable_rules_engine", reason="the durable backend needs durable-rules (Python <= 3.12)")

from leadscore.backends import durable  # noqa: E402

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def backend():
    backend = durable.DurableBackend()
    yield backend
    backend.close()


def pack(*rules: RuleIR) -> tuple[tuple[RuleIR, ...], tuple[str, ...]]:
    """What a backend compiles: the rules and the names of the packs they came from."""
    return rules, ("test",)


def lead_rule(when: Condition, n: int = 0) -> RuleIR:
    return RuleIR(f"r{n}", "fit", 1, "r", "test", when=when)


def activity_rule(on: tuple[str, ...], when: Condition | None = None, n: int = 0) -> RuleIR:
    return RuleIR(f"e{n}", "intent", 1, "e", "test", when=when, on=on)


def both(backend, compiled: tuple[tuple[RuleIR, ...], tuple[str, ...]], cases: list[tuple[dict, list[Activity]]]) -> list[list[tuple[int, int]]]:
    """Match every case with both backends, assert they agree and return python's answers."""
    reference = PythonBackend().compile(*compiled)
    matcher = backend.compile(*compiled)
    try:
        answers = []
        for values, events in cases:
            expected = reference.match(values, events, AS_OF)
            assert matcher.match(values, events, AS_OF) == expected, (values, events)
            answers.append(expected)
        return answers
    finally:
        matcher.close()


# --- availability ----------------------------------------------------------------------------------


def test_another_durable_rules_version_is_refused(monkeypatch):
    monkeypatch.setattr(durable.importlib.metadata, "version", lambda name: "2.0.29")
    with pytest.raises(ConfigurationError, match="written against durable-rules 2.0.28, found 2.0.29"):
        durable.DurableBackend()


# --- names and numbers as the C engine reads them ---------------------------------------------------


def test_the_hash_is_the_one_compiled_into_durable_rules():
    # Constants from durable-rules' rete.c and state.h.
    assert durable.fnv1_32("id") == 926444256
    assert durable.fnv1_32("all") == 321211332
    assert durable.fnv1_32("$eq") == 256037865
    assert durable.fnv1_32("$forward") == 739185624


def test_message_ids_never_share_a_hash():
    ids = durable._IDS.first(70000)[:70000]
    hashes = {durable.fnv1_32(i) for i in ids} | {durable.fnv1_32("a")}
    assert len(hashes) == 70001
    assert durable._IDS.clashes(ids[5], 6) and not durable._IDS.clashes(ids[5], 5)


@pytest.mark.parametrize(("value", "text"), [
    (1e16, "1.0e+16"), (5e-324, "5.0e-324"), (-0.0, "-0.0"), (0.1, "0.1"), (12, "12"), (1.5e300, "1.5e+300"),
])
def test_numbers_are_written_so_the_c_parser_reads_them_back(value, text):
    assert durable._number(value) == text


def test_floats_compare_exactly(backend):
    floats = [1e16, 5e-324, 1.7976931348623157e308, 0.1, -0.0, 1e-7, 123456789.123, -2.5]
    rules = [lead_rule(Condition("eq", "fields.x", f), n) for n, f in enumerate(floats)]
    values = [*floats, *(math.nextafter(f, math.inf) for f in floats), 0, 1]
    answers = both(backend, pack(*rules), [({"fields.x": v}, []) for v in values])
    assert answers[:len(floats)] == [[(n, -1)] if f != 0 else [(4, -1)] for n, f in enumerate(floats)]


# --- the python backend's comparison semantics, kind by kind ------------------------------------------

T1, T2 = AS_OF - 3 * DAY, AS_OF - DAY
COMPARANDS = [1, 1.5, 0, True, False, "1", "a", "é\"\\", T1, 2**53, 10**30, math.inf, math.nan]
VALUES = [1, 1.0, 0, -0.0, 1.5, 2, True, False, "1", "a", "b", "", "é\"\\", "a" * 70000, "é", None, math.nan,
          math.inf, -math.inf, 2**53, 2**53 + 1, 10**30, -(10**30), T1, T2, [1], {"a": 1}, date(2026, 1, 1)]


def comparison_rules() -> list[RuleIR]:
    conditions: list[Condition] = []
    for c in COMPARANDS:
        conditions += [Condition(op, "fields.x", c) for op in ("eq", "ne", "lt", "lte", "gt", "gte")]
    conditions += [Condition(op, "fields.x", options) for op in ("in", "not_in")
                   for options in ((1, "1", True), ("a", "b"), (T1, 1.5, 10**30), (math.nan, 0))]
    conditions += [Condition("between", "fields.x", pair) for pair in
                   ((0, 2), (1.5, 2**53 + 1), ("a", "b"), (T1, T2), (False, True), (-math.inf, 0))]
    conditions += [Condition("exists", "fields.x", flag) for flag in (True, False)]
    conditions += [Condition("eq", "fields.x", [1]), Condition("in", "fields.x", ([1], "a"))]
    negated = [Condition("not", children=(c,)) for c in conditions]
    return [lead_rule(c, n) for n, c in enumerate(conditions + negated)]


def test_every_comparison_agrees_with_the_python_backend_on_every_kind_of_value(backend):
    rules = comparison_rules()
    answers = both(backend, pack(*rules), [({"fields.x": v}, []) for v in VALUES] + [({}, [])])
    # Spot checks of the semantics both share: kinds never mix, a missing signal fails `ne`.

    def hit(op: str, comparand: Any, value: Any) -> bool:
        [index] = [i for i, r in enumerate(rules) if r.when.op == op and type(r.when.value) is type(comparand)
                   and r.when.value == comparand]
        # Look values up by type too: 1 == True == 1.0 to list.index.
        where = next((i for i, v in enumerate(VALUES) if v is value or (type(v) is type(value) and v == value)), -1)
        return (index, -1) in answers[where]

    assert hit("eq", 1, 1.0) and not hit("eq", True, 1) and not hit("eq", 1, True)
    missing = object()  # the last case has no value at all; None is a present value
    assert hit("ne", 1, "1") and hit("ne", 1, math.nan) and hit("ne", 1, None) and not hit("ne", 1, missing)
    assert hit("lt", 10**30, 2**53 + 1) and not hit("lt", 10**30, 10**30) and hit("gt", 2**53, 2**53 + 1)
    assert hit("lt", "a", "") and not hit("lt", "a", "a" * 70000) and not hit("lt", 1, "1")


def test_numbers_without_room_between_comparands_are_evaluated_in_python(backend):
    close = math.nextafter(1.0, math.inf)
    rules = [lead_rule(Condition("lt", "fields.y", 1.0), 0), lead_rule(Condition("gte", "fields.y", close), 1),
             lead_rule(Condition("eq", "fields.y", "1"), 2)]
    matcher = backend.compile(*pack(*rules))
    assert "n" not in matcher.fields["fields.y"].props and len(matcher.lead_derived) == 2
    matcher.close()
    both(backend, pack(*rules), [({"fields.y": v}, []) for v in (1.0, close, 2**60 + 1, -(2**60), "1", 0)])


def test_strings_are_ordered_like_python_strings(backend):
    words = ["", "a", "ab", "b", "é", "😀", "\"", "\\", "Z", "a" * 70000]
    rules = [lead_rule(Condition(op, "fields.s", w), n * 10 + k)
             for n, op in enumerate(("lt", "gte", "eq")) for k, w in enumerate(words)]
    both(backend, pack(*rules), [({"fields.s": w + tail}, []) for w in words for tail in ("", "a", "\u0000")])


def test_regular_expressions_use_the_python_dialect(backend):
    rule = lead_rule(Condition("matches", "title.text", re.compile(r"\d+ (vp|cto)")))
    matcher = backend.compile(*pack(rule))
    assert len(matcher.lead_derived) == 1
    matcher.close()
    answers = both(backend, pack(rule), [({"title.text": t}, []) for t in ("12 vp", "x12 vp", "12 vpx", "d+ vp")])
    assert answers == [[(0, -1)], [], [], []]


# --- the C engine's structural limits -------------------------------------------------------------------


def test_hundreds_of_rules_matching_one_fact(backend):
    # The C engine's alpha network overflows past 64 simultaneous matches under one node.
    rules = [lead_rule(Condition("gte", "company.employees", n), n) for n in range(300)]
    rules += [activity_rule(("page_view",), None, 300 + n) for n in range(100)]
    events = [Activity("page_view", AS_OF - n * DAY) for n in range(3)]
    [answer] = both(backend, pack(*rules), [({"company.employees": 1000}, events)])
    assert len(answer) == 300 + 300


def test_conditions_too_large_for_one_durable_pattern_are_split(backend):
    wide = Condition("all", children=tuple(Condition("ne", f"fields.f{i}", "x") for i in range(20)))
    broad = Condition("any", children=tuple(Condition("not", children=(Condition("eq", f"fields.f{i}", "x"),))
                                            for i in range(24)))
    gated = activity_rule(("page_view",), wide, 2)
    per_event = activity_rule(("page_view",), Condition("all", children=(
        Condition("gte", "event.age_days", 1), *wide.children)), 3)
    compiled = pack(lead_rule(wide, 0), lead_rule(broad, 1), gated, per_event)
    matcher = backend.compile(*compiled)
    assert [plan[0] for _, _, plan in matcher.plans] == ["and", "or", "gate", "and"]
    matcher.close()
    everything = {f"fields.f{i}": "y" for i in range(24)}
    events = [Activity("page_view", AS_OF - d * DAY) for d in (0, 2)]
    answers = both(backend, compiled, [
        (everything, events), ({**everything, "fields.f7": "x"}, events), ({}, events),
        ({f"fields.f{i}": "x" for i in range(24)}, events),
    ])
    assert answers[0] == [(0, -1), (1, -1), (2, 0), (2, 1), (3, 1)]
    assert answers[1] == [(1, -1)]


def test_a_pack_needing_too_many_properties_per_fact_is_refused(backend):
    rules = [lead_rule(Condition("ne", f"fields.f{i}", 1), i) for i in range(130)]
    with pytest.raises(ConfigurationError, match=r"need 264 properties in one durable fact; durable_rules holds "
                                                 r"at most 255; use --engine python"):
        backend.compile(*pack(*rules))


# --- patterns in Rete -----------------------------------------------------------------------------------


def acts(*items: tuple[str, float]) -> list[Activity]:
    return [Activity(t, AS_OF - timedelta(days=d)) for t, d in items]


def test_absent_holds_whatever_order_the_activities_come_in(backend):
    # durable_rules decides a negation when the positive fact arrives; the adapter asserts the
    # facts a negation looks at first, so a click listed after the open still counts.
    rule = lead_rule(Condition("absent", value=AbsentPattern(("email_click",), ("email_open",), 7 * DAY)))
    answers = both(backend, pack(rule), [
        ({}, acts(("email_open", 10), ("email_click", 9))),
        ({}, acts(("email_click", 9), ("email_open", 10))),
        ({}, acts(("email_open", 10), ("email_click", 2))),
    ])
    assert answers == [[], [], [(0, -1)]]


def test_sequence_steps_of_several_types_still_check_the_order(backend):
    # A step that lists several types is an $or group in durable; the C engine used to skip the time
    # tests placed after such a group.
    steps = (("page_view", "pricing_page_visit"), ("page_view", "pricing_page_visit"), ("demo_request",))
    rule = lead_rule(Condition("sequence", value=SequencePattern(steps, 2 * DAY)))
    answers = both(backend, pack(rule), [
        ({}, acts(("page_view", 1), ("pricing_page_visit", 1), ("demo_request", 0.5))),
        ({}, acts(("page_view", 1), ("pricing_page_visit", 1), ("demo_request", 1.5))),
        ({}, acts(("page_view", 0), ("page_view", 0), ("page_view", 1))),
    ])
    assert answers == [[(0, -1)], [], []]


def test_at_least_with_most_activities_outside_the_window(backend):
    # Failing the last join test of a pattern made the C engine read past its expression list.
    rule = lead_rule(Condition("at_least", value=AtLeastPattern(3, ("email_open",), 10 * DAY)))
    history = acts(*[("email_open", d) for d in range(0, 60, 4)])  # 0, 4 and 8 days ago are in the window
    answers = both(backend, pack(rule), [({}, history), ({}, history[3:])])
    assert answers == [[(0, -1)], []]


# --- lifecycle -----------------------------------------------------------------------------------------------


def test_closing_deletes_rulesets_and_a_closed_matcher_refuses_work():
    gc.collect()
    before = durable.live_rulesets()
    backend = durable.DurableBackend()
    first = backend.compile(*pack(lead_rule(Condition("exists", "email.type", True))))
    second = backend.compile(*pack(lead_rule(Condition("exists", "email.type", False))))
    assert (backend.live_rulesets, durable.live_rulesets()) == (2, before + 2)
    assert first.match({"email.type": "business"}, [], AS_OF) == [(0, -1)]
    assert first.live_sessions == 0
    first.close()
    first.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.match({}, [], AS_OF)
    backend.close()
    assert second.closed
    assert (backend.live_rulesets, durable.live_rulesets()) == (0, before)


def test_a_matcher_dropped_without_close_frees_its_ruleset(backend):
    gc.collect()
    before = durable.live_rulesets()
    matcher = backend.compile(*pack(lead_rule(Condition("exists", "email.type", True))))
    assert durable.live_rulesets() == before + 1
    del matcher
    gc.collect()
    assert durable.live_rulesets() == before


def test_threads_sharing_a_matcher_get_the_sequential_answers(backend):
    rules = [lead_rule(Condition("gte", "company.employees", n * 10), n) for n in range(20)]
    rules.append(activity_rule(("page_view",), Condition("gte", "event.age_days", 2), 20))
    matcher = backend.compile(*pack(*rules))
    cases = [({"company.employees": n}, acts(*[("page_view", d) for d in range(n % 5)])) for n in range(0, 200, 3)]
    expected = [matcher.match(v, e, AS_OF) for v, e in cases]
    results: dict[int, list[Any]] = {}

    def work(k: int) -> None:
        results[k] = [matcher.match(v, e, AS_OF) for _ in range(5) for v, e in cases]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    matcher.close()
    assert all(r == expected * 5 for r in results.values())
