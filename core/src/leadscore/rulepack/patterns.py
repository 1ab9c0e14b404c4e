"""Pattern conditions: ``sequence``, ``absent`` and ``at_least`` over a lead's activity history,
and ``same_account`` over the contacts of the lead's account.

This module parses and validates them and holds the activity patterns' reference semantics: the
python backend evaluates them with :func:`holds`, and the durable backend must agree with it
exactly. ``same_account`` is evaluated in two steps: the account pass runs its ``where`` condition
on every contact (with the run's backend) and counts the distinct contacts that meet it per
account; the lead's rule then compares that count, a derived ``account.same_account.*`` signal.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from collections.abc import Sequence as Seq
from datetime import datetime, timedelta, timezone
from typing import Any

from attrs import frozen

from leadscore.model import Activities
from leadscore.rulepack.schema import Condition, ConditionError, SignalCatalog, describe

MAX_STEPS = 8
MAX_SAME_ACCOUNT = 100
SAME_ACCOUNT_PREFIX = "account.same_account."
MAX_WINDOW_DAYS = 36500
MAX_AT_LEAST = 1000
PATTERN_KEYS: dict[str, tuple[str, ...]] = {
    "sequence": ("sequence", "within_days"),
    "absent": ("absent", "after", "within_days"),
    "at_least": ("at_least", "of", "within_days"),
    "same_account": ("same_account", "where"),
}
_EXAMPLES = {
    "sequence": '{ sequence = ["pricing_page_visit", "demo_request"], within_days = 14 }',
    "absent": '{ absent = "email_click", after = "email_open", within_days = 7 }',
    "at_least": '{ at_least = 3, of = "email_open", within_days = 30 }',
    "same_account": '{ same_account = 3, where = { signal = "intent.beyond_email.count_90d", gte = 1 } }',
}
# Windows that run past the last representable instant simply have no end.
_END_OF_TIME = datetime.max.replace(tzinfo=timezone.utc)


def _days(days: timedelta) -> str:
    value = days / timedelta(days=1)
    return f"{value:g} day{'' if value == 1 else 's'}"


def _types_text(types: tuple[str, ...]) -> str:
    return types[0] if len(types) == 1 else "(" + " or ".join(types) + ")"


def _last_at(types: Iterable[str]) -> set[str]:
    # The latest activity of a referenced type dates the match, so decay has an observed_at.
    return {f"activity.{t}.last_at" for t in types}


@frozen
class SequencePattern:
    """Activities of ``steps[0]``, then ``steps[1]``... (same time or later), all within ``within`` of the first."""

    steps: tuple[tuple[str, ...], ...]
    within: timedelta

    def types(self) -> tuple[str, ...]:
        return tuple(sorted({t for step in self.steps for t in step}))

    def signals(self) -> set[str]:
        return _last_at(self.types())

    def describe(self) -> str:
        return f"sequence {' then '.join(_types_text(s) for s in self.steps)} within {_days(self.within)}"


@frozen
class AbsentPattern:
    """An ``after`` activity at t with no other ``absent`` activity in [t, t + within] (up to as_of)."""

    absent: tuple[str, ...]
    after: tuple[str, ...]
    within: timedelta

    def types(self) -> tuple[str, ...]:
        return tuple(sorted({*self.absent, *self.after}))

    def signals(self) -> set[str]:
        return _last_at(self.types())

    def describe(self) -> str:
        return f"no {_types_text(self.absent)} within {_days(self.within)} after {_types_text(self.after)}"


@frozen
class AtLeastPattern:
    """``count`` or more activities of the ``of`` types in the ``within`` before as_of."""

    count: int
    of: tuple[str, ...]
    within: timedelta

    def types(self) -> tuple[str, ...]:
        return self.of

    def signals(self) -> set[str]:
        return _last_at(self.of)

    def describe(self) -> str:
        return f"at least {self.count} {_types_text(self.of)} in the last {_days(self.within)}"


@frozen
class SameAccountPattern:
    """``count`` or more distinct contacts of the lead's account (the lead included) meet ``where``.

    ``signal`` names the derived account signal that holds the number of such contacts (counted up
    to ``MAX_SAME_ACCOUNT``); it is the same for every rule with an identical ``where``.
    """

    count: int
    where: Condition
    signal: str

    def types(self) -> tuple[str, ...]:
        return ()

    def signals(self) -> set[str]:
        return {self.signal}

    def describe(self) -> str:
        return f"at least {self.count} contact{'' if self.count == 1 else 's'} of the account with {describe(self.where)}"


Pattern = SequencePattern | AbsentPattern | AtLeastPattern


# --- parsing ----------------------------------------------------------------------------------


def article(op: str) -> str:
    """'a sequence', 'an absent': the pattern's name with its article, for messages."""
    return f"an {op}" if op[0] in "aeiou" else f"a {op}"


def pattern_op(raw: Mapping[str, Any]) -> str | None:
    """The pattern operator a condition table names, if any."""
    found = [op for op in PATTERN_KEYS if op in raw]
    return found[0] if found else None


def same_account_signal(where: Condition) -> str:
    """The derived account signal for a ``where`` condition: identical conditions share it."""
    return SAME_ACCOUNT_PREFIX + hashlib.sha1(repr(where).encode()).hexdigest()[:12]


def parse_pattern(raw: Mapping[str, Any], catalog: SignalCatalog,
                  parse_where: Callable[[Any], Condition] | None = None) -> Condition:
    """Validate a pattern table and return its Condition (``op`` is the pattern kind).

    ``parse_where`` parses a ``same_account`` pattern's ``where`` (the condition parser, handed
    in so that this module does not depend on it).
    """
    op = pattern_op(raw)
    assert op is not None
    activity_types = catalog.vocabulary.get("activity_types", ())
    others = [o for o in PATTERN_KEYS if o in raw and o != op]
    if others:
        raise ConditionError(f"`{op}` and `{others[0]}` cannot share a table; write two conditions and combine "
                             f"them with all / any", others[0])
    allowed = PATTERN_KEYS[op]
    for key in raw:
        if key not in allowed:
            raise ConditionError(f"unknown key `{key}` in {article(op)} pattern; use {', '.join(allowed)}, e.g. "
                                 f"{_EXAMPLES[op]}", key)
    for key in allowed:
        if key not in raw:
            raise ConditionError(f"{article(op)} pattern needs `{key}`, e.g. {_EXAMPLES[op]}", op)
    if op == "same_account":
        if parse_where is None:
            raise ConditionError("same_account needs a condition parser for its `where`", op)
        return _same_account(raw, parse_where)
    within = _window(raw["within_days"])
    if op == "sequence":
        steps = raw["sequence"]
        if not isinstance(steps, list) or not 2 <= len(steps) <= MAX_STEPS:
            raise ConditionError(f"`sequence` takes a list of 2 to {MAX_STEPS} steps (each an activity type or a "
                                 f"list of them), not {steps!r}", "sequence")
        parsed = tuple(_types(step, "sequence", activity_types) for step in steps)
        return Condition("sequence", value=SequencePattern(parsed, within))
    if op == "absent":
        return Condition("absent", value=AbsentPattern(_types(raw["absent"], "absent", activity_types),
                                                       _types(raw["after"], "after", activity_types), within))
    count = raw["at_least"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_AT_LEAST:
        raise ConditionError(f"`at_least` must be a whole number from 1 to {MAX_AT_LEAST}, not {count!r}", "at_least")
    return Condition("at_least", value=AtLeastPattern(count, _types(raw["of"], "of", activity_types), within))


def _same_account(raw: Mapping[str, Any], parse_where: Callable[[Any], Condition]) -> Condition:
    count = raw["same_account"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SAME_ACCOUNT:
        raise ConditionError(f"`same_account` must be a whole number of contacts from 1 to {MAX_SAME_ACCOUNT}, "
                             f"not {count!r}", "same_account")
    where = parse_where(raw["where"])
    for name in sorted(where.signals()):
        if name.startswith("account."):
            raise ConditionError(f"`where` describes one contact and cannot read {name!r} (a signal of the whole "
                                 f"account); use the contact's own signals", name)
    return Condition("same_account", value=SameAccountPattern(count, where, same_account_signal(where)))


def _window(value: Any) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= MAX_WINDOW_DAYS:
        raise ConditionError(f"`within_days` must be a number of days above 0 and at most {MAX_WINDOW_DAYS}, "
                             f"not {value!r}", "within_days")
    return timedelta(days=value)


def _types(value: Any, key: str, known: Collection[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
        raise ConditionError(f"`{key}` takes an activity type or a non-empty list of them, not {value!r}", key)
    for t in items:
        if t not in known:
            close = difflib.get_close_matches(t, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConditionError(f"unknown activity type {t!r} in `{key}`; {hint}declare new types in "
                                 f"[vocabulary] activity_types", t)
    return tuple(dict.fromkeys(items))


# --- reference semantics ----------------------------------------------------------------------


class ActivityIndex:
    """A lead's activities at or before ``as_of``, by type and in time order (built once per lead).

    A type's activities are picked out and sorted on first use, so a lead pays only for the types
    its patterns look at (the lead's grouping by type is its own, built once and shared).
    """

    __slots__ = ("as_of", "_positions", "_at", "_entries", "_times")

    def __init__(self, events: Seq[Any], as_of: datetime) -> None:
        self.as_of = as_of
        if isinstance(events, Activities):
            self._positions = events.groups()
            self._at = events.times
        else:
            positions: dict[str, list[int]] = {}
            for index, event in enumerate(events):
                positions.setdefault(event.type, []).append(index)
            self._positions = positions
            self._at = [event.at for event in events]
        self._entries: dict[str, list[tuple[datetime, int]]] = {}
        self._times: dict[str, list[datetime]] = {}

    def entries(self, kind: str) -> list[tuple[datetime, int]]:
        """(time, activity index) of one type, oldest first."""
        found = self._entries.get(kind)
        if found is None:
            at, as_of = self._at, self.as_of
            found = self._entries[kind] = sorted((at[i], i) for i in self._positions.get(kind, ()) if at[i] <= as_of)
        return found

    def times(self, kind: str) -> list[datetime]:
        found = self._times.get(kind)
        if found is None:
            found = self._times[kind] = [at for at, _ in self.entries(kind)]
        return found

    def count(self, types: Iterable[str], lo: datetime | None, hi: datetime) -> int:
        """How many activities of ``types`` lie in [lo, hi] (no lower bound when ``lo`` is None)."""
        total = 0
        for t in types:
            if t in self._positions:
                times = self.times(t)
                start = 0 if lo is None else bisect.bisect_left(times, lo)
                total += bisect.bisect_right(times, hi) - start
        return total


def _plus(at: datetime, span: timedelta) -> datetime:
    try:
        return at + span
    except OverflowError:
        return _END_OF_TIME


def holds(pattern: Pattern, index: ActivityIndex) -> bool:
    """Whether ``pattern`` holds for the activities in ``index`` (the reference semantics)."""
    if isinstance(pattern, AtLeastPattern):
        try:
            lo = index.as_of - pattern.within
        except OverflowError:
            lo = None
        return index.count(set(pattern.of), lo, index.as_of) >= pattern.count
    if isinstance(pattern, AbsentPattern):
        absent = set(pattern.absent)
        for t in set(pattern.after):
            for at, _ in index.entries(t):
                others = index.count(absent, at, _plus(at, pattern.within)) - (t in absent)
                if others == 0:
                    return True
        return False
    return _sequence(pattern, index)


def _sequence(pattern: SequencePattern, index: ActivityIndex) -> bool:
    """Is there a chain of distinct activities, one per step, in time order and within the window?

    For a given previous step, some earliest candidate of the next step can always replace a later
    one in a solution, so only the earliest candidates are tried; among candidates at that same
    instant only the activity type matters for the remaining steps, so one per type is tried.
    """
    steps = [sorted((at, i, t) for t in set(step) for at, i in index.entries(t)) for step in pattern.steps]
    if any(not s for s in steps):
        return False

    def extend(k: int, prev: datetime, limit: datetime, used: frozenset[int]) -> bool:
        if k == len(steps):
            return True
        candidates = steps[k]
        pos = bisect.bisect_left(candidates, (prev,))
        first: datetime | None = None
        tried: set[str] = set()
        for at, i, t in candidates[pos:]:
            if at > limit or (first is not None and at != first):
                break
            if i in used or t in tried:
                continue
            first = at
            tried.add(t)
            if extend(k + 1, at, limit, used | {i}):
                return True
        return False

    seen: set[tuple[datetime, str]] = set()
    for at, i, t in steps[0]:
        if (at, t) in seen:
            continue
        seen.add((at, t))
        if extend(1, at, _plus(at, pattern.within), frozenset((i,))):
            return True
    return False
