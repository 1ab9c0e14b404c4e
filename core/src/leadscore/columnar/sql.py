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


def field(e: exp.Expression, name: str, kind: str | None = None) -> exp.Expression:
    """The field ``name`` of the struct ``e``. PostgreSQL keeps structs as JSON objects, so a field
    read there is cast to its SQL type: ``kind``, else the type :data:`FIELD_TYPES` gives the name."""
    made = exp.Dot(this=paren(e), expression=ident(name))
    if kind is not None:
        made.meta["kind"] = kind
    return made


# The SQL type of each struct field the plan reads (PostgreSQL reads fields out of JSON objects as
# text). A struct whose field is missing here takes its type through ``field(..., kind=...)``.
FIELD_TYPES = {
    # band, sub-score and reason lists (columnar.cards), lead rule lines (columnar.plan)
    "name": "VARCHAR", "min_points": "BIGINT", "gate_reason": "VARCHAR", "gi": "BIGINT", "category": "VARCHAR", "points": "BIGINT",
    "rank": "BIGINT", "rule_id": "VARCHAR", "reason": "VARCHAR", "lid": "BIGINT", "factor": "DOUBLE",
    "observed_at": "BIGINT", "evidence": "VARCHAR",
    # ledger lines (columnar.cards: every LINE_COLUMNS field after k, s1, s2)
    "pack": "VARCHAR", "kind": "VARCHAR", "raw": "BIGINT", "decay": "VARCHAR", "signal": "VARCHAR",
    # routes (columnar.render.route_struct)
    "action": "VARCHAR", "queue": "VARCHAR", "sla_hours": "DOUBLE", "owner_hint": "VARCHAR",
    # ``any`` values (columnar.conditions)
    "k": "VARCHAR", "s": "VARCHAR", "n": "DOUBLE", "b": "BOOLEAN", "t": "BIGINT",
    # the built-in extractors' SQL forms (default_plugins.extract.sql)
    "seniority": "VARCHAR", "function": "VARCHAR", "text": "VARCHAR", "code": "VARCHAR", "region": "VARCHAR",
    "source": "VARCHAR", "channel": "VARCHAR",
}


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
# And a text sort key: PostgreSQL sorts text by the database's collation unless told to sort bytes.
_TEXT_ORDER = "ls__text_order"
_DAY_US = 86_400_000_000


def path_text(path: Any) -> str:
    """A file's path as an SQL string literal, for COPY and read_parquet."""
    return exp.Literal.string(str(path)).sql(dialect=DIALECT)


def utc_day(micros: exp.Expression) -> exp.Expression:
    """The UTC date of a time in microseconds since 1970."""
    return exp.Anonymous(this=_DAY, expressions=[micros])


def utc_day_text(micros: exp.Expression) -> exp.Expression:
    """``2026-11-20``: the UTC date of a time in microseconds since 1970, as text."""
    return exp.Anonymous(this=_DAY_TEXT, expressions=[micros])


def text_order(e: exp.Expression) -> exp.Expression:
    """``e`` (text) as a sort key ordering by bytes, as DuckDB and Spark order text (and so ties the
    same way in every dialect)."""
    return exp.Anonymous(this=_TEXT_ORDER, expressions=[e])


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
    Spark and PostgreSQL, the few DuckDB list, struct and text functions sqlglot does not write there
    (or writes with another meaning, such as an ordered ``list`` aggregate) given their own form."""
    tree = lower_json(tree, dialect, copy=copy)
    if dialect == "spark":
        tree = rewrite(tree, _spark_node)
    elif dialect == "postgres":
        tree = rewrite(tree, _postgres_node)
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
        return _full_match(node)
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


def _full_match(node: exp.RegexpFullMatch) -> exp.Expression:
    return exp.RegexpLike(this=node.this, expression=lit(f"^(?:{node.expression.name})$"))


# PostgreSQL has arrays but no anonymous structs whose fields a query can read, and no lambdas: a
# struct becomes a JSONB object (its fields read back with their types, FIELD_TYPES), a list an
# array (of JSONB objects for lists of structs), and each list function with a lambda a subquery
# over the array's elements in order (``unnest ... WITH ORDINALITY``).
_PG_FORMS = {
    "filter": "ARRAY(SELECT ls_e.v FROM UNNEST(:list) WITH ORDINALITY AS ls_e(v, o) WHERE :body ORDER BY ls_e.o)",
    "transform": "ARRAY(SELECT :body FROM UNNEST(:list) WITH ORDINALITY AS ls_e(v, o) ORDER BY ls_e.o)",
    "reverse": "ARRAY(SELECT ls_e.v FROM UNNEST(:list) WITH ORDINALITY AS ls_e(v, o) ORDER BY ls_e.o DESC)",
    "slice": "ARRAY(SELECT ls_e.v FROM UNNEST(:list) WITH ORDINALITY AS ls_e(v, o) WHERE ls_e.o BETWEEN :start AND :end "
             "ORDER BY ls_e.o)",
    "max": "(SELECT MAX(ls_e.v) FROM UNNEST(:list) AS ls_e(v))",
    # DuckDB's list_distinct drops NULLs and keeps no order
    "distinct": "ARRAY(SELECT DISTINCT ls_e.v FROM UNNEST(:list) AS ls_e(v) WHERE NOT ls_e.v IS NULL)",
    # the plan sorts lists of text only; byte order, as DuckDB's (PostgreSQL refuses COLLATE on others)
    "sort": "ARRAY(SELECT ls_e.v FROM UNNEST(:list) AS ls_e(v) ORDER BY ls_e.v COLLATE \"C\")",
    "range": "ARRAY(SELECT GENERATE_SERIES(:start, :end - 1))",
    "extract": "(:list)[:index]",
    "first": "(:list)[1 : :count]",
    # DuckDB's min_by / max_by skip the rows whose key is NULL
    "min_by": "(ARRAY_AGG(:value ORDER BY :key) FILTER(WHERE NOT :key IS NULL))[1]",
    "max_by": "(ARRAY_AGG(:value ORDER BY :key DESC) FILTER(WHERE NOT :key IS NULL))[1]",
    "micros": "CAST(EXTRACT(EPOCH FROM :time) * 1000000 AS BIGINT)",
    "regexp_extract": "COALESCE((REGEXP_MATCH(:text, :pattern))[:group], CASE WHEN NOT :text IS NULL THEN '' END)",
    "ends_with": "RIGHT(:text, LENGTH(:suffix)) = :suffix",
    # DuckDB rounds a double's half away from zero, PostgreSQL's round(double precision) to even.
    "round": "CAST(ROUND(CAST(:value AS NUMERIC)) AS DOUBLE PRECISION)",
}


def _pg_form(name: str, **parts: exp.Expression) -> exp.Expression:
    """The PostgreSQL form ``name`` with its placeholders filled (each part is used as it is: the
    plan's trees are not copied)."""
    from sqlglot import parse_one

    def fill(node: exp.Expression) -> exp.Expression:
        return parts[node.name] if isinstance(node, exp.Placeholder) else node

    form = parse_one(_PG_FORMS[name], read="postgres")
    for bracket in form.find_all(exp.Bracket):
        if isinstance(bracket.expressions[0], exp.Placeholder):
            # a subscript the plan gives is PostgreSQL's own (from 1): written as it is (sqlglot reads
            # the forms' literal subscripts from 1 and writes them back the same)
            bracket.set("offset", 1)
    return rewrite(form, fill)


def _element_body(lam: exp.Lambda) -> exp.Expression:
    """A lambda's body reading the array element ``ls_e.v`` for its parameter."""
    (param,) = lam.expressions
    return rewrite(lam.this, lambda n: col("v", "ls_e") if isinstance(n, exp.Column) and not n.table
                   and n.name == param.name and not n.this.quoted else n)


def _struct_fields(e: exp.Expression) -> list[tuple[str, exp.Expression]]:
    """The (name, value) pairs of a struct already written as ``jsonb_build_object``."""
    if not (isinstance(e, exp.Anonymous) and e.name == "jsonb_build_object"):
        raise ValueError("PostgreSQL: only a struct built in the query can be a sort key")
    args = list(e.expressions)
    return [(k.name, v) for k, v in zip(args[0::2], args[1::2])]


def _pg_sort_key(name: str, value: exp.Expression) -> exp.Expression:
    return exp.Collate(this=value, expression=exp.to_identifier("C", quoted=True)) if FIELD_TYPES.get(name) == "VARCHAR" \
        else value


def _pg_regex(pattern: exp.Expression) -> exp.Expression:
    r"""An RE2 pattern literal in PostgreSQL's flavour: code points as ``\uHHHH`` (ARE reads every hex
    digit after ``\x``, and has no ``\x{..}``)."""
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        return pattern
    import re

    text = re.sub(r"\\x\{([0-9a-fA-F]{1,4})\}", lambda m: "\\u" + m.group(1).rjust(4, "0"), pattern.name)
    text = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: "\\u00" + m.group(1), text)
    return lit(text)


def _postgres_node(node: exp.Expression) -> exp.Expression:
    """One node in its PostgreSQL form (its children already are)."""
    if isinstance(node, exp.Struct):
        args: list[exp.Expression] = []
        for item in node.expressions:
            args += [lit(item.this.name), item.expression]
        return exp.Anonymous(this="jsonb_build_object", expressions=args)
    if isinstance(node, exp.Dot):
        name = node.expression.name
        kind = node.meta.get("kind") or FIELD_TYPES.get(name)
        if kind is None:
            raise ValueError(f"the struct field {name!r} has no SQL type for PostgreSQL (leadscore.columnar.sql."
                             "FIELD_TYPES, or field(..., kind=...))")
        text = exp.Anonymous(this="jsonb_extract_path_text", expressions=[node.this, lit(name)])
        return text if kind == "VARCHAR" else cast(text, kind)
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.ArrayAgg):
        return exp.ArrayAgg(this=exp.Order(this=node.this.this, expressions=list(node.expression.expressions)))
    if isinstance(node, exp.ArgMin) and node.args.get("count") is not None:
        key = node.expression
        by_field = _struct_fields(key) if isinstance(key, exp.Anonymous) and key.name == "jsonb_build_object" else [("", key)]
        keys = [exp.Ordered(this=_pg_sort_key(name, value), nulls_first=False) for name, value in by_field]
        return _pg_form("first", list=exp.ArrayAgg(this=exp.Order(this=node.this, expressions=keys)),
                        count=node.args["count"])
    if isinstance(node, (exp.ArgMin, exp.ArgMax)) and node.args.get("count") is None:
        if isinstance(node.expression, exp.Anonymous) and node.expression.name == "jsonb_build_object":
            raise ValueError("PostgreSQL: min_by/max_by with a struct key is not written yet")
        return _pg_form("min_by" if isinstance(node, exp.ArgMin) else "max_by", value=node.this, key=node.expression)
    if isinstance(node, exp.ArrayFilter):
        return _pg_form("filter", list=node.this, body=_element_body(node.expression))
    if isinstance(node, exp.Transform):
        return _pg_form("transform", list=node.this, body=_element_body(node.expression))
    if isinstance(node, exp.GenerateSeries):
        end = node.args["end"]
        if not node.args.get("is_end_exclusive"):
            end = exp.Add(this=paren(end), expression=lit(1))
        return _pg_form("range", start=node.args["start"], end=end)
    if isinstance(node, exp.ArraySort) and node.expression is None:
        return _pg_form("sort", list=node.this)
    if isinstance(node, exp.ArrayDistinct):
        return _pg_form("distinct", list=node.this)
    if isinstance(node, exp.ArrayMax):
        return _pg_form("max", list=node.this)
    if isinstance(node, exp.Length) and isinstance(node.this, exp.Array):
        return exp.Anonymous(this="cardinality", expressions=[node.this])
    if isinstance(node, exp.Array) and not node.expressions:
        return lit("{}")  # typed by its context (COALESCE with an array)
    if isinstance(node, exp.RegexpFullMatch):
        node = _full_match(node)
    if isinstance(node, (exp.RegexpLike, exp.RegexpReplace)):
        node.set("expression", _pg_regex(node.expression))
        if isinstance(node, exp.RegexpReplace):
            # DuckDB replaces the first match unless told 'g', as PostgreSQL does: the flags stay as written
            node.set("single_replace", True)
        return node
    if isinstance(node, exp.RegexpExtract):
        return _pg_form("regexp_extract", text=node.this, pattern=_pg_regex(node.expression),
                        group=node.args.get("group") or lit(0))
    if isinstance(node, exp.EndsWith):
        return _pg_form("ends_with", text=node.this, suffix=node.expression)
    if isinstance(node, exp.UnixMicros):
        return _pg_form("micros", time=node.this)
    if isinstance(node, exp.Round) and node.args.get("decimals") is None:
        return _pg_form("round", value=node.this)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Anonymous) and node.this.name == "json_extract_path":
        # a JSON scalar reads as its text first (JSON casts to no other type)
        return exp.cast(cast(node.this, "TEXT"), node.to, copy=False)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        items = list(node.expressions)
        if name == "strlen":
            return exp.Anonymous(this="octet_length", expressions=items)
        if name == "list":  # DuckDB's list aggregate (its DISTINCT form: in no order)
            return exp.ArrayAgg(this=items[0])
        if name == "list_extract":
            return _pg_form("extract", list=items[0], index=items[1])
        if name == "list_reverse":
            return _pg_form("reverse", list=items[0])
        if name == "list_slice":
            return _pg_form("slice", list=items[0], start=items[1], end=items[2])
    return node


def lower_json(tree: exp.Expression, dialect: str, *, copy: bool = True) -> exp.Expression:
    """``tree`` with the JSON, day and sort placeholders written for ``dialect`` (duckdb, spark or postgres)."""
    def change(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous) or node.name not in (_JSON_AT, _JSON_KIND, _JSON_STR, _DAY, _DAY_TEXT,
                                                                    _TEXT_ORDER):
            return node
        args = list(node.expressions)  # already lowered: rewrite() goes children first
        if node.name == _TEXT_ORDER:
            if dialect == "postgres":
                return exp.Collate(this=cast(args[0], "TEXT"), expression=exp.to_identifier("C", quoted=True))
            return args[0]
        if node.name in (_DAY, _DAY_TEXT):
            if dialect == "duckdb":
                stamp = exp.Anonymous(this="make_timestamp", expressions=args)
                return cast(stamp, "DATE") if node.name == _DAY else fn("strftime", stamp, lit("%Y-%m-%d"))
            # Spark and PostgreSQL: whole days since 1970, so the session's time zone plays no part
            # (DIV truncates towards zero, so times before 1970 step back one).
            micros = paren(args[0])
            number = cast(exp.Sub(this=exp.IntDiv(this=micros, expression=lit(_DAY_US)), expression=case(
                [(exp.LT(this=exp.Mod(this=micros, expression=lit(_DAY_US)), expression=lit(0)), lit(1))], lit(0))), "INT")
            if dialect == "postgres":
                day = exp.Add(this=cast(lit("1970-01-01"), "DATE"), expression=number)
                return day if node.name == _DAY else exp.Anonymous(this="to_char", expressions=[day, lit("YYYY-MM-DD")])
            day = exp.Anonymous(this="date_from_unix_date", expressions=[number])
            return day if node.name == _DAY else cast(day, "VARCHAR")
        if dialect == "duckdb":
            if node.name == _JSON_KIND:
                return exp.Anonymous(this="json_type", expressions=args)
            name = "json_extract" if node.name == _JSON_AT else "json_extract_string"
            return exp.Anonymous(this=name, expressions=[args[0], _pointer(args[1].name)])
        if dialect == "postgres":
            # JSON (not JSONB) keeps a number's text, so integers and other numbers tell apart as in DuckDB.
            if node.name == _JSON_KIND:
                (value,) = args
                number = case([(exp.RegexpLike(this=cast(value, "TEXT"), expression=lit("^-?[0-9]+$")), lit("BIGINT"))],
                              lit("DOUBLE"))
                kinds = {"string": lit("VARCHAR"), "boolean": lit("BOOLEAN"), "null": lit("NULL"), "object": lit("OBJECT"),
                         "array": lit("ARRAY"), "number": number}
                return exp.Case(this=exp.Anonymous(this="json_typeof", expressions=[value]),
                                ifs=[exp.If(this=lit(k), true=v) for k, v in kinds.items()])
            name = "json_extract_path" if node.name == _JSON_AT else "json_extract_path_text"
            return exp.Anonymous(this=name, expressions=[cast(args[0], "JSON"), lit(args[1].name)])
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
# A text that starts, or ends, with one of them (each search anchored at its end).
SPACE_FIRST, SPACE_LAST = f"^{PY_SPACE}", f"{PY_SPACE}$"


def space_around(e: exp.Expression) -> exp.Expression:
    """Whether ``e.strip()`` would change the text: Python's space first or last. Two searches, each
    anchored at one end, which RE2 answers from that end alone; one pattern ``^s|s$`` read every
    character of the text (about twice the time on 47-character texts)."""
    return or_(fn("regexp_matches", e, lit(SPACE_FIRST)), fn("regexp_matches", e.copy(), lit(SPACE_LAST)))


def py_strip(e: exp.Expression) -> exp.Expression:
    """``e.strip()`` as Python does it (DuckDB's trim() removes spaces only)."""
    return exp.func("regexp_replace", e, lit(f"^{PY_SPACE}+|{PY_SPACE}+$"), lit(""), lit("g"), dialect=DIALECT)


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


__all__ = [
    "DIALECT", "and_", "call", "case", "cast", "coalesce", "col", "concat", "field", "fn", "ident", "in_",
    "is_null", "lit", "micros", "not_", "not_null", "or_", "paren", "py_strip", "select", "space_around", "sql",
    "struct", "table", "text_order", "with_steps",
]
