"""Score cards as JSON Lines or CSV text, or as Parquet rows, made in SQL: what ``leadscore score`` writes.

Without ``--explain`` a card line is a few dozen values, and building a Python record per lead to
print it cost more than scoring it. Here each line is assembled in SQL from the card's columns;
what is constant per pack combination (the packs list, each route of the ``[routing]`` table, the
category keys) is serialised once by the python writer's own code; a text is written between
quotes when nothing in it is escaped (the rulepacks' texts checked once a run, see :class:`PlainTexts`;
the lead's own, such as its id, checked per value), and through ``orjson``, the python writer's
encoder, when something is. Routing is SQL too: the default router
is the composed ``[routing]`` table; a plugin router takes part through its columnar form. With
``--explain`` the card's ledger follows: each line's values written in SQL, its decay factor
(rounded to four places) and time by the python writer's own code where SQL's rounding or date text
could differ; a JSON line or CSV row comes as rows of text joined by lead afterwards
(:func:`ledger_rows`), a Parquet row's ledger cell whole (:func:`ledger_text`). A CSV row (:func:`csv_line_statement`) is the python writer's:
its cells guarded against spreadsheet formulas and quoted as Python's ``csv`` module quotes them,
what is constant per pack combination written by that module itself. A Parquet row
(:func:`parquet_row_statement`) holds the Parquet writer's typed columns. The ledger cell of a CSV
or Parquet row is the JSON Lines ledger's text: the writers' ``json.dumps`` and ``orjson`` write
the same text for a ledger (they differ only on floats below 1e-4, and a decay factor is rounded to
four places).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
from attrs import frozen
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.io.timestamps import format_timestamp
from leadscore.io.writers import _FORMULA_STARTS, _number_cell, _packs_text, _plain_number, safe_cell
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


def route_tables(plan: Any, fmt: str = "jsonl") -> pa.Table:
    """Per (combination, band): the ``[routing]`` table's route as the JSON the python writer prints
    (``route_json``); for ``fmt`` csv its three CSV cells too (``route_csv``), for parquet its fields
    (``route_action``, ``route_queue``, ``route_sla``)."""
    rows: dict[str, list[Any]] = {"combo": [], "band": [], "route_json": [], "route_csv": [], "route_action": [],
                                  "route_queue": [], "route_sla": []}
    for combo in plan.combos:
        for band in combo.composed.bands:
            route = combo.composed.routing.get(band.name)
            rows["combo"].append(combo.index)
            rows["band"].append(band.name)
            made = None if route is None else Route(route.action, route.queue, route.sla_hours, route.owner_hint,
                                                    route.reason)
            rows["route_json"].append(None if made is None else _route_json(made))
            rows["route_csv"].append(None if made is None else _csv_cells(
                [safe_cell(made.action), safe_cell(made.queue or ""), _number_cell(made.sla_hours)]))
            rows["route_action"].append(None if made is None else made.action)
            rows["route_queue"].append(None if made is None else made.queue)
            rows["route_sla"].append(None if made is None or made.sla_hours is None else float(made.sla_hours))
    columns = {"combo": pa.array(rows["combo"], pa.int64()), "band": pa.array(rows["band"], pa.string()),
               "route_json": pa.array(rows["route_json"], pa.string())}
    if fmt == "csv":
        columns["route_csv"] = pa.array(rows["route_csv"], pa.string())
    if fmt == "parquet":
        columns["route_action"] = pa.array(rows["route_action"], pa.string())
        columns["route_queue"] = pa.array(rows["route_queue"], pa.string())
        columns["route_sla"] = pa.array(rows["route_sla"], pa.float64())
    return pa.table(columns)


def _csv_cells(cells: list[str]) -> str:
    """``cells`` as the python writer's CSV writer joins them into a row (without its line end)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()[:-1]


def _csv_quoted() -> str:
    """The characters that make Python's CSV writer (QUOTE_MINIMAL, line end ``\\n``) quote a cell,
    as a regular-expression class: the delimiter, the quote and the line end; and the carriage return
    where this Python's writer quotes it (asked of the writer, not assumed: versions differ)."""
    quoted = ',"\\n'
    return f"[{quoted}\\r]" if _csv_cells(["a\rb", "c"]).startswith('"') else f"[{quoted}]"


def csv_cell(e: exp.Expression) -> exp.Expression:
    """``e`` (VARCHAR, not NULL) as the python writer's CSV cell: a leading quote when a spreadsheet
    would run it as a formula (:func:`leadscore.io.writers.safe_cell`); then quoted, its quotes
    doubled, when it holds a character Python's CSV writer quotes for."""
    formula = q.or_(*[q.fn("starts_with", e, q.lit(start)) for start in _FORMULA_STARTS])
    e = q.case([(formula, q.concat(q.lit("'"), e))], e)
    quoted = q.concat(q.lit('"'), q.fn("replace", e, q.lit('"'), q.lit('""')), q.lit('"'))
    return q.case([(q.fn("regexp_matches", e, q.lit(_csv_quoted())), quoted)], e)


def _route_json(route: Route) -> str:
    return _dumps({"action": route.action, "queue": route.queue, "sla_hours": _plain_number(route.sla_hours)})


def json_text(plan: Any, e: exp.Expression) -> exp.Expression:
    """``e`` (VARCHAR) as a JSON string, exactly as orjson writes it."""
    if plan.udfs.portable:
        from leadscore.columnar.portable import json_string

        return json_string(e)
    py = plan.udfs.add("ls_json_text", lambda v: _dumps(v), ("VARCHAR",), "VARCHAR")
    # A text with nothing JSON escapes (a quote, a backslash, a control character) is itself between
    # quotes; the few others are written by orjson itself.
    escaped = q.fn("regexp_matches", e, q.lit('["\\\\\\x00-\\x1f]'))
    return q.case([(q.is_null(e.copy()), q.lit("null")), (escaped, py(e.copy()))], q.concat(q.lit('"'), e.copy(), q.lit('"')))


def _plain(texts: Iterable[str | None]) -> bool:
    """True when orjson writes each of ``texts`` as itself between two quotes (no quote, backslash or
    control character in it)."""
    return all(text is None or _dumps(text) == f'"{text}"' for text in texts)


@frozen
class PlainTexts:
    """Which of a card's texts that come from the rulepacks are plain (:func:`_plain`) in every pack
    combination of the run: band names, category names, rule reasons, and the band names with their
    gates' reasons (a gate note). A plain text's JSON is made by quoting it, with none of
    :func:`json_text`'s check of each value (see :func:`quoted`)."""

    bands: bool
    categories: bool
    reasons: bool
    notes: bool

    @classmethod
    def of(cls, plan: Any) -> "PlainTexts":
        composed = [combo.composed for combo in plan.combos]
        bands = _plain(band.name for c in composed for band in c.bands)
        return cls(bands=bands, categories=_plain(cat.name for c in composed for cat in c.categories),
                   reasons=_plain(rule.reason for c in composed for rule in c.rules),
                   notes=bands and _plain(band.gate_reason for c in composed for band in c.bands))


def quoted(plan: Any, e: exp.Expression, plain: bool) -> exp.Expression:
    """:func:`json_text` of ``e``; when each value ``e`` can take is plain text (``plain``, from
    :class:`PlainTexts`), ``e`` between quotes, the same text."""
    if not plain:
        return json_text(plan, e)
    return q.case([(q.is_null(e), q.lit("null"))], q.concat(q.lit('"'), e.copy(), q.lit('"')))


def constants(plan: Any, as_of: Any, fmt: str = "jsonl") -> pa.Table:
    """Per combination: its packs as JSON, and the scoring time's text; for ``fmt`` csv, its packs as
    the CSV's cell too, for parquet as the list of texts."""
    combos, packs, packs_csv = [], [], []
    for combo in plan.combos:
        combos.append(combo.index)
        packs.append(_dumps([f"{name}@{version}" for name, version in combo.composed.packs]))
        # A second, empty cell: Python's writer writes a row of one empty cell as "".
        packs_csv.append(_csv_cells([safe_cell(";".join(_packs_text(combo.composed.packs))), ""])[:-1])
    columns = {"combo": pa.array(combos, pa.int64()), "packs_json": pa.array(packs, pa.string()),
               "as_of_json": pa.array([_dumps(format_timestamp(as_of))] * len(combos), pa.string())}
    if fmt == "csv":
        columns["packs_csv"] = pa.array(packs_csv, pa.string())
    if fmt == "parquet":
        columns["packs_list"] = pa.array([list(_packs_text(c.composed.packs)) for c in plan.combos],
                                         pa.list_(pa.string()))
        columns["as_of_ms"] = pa.array([as_of.replace(microsecond=0)] * len(combos), pa.timestamp("ms", tz="UTC"))
    return pa.table(columns)


def _sla_text(sla: exp.Expression) -> exp.Expression:
    """A route's ``sla_hours`` (DOUBLE) as the python writer prints it: whole hours without a
    fraction, NULL as ``null``."""
    return q.case([(q.is_null(sla), q.lit("null")),
                   (sla.eq(q.fn("floor", sla.copy())), q.cast(q.cast(sla.copy(), "BIGINT"), "VARCHAR"))],
                  q.cast(sla.copy(), "VARCHAR"))


def _router_routes(routers: list[Any]) -> list[exp.Expression]:
    """The route struct each columnar router made for the card (NULL: no opinion), in the routers'
    order: columns of :func:`_cards_with`'s relation."""
    return [q.col(f"route_{index}", "x") for index in range(len(routers))]


def _reasons(each: Any) -> exp.Expression:
    """``each`` (text -> SQL) of every top reason of the card, as the python writer prints them (``+10 reason``)."""
    r = exp.column("r")
    text = q.concat(q.case([(exp.GT(this=q.field(r, "points"), expression=q.lit(0)), q.lit("+"))], q.lit("")),
                    q.cast(q.field(r.copy(), "points"), "VARCHAR"), q.lit(" "), q.field(r.copy(), "reason"))
    return q.fn("list_transform", q.col("reasons", "x"), exp.Lambda(this=each(text), expressions=[exp.to_identifier("r")]))


def _cards_with(select: exp.Select, plan: Any, routers: list[Any], constants: tuple[str, ...],
                routes: tuple[str, ...]) -> exp.Select:
    """``select`` over the relation ``x``: each card's columns (``cards``) with its lead's id
    (``lead_id``), the columns ``constants`` of its pack combination (``ls_render``) and ``routes`` of
    its band's ``[routing]`` route (``ls_routes``), and the route each columnar router makes for it
    (``route_<i>``). Each router's route is a column here, made once a card: the text that reads its
    fields several times reads the column (DuckDB does not share an expression between branches of a
    CASE, and a plugin router's route is a large one)."""
    x = lambda c: q.col(c, "x")  # noqa: E731
    ctx = RouterContext(x("band"), q.col("id", "l"), plan)
    inner = (q.select(exp.Column(this=exp.Star(), table=exp.to_identifier("x")), q.col("id", "l").as_("lead_id", copy=False),
                      *(q.col(name, "c") for name in constants), *(q.col(name, "rt") for name in routes),
                      *(router(ctx).as_(f"route_{index}", copy=False) for index, router in enumerate(routers)), copy=False)
             .from_(q.table("cards", "x"), copy=False)
             .join(q.table("b_leads", "l"), on=q.col("k", "l").eq(x("k")), copy=False)
             .join(q.table("sig", "s"), on=q.col("k", "s").eq(x("k")), copy=False)
             .join(q.table("ls_render", "c"), on=q.col("combo", "c").eq(x("combo")), copy=False)
             .join(q.table("ls_routes", "rt"), on=q.and_(q.col("combo", "rt").eq(x("combo")),
                                                         q.col("band", "rt").eq(x("band"))),
                   join_type="left", copy=False))
    return select.from_(inner.subquery("x", copy=False), copy=False)


def line_statement(plan: Any, routers: list[Any], ledger: bool = False, apart: bool = False) -> exp.Select:
    """(k, text): each scored lead's JSON line (newline included), from ``cards``, ``sig`` and the tables
    ``ls_routes`` / ``ls_render``; with ``ledger``, the line ``--explain`` writes (``cards`` then holds
    each lead's ledger); with ``apart``, the line up to its ledger (see :func:`ledger_rows`)."""
    x = lambda c: q.col(c, "x")  # noqa: E731
    band = x("band")
    parts = []
    for made in _router_routes(routers):
        text = q.concat(q.lit('{"action":'), json_text(plan, q.field(made, "action")), q.lit(',"queue":'),
                        json_text(plan, q.field(made.copy(), "queue")), q.lit(',"sla_hours":'),
                        _sla_text(q.field(made.copy(), "sla_hours")), q.lit("}"))
        parts.append(q.case([(q.not_null(made.copy()), text)]))
    route = q.coalesce(*parts, x("route_json"), q.lit("null"))
    # The texts the rulepacks give (band and category names, reasons, gate notes) are quoted without
    # to_json when they are plain; a reason or a gate note is plain when its rulepack texts are (the
    # points and the words around them are).
    plain = PlainTexts.of(plan)
    subscores = q.fn("array_to_string", q.fn("list_transform", x("subscores"), exp.Lambda(
        this=q.concat(quoted(plan, q.field(exp.column("c"), "category"), plain.categories), q.lit(":"),
                      q.cast(q.field(exp.column("c"), "points"), "VARCHAR")),
        expressions=[exp.to_identifier("c")])), q.lit(","))
    reasons = q.fn("array_to_string", _reasons(lambda text: quoted(plan, text, plain.reasons)), q.lit(","))
    notes = q.fn("array_to_string", q.fn("list_transform", x("gate_notes"), exp.Lambda(
        this=quoted(plan, exp.column("n"), plain.notes), expressions=[exp.to_identifier("n")])), q.lit(","))
    gated = q.case([(band.neq(x("points_band")), q.concat(q.lit(',"points_band":'), quoted(plan, x("points_band"), plain.bands),
                                                         q.lit(',"gate_notes":['), notes, q.lit("]")))], q.lit(""))
    text = q.concat(
        q.lit('{"id":'), json_text(plan, x("lead_id")), q.lit(',"total":'), q.cast(x("total"), "VARCHAR"),
        q.lit(',"band":'), quoted(plan, band.copy(), plain.bands), q.lit(',"subscores":{'), subscores, q.lit('},"route":'), route,
        q.lit(',"reasons":['), reasons, q.lit('],"packs":'), x("packs_json"), q.lit(',"as_of":'),
        x("as_of_json"), gated,
        *([q.lit(',"ledger":'), ledger_text(plan, x("ledger"))[0]] if ledger else []),
        q.lit(',"ledger":' if apart else "}\n"))
    return _cards_with(q.select(x("k"), text.as_("text", copy=False)), plan, routers, ("packs_json", "as_of_json"),
                       ("route_json",))


def _subscore(category: str) -> exp.Expression:
    """The card's sub-score in ``category`` (BIGINT), NULL when it has none."""
    found = q.fn("list_filter", q.col("subscores", "x"), exp.Lambda(
        this=q.field(exp.column("c"), "category").eq(q.lit(category)), expressions=[exp.to_identifier("c")]))
    return q.field(q.call("list_extract", found, q.lit(1)), "points")


def parquet_row_statement(plan: Any, routers: list[Any], categories: tuple[str, ...],
                          ledger: bool = False) -> exp.Select:
    """(k, then the columns the Parquet writer writes): each scored lead's row, with the writer's values
    (leadscore.io.writers.ParquetWriter): ``points_band`` and ``gate_notes`` only for a lead a gate held
    below its points band, the route's fields null without a route, ``score_<category>`` for each of
    ``categories`` (null without that sub-score); with ``ledger`` (``--explain``) the ledger's JSON."""
    x = lambda c: q.col(c, "x")  # noqa: E731
    routes = _router_routes(routers)

    def route(name: str, table: str) -> exp.Expression:
        return q.case([(q.not_null(made.copy()), q.field(made.copy(), name)) for made in routes], x(table))

    held = x("band").neq(x("points_band"))
    no_notes = q.cast(q.call("list_value"), "VARCHAR[]")
    columns = [
        x("k"), x("lead_id").as_("id", copy=False), q.cast(x("total"), "BIGINT").as_("total", copy=False),
        x("band").as_("band", copy=False),
        q.case([(held, x("points_band"))]).as_("points_band", copy=False),
        q.case([(held.copy(), q.coalesce(x("gate_notes"), no_notes))]).as_("gate_notes", copy=False),
        route("action", "route_action").as_("route_action", copy=False),
        route("queue", "route_queue").as_("route_queue", copy=False),
        q.cast(route("sla_hours", "route_sla"), "DOUBLE").as_("sla_hours", copy=False),
        *(q.cast(_subscore(category), "BIGINT").as_(f"score_{category}", copy=False) for category in categories),
        q.coalesce(_reasons(lambda text: text), q.cast(q.call("list_value"), "VARCHAR[]")).as_("reasons", copy=False),
        x("packs_list").as_("packs", copy=False), x("as_of_ms").as_("as_of", copy=False),
        *([ledger_text(plan, x("ledger"))[0].as_("ledger", copy=False)] if ledger else []),
    ]
    return _cards_with(q.select(*columns), plan, routers, ("packs_list", "as_of_ms"),
                       ("route_action", "route_queue", "route_sla"))


def csv_line_statement(plan: Any, routers: list[Any], categories: tuple[str, ...],
                       ledger: bool = False, apart: bool = False) -> exp.Select:
    """(k, text): each scored lead's CSV row (line end included) as the python writer writes it: id,
    total, band, the route's three cells, ``score_<category>`` for each of ``categories`` in order
    (empty when the card has no such sub-score), reasons and packs; with ``ledger`` (``--explain``)
    the ledger's JSON; with ``apart``, the row up to its ledger cell (see :func:`ledger_rows`)."""
    x = lambda c: q.col(c, "x")  # noqa: E731
    parts = []
    for made in _router_routes(routers):
        queue = q.coalesce(q.field(made.copy(), "queue"), q.lit(""))
        sla = q.field(made.copy(), "sla_hours")
        cells = q.concat(csv_cell(q.field(made, "action")), q.lit(","), csv_cell(queue), q.lit(","),
                         q.case([(q.is_null(sla), q.lit(""))], _sla_text(sla.copy())))
        parts.append(q.case([(q.not_null(made.copy()), cells)]))
    route = q.coalesce(*parts, x("route_csv"), q.lit(",,"))
    scores = []
    for category in categories:
        scores += [q.lit(","), q.coalesce(q.cast(_subscore(category), "VARCHAR"), q.lit(""))]
    reasons = csv_cell(q.coalesce(q.fn("array_to_string", _reasons(lambda text: text), q.lit(" | ")), q.lit("")))
    text = q.concat(csv_cell(x("lead_id")), q.lit(","), q.cast(x("total"), "VARCHAR"), q.lit(","),
                    csv_cell(x("band")), q.lit(","), route, *scores, q.lit(","), reasons, q.lit(","),
                    x("packs_csv"), *([q.lit(","), csv_cell(ledger_text(plan, x("ledger"))[0])] if ledger else []),
                    q.lit("," if apart else "\n"))
    return _cards_with(q.select(x("k"), text.as_("text", copy=False)), plan, routers, ("packs_csv",), ("route_csv",))


def ledger_text(plan: Any, ledger: exp.Expression) -> tuple[exp.Expression, exp.Expression]:
    """(text, exact) of a card's ledger (a list of line structs, in the card's order): the JSON array
    ``--explain`` writes (``contribution_to_dict`` per line), and whether SQL alone wrote it as Python
    would. In an exported query (portable) a decay factor on a four-decimal tie or a time outside the
    years 1000-9999 makes ``exact`` false; on the columnar engine those few values are written by the
    python writer's own code instead, and ``exact`` is always true."""
    from leadscore.columnar import portable as p

    line = exp.column("l")
    f = lambda name: q.field(line, name)  # noqa: E731
    one = _line_json(plan, f)
    lines = q.fn("array_to_string", q.fn("list_transform", ledger, exp.Lambda(
        this=one, expressions=[exp.to_identifier("l")])), q.lit(","))
    joined = q.coalesce(q.concat(q.lit("["), lines, q.lit("]")), q.lit("[]"))
    if not plan.udfs.portable:
        return joined, exp.true()
    doubtful = q.fn("list_filter", ledger, exp.Lambda(
        this=q.not_(q.and_(p.exact_factor(f("factor")), p.exact_stamp(f("observed_at")))),
        expressions=[exp.to_identifier("l")]))
    return joined, q.or_(q.is_null(ledger), exp.Length(this=doubtful).eq(q.lit(0)))


def _line_json(plan: Any, f: Any) -> exp.Expression:
    """A ledger line's JSON object (``contribution_to_dict``), ``f(name)`` its values."""
    from leadscore.columnar import portable as p

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
    return one


def ledger_rows(plan: Any, fmt: str) -> exp.Select:
    """(k, text) in the cards' order, whose texts joined by lead (:func:`joined_rows`) are the lines
    ``--explain`` writes in ``fmt`` (jsonl or csv): each card's line up to its ledger (``lines_out``,
    made with ``apart``), then each ledger line (``ledger_lines``) one row each in the card's order, then
    the line's end. DuckDB gathering a lead's ledger into one value (a list of lines, or one text) holds
    seven to ten times the text in memory, rows of text in order under three (bench/ledger_memory.py)."""
    csv_cell_quoted = fmt == "csv"  # a ledger with lines holds quotes, so its CSV cell is quoted
    e = lambda name: q.col(name, "e")  # noqa: E731
    one = _line_json(plan, e)
    if csv_cell_quoted:
        one = q.fn("replace", one, q.lit('"'), q.lit('""'))
    first = q.struct(s1=e("s1"), s2=e("s2")).eq(q.col("first", "m"))
    line = q.concat(q.case([(first, q.lit('"[' if csv_cell_quoted else "["))], q.lit(",")), one)
    firsts = (q.select(q.col("k"), q.fn("min", q.struct(s1=q.col("s1"), s2=q.col("s2"))).as_("first", copy=False), copy=False)
              .from_("ledger_lines", copy=False).group_by(q.col("k"), copy=False))
    end = "\n" if csv_cell_quoted else "}\n"
    # A lead without ledger lines has "[]", which a CSV cell holds unquoted.
    closing = q.case([(q.is_null(q.col("k", "m")), q.lit("[]" + end))], q.lit((']"' if csv_cell_quoted else "]") + end))
    no_order = q.cast(exp.null(), "BIGINT")
    heads = (q.select(q.col("k", "o"), q.lit(0).as_("part", copy=False), no_order.as_("s1", copy=False),
                      no_order.copy().as_("s2", copy=False), q.col("text", "o"), copy=False)
             .from_(q.table("lines_out", "o"), copy=False))
    body = (q.select(q.col("k", "e"), q.lit(1), q.cast(e("s1"), "BIGINT"), q.cast(e("s2"), "BIGINT"), line, copy=False)
            .from_(q.table("ledger_lines", "e"), copy=False)
            .join(firsts.subquery("m", copy=False), on=q.col("k", "m").eq(q.col("k", "e")), copy=False))
    ends = (q.select(q.col("k", "o"), q.lit(2), no_order.copy(), no_order.copy(), closing, copy=False)
            .from_(q.table("lines_out", "o"), copy=False)
            .join(firsts.copy().subquery("m", copy=False), on=q.col("k", "m").eq(q.col("k", "o")), join_type="left", copy=False))
    rows = exp.union(exp.union(heads, body, distinct=False), ends, distinct=False)
    return (q.select(q.col("k"), q.col("text"), copy=False).from_(rows.subquery("r", copy=False), copy=False)
            .order_by(q.col("k"), q.col("part"), q.col("s1"), q.col("s2"), copy=False))


def joined_rows(batches: Iterable[pa.RecordBatch]) -> list[dict[str, Any]]:
    """{k, text} for each lead of ``batches`` (the rows of :func:`ledger_rows`, in order): its rows' texts
    joined by Arrow's own string functions, a batch at a time (a lead's rows may span two)."""
    import pyarrow.compute as pc

    found: list[dict[str, Any]] = []
    for batch in batches:
        if batch.num_rows == 0:
            continue
        runs = pc.run_end_encode(batch.column(0))
        offsets = pa.concat_arrays([pa.array([0], runs.run_ends.type), runs.run_ends])
        joined = pc.binary_join(pa.ListArray.from_arrays(offsets, batch.column(1).cast(pa.string())), "")
        keys, texts = runs.values.to_pylist(), joined.to_pylist()
        if found and found[-1]["k"] == keys[0]:
            found[-1]["text"] += texts[0]
            keys, texts = keys[1:], texts[1:]
        found.extend({"k": k, "text": text} for k, text in zip(keys, texts))
    return found


def ledger_statement(plan: Any) -> exp.Select:
    """(k, ledger, ledger_exact): each scored lead's ledger text (see :func:`ledger_text`), from ``cards``."""
    text, exact = ledger_text(plan, q.col("ledger", "x"))
    return (q.select(q.col("k", "x"), text.as_("ledger", copy=False), exact.as_("ledger_exact", copy=False), copy=False)
            .from_(q.table("cards", "x"), copy=False))


__all__ = ["RouterContext", "constants", "csv_cell", "csv_line_statement", "joined_rows", "ledger_rows", "ledger_statement",
           "ledger_text",
           "line_statement", "parquet_row_statement", "routable", "route_struct", "route_tables"]
