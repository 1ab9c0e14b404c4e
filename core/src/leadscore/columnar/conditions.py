"""Rule conditions compiled to SQL predicates with the python backend's semantics, exactly.

The semantics (see :mod:`leadscore.backends.python`): a comparison on a missing signal is false
(``ne`` and ``not_in`` included), ``exists`` tests presence, values of different kinds never
compare (booleans are not numbers), and integers compare with floats exactly. In SQL a missing
signal is NULL; every predicate made here is TRUE or FALSE, never NULL, so ``not`` is exact.

A signal's kind is known from its declared type (``str``, ``num``, ``bool``, ``dt``) or carried
with the value (``any``: a struct ``{k, s, n, b, t}`` whose ``k`` names the kind). Numbers are
DOUBLE, exact for every value the columnar engine accepts (the engine sends integers beyond
2**53 and NaN to the python engine); a constant that no double equals is compared through the
nearest doubles around it, so ``x < 2**53 + 1`` means what Python means.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.rulepack.schema import PATTERN_OPS, Condition, account_leaf

KINDS = ("str", "num", "bool", "dt", "any")
# Declared signal types -> the kind their values compare as.
TYPE_KIND = {"str": "str", "int": "num", "number": "num", "bool": "bool", "datetime": "dt", "any": "any"}
ANY_FIELDS = {"str": "s", "num": "n", "bool": "b", "dt": "t"}


@frozen
class SignalRef:
    """How a compiled condition reads one signal: its kind and the SQL value (NULL when missing)."""

    kind: str
    value: exp.Expression


class Unsupported(Exception):
    """A condition the columnar engine does not compile (the run falls back to per-lead scoring)."""


def kind_of(value: Any) -> str | None:
    """The kind a constant compares as, or None when it compares with nothing (python's _same_kind)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime):
        return "dt"
    return None


def constant(kind: str, value: Any) -> exp.Expression:
    if kind == "dt":
        return q.lit(q.micros(value))
    if kind == "num":
        return q.lit(float(value))
    return q.lit(value)


class Compiler:
    """Compiles conditions over the signals a resolver knows.

    :param resolve: signal name -> SignalRef, or None when the signal can never be present.
    :param pattern: a pattern node (sequence, absent, at_least) -> a boolean SQL expression.
    :param regex: (compiled regex, string expression) -> a boolean SQL expression (fullmatch).
    """

    def __init__(self, resolve: Callable[[str], SignalRef | None],
                 pattern: Callable[[Condition], exp.Expression] | None = None,
                 regex: Callable[[Any, exp.Expression], exp.Expression] | None = None) -> None:
        self.resolve = resolve
        self.pattern = pattern
        self.regex = regex

    def compile(self, cond: Condition) -> exp.Expression:
        op = cond.op
        if op == "all":
            return q.and_(*(self.compile(c) for c in cond.children))
        if op == "any":
            return q.or_(*(self.compile(c) for c in cond.children))
        if op == "not":
            return q.not_(self.compile(cond.children[0]))
        if op in PATTERN_OPS:
            if self.pattern is None:
                raise Unsupported(f"pattern {op} here")
            return self.pattern(cond)
        if op == "same_account":
            return self.compile(account_leaf(cond))
        ref = self.resolve(cond.signal) if cond.signal is not None else None
        if op == "exists":
            present = exp.false() if ref is None else q.not_null(ref.value)
            return present if cond.value else q.not_(present)
        if ref is None:
            return exp.false()
        present = q.not_null(ref.value)
        if op == "eq":
            return self._same(ref, cond.value, "eq")
        if op == "ne":
            return q.and_(present, q.not_(self._same(ref, cond.value, "eq")))
        if op in ("lt", "lte", "gt", "gte"):
            return self._same(ref, cond.value, op)
        if op == "between":
            lo, hi = cond.value
            return q.and_(self._same(ref, lo, "gte"), self._same(ref, hi, "lte"))
        if op == "in":
            return q.or_(*(self._same(ref, option, "eq") for option in cond.value))
        if op == "not_in":
            return q.and_(present, q.not_(q.or_(*(self._same(ref, option, "eq") for option in cond.value))))
        if op == "matches":
            if self.regex is None:
                raise Unsupported("matches here")
            text = _as_kind(ref, "str")
            if text is None:
                return exp.false()
            return q.coalesce(self.regex(cond.value, text), exp.false())
        raise Unsupported(f"operator {op}")

    def _same(self, ref: SignalRef, value: Any, op: str) -> exp.Expression:
        """``same kind and x <op> value``, never NULL."""
        kind = kind_of(value)
        if kind is None:
            return exp.false()
        x = _as_kind(ref, kind)
        if x is None:
            return exp.false()
        if kind == "num":
            test = numeric(op, x, value)
        else:
            test = _cmp(op, x, constant(kind, value))
        return q.coalesce(test, exp.false())


def _as_kind(ref: SignalRef, kind: str) -> exp.Expression | None:
    """The signal's value as ``kind`` (NULL when it holds another kind), or None when it never can."""
    if ref.kind == "any":
        return q.case([(q.field(ref.value, "k").eq(q.lit(kind)), q.field(ref.value, ANY_FIELDS[kind]))])
    return ref.value if ref.kind == kind else None


def _cmp(op: str, x: exp.Expression, c: exp.Expression) -> exp.Expression:
    x = q.paren(x)
    if op == "eq":
        return exp.EQ(this=x, expression=c)
    if op == "lt":
        return exp.LT(this=x, expression=c)
    if op == "lte":
        return exp.LTE(this=x, expression=c)
    if op == "gt":
        return exp.GT(this=x, expression=c)
    if op == "gte":
        return exp.GTE(this=x, expression=c)
    raise ValueError(op)


_MAX = 1.7976931348623157e308


def numeric(op: str, x: exp.Expression, c: int | float) -> exp.Expression:
    """``x <op> c`` for a DOUBLE ``x`` (never NaN), exactly as Python compares a float with ``c``."""
    if isinstance(c, float):
        if math.isnan(c):
            return exp.false()
        return _cmp(op, x, q.lit(c))
    # An integer constant: compare with the doubles around it when no double equals it.
    if c > _MAX or c < -_MAX:
        above = c > 0
        inf = q.lit(math.inf if above else -math.inf)
        if op == "eq":
            return exp.false()
        if (op in ("lt", "lte")) == above:  # x < huge: every x but +inf (x > -huge: every x but -inf)
            return exp.NEQ(this=q.paren(x), expression=inf)
        return exp.EQ(this=q.paren(x), expression=inf)
    f = float(c)
    if f == c:
        return _cmp(op, x, q.lit(f))
    if op == "eq":
        return exp.false()
    below = f if f < c else math.nextafter(f, -math.inf)
    above = f if f > c else math.nextafter(f, math.inf)
    if op in ("lt", "lte"):
        return exp.LTE(this=q.paren(x), expression=q.lit(below))
    return exp.GTE(this=q.paren(x), expression=q.lit(above))


def has_pattern(cond: Condition | None) -> bool:
    return cond is not None and (cond.op in PATTERN_OPS or any(has_pattern(c) for c in cond.children))


def patterns_of(cond: Condition | None) -> list[Condition]:
    if cond is None:
        return []
    if cond.op in PATTERN_OPS:
        return [cond]
    return [p for c in cond.children for p in patterns_of(c)]
