"""What a columnar signal extractor is handed, and the shape of what it returns.

A columnar extractor is ``fn(ctx) -> sqlglot Select`` over the batch's two relations:

- ``ctx.leads``: one row per lead: ``k`` (the lead's key in this run), ``id``, ``email``, ``title``,
  ``source``, ``created_at`` (microseconds since 1970, UTC), ``account_id``, ``c_name``,
  ``c_domain``, ``c_industry``, ``c_employees``, ``c_revenue``, ``c_country``, ``c_tier`` and
  ``fields`` (the custom fields as a JSON object, or NULL); text is as the lead holds it;
- ``ctx.activities``: one row per activity: ``k``, ``pos`` (its place among the lead's activities,
  oldest first, ties in input order), ``type``, ``at`` (microseconds) and ``props`` (its properties
  as a JSON object, or NULL).

The Select has a column ``k`` and, for every signal it emits, three columns: ``<name>`` (the
value: VARCHAR, BIGINT, DOUBLE, BOOLEAN, microseconds for date-times, or for a signal of type
``any`` a struct ``{k, s, n, b, t}`` naming its kind), ``<name>#at`` (observed_at in
microseconds, or NULL) and ``<name>#ev`` (the evidence text). A NULL value means the extractor
emits no such signal for that lead. Per-value Python helpers (exact where SQL is not) are
registered with :meth:`ColumnarContext.udf`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa
from attrs import frozen
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.columnar.conditions import Unsupported

# Arrow types for the SQL types helpers return.
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
}


def arrow_type(sql_type: str) -> pa.DataType:
    """The Arrow type of a DuckDB type name (scalars and ``STRUCT(name TYPE, ...)``)."""
    sql_type = sql_type.strip()
    if sql_type.upper().startswith("STRUCT("):
        inner = sql_type[len("STRUCT("):-1]
        fields = []
        for part in _split(inner):
            name, _, kind = part.strip().partition(" ")
            fields.append((name.strip('"'), arrow_type(kind)))
        return pa.struct(fields)
    if sql_type.upper().endswith("[]"):
        return pa.list_(arrow_type(sql_type[:-2]))
    return ARROW_TYPES[sql_type.upper()]


def _split(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


class Udfs:
    """Python functions the plan calls per value, registered on a DuckDB connection once each.

    ``fn`` takes one value per parameter (None for NULL) and returns one value; results are
    remembered per argument tuple (bounded), because the helpers map repeated values (titles,
    countries, sources) far more often than new ones.
    """

    def __init__(self, *, portable: bool = False) -> None:
        self.functions: dict[str, tuple[Callable[..., Any], tuple[str, ...], str]] = {}
        self.registered: dict[int, set[str]] = {}
        # portable: the plan is for a warehouse, where no Python runs (see leadscore.columnar.export).
        self.portable = portable
        # Conditions over one activity (type, at, props) a portable form needs for its lead to be exact.
        self.activity_checks: list[exp.Expression] = []

    def add(self, name: str, fn: Callable[..., Any], params: tuple[str, ...], returns: str, *,
            nulls: bool = False, portable: Callable[..., exp.Expression] | None = None) -> Callable[..., exp.Expression]:
        """``nulls``: call ``fn`` with None arguments too (by default a NULL argument gives NULL).

        ``portable``: the same function written in SQL alone (argument expressions -> expression),
        used when the plan is exported; it must equal ``fn`` on plain text (printable ASCII) and on
        numbers short of rounding ties (the export flags the other leads as inexact)."""
        if self.portable:
            if portable is None:
                raise Unsupported(f"the function {name} runs in Python and has no SQL form")
            return portable
        known = self.functions.get(name)
        if known is None:
            self.functions[name] = (fn if nulls else _strict(fn), params, returns)
        return lambda *args: q.call(name, *args)

    def register(self, con: Any) -> None:
        done = self.registered.setdefault(id(con), set())
        for name, (fn, params, returns) in self.functions.items():
            if name in done:
                continue
            bound = _with_arity(_vectorised(fn, arrow_type(returns)), len(params))
            con.create_function(name, bound, [con.type(p) for p in params], con.type(returns), type="arrow",
                                null_handling="special", side_effects=False)
            done.add(name)


def _strict(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return None if any(a is None for a in args) else fn(*args)

    return call


def _with_arity(run: Callable[..., pa.Array], arity: int) -> Callable[..., pa.Array]:
    # DuckDB reads the number of parameters from the function's signature.
    if arity == 1:
        return lambda a: run(a)
    if arity == 2:
        return lambda a, b: run(a, b)
    return lambda a, b, c: run(a, b, c)


def _vectorised(fn: Callable[..., Any], out_type: pa.DataType) -> Callable[..., pa.Array]:
    cache: dict[tuple[Any, ...], Any] = {}

    def run(*columns: pa.Array) -> pa.Array:
        values = [c.to_pylist() for c in columns]
        out = []
        for args in zip(*values):
            # -0.0 == 0.0 as a dict key, but f"{-0.0:,.0f}" is "-0": zeros are told apart by sign.
            key = tuple(a.hex() if isinstance(a, float) else a for a in args) if 0.0 in args else args
            hit = cache.get(key, cache)
            if hit is cache:
                if len(cache) > 50_000:
                    cache.clear()
                hit = cache[key] = fn(*args)
            out.append(hit)
        return pa.array(out, type=out_type)

    return run


@frozen
class ColumnarContext:
    """What a columnar extractor may read: the scoring time, the vocabulary and the wanted signals."""

    as_of: datetime
    as_of_us: int
    vocabulary: Mapping[str, Any]
    wanted: frozenset[str]
    leads: str
    activities: str
    udfs: Udfs

    def udf(self, name: str, fn: Callable[..., Any], params: tuple[str, ...], returns: str, *,
            nulls: bool = False, portable: Callable[..., exp.Expression] | None = None) -> Callable[..., exp.Expression]:
        """Register ``fn`` as the SQL function ``name`` (once) and return a builder for calls to it.

        ``fn`` gets one Python value per parameter and returns one; a NULL argument gives NULL
        without calling it unless ``nulls`` is true. ``portable`` is its form in SQL alone, for a
        plan exported to a warehouse (``leadscore sql``); without one such an export stops with a
        one-line error naming the function."""
        return self.udfs.add(name, fn, params, returns, nulls=nulls, portable=portable)

    @property
    def portable(self) -> bool:
        """Whether the plan is for a warehouse (no Python functions at all)."""
        return self.udfs.portable

    def exact_only_if(self, condition: exp.Expression) -> None:
        """In an exported plan, mark a lead inexact unless ``condition`` holds for each of its activities
        at or before the scoring time (a condition over the activities relation's ``type``, ``at`` and
        ``props`` columns, unqualified; NULL counts as holding).

        How a ``portable`` form that equals its Python function only on some values (plain text, say)
        names the others: the query still scores those leads, and its ``exact`` column tells the team
        to score them with ``leadscore score``. The engine, where the Python functions run, ignores it."""
        if self.portable:
            self.udfs.activity_checks.append(condition)

    def wants(self, name: str) -> bool:
        return name in self.wanted


def day_text(e: exp.Expression) -> exp.Expression:
    """``2026-11-20`` for a microseconds column (the python engine's ``day_text``)."""
    return q.utc_day_text(e)


def json_path(key: str) -> exp.Expression:
    """A JSON pointer path to ``key`` (no quoting rules to get wrong): '/' and '~' are the only escapes."""
    return q.lit("/" + key.replace("~", "~0").replace("/", "~1"))


def emit(name: str, value: exp.Expression, at: exp.Expression | None, evidence: exp.Expression) -> list[exp.Expression]:
    """The three columns of one emitted signal."""
    return [value.as_(name, quoted=True), (at if at is not None else q.cast(exp.null(), "BIGINT")).as_(f"{name}#at", quoted=True),
            evidence.as_(f"{name}#ev", quoted=True)]
