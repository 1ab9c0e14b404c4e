"""Small helpers over sqlglot's expression API: the columnar plan is built from these, never from SQL text.

Every value reaches SQL as a typed literal made here (strings quoted by sqlglot, floats through
their exact ``repr``), so a rulepack constant can never change the shape of a query.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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
    return lower_json(e, DIALECT, copy=False).sql(dialect=DIALECT, copy=False)


# JSON is read through three placeholders, spelt per dialect when the plan is written out: DuckDB
# and Spark share no JSON function (DuckDB's JSON type and pointer paths, Spark's VARIANT).
_JSON_AT, _JSON_KIND, _JSON_STR = "ls__json_at", "ls__json_kind", "ls__json_str"
# So are UTC days of microsecond times: Spark's timestamps turn into days in the session's zone.
_DAY, _DAY_TEXT = "ls__utc_day", "ls__utc_day_text"
_DAY_US = 86_400_000_000


def utc_day(micros: exp.Expression) -> exp.Expression:
    """The UTC date of a time in microseconds since 1970."""
    return exp.Anonymous(this=_DAY, expressions=[micros])


def utc_day_text(micros: exp.Expression) -> exp.Expression:
    """``2026-11-20``: the UTC date of a time in microseconds since 1970, as text."""
    return exp.Anonymous(this=_DAY_TEXT, expressions=[micros])


def json_at(doc: exp.Expression, key: str) -> exp.Expression:
    """The JSON value under ``key`` of the JSON object text ``doc`` (NULL when absent)."""
    return exp.Anonymous(this=_JSON_AT, expressions=[doc, lit(key)])


def json_kind(value: exp.Expression) -> exp.Expression:
    """The kind of a :func:`json_at` value by DuckDB's names: VARCHAR, BOOLEAN, BIGINT, UBIGINT, DOUBLE,
    NULL, OBJECT or ARRAY."""
    return exp.Anonymous(this=_JSON_KIND, expressions=[value])


def json_str(doc: exp.Expression, key: str) -> exp.Expression:
    """The text of the scalar under ``key`` (a string without its quotes)."""
    return exp.Anonymous(this=_JSON_STR, expressions=[doc, lit(key)])


def _pointer(key: str) -> exp.Expression:
    return lit("/" + key.replace("~", "~0").replace("/", "~1"))


def _spark_path(key: str) -> exp.Expression:
    if "'" in key or "\\" in key or "]" in key:
        raise ValueError(f"the key {key!r} cannot be written as a Spark JSON path")
    return lit(f"$['{key}']")


def rewrite(tree: exp.Expression, change: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """``tree`` with ``change`` applied to every node, children first, in place.

    Unlike sqlglot's ``transform``, a node object the plan reuses in several places (the builders
    here share subtrees instead of copying them) is rewritten in each of them."""
    for key, value in list(node_args(tree)):
        if isinstance(value, exp.Expression):
            tree.set(key, rewrite(value, change))
        elif isinstance(value, list):
            tree.set(key, [rewrite(v, change) if isinstance(v, exp.Expression) else v for v in value])
    return change(tree)


def node_args(node: exp.Expression) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in node.args.items() if v is not None]


def for_dialect(tree: exp.Expression, dialect: str, *, copy: bool = True) -> exp.Expression:
    """``tree`` made writable in ``dialect``: its JSON placeholders spelt (:func:`lower_json`) and, for
    Spark, the few DuckDB list and text functions sqlglot does not write there (or writes with
    another meaning, such as an ordered ``list`` aggregate) given their Spark form."""
    tree = lower_json(tree, dialect, copy=copy)
    if dialect == "spark":
        tree = rewrite(tree, _spark_node)
    return tree


def _sorted_values(value: exp.Expression, keys: list[exp.Expression]) -> exp.Expression:
    """Spark: the aggregated ``value`` in the order of ``keys`` (collect_list keeps no order)."""
    order = exp.Struct(expressions=[exp.PropertyEQ(this=ident(f"o{i}"), expression=k) for i, k in enumerate(keys)])
    pair = exp.Struct(expressions=[exp.PropertyEQ(this=ident("o"), expression=order),
                                   exp.PropertyEQ(this=ident("v"), expression=value)])
    collected = exp.Anonymous(this="array_sort", expressions=[exp.Anonymous(this="collect_list", expressions=[pair])])
    return exp.Anonymous(this="transform", expressions=[collected, exp.Lambda(
        this=exp.Dot(this=exp.column("e"), expression=ident("v")), expressions=[exp.to_identifier("e")])])


def _spark_node(node: exp.Expression) -> exp.Expression:
    """One node in its Spark form (its children already are)."""
    children = lambda: list(node.expressions)  # noqa: E731
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        return exp.RegexpLike(this=node.this, expression=lit(f"^(?:{pattern.name})$"))
    if isinstance(node, exp.ArgMin) and node.args.get("count") is not None:
        return exp.Anonymous(this="slice", expressions=[_sorted_values(node.this, [node.expression]),
                                                        lit(1), node.args["count"]])
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.ArrayAgg):
        keys = [o.this for o in node.expression.expressions]
        return _sorted_values(node.this.this, keys)
    if isinstance(node, exp.Length) and isinstance(node.this, (exp.ArrayFilter, exp.Array)):
        return exp.ArraySize(this=node.this)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "list":  # DuckDB's list aggregate; its DISTINCT form is Spark's collect_set
            (arg,) = children()
            if isinstance(arg, exp.Distinct):
                return exp.Anonymous(this="collect_set", expressions=list(arg.expressions))
            return exp.Anonymous(this="collect_list", expressions=[arg])
        if name == "strlen":
            return exp.Anonymous(this="octet_length", expressions=children())
        if name == "list_extract":
            return exp.Anonymous(this="try_element_at", expressions=children())
        if name == "list_reverse":
            return exp.Anonymous(this="reverse", expressions=children())
        if name == "list_slice":
            items, start, end = children()
            return exp.Anonymous(this="slice", expressions=[items, start, exp.Add(
                this=exp.Sub(this=end, expression=start), expression=lit(1))])
    return node


def lower_json(tree: exp.Expression, dialect: str, *, copy: bool = True) -> exp.Expression:
    """``tree`` with the JSON placeholders written for ``dialect`` (duckdb or spark)."""
    def change(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous) or node.name not in (_JSON_AT, _JSON_KIND, _JSON_STR, _DAY, _DAY_TEXT):
            return node
        args = list(node.expressions)  # already lowered: rewrite() goes children first
        if node.name in (_DAY, _DAY_TEXT):
            if dialect == "duckdb":
                stamp = exp.Anonymous(this="make_timestamp", expressions=args)
                return cast(stamp, "DATE") if node.name == _DAY else fn("strftime", stamp, lit("%Y-%m-%d"))
            # Spark: whole days since 1970 (DIV truncates towards zero, so times before 1970 step back one).
            micros = paren(args[0])
            number = exp.Sub(this=exp.IntDiv(this=micros, expression=lit(_DAY_US)), expression=case(
                [(exp.LT(this=exp.Mod(this=micros, expression=lit(_DAY_US)), expression=lit(0)), lit(1))], lit(0)))
            day = exp.Anonymous(this="date_from_unix_date", expressions=[cast(number, "INT")])
            return day if node.name == _DAY else cast(day, "VARCHAR")
        if dialect == "duckdb":
            if node.name == _JSON_KIND:
                return exp.Anonymous(this="json_type", expressions=args)
            name = "json_extract" if node.name == _JSON_AT else "json_extract_string"
            return exp.Anonymous(this=name, expressions=[args[0], _pointer(args[1].name)])
        if dialect == "spark":
            if node.name == _JSON_KIND:
                shape = exp.Anonymous(this="schema_of_variant", expressions=args)
                return case([(shape.eq(lit("STRING")), lit("VARCHAR")), (shape.eq(lit("BOOLEAN")), lit("BOOLEAN")),
                             (shape.eq(lit("BIGINT")), lit("BIGINT")), (shape.eq(lit("VOID")), lit("NULL")),
                             (exp.Like(this=shape, expression=lit("OBJECT%")), lit("OBJECT")),
                             (exp.Like(this=shape, expression=lit("ARRAY%")), lit("ARRAY"))], lit("DOUBLE"))
            parsed = exp.Anonymous(this="try_parse_json", expressions=[args[0]])
            extra = [lit("string")] if node.name == _JSON_STR else []
            return exp.Anonymous(this="variant_get", expressions=[parsed, _spark_path(args[1].name), *extra])
        raise ValueError(f"no JSON functions for the dialect {dialect!r}")

    return rewrite(tree.copy() if copy else tree, change)


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
