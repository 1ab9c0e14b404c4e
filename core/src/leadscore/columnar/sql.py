"""Small helpers over sqlglot's expression API: the columnar plan is built from these, never from SQL text.

Every value reaches SQL as a typed literal made here (strings quoted by sqlglot, floats through
their exact ``repr``), so a rulepack constant can never change the shape of a query.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlglot import exp

DIALECT = "duckdb"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference (signal names contain dots)."""
    return exp.column(name, table=table, quoted=True)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def table(name: str, alias: str | None = None) -> exp.Table:
    made = exp.Table(this=ident(name))
    return made.as_(alias) if alias else made  # type: ignore[return-value]


def lit(value: Any) -> exp.Expression:
    """A literal of the value's own SQL type."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        # repr round-trips exactly; the cast keeps DOUBLE (and spells inf and nan).
        return exp.cast(exp.Literal.string(repr(value)), "DOUBLE")
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def micros(value: datetime) -> int:
    """A UTC datetime as whole microseconds since 1970-01-01 (exact)."""
    return (value - EPOCH) // _MICRO


_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc) - EPOCH


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call by name (typed where sqlglot knows the function, so it transpiles). As every
    builder here, it takes its arguments as they are: copying them cost most of a plan's compile time."""
    return exp.func(name, *args, dialect=DIALECT, copy=False)


def call(name: str, *args: exp.Expression) -> exp.Expression:
    """A call to a function sqlglot does not know (DuckDB extensions, registered Python functions)."""
    return exp.Anonymous(this=name, expressions=list(args))


def paren(e: exp.Expression) -> exp.Expression:
    return e if isinstance(e, (exp.Paren, exp.Column, exp.Literal, exp.Boolean)) else exp.Paren(this=e)


def and_(*parts: exp.Expression) -> exp.Expression:
    items = [p for p in parts if not _is_true(p)]
    if any(_is_false(p) for p in items):
        return exp.false()
    if not items:
        return exp.true()
    if len(items) == 1:
        return items[0]
    return exp.and_(*(paren(p) for p in items), copy=False)


def or_(*parts: exp.Expression) -> exp.Expression:
    items = [p for p in parts if not _is_false(p)]
    if any(_is_true(p) for p in items):
        return exp.true()
    if not items:
        return exp.false()
    if len(items) == 1:
        return items[0]
    return exp.or_(*(paren(p) for p in items), copy=False)


def not_(e: exp.Expression) -> exp.Expression:
    if _is_true(e):
        return exp.false()
    if _is_false(e):
        return exp.true()
    return exp.Not(this=paren(e))


def _is_true(e: exp.Expression) -> bool:
    return isinstance(e, exp.Boolean) and e.this is True


def _is_false(e: exp.Expression) -> bool:
    return isinstance(e, exp.Boolean) and e.this is False


def case(pairs: Iterable[tuple[exp.Expression, exp.Expression]], default: exp.Expression | None = None) -> exp.Expression:
    made = exp.Case()
    any_pair = False
    for cond, value in pairs:
        made = made.when(cond, value, copy=False)
        any_pair = True
    if not any_pair:
        return default if default is not None else exp.null()
    return made.else_(default, copy=False) if default is not None else made


def is_null(e: exp.Expression) -> exp.Expression:
    return exp.Is(this=paren(e), expression=exp.null())


def not_null(e: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=paren(e), expression=exp.null()))


def coalesce(*parts: exp.Expression) -> exp.Expression:
    return exp.func("coalesce", *parts, dialect=DIALECT, copy=False)


def cast(e: exp.Expression, to: str) -> exp.Expression:
    return exp.cast(e, to, dialect=DIALECT, copy=False)


def concat(*parts: exp.Expression) -> exp.Expression:
    """String concatenation with ``||`` (NULL in, NULL out)."""
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part, safe=True)
    return out


def in_(e: exp.Expression, values: Iterable[Any]) -> exp.Expression:
    items = [lit(v) for v in values]
    if not items:
        return exp.false()
    return exp.In(this=paren(e), expressions=items)


def struct(**fields: exp.Expression) -> exp.Expression:
    return exp.Struct(expressions=[exp.PropertyEQ(this=ident(k), expression=v) for k, v in fields.items()])


def field(e: exp.Expression, name: str) -> exp.Expression:
    return exp.Dot(this=paren(e), expression=ident(name))


def select(*columns: exp.Expression, copy: bool = False) -> exp.Select:
    """A SELECT of ``columns``; the builders here never copy the trees they are handed."""
    return exp.select(*columns, copy=copy)


def with_steps(steps: Iterable[tuple[str, exp.Expression]], final: exp.Select) -> exp.Select:
    """``final`` with each named step before it as a common table expression (in order, so a step
    reads the ones before it by name): one query for the whole plan."""
    for name, step in steps:
        final = final.with_(name, as_=step, copy=False)
    return final


def sql(e: exp.Expression) -> str:
    return e.sql(dialect=DIALECT, copy=False)


# What Python's str.strip() removes (every character whose isspace() is true), as an RE2 class.
PY_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"


def py_strip(e: exp.Expression) -> exp.Expression:
    """``e.strip()`` as Python does it (DuckDB's trim() removes spaces only)."""
    return exp.func("regexp_replace", e, lit(f"^{PY_SPACE}+|{PY_SPACE}+$"), lit(""), lit("g"), dialect=DIALECT)


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


__all__ = [
    "DIALECT", "and_", "call", "case", "cast", "coalesce", "col", "concat", "field", "fn", "ident", "in_",
    "is_null", "lit", "micros", "not_", "not_null", "or_", "paren", "py_strip", "select", "sql", "struct", "table",
    "with_steps",
]
