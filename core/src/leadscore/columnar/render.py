"""Score cards as JSON Lines text, made in SQL: the bytes ``leadscore score --format jsonl`` writes.

Without ``--explain`` a card line is a few dozen values, and building a Python record per lead to
print it cost more than scoring it. Here each line is assembled in SQL from the card's columns;
what is constant per pack combination (the packs list, each route of the ``[routing]`` table, the
category keys) is serialised once by the python writer's own code, and text is escaped with
DuckDB's ``to_json`` except for control characters, which go through ``orjson`` as the python
writer does (DuckDB writes their hex digits in upper case). Routing is SQL too: the default router
is the composed ``[routing]`` table; a plugin router takes part through its columnar form. With
``--explain`` the card's ledger follows (:func:`ledger_text`): each line's values written in SQL,
its decay factor (rounded to four places) and time by the python writer's own code where SQL's
rounding or date text could differ.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pyarrow as pa
from attrs import frozen
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.io.timestamps import format_timestamp
from leadscore.io.writers import _plain_number
from leadscore.model import Route


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@frozen
class RouterContext:
    """What a router's columnar form reads: the band, the lead's signals, its packs and its id.

    ``signal(name)`` is the signal's value column (NULL when the lead lacks it, or when no extractor
    of the run provides it); ``has_pack(name)`` is true when that rulepack scored the lead.
    """

    band: exp.Expression
    lead_id: exp.Expression
    plan: Any

    def signal(self, name: str) -> exp.Expression:
        ref = self.plan.refs.get(name)
        return exp.null() if ref is None else q.col(name, "s")

    def has_pack(self, name: str) -> exp.Expression:
        combos = [c.index for c in self.plan.combos if name in c.composed.key]
        return q.in_(q.col("combo", "x"), combos)


def route_struct(action: Any, queue: Any, sla_hours: Any, owner_hint: Any, reason: Any) -> exp.Expression:
    """The SQL value a columnar router returns (NULL: no opinion)."""
    return q.struct(action=action, queue=queue, sla_hours=q.cast(sla_hours, "DOUBLE"), owner_hint=owner_hint,
                    reason=reason)


def routable(pm: Any) -> bool:
    """Whether every router of the run has a columnar form (the built-in one is the routing table)."""
    return all(getattr(fn, "routes_by_table", False) or getattr(fn, "columnar", None) is not None
               for fn in pm.router_functions())


def route_tables(plan: Any) -> pa.Table:
    """Per (combination, band): the ``[routing]`` table's route as the JSON the python writer prints."""
    rows: dict[str, list[Any]] = {"combo": [], "band": [], "route_json": []}
    for combo in plan.combos:
        for band in combo.composed.bands:
            route = combo.composed.routing.get(band.name)
            rows["combo"].append(combo.index)
            rows["band"].append(band.name)
            rows["route_json"].append(None if route is None else _route_json(
                Route(route.action, route.queue, route.sla_hours, route.owner_hint, route.reason)))
    return pa.table({"combo": pa.array(rows["combo"], pa.int64()), "band": pa.array(rows["band"], pa.string()),
                     "route_json": pa.array(rows["route_json"], pa.string())})


def _route_json(route: Route) -> str:
    return _dumps({"action": route.action, "queue": route.queue, "sla_hours": _plain_number(route.sla_hours)})


def json_text(plan: Any, e: exp.Expression) -> exp.Expression:
    """``e`` (VARCHAR) as a JSON string, exactly as orjson writes it."""
    if plan.udfs.portable:
        from leadscore.columnar.portable import json_string

        return json_string(e)
    py = plan.udfs.add("ls_json_text", lambda v: _dumps(v), ("VARCHAR",), "VARCHAR")
    control = q.fn("regexp_matches", e, q.lit("[\\x00-\\x1f]"))
    return q.case([(q.is_null(e), q.lit("null")), (control, py(e))], q.cast(q.fn("to_json", e), "VARCHAR"))


def constants(plan: Any, as_of: Any) -> pa.Table:
    """Per combination: its packs and categories as JSON, and the scoring time's text."""
    combos, packs = [], []
    for combo in plan.combos:
        combos.append(combo.index)
        packs.append(_dumps([f"{name}@{version}" for name, version in combo.composed.packs]))
    return pa.table({"combo": pa.array(combos, pa.int64()), "packs_json": pa.array(packs, pa.string()),
                     "as_of_json": pa.array([_dumps(format_timestamp(as_of))] * len(combos), pa.string())})


def line_statement(plan: Any, routers: list[Any], ledger: bool = False) -> exp.Select:
    """(k, text): each scored lead's JSON line (newline included), from ``cards``, ``sig`` and the tables
    ``ls_routes`` / ``ls_render``; with ``ledger``, the line ``--explain`` writes (``cards`` then holds
    each lead's ledger)."""
    x = lambda c: q.col(c, "x")  # noqa: E731
    band = x("band")
    ctx = RouterContext(band, q.col("id", "l"), plan)
    table_route = q.col("route_json", "rt")
    parts = []
    for router in routers:
        made = router(ctx)
        r = exp.column("r")
        sla = q.field(made, "sla_hours")
        sla_text = q.case([(q.is_null(sla), q.lit("null")),
                           (sla.eq(q.fn("floor", sla)), q.cast(q.cast(sla, "BIGINT"), "VARCHAR"))],
                          q.cast(sla, "VARCHAR"))
        text = q.concat(q.lit('{"action":'), json_text(plan, q.field(made, "action")), q.lit(',"queue":'),
                        json_text(plan, q.field(made, "queue")), q.lit(',"sla_hours":'), sla_text, q.lit("}"))
        parts.append(q.case([(q.not_null(made), text)]))
        del r
    route = q.coalesce(*parts, table_route, q.lit("null")) if parts else q.coalesce(table_route, q.lit("null"))
    subscores = q.fn("array_to_string", q.fn("list_transform", x("subscores"), exp.Lambda(
        this=q.concat(json_text(plan, q.field(exp.column("c"), "category")), q.lit(":"),
                      q.cast(q.field(exp.column("c"), "points"), "VARCHAR")),
        expressions=[exp.to_identifier("c")])), q.lit(","))
    reason = lambda r: q.concat(q.case([(exp.GT(this=q.field(r, "points"), expression=q.lit(0)), q.lit("+"))],  # noqa: E731
                                       q.lit("")),
                                q.cast(q.field(r, "points"), "VARCHAR"), q.lit(" "), q.field(r, "reason"))
    reasons = q.fn("array_to_string", q.fn("list_transform", x("reasons"), exp.Lambda(
        this=json_text(plan, reason(exp.column("r"))), expressions=[exp.to_identifier("r")])), q.lit(","))
    notes = q.fn("array_to_string", q.fn("list_transform", x("gate_notes"), exp.Lambda(
        this=json_text(plan, exp.column("n")), expressions=[exp.to_identifier("n")])), q.lit(","))
    gated = q.case([(band.neq(x("points_band")), q.concat(q.lit(',"points_band":'), json_text(plan, x("points_band")),
                                                         q.lit(',"gate_notes":['), notes, q.lit("]")))], q.lit(""))
    text = q.concat(
        q.lit('{"id":'), json_text(plan, q.col("id", "l")), q.lit(',"total":'), q.cast(x("total"), "VARCHAR"),
        q.lit(',"band":'), json_text(plan, band), q.lit(',"subscores":{'), subscores, q.lit('},"route":'), route,
        q.lit(',"reasons":['), reasons, q.lit('],"packs":'), q.col("packs_json", "c"), q.lit(',"as_of":'),
        q.col("as_of_json", "c"), gated,
        *([q.lit(',"ledger":'), ledger_text(plan, x("ledger"))[0]] if ledger else []), q.lit("}\n"))
    return (q.select(x("k"), text.as_("text", copy=False))
            .from_(q.table("cards", "x"), copy=False)
            .join(q.table("b_leads", "l"), on=q.col("k", "l").eq(x("k")), copy=False)
            .join(q.table("sig", "s"), on=q.col("k", "s").eq(x("k")), copy=False)
            .join(q.table("ls_render", "c"), on=q.col("combo", "c").eq(x("combo")), copy=False)
            .join(q.table("ls_routes", "rt"), on=q.and_(q.col("combo", "rt").eq(x("combo")), q.col("band", "rt").eq(band)),
                  join_type="left", copy=False))


def ledger_text(plan: Any, ledger: exp.Expression) -> tuple[exp.Expression, exp.Expression]:
    """(text, exact) of a card's ledger (a list of line structs, in the card's order): the JSON array
    ``--explain`` writes (``contribution_to_dict`` per line), and whether SQL alone wrote it as Python
    would. In an exported query (portable) a decay factor on a four-decimal tie or a time outside the
    years 1000-9999 makes ``exact`` false; on the columnar engine those few values are written by the
    python writer's own code instead, and ``exact`` is always true."""
    from leadscore.columnar import portable as p

    line = exp.column("l")
    f = lambda name: q.field(line, name)  # noqa: E731
    text = lambda name: json_text(plan, f(name))  # noqa: E731
    whole = lambda name: q.cast(f(name), "VARCHAR")  # noqa: E731
    factor, stamp = p.factor_text(f("factor")), p.stamp_text(f("observed_at"))
    if not plan.udfs.portable:
        py_factor = plan.udfs.add("ls_factor_text", lambda v: _dumps(round(v, 4)), ("DOUBLE",), "VARCHAR")
        py_stamp = plan.udfs.add("ls_stamp_text", lambda us: format_timestamp(q.EPOCH + timedelta(microseconds=us)),
                                 ("BIGINT",), "VARCHAR")
        factor = q.case([(q.not_(p.exact_factor(f("factor"))), py_factor(f("factor")))], factor)
        stamp = q.case([(q.not_(p.exact_stamp(f("observed_at"))), py_stamp(f("observed_at")))], stamp)
    observed = q.case([(q.is_null(f("observed_at")), q.lit("null"))], q.concat(q.lit('"'), stamp, q.lit('"')))
    one = q.concat(
        q.lit('{"rule_id":'), text("rule_id"), q.lit(',"kind":'), text("kind"), q.lit(',"category":'), text("category"),
        q.lit(',"points":'), whole("points"), q.lit(',"raw_points":'), whole("raw"), q.lit(',"decay":'), text("decay"),
        q.lit(',"decay_factor":'), factor, q.lit(',"signal":'), text("signal"),
        q.lit(',"observed_at":'), observed, q.lit(',"reason":'), text("reason"), q.lit(',"pack":'), text("pack"),
        q.lit(',"evidence":'), text("evidence"), q.lit("}"))
    lines = q.fn("array_to_string", q.fn("list_transform", ledger, exp.Lambda(
        this=one, expressions=[exp.to_identifier("l")])), q.lit(","))
    joined = q.coalesce(q.concat(q.lit("["), lines, q.lit("]")), q.lit("[]"))
    if not plan.udfs.portable:
        return joined, exp.true()
    doubtful = q.fn("list_filter", ledger, exp.Lambda(
        this=q.not_(q.and_(p.exact_factor(f("factor")), p.exact_stamp(f("observed_at")))),
        expressions=[exp.to_identifier("l")]))
    return joined, q.or_(q.is_null(ledger), exp.Length(this=doubtful).eq(q.lit(0)))


def ledger_statement(plan: Any) -> exp.Select:
    """(k, ledger, ledger_exact): each scored lead's ledger text (see :func:`ledger_text`), from ``cards``."""
    text, exact = ledger_text(plan, q.col("ledger", "x"))
    return (q.select(q.col("k", "x"), text.as_("ledger", copy=False), exact.as_("ledger_exact", copy=False), copy=False)
            .from_(q.table("cards", "x"), copy=False))


__all__ = ["RouterContext", "constants", "ledger_statement", "ledger_text", "line_statement", "routable", "route_struct", "route_tables"]
