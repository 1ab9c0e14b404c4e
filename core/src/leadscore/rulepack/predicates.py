"""The reference meaning of a condition: a Python predicate over a lead's signal values.

Semantics shared with every backend: a comparison on a missing signal is false (``ne`` and
``not_in`` included); ``exists`` tests presence; booleans never equal numbers; values of
different kinds (a string and a number) never compare. Pattern conditions (sequence, absent,
at_least) read the lead's activities through the subject's ``activity_index()``; their meaning
lives in :mod:`leadscore.rulepack.patterns`. ``same_account`` compares its derived account signal.
Gates and ``applies_when`` are always evaluated with these predicates, whatever the backend.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from leadscore.rulepack.patterns import holds
from leadscore.rulepack.schema import PATTERN_OPS, Condition, account_leaf

MISSING = object()
Pred = Callable[[Any], bool]


def _same_kind(a: Any, b: Any) -> bool:
    """True when a and b may be compared: both numbers (not bool), both strings, both bools or both datetimes."""
    ta, tb = type(a), type(b)
    if ta is tb:
        return True
    if ta is bool or tb is bool:
        return False
    return ta in (int, float) and tb in (int, float)


def _ordered(op: Callable[[Any, Any], bool], signal: str, value: Any) -> Pred:
    def pred(v: Any) -> bool:
        x = v.get(signal, MISSING)
        return x is not MISSING and _same_kind(x, value) and op(x, value)

    return pred


def compile_condition(cond: Condition) -> Pred:
    """A predicate over a mapping of signal name -> value (anything with ``.get``)."""
    op = cond.op
    if op == "all":
        parts = tuple(compile_condition(c) for c in cond.children)
        return lambda v: all(p(v) for p in parts)
    if op == "any":
        parts = tuple(compile_condition(c) for c in cond.children)
        return lambda v: any(p(v) for p in parts)
    if op == "not":
        inner = compile_condition(cond.children[0])
        return lambda v: not inner(v)
    if op in _PATTERNS:
        return _PATTERNS[op](cond)
    if op == "same_account":
        # The account pass counted the contacts; the lead compares the count.
        return compile_condition(account_leaf(cond))
    signal, value = cond.signal, cond.value
    if op == "eq":
        return lambda v: (x := v.get(signal, MISSING)) is not MISSING and _same_kind(x, value) and x == value
    if op == "ne":
        return lambda v: (x := v.get(signal, MISSING)) is not MISSING and not (_same_kind(x, value) and x == value)
    if op in ("lt", "lte", "gt", "gte"):
        return _ordered(getattr(operator, op.replace("lte", "le").replace("gte", "ge")), signal, value)
    if op == "between":
        lo, hi = value
        return lambda v: ((x := v.get(signal, MISSING)) is not MISSING and _same_kind(x, lo) and _same_kind(x, hi)
                          and lo <= x <= hi)
    if op == "in":
        options = value
        return lambda v: (x := v.get(signal, MISSING)) is not MISSING and any(_same_kind(x, o) and x == o for o in options)
    if op == "not_in":
        options = value
        return lambda v: ((x := v.get(signal, MISSING)) is not MISSING
                          and not any(_same_kind(x, o) and x == o for o in options))
    if op == "exists":
        want = bool(value)
        return lambda v: (v.get(signal, MISSING) is not MISSING) == want
    if op == "matches":
        fullmatch = value.fullmatch
        return lambda v: isinstance(x := v.get(signal, MISSING), str) and fullmatch(x) is not None
    raise ValueError(f"unknown operator {op!r}")


def _pattern(cond: Condition) -> Pred:
    pattern = cond.value

    def pred(v: Any) -> bool:
        index = getattr(v, "activity_index", None)
        if index is None:
            raise TypeError(f"the pattern `{pattern.describe()}` needs the lead's activities; patterns can only be "
                            f"used in a rule's `when`")
        return holds(pattern, index())

    return pred


_PATTERNS: dict[str, Callable[[Condition], Pred]] = dict.fromkeys(PATTERN_OPS, _pattern)
