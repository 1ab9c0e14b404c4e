"""From ledger lines to cards in SQL: rule caps, category and total caps, band with gates, top reasons.

Reads the batch's ``sig`` (signals, combination, gates) and ``lines`` (rule and frequency-cap
lines) tables and the plan's small lookup tables (``ls_rules``, ``ls_cats``, ``ls_totals``,
``ls_bands``), and returns one row per scored lead with everything a ScoreCard holds.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.errors import ConfigurationError
from leadscore.columnar.plan import CAP_ORDER, CARD_LINE_COLUMNS, LINE_COLUMNS, Numbering, Plan
from leadscore.scoring.bands import band_key

RULE_CAP_ORDER = CAP_ORDER + 1
BIG = 1 << 40  # s1 of category and total cap lines: after every rule


def lookup_tables(plan: Plan) -> dict[str, pa.Table]:
    """The per-combination constants the plan joins: lead-level rules' texts, rule caps, categories,
    totals, bands, and every rule's id and reason by its position (``ls_rule_texts``, for the top reasons)."""
    rules: dict[str, list[Any]] = {c: [] for c in ("combo", "s1", "rule_id", "category", "pack", "max_points", "min_points")}
    cats: dict[str, list[Any]] = {c: [] for c in ("combo", "ci", "category", "label", "cmin", "cmax")}
    totals: dict[str, list[Any]] = {c: [] for c in ("combo", "tmin", "tmax", "pack")}
    bands: dict[str, list[Any]] = {c: [] for c in ("combo", "bi", "name", "min_points", "gate_reason", "gi")}
    lead_rules: dict[str, list[Any]] = {c: [] for c in ("combo", "lid", "s1", "s2", "rule_id", "category", "reason", "pack",
                                                         "kind", "raw", "decay", "signal")}
    texts: dict[str, list[Any]] = {c: [] for c in ("combo", "s1", "rule_id", "reason")}
    lids = plan.lead_rule_ids()[0]
    gates = gate_ids(plan)[0]
    for combo in plan.combos:
        composed = combo.composed
        for index, rule in enumerate(composed.rules):
            for key, value in (("combo", combo.index), ("s1", index), ("rule_id", rule.id), ("reason", rule.reason)):
                texts[key].append(value)
            if not rule.on and rule.when is not None:
                for key, value in (("combo", combo.index), ("lid", lids[(combo.index, index)]), ("s1", index), ("s2", 0),
                                   ("rule_id", rule.id),
                                   ("category", rule.category), ("reason", rule.reason), ("pack", rule.pack),
                                   ("kind", "rule"), ("raw", rule.points), ("decay", composed.rule_decay[index][1]),
                                   ("signal", rule.signals[0] if rule.signals else None)):
                    lead_rules[key].append(value)
            if rule.max_points is not None or rule.min_points is not None:
                for key, value in (("combo", combo.index), ("s1", index), ("rule_id", rule.id),
                                   ("category", rule.category), ("pack", rule.pack), ("max_points", rule.max_points),
                                   ("min_points", rule.min_points)):
                    rules[key].append(value)
        for ci, cat in enumerate(composed.categories):
            for key, value in (("combo", combo.index), ("ci", ci), ("category", cat.name),
                               ("label", cat.label or cat.name), ("cmin", cat.min), ("cmax", cat.max)):
                cats[key].append(value)
        for key, value in (("combo", combo.index), ("tmin", composed.total_min), ("tmax", composed.total_max),
                           ("pack", composed.key[-1])):
            totals[key].append(value)
        minimums = band_minimums(plan.engine, composed)
        for bi, (band, minimum) in enumerate(zip(composed.bands, minimums)):
            for key, value in (("combo", combo.index), ("bi", bi), ("name", band.name),
                               ("min_points", minimum), ("gate_reason", band.gate_reason),
                               ("gi", gates[(combo.index, bi)])):
                bands[key].append(value)
    schema = {"combo": pa.int64(), "lid": pa.int64(), "s1": pa.int64(), "s2": pa.int64(), "raw": pa.int64(), "ci": pa.int64(), "bi": pa.int64(), "max_points": pa.int64(),
              "min_points": pa.int64(), "cmin": pa.int64(), "cmax": pa.int64(), "tmin": pa.int64(), "tmax": pa.int64(), "gi": pa.int64()}

    def table(columns: dict[str, list[Any]]) -> pa.Table:
        return pa.table({name: pa.array(values, type=schema.get(name, pa.string())) for name, values in columns.items()})

    return {"ls_rules": table(rules), "ls_cats": table(cats), "ls_totals": table(totals), "ls_bands": table(bands),
            "ls_lead_rules": table(lead_rules), "ls_rule_texts": table(texts)}


def band_minimums(engine: Any, composed: Any) -> list[int]:
    """The bands' minimums this run: a "top N%" band's from Engine.resolve_shares, the others' own."""
    if not composed.has_shares:
        return [band.min_points for band in composed.bands]
    found = engine.band_minimums.get(band_key(composed.bands))
    if found is None:
        raise ConfigurationError("bands", "a band's min is a share of leads (\"top N%\"), which needs every lead "
                                 "scored once first", "call Engine.resolve_shares(leads) before Engine.score "
                                 "(leadscore score and explain do)")
    return list(found)


def gate_ids(plan: Plan) -> tuple[dict[tuple[int, int], int], list[Any]]:
    """The distinct band gates of the run: each band's place (``gi``, from 1) in the list of
    :func:`gate_columns` by (combination, band position), and the gates' conditions in that list's
    order after its first place (a band without a gate, always true)."""
    ids: dict[tuple[int, int], int] = {}
    gates = Numbering(start=2)
    for combo in plan.combos:
        for bi, band in enumerate(combo.composed.bands):
            ids[(combo.index, bi)] = 1 if band.requires is None else gates.number(repr(band.requires), band.requires)
    return ids, gates.firsts


def gate_columns(plan: Plan, compiler: Any) -> exp.Expression:
    """A list of booleans per lead: whether each distinct gate of the run holds (a band reads its
    own by ``gi``, see :func:`gate_ids`); each gate is written once however many bands share it."""
    return exp.Array(expressions=[exp.true(), *(compiler.compile(cond) for cond in gate_ids(plan)[1])])


def statements(plan: Plan, top: int, explain: bool,
               ledger_apart: bool = False) -> list[tuple[str, exp.Expression]]:
    """(table, select) pairs run in order after ``sig`` and ``lines``; the last is the cards. Without
    the full ledger (``explain``) the lines have only the columns the cards read (CARD_LINE_COLUMNS).
    With ``ledger_apart`` the cards hold no ledger: every ledger line (``ledger_lines``, before the
    cards) is left to the card's text as rows of its own (render.ledger_rows)."""
    line_cols = [q.col(c) for c in (LINE_COLUMNS if explain else CARD_LINE_COLUMNS)]
    # Rule caps: the lines of one rule, summed.
    rule_sums = (q.select(q.col("k", "l"), q.col("s1", "l"), q.fn("sum", q.col("points", "l")).as_("got", copy=False))
                 .from_(q.table("lines", "l"), copy=False).group_by(q.col("k", "l"), q.col("s1", "l"), copy=False))
    got = q.cast(q.col("got", "g"), "BIGINT")
    over = q.and_(q.not_null(q.col("max_points", "r")), exp.GT(this=got, expression=q.col("max_points", "r")))
    under = q.and_(q.not_null(q.col("min_points", "r")), exp.LT(this=got, expression=q.col("min_points", "r")))
    rule_caps = (q.select(
        q.col("k", "g"), q.col("s1", "g"), q.lit(RULE_CAP_ORDER).as_("s2", copy=False), q.col("rule_id", "r"), q.col("category", "r"),
        q.case([(over, exp.Sub(this=q.col("max_points", "r"), expression=got))],
               exp.Sub(this=q.col("min_points", "r"), expression=got)).as_("points", copy=False),
        q.case([(over, q.concat(q.lit("rule capped at "), q.cast(q.col("max_points", "r"), "VARCHAR"),
                                q.lit(" points (had "), q.cast(got, "VARCHAR"), q.lit(")")))],
               q.concat(q.lit("rule floored at "), q.cast(q.col("min_points", "r"), "VARCHAR"),
                        q.lit(" points (had "), q.cast(got, "VARCHAR"), q.lit(")"))).as_("reason", copy=False),
        q.col("pack", "r"), q.lit("rule_cap").as_("kind", copy=False), q.lit(0).as_("raw", copy=False), q.lit("none").as_("decay", copy=False),
        q.lit(1.0).as_("factor", copy=False), q.cast(exp.null(), "VARCHAR").as_("signal", copy=False),
        q.cast(exp.null(), "BIGINT").as_("observed_at", copy=False), q.lit("").as_("evidence", copy=False))
        .from_(rule_sums.subquery("g", copy=False))
        .join(q.table("sig", "s"), on=q.col("k", "s").eq(q.col("k", "g")), copy=False)
        .join(q.table("ls_rules", "r"), on=q.and_(q.col("combo", "r").eq(q.col("combo", "s")),
                                                   q.col("s1", "r").eq(q.col("s1", "g"))), copy=False)
        .where(q.or_(over, under), copy=False))
    # A run without rule caps (no rule with max_points or min_points) has no rule-cap lines to make.
    with_rule_caps = any(rule.max_points is not None or rule.min_points is not None
                         for combo in plan.combos for rule in combo.composed.rules)
    all_lines: exp.Expression = q.select(*line_cols, copy=False).from_("lines", copy=False)
    if with_rule_caps:
        all_lines = exp.union(all_lines, q.select(*line_cols, copy=False).from_("rule_caps", copy=False), distinct=False)
    # Category sums in the combination's category order, then their caps.
    sums = (q.select(q.col("k"), q.col("category"), q.fn("sum", q.col("points")).as_("got", copy=False))
            .from_("all_lines", copy=False).group_by(q.col("k"), q.col("category"), copy=False))
    cgot = q.cast(q.coalesce(q.col("got", "u"), q.lit(0)), "BIGINT")
    cover = q.and_(q.not_null(q.col("cmax", "c")), exp.GT(this=cgot, expression=q.col("cmax", "c")))
    cunder = q.and_(q.not_null(q.col("cmin", "c")), exp.LT(this=cgot, expression=q.col("cmin", "c")))
    capped = q.case([(cover, q.col("cmax", "c")), (cunder, q.col("cmin", "c"))], cgot)
    cats = (q.select(
        q.col("k", "s"), q.col("combo", "s"), q.col("ci", "c"), q.col("category", "c"), q.col("label", "c"),
        cgot.as_("got", copy=False), q.cast(capped, "BIGINT").as_("capped", copy=False), q.col("cmin", "c"), q.col("cmax", "c"),
        cover.as_("is_over", copy=False), cunder.as_("is_under", copy=False))
        .from_(q.table("sig", "s"), copy=False)
        .join(q.table("ls_cats", "c"), on=q.col("combo", "c").eq(q.col("combo", "s")), copy=False)
        .join(sums.subquery("u", copy=False), on=q.and_(q.col("k", "u").eq(q.col("k", "s")),
                                            q.col("category", "u").eq(q.col("category", "c"))), join_type="left", copy=False))
    cat_lines = (q.select(
        q.col("k", "x"), exp.Add(this=q.lit(BIG), expression=q.col("ci", "x")).as_("s1", copy=False), q.lit(0).as_("s2", copy=False),
        q.concat(q.lit("cap."), q.col("category", "x")).as_("rule_id", copy=False), q.col("category", "x"),
        exp.Sub(this=q.col("capped", "x"), expression=q.col("got", "x")).as_("points", copy=False),
        q.case([(q.col("is_over", "x"), q.concat(q.col("label", "x"), q.lit(" capped at "),
                                               q.cast(q.col("cmax", "x"), "VARCHAR"), q.lit(" points (had "),
                                               q.cast(q.col("got", "x"), "VARCHAR"), q.lit(")")))],
               q.concat(q.col("label", "x"), q.lit(" floored at "), q.cast(q.col("cmin", "x"), "VARCHAR"),
                        q.lit(" points (had "), q.cast(q.col("got", "x"), "VARCHAR"), q.lit(")"))).as_("reason", copy=False),
        q.col("pack", "t"), q.lit("category_cap").as_("kind", copy=False), q.lit(0).as_("raw", copy=False), q.lit("none").as_("decay", copy=False),
        q.lit(1.0).as_("factor", copy=False), q.cast(exp.null(), "VARCHAR").as_("signal", copy=False),
        q.cast(exp.null(), "BIGINT").as_("observed_at", copy=False), q.lit("").as_("evidence", copy=False))
        .from_(q.table("cats", "x"), copy=False)
        .join(q.table("ls_totals", "t"), on=q.col("combo", "t").eq(q.col("combo", "x")), copy=False)
        .where(q.or_(q.col("is_over", "x"), q.col("is_under", "x")), copy=False))
    subtotal = (q.select(q.col("k"), q.cast(q.fn("sum", q.col("capped")), "BIGINT").as_("sub", copy=False),
                         exp.WithinGroup(this=q.fn("list", q.struct(category=q.col("category"), points=q.col("capped"))),
                                         expression=exp.Order(expressions=[exp.Ordered(this=q.col("ci"))])).as_("subscores", copy=False))
                .from_("cats", copy=False).group_by(q.col("k"), copy=False))
    sub = q.col("sub", "b")
    tover = q.and_(q.not_null(q.col("tmax", "t")), exp.GT(this=sub, expression=q.col("tmax", "t")))
    tunder = q.and_(q.not_null(q.col("tmin", "t")), exp.LT(this=sub, expression=q.col("tmin", "t")))
    totals = (q.select(
        q.col("k", "s"), q.col("combo", "s"), q.col("gates", "s"), q.coalesce(sub, q.lit(0)).as_("sub", copy=False),
        q.col("subscores", "b"),
        q.cast(q.case([(tover, q.col("tmax", "t")), (tunder, q.col("tmin", "t"))], q.coalesce(sub, q.lit(0))),
               "BIGINT").as_("total", copy=False),
        tover.as_("t_over", copy=False), tunder.as_("t_under", copy=False), q.col("tmax", "t"), q.col("tmin", "t"), q.col("pack", "t"), copy=False)
        .from_(q.table("sig", "s"), copy=False)
        .join(q.table("ls_totals", "t"), on=q.col("combo", "t").eq(q.col("combo", "s")), copy=False)
        .join(subtotal.subquery("b", copy=False), on=q.col("k", "b").eq(q.col("k", "s")), join_type="left", copy=False)
        .where(exp.GTE(this=q.col("combo", "s"), expression=q.lit(0)), copy=False))
    total_lines = (q.select(
        q.col("k"), q.lit(BIG * 2).as_("s1", copy=False), q.lit(0).as_("s2", copy=False), q.lit("cap.total").as_("rule_id", copy=False),
        q.lit("total").as_("category", copy=False), exp.Sub(this=q.col("total"), expression=q.col("sub")).as_("points", copy=False),
        q.case([(q.col("t_over"), q.concat(q.lit("total capped at "), q.cast(q.col("tmax"), "VARCHAR"),
                                          q.lit(" points (had "), q.cast(q.col("sub"), "VARCHAR"), q.lit(")")))],
               q.concat(q.lit("total floored at "), q.cast(q.col("tmin"), "VARCHAR"), q.lit(" points (had "),
                        q.cast(q.col("sub"), "VARCHAR"), q.lit(")"))).as_("reason", copy=False),
        q.col("pack"), q.lit("total_cap").as_("kind", copy=False), q.lit(0).as_("raw", copy=False), q.lit("none").as_("decay", copy=False),
        q.lit(1.0).as_("factor", copy=False), q.cast(exp.null(), "VARCHAR").as_("signal", copy=False),
        q.cast(exp.null(), "BIGINT").as_("observed_at", copy=False), q.lit("").as_("evidence", copy=False))
        .from_("totals", copy=False).where(q.or_(q.col("t_over"), q.col("t_under")), copy=False))
    # Band: the highest band the points reach, then down to the first whose gate holds.
    bands = _list_by_combo("ls_bands", "bands", "bi", name=q.col("name"), min_points=q.col("min_points"),
                           gate_reason=q.col("gate_reason"), gi=q.col("gi"))
    reached = (q.select(
        q.col("k", "t"), q.col("combo", "t"), q.col("total", "t"), q.col("gates", "t"), q.col("subscores", "t"),
        q.col("bands", "b"),
        exp.Sub(this=q.fn("greatest", q.lit(1), q.fn("len", q.fn("list_filter", q.col("bands", "b"), exp.Lambda(
            this=exp.LTE(this=q.field(exp.column("x"), "min_points"), expression=q.col("total", "t")),
            expressions=[exp.to_identifier("x")])))), expression=q.lit(1)).as_("pi", copy=False))
        .from_(q.table("totals", "t"), copy=False).join(bands.subquery("b", copy=False), on=q.col("combo", "b").eq(q.col("combo", "t")), copy=False))
    # chosen: the largest i <= pi whose gate holds, or -1.
    indexes = q.fn("range", q.lit(0), exp.Add(this=q.col("pi"), expression=q.lit(1)))
    passing = q.fn("list_filter", indexes, exp.Lambda(
        this=q.fn("list_extract", q.col("gates"), q.cast(q.field(q.fn("list_extract", q.col("bands"), exp.Add(
            this=exp.column("i"), expression=q.lit(1))), "gi"), "INT")),  # Spark's element_at takes an INT
        expressions=[exp.to_identifier("i")]))
    chosen = q.coalesce(q.fn("list_max", passing), q.lit(-1))
    banded = q.select(q.col("k"), q.col("combo"), q.col("total"), q.col("subscores"), q.col("bands"), q.col("pi"),
                      chosen.as_("chosen", copy=False)).from_("reached", copy=False)
    band_of = lambda index: q.field(q.fn("list_extract", q.col("bands"), exp.Add(this=index, expression=q.lit(1))), "name")  # noqa: E731
    notes = q.fn("list_transform", q.fn("list_reverse", q.fn("range", exp.Add(this=q.col("chosen"), expression=q.lit(1)),
                                                           exp.Add(this=q.col("pi"), expression=q.lit(1)))),
                 exp.Lambda(this=q.concat(
                     q.field(q.fn("list_extract", q.col("bands"), exp.Add(this=exp.column("i"), expression=q.lit(1))), "name"),
                     q.lit(" not reached despite "), q.cast(q.col("total"), "VARCHAR"), q.lit(" points: requires "),
                     q.field(q.fn("list_extract", q.col("bands"), exp.Add(this=exp.column("i"), expression=q.lit(1))),
                             "gate_reason")), expressions=[exp.to_identifier("i")]))
    # The top reasons: the lines with the most points either way, ties by rule id (Ledger.top_reasons's
    # order); min_by keeps the first ``top`` of that order without sorting every line of the lead. It
    # keeps each line's rule position and points, and the rule's id and reason are read back by that
    # position (a rule line's texts are its rule's): with the texts themselves in the aggregate's state,
    # a block's query alone peaked 35-40 MiB higher (bench/README.md, twenty-seventh round).
    line = q.struct(s1=q.col("s1"), points=q.col("points"))
    order = q.struct(rank=exp.Neg(this=q.fn("abs", q.col("points"))), rule_id=q.col("rule_id"), points=q.col("points"),
                     reason=q.col("reason"))
    reasons = (q.select(q.col("k"), q.fn("min_by", line, order, q.lit(max(top, 1))).as_("reasons", copy=False))
        .from_("lines", copy=False).where(q.and_(q.col("kind").eq(q.lit("rule")), q.col("points").neq(q.lit(0))), copy=False)
        .group_by(q.col("k"), copy=False))
    texts = _list_by_combo("ls_rule_texts", "texts", "s1", rule_id=q.col("rule_id"), reason=q.col("reason"))
    text_of = lambda name: q.field(q.fn("list_extract", q.col("texts", "t"), exp.Add(  # noqa: E731
        this=q.cast(q.field(exp.column("v"), "s1", "BIGINT"), "INT"), expression=q.lit(1))), name)  # Spark's element_at: INT
    top_lines = q.fn("list_transform", q.col("reasons", "r"), exp.Lambda(
        this=q.struct(rule_id=text_of("rule_id"), points=q.field(exp.column("v"), "points"), reason=text_of("reason")),
        expressions=[exp.to_identifier("v")]))
    every_line = exp.union(exp.union(q.select(*line_cols, copy=False).from_("all_lines", copy=False), q.select(*line_cols, copy=False).from_("cat_lines", copy=False),
                                     distinct=False), q.select(*line_cols, copy=False).from_("total_lines", copy=False), distinct=False)
    ledger = (q.select(q.col("k"), exp.WithinGroup(
        this=q.fn("list", q.struct(**{c: q.col(c) for c in LINE_COLUMNS[3:]})),
        expression=exp.Order(expressions=[exp.Ordered(this=q.col("s1")), exp.Ordered(this=q.col("s2"))])).as_("ledger", copy=False))
        .from_(every_line.subquery("e", copy=False)).group_by(q.col("k"), copy=False))
    cards = (q.select(
        q.col("k", "x"), q.col("combo", "x"), q.col("total", "x"), q.col("subscores", "x"),
        band_of(q.fn("greatest", q.col("chosen", "x"), q.lit(0))).as_("band", copy=False), band_of(q.col("pi", "x")).as_("points_band", copy=False),
        notes.transform(_qualify("x")).as_("gate_notes", copy=False),
        q.fn("list_slice", q.coalesce(top_lines, exp.Array(expressions=[])), q.lit(1), q.lit(top)).as_("reasons", copy=False),
        *([q.col("ledger", "g")] if explain and not ledger_apart else []), copy=False)
        .from_(q.table("banded", "x"), copy=False)
        .join(reasons.subquery("r", copy=False), on=q.col("k", "r").eq(q.col("k", "x")), join_type="left", copy=False)
        .join(texts.subquery("t", copy=False), on=q.col("combo", "t").eq(q.col("combo", "x")), join_type="left", copy=False))
    if explain and not ledger_apart:
        cards = cards.join(ledger.subquery("g", copy=False), on=q.col("k", "g").eq(q.col("k", "x")), join_type="left", copy=False)
    return [*([("rule_caps", rule_caps)] if with_rule_caps else []), ("all_lines", all_lines), ("cats", cats), ("cat_lines", cat_lines),
            ("totals", totals), ("total_lines", total_lines), ("reached", reached), ("banded", banded),
            *([("ledger_lines", every_line)] if explain and ledger_apart else []), ("cards", cards)]


def _list_by_combo(table: str, column: str, order: str, /, **fields: exp.Expression) -> exp.Select:
    """(combo, ``column``): each combination's rows of the constant ``table`` as one list of ``fields``
    structs in ``order``'s order (its bands, its rules' texts), which a lead's row reads by position."""
    return (q.select(q.col("combo"), exp.WithinGroup(
        this=q.fn("list", q.struct(**fields)),
        expression=exp.Order(expressions=[exp.Ordered(this=q.col(order))])).as_(column, copy=False))
        .from_(table, copy=False).group_by(q.col("combo"), copy=False))


def _qualify(alias: str) -> Any:
    def change(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in ("chosen", "pi", "bands", "total"):
            return q.col(node.name, alias)
        return node

    return change
