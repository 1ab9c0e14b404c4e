"""Parse a rulepack condition table into a Condition, checking signals, operators and value types.

Leaves compare one signal; ``all`` / ``any`` / ``not`` combine; pattern tables (sequence, absent,
at_least, same_account) are validated by :mod:`leadscore.rulepack.patterns`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from typing import Any

from leadscore.model import SignalSpec
from leadscore.rulepack import patterns
from leadscore.rulepack.regex import Regex, RegexError
from leadscore.rulepack.schema import (
    BOOL_OPS,
    EVENT_PREFIX,
    EVENT_SIGNALS,
    LEAF_OPS,
    ORDER_OPS,
    Condition,
    ConditionError,
    SignalCatalog,
)

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, datetime),
    "list": lambda v: isinstance(v, list),
    "any": lambda v: isinstance(v, (str, int, float, bool, datetime)),
}
_TYPE_WORDS = {"str": "a string", "int": "a whole number", "number": "a number", "bool": "true or false",
               "datetime": "a TOML date-time such as 2026-11-01T00:00:00Z", "list": "a list", "any": "a value"}


def _normalise_value(value: Any) -> Any:
    """TOML dates become UTC datetimes; naive date-times are taken as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, list):
        return [_normalise_value(v) for v in value]
    return value


# all / any / not nest at most this deep: every backend walks conditions recursively, and no
# review would pass a deeper one (docs/rulepacks.md, Limits).
MAX_CONDITION_DEPTH = 32


def parse_condition(raw: Any, catalog: SignalCatalog, *, allow_event: bool = False,
                    allow_patterns: bool = True, allow_account: bool = True, depth: int = 1) -> Condition:
    """Turn a TOML condition table into a Condition, checking signals, operators and value types.

    ``allow_event``: the condition belongs to a rule with ``on`` and may read ``event.*``.
    Patterns need the lead's whole activity history, so they are refused there and wherever
    ``allow_patterns`` is false (conditions evaluated over signals alone). ``same_account`` reads
    the account pass's results; ``allow_account`` false refuses it (``applies_when``, and inside
    ``same_account`` itself).
    """
    if depth > MAX_CONDITION_DEPTH:
        raise ConditionError(f"the condition nests all / any / not more than {MAX_CONDITION_DEPTH} levels deep; "
                             f"flatten it (all = [a, all = [b, c]] is all = [a, b, c])")
    flags = {"allow_event": allow_event, "allow_patterns": allow_patterns, "allow_account": allow_account,
             "depth": depth + 1}

    def children(items: list[Any]) -> tuple[Condition, ...]:
        # Every child is parsed, so `check` reports each problem of a rule, not only the first.
        parsed, problems = [], []
        for item in items:
            try:
                parsed.append(parse_condition(item, catalog, **flags))
            except ConditionError as err:
                problems.append(err)
        if problems:
            raise ConditionError.several(problems)
        return tuple(parsed)

    if isinstance(raw, list):
        return Condition("all", children=children(raw))
    if not isinstance(raw, dict):
        raise ConditionError(f"a condition must be a table such as {{ signal = \"email.type\", eq = \"business\" }}, "
                             f"not {raw!r}")
    keys = set(raw)
    combos = keys & set(BOOL_OPS)
    if combos:
        if len(keys) != 1:
            raise ConditionError(f"`{sorted(combos)[0]}` must be alone in its table; found {sorted(keys)}")
        op = combos.pop()
        body = raw[op]
        if op == "not":
            return Condition("not", children=(parse_condition(body, catalog, **flags),))
        if not isinstance(body, list) or not body:
            raise ConditionError(f"`{op}` takes a non-empty list of conditions")
        return Condition(op, children=children(body))
    pattern = patterns.pattern_op(raw)
    if pattern == "same_account":
        if "signal" in raw:
            raise ConditionError("a same_account condition counts contacts, it has no `signal`; put the contact's "
                                 "condition in `where`", "signal")
        if not allow_account:
            raise ConditionError("same_account can only be used in a rule's `when` or a band's `requires` (not in "
                                 "applies_when, nor inside another same_account)", "same_account")
        return patterns.parse_pattern(
            raw, catalog, parse_where=lambda where: parse_condition(where, catalog, allow_account=False, depth=depth + 1))
    if pattern is not None:
        name = patterns.article(pattern)
        if "signal" in raw:
            raise ConditionError(f"{name} pattern reads activities, not a signal; remove `signal` from it", pattern)
        if allow_event:
            raise ConditionError(f"{name} pattern looks at the lead's whole activity history and cannot be used "
                                 f"in a rule with `on`; put it in a rule without `on`", pattern)
        if not allow_patterns:
            raise ConditionError(f"{name} pattern can only be used in a rule's `when`", pattern)
        return patterns.parse_pattern(raw, catalog)
    if "signal" not in raw:
        raise ConditionError(f"condition {raw!r} has no `signal`; write {{ signal = \"...\", <op> = ... }}, "
                             f"a pattern (sequence, absent, at_least, same_account) or combine conditions with "
                             f"all / any / not")
    signal = raw["signal"]
    if not isinstance(signal, str):
        raise ConditionError(f"`signal` must be a string, not {signal!r}")
    ops = [k for k in raw if k != "signal"]
    if len(ops) != 1 or ops[0] not in LEAF_OPS:
        bad = [k for k in ops if k not in LEAF_OPS]
        what = f"unknown operator `{bad[0]}`" if bad else f"{len(ops)} operators"
        raise ConditionError(f"condition on {signal!r} has {what}; use exactly one of {', '.join(LEAF_OPS)}", signal)
    op = ops[0]
    value = _normalise_value(raw[op])
    if signal.startswith(EVENT_PREFIX):
        if not allow_event:
            raise ConditionError(f"signal {signal!r} describes one activity and only works in a rule with `on = ...`",
                                 signal)
        spec_type = {name: kind for name, kind, _ in EVENT_SIGNALS}.get(signal, "any")
        spec = SignalSpec(signal, spec_type)
    else:
        spec, problem = catalog.lookup(signal)
        if spec is None:
            raise ConditionError(problem, signal)
    _check_value(op, value, spec, signal)
    if op == "matches":
        try:
            value = Regex(value)
        except RegexError as err:
            raise ConditionError(f"invalid regex {_short(raw[op])} for {signal!r}: {err.why}; {err.fix}", signal) from None
    if op in ("in", "not_in"):
        value = tuple(value)
    if op == "between":
        value = (value[0], value[1])
    return Condition(op, signal, value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _check_value(op: str, value: Any, spec: SignalSpec, signal: str) -> None:
    stype = spec.type
    check = _TYPE_CHECKS.get(stype, _TYPE_CHECKS["any"])

    def fail(expected: str) -> None:
        raise ConditionError(f"`{op}` on {signal!r} ({stype}) needs {expected}, not {value!r}", signal)

    if op == "exists":
        if not isinstance(value, bool):
            fail("true or false")
        return
    if op == "matches":
        if stype not in ("str", "any") or not isinstance(value, str):
            fail("a regular expression string (and a string signal)")
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            fail("a non-empty list")
        for item in value:
            if not check(item):
                fail(f"a list of {_TYPE_WORDS.get(stype, stype)}")
        _check_enum(spec, value, signal)
        return
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(check(v) for v in value)):
            fail(f"[low, high], two of {_TYPE_WORDS.get(stype, stype)}")
        if _kind_word(value[0]) != _kind_word(value[1]):
            fail("[low, high] of the same kind (two numbers, two date-times or two strings)")
        if stype not in ("int", "number", "datetime", "any") or value[0] > value[1]:
            fail("[low, high] with low <= high on a number or date-time signal")
        return
    if op in ORDER_OPS and stype in ("str", "bool", "list"):
        fail("a number or date-time signal; compare strings with eq / in / matches")
    if stype == "int" and isinstance(value, float) and not isinstance(value, bool):
        return  # comparing a whole-number signal with 2.5 is meaningful
    if not check(value):
        fail(_TYPE_WORDS.get(stype, stype))
    if op in ("eq", "ne"):
        _check_enum(spec, [value], signal)


def _kind_word(value: Any) -> str:
    """The kind a value compares as: numbers with numbers, never booleans with numbers."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _check_enum(spec: SignalSpec, values: list[Any], signal: str) -> None:
    if not spec.values:
        return
    for v in values:
        if v not in spec.values:
            close = difflib.get_close_matches(str(v), spec.values, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConditionError(f"{v!r} is not a value of {signal!r}; {hint}use one of {', '.join(spec.values)}",
                                 str(v))
