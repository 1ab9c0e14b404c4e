"""Pattern conditions (sequence, absent, at_least): parsing, validation messages and reference semantics.

The semantics are checked twice: on hand-made histories whose expected answer is worked out in
the comments, and against brute-force definitions on generated histories.
"""

from __future__ import annotations

import itertools
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.rulepack.predicates import compile_condition
from leadscore.errors import RulepackErrors
from leadscore.model import Activity
from leadscore.rulepack.loader import parse_rulepacks
from leadscore.rulepack.patterns import AbsentPattern, ActivityIndex, AtLeastPattern, SequencePattern, holds
from leadscore.rulepack.conditions import parse_condition
from leadscore.rulepack.schema import ConditionError, SignalCatalog, describe

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
DAY = timedelta(days=1)

HEADER = """\
[pack]
name = "acme"
version = "1.0.0"

[categories.intent]

[[bands]]
name = "all"
min = 0

"""


@pytest.fixture(scope="module")
def registry():
    pm = PluginManager(entry_points=False)
    return [s for e in pm.get_signal_extractors() for s in e.provides], pm.get_decay_policies()


@pytest.fixture(scope="module")
def catalog(registry) -> SignalCatalog:
    from leadscore.rulepack.loader import base_vocabulary

    return SignalCatalog(registry[0], base_vocabulary([]))


def load(tmp_path: Path, registry, rules: str):
    text = HEADER + textwrap.dedent(rules)
    path = tmp_path / "acme.toml"
    path.write_text(text, encoding="utf-8")
    return parse_rulepacks([(str(path), text)], *registry), str(path)


def errors(tmp_path: Path, registry, rules: str) -> list[str]:
    with pytest.raises(RulepackErrors) as info:
        load(tmp_path, registry, rules)
    return [e.line() for e in info.value.errors]


def rule(when: str, on: str = "") -> str:
    """A rule whose `when` is on line 17 of the file (after HEADER)."""
    return f"""\
        [[rules]]
        id = "intent.p"
        category = "intent"
        points = 5
        reason = "pattern"
        {on}
        when = {when}
        """


# --- parsing ----------------------------------------------------------------------------------------


def test_the_three_patterns_parse_into_records(tmp_path, registry):
    (packs, _), _ = load(tmp_path, registry, rule(
        '{ all = [{ sequence = ["pricing_page_visit", ["demo_request", "contact_sales"]], within_days = 14 },'
        ' { absent = "email_click", after = ["email_open"], within_days = 7 },'
        ' { not = { at_least = 3, of = "email_open", within_days = 30 } }] }'))
    [r] = packs[0].rules
    seq, absent, not_at_least = r.when.children
    assert seq.value == SequencePattern((("pricing_page_visit",), ("demo_request", "contact_sales")), 14 * DAY)
    assert absent.value == AbsentPattern(("email_click",), ("email_open",), 7 * DAY)
    assert not_at_least.children[0].value == AtLeastPattern(3, ("email_open",), 30 * DAY)
    # Implied signals give the ledger line an observed_at; the engine extracts them.
    assert r.signals == ("activity.contact_sales.last_at", "activity.demo_request.last_at",
                         "activity.email_click.last_at", "activity.email_open.last_at",
                         "activity.pricing_page_visit.last_at")
    assert describe(r.when) == ("(sequence pricing_page_visit then (demo_request or contact_sales) within 14 days"
                                " and no email_click within 7 days after email_open"
                                " and not at least 3 email_open in the last 30 days)")


def test_a_pack_may_add_activity_types_for_patterns(tmp_path, registry):
    (packs, _), _ = load(tmp_path, registry, '[vocabulary]\nactivity_types = ["roi_webinar"]\n'
                         + rule('{ at_least = 1, of = "roi_webinar", within_days = 0.5 }'))
    assert packs[0].rules[0].when.value == AtLeastPattern(1, ("roi_webinar",), timedelta(hours=12))


@pytest.mark.parametrize(("when", "line", "message"), [
    ('{ sequence = ["pricing_page_visit", "demo_requst"], within_days = 14 }', 17,
     "unknown activity type 'demo_requst' in `sequence`; did you mean 'demo_request'? declare new types in "
     "[vocabulary] activity_types"),
    ('{ absent = "email_clik", after = "email_open", within_days = 7 }', 17,
     "unknown activity type 'email_clik' in `absent`; did you mean 'email_click'?"),
    ('{ sequence = ["pricing_page_visit"], within_days = 14 }', 17,
     "`sequence` takes a list of 2 to 8 steps (each an activity type or a list of them), not ['pricing_page_visit']"),
    ('{ sequence = ["page_view", []], within_days = 14 }', 17,
     "`sequence` takes an activity type or a non-empty list of them, not []"),
    ('{ sequence = ["page_view", "demo_request"] }', 17,
     "a sequence pattern needs `within_days`, e.g. { sequence = [\"pricing_page_visit\", \"demo_request\"], "
     "within_days = 14 }"),
    ('{ absent = "email_click", within_days = 7 }', 17, "an absent pattern needs `after`"),
    ('{ sequence = ["page_view", "demo_request"], within_days = 0 }', 17,
     "`within_days` must be a number of days above 0 and at most 36500, not 0"),
    ('{ sequence = ["page_view", "demo_request"], within_days = "7" }', 17, "not '7'"),
    ('{ sequence = ["page_view", "demo_request"], within_days = true }', 17, "not True"),
    ('{ sequence = ["page_view", "demo_request"], within_days = inf }', 17, "not inf"),
    ('{ at_least = 0, of = "email_open", within_days = 30 }', 17,
     "`at_least` must be a whole number from 1 to 1000, not 0"),
    ('{ at_least = 2.5, of = "email_open", within_days = 30 }', 17, "not 2.5"),
    ('{ at_least = 2, of = "email_open", within = 30 }', 17,
     "unknown key `within` in an at_least pattern; use at_least, of, within_days"),
    ('{ at_least = 2, of = "email_open", within_days = 30, sequence = ["a", "b"] }', 17,
     "`sequence` and `at_least` cannot share a table"),
    ('{ signal = "email.type", at_least = 2, of = "email_open", within_days = 30 }', 17,
     "an at_least pattern reads activities, not a signal; remove `signal` from it"),
])
def test_invalid_patterns_are_reported_with_file_and_line(tmp_path, registry, when, line, message):
    [error] = errors(tmp_path, registry, rule(when))
    path = str(tmp_path / "acme.toml")
    assert error.startswith(f"{path}:{line}: rule 'intent.p': ")
    assert message in error


def test_a_pattern_in_a_rule_with_on_is_refused(tmp_path, registry):
    [error] = errors(tmp_path, registry, rule('{ at_least = 2, of = "email_open", within_days = 30 }',
                                               on='on = "demo_request"'))
    assert error.endswith("an at_least pattern looks at the lead's whole activity history and cannot be used in "
                          "a rule with `on`; put it in a rule without `on`")


def test_patterns_can_be_refused_where_only_signals_are_known(catalog):
    raw = {"sequence": ["page_view", "demo_request"], "within_days": 3}
    assert parse_condition(raw, catalog).op == "sequence"
    with pytest.raises(ConditionError, match="a sequence pattern can only be used in a rule's `when`"):
        parse_condition({"any": [raw]}, catalog, allow_patterns=False)


def test_a_pattern_evaluated_without_activities_says_so(catalog):
    pred = compile_condition(parse_condition({"at_least": 1, "of": "page_view", "within_days": 3}, catalog))
    with pytest.raises(TypeError, match="needs the lead's activities; patterns can only be used in a rule's"):
        pred({"email.type": "business"})


def test_between_needs_two_values_of_one_kind(tmp_path, registry):
    [error] = errors(tmp_path, registry, rule('{ signal = "fields.plan", between = ["a", 5] }'))
    assert "needs [low, high] of the same kind (two numbers, two date-times or two strings)" in error


# --- semantics on hand-made histories --------------------------------------------------------------


def acts(*items: tuple[str, float]) -> list[Activity]:
    """(type, days before AS_OF); negative days are after AS_OF."""
    return [Activity(t, AS_OF - timedelta(days=d)) for t, d in items]


def check(pattern, events) -> bool:
    return holds(pattern, ActivityIndex(events, AS_OF))


SEQ = SequencePattern((("pricing_page_visit",), ("demo_request",)), 14 * DAY)


@pytest.mark.parametrize(("events", "expected"), [
    ([("pricing_page_visit", 10), ("demo_request", 2)], True),
    ([("demo_request", 10), ("pricing_page_visit", 2)], False),      # wrong order
    ([("pricing_page_visit", 20), ("demo_request", 6)], True),       # exactly 14 days apart: inclusive
    ([("pricing_page_visit", 20), ("demo_request", 5.9)], False),    # 14.1 days apart
    ([("demo_request", 3), ("pricing_page_visit", 3)], True),        # same instant counts, whatever the input order
    ([("pricing_page_visit", 3), ("demo_request", -1)], False),      # the demo is after as_of
    ([("pricing_page_visit", 30), ("pricing_page_visit", 5), ("demo_request", 1)], True),  # a later start fits
])
def test_sequence(events, expected):
    assert check(SEQ, acts(*events)) is expected


def test_sequence_steps_use_distinct_activities_and_may_tie():
    twice = SequencePattern((("page_view",), ("page_view",)), DAY)
    assert check(twice, acts(("page_view", 1))) is False
    assert check(twice, acts(("page_view", 1), ("page_view", 1))) is True
    # Step 2 may be either type; the only pricing visit is needed for step 3, so step 2 must take the demo.
    tricky = SequencePattern((("page_view",), ("pricing_page_visit", "demo_request"), ("pricing_page_visit",)), DAY)
    assert check(tricky, acts(("page_view", 1), ("pricing_page_visit", 0.5), ("demo_request", 0.5))) is True
    assert check(tricky, acts(("page_view", 1), ("pricing_page_visit", 0.5), ("demo_request", 0.4))) is False


ABSENT = AbsentPattern(("email_click",), ("email_open",), 7 * DAY)


@pytest.mark.parametrize(("events", "expected"), [
    ([("email_open", 10)], True),                                   # never clicked
    ([("email_open", 10), ("email_click", 9)], False),
    ([("email_open", 10), ("email_click", 3)], False),              # exactly 7 days later: inclusive
    ([("email_open", 10), ("email_click", 2.9)], True),             # the click came 7.1 days later
    ([("email_open", 10), ("email_click", 3.0000001)], False),      # just inside the 7 days
    ([("email_click", 10), ("email_open", 10)], False),             # a click at the same instant counts
    ([("email_open", 2), ("email_click", -1)], True),               # the click after as_of is ignored
    ([("email_open", 10), ("email_click", 9), ("email_open", 5)], True),  # the second open had no click
    ([("email_open", -2)], False),                                  # the open itself is after as_of
])
def test_absent(events, expected):
    assert check(ABSENT, acts(*events)) is expected


def test_absent_of_the_same_type_ignores_the_activity_itself():
    again = AbsentPattern(("email_open",), ("email_open",), 7 * DAY)
    assert check(again, acts(("email_open", 10))) is True
    assert check(again, acts(("email_open", 10), ("email_open", 8))) is True   # the later one has none after it
    assert check(again, acts(("email_open", 10), ("email_open", 10))) is False


@pytest.mark.parametrize(("events", "expected"), [
    ([("email_open", 1), ("email_open", 2), ("email_open", 30)], True),   # 30 days before as_of: inclusive
    ([("email_open", 1), ("email_open", 2), ("email_open", 30.1)], False),
    ([("email_open", 1), ("email_open", 2), ("email_open", -1)], False),  # after as_of
    ([("email_open", 1), ("email_click", 2), ("email_open", 3)], False),
])
def test_at_least(events, expected):
    assert check(AtLeastPattern(3, ("email_open",), 30 * DAY), acts(*events)) is expected


# --- semantics against brute force --------------------------------------------------------------

TYPES = ("a_type", "b_type", "c_type")
history = st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from((0, 0, 0.5, 1, 1, 2, 3, -1))), max_size=7)
types = st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True).map(tuple)
windows = st.sampled_from((0.5, 1, 2)).map(lambda d: timedelta(days=d))


def _visible(events):
    return [(i, e) for i, e in enumerate(events) if e.at <= AS_OF]


@settings(max_examples=300, deadline=None)
@given(history, st.lists(types, min_size=2, max_size=4), windows)
def test_sequence_matches_brute_force(items, steps, within):
    events = acts(*items)
    pattern = SequencePattern(tuple(steps), within)
    expected = any(
        all(e.type in steps[k] for k, (_, e) in enumerate(chain))
        and all(a.at <= b.at for (_, a), (_, b) in itertools.pairwise(chain))
        and chain[-1][1].at - chain[0][1].at <= within
        for chain in itertools.permutations(_visible(events), len(steps)))
    assert check(pattern, events) is expected


@settings(max_examples=300, deadline=None)
@given(history, types, types, windows)
def test_absent_matches_brute_force(items, absent, after, within):
    events = acts(*items)
    visible = _visible(events)
    expected = any(
        y.type in after and not any(j != i and z.type in absent and y.at <= z.at <= y.at + within
                                    for j, z in visible)
        for i, y in visible)
    assert check(AbsentPattern(absent, after, within), events) is expected


@settings(max_examples=200, deadline=None)
@given(history, st.integers(1, 4), types, windows)
def test_at_least_matches_brute_force(items, count, of, within):
    events = acts(*items)
    expected = sum(1 for _, e in _visible(events) if e.type in of and AS_OF - e.at <= within) >= count
    assert check(AtLeastPattern(count, of, within), events) is expected


# --- through the engine -------------------------------------------------------------------------------


def test_a_pattern_rule_scores_with_the_latest_activity_as_observed_at(tmp_path, make_lead):
    path = tmp_path / "acme.toml"
    path.write_text(HEADER + textwrap.dedent(rule(
        '{ sequence = ["pricing_page_visit", "demo_request"], within_days = 14 }')), encoding="utf-8")
    lead = make_lead(activities=[("pricing_page_visit", 10), ("demo_request", 2), ("demo_request", 40)])
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=[path], as_of=AS_OF) as engine:
        card = engine.score_lead(lead)
        cold = engine.score_lead(make_lead(activities=[("demo_request", 10), ("pricing_page_visit", 2)]))
    [line] = card.ledger
    assert (line.rule_id, line.points, line.observed_at) == ("intent.p", 5, AS_OF - 2 * DAY)
    assert cold.total == 0
