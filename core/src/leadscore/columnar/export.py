"""The columnar plan as one query a warehouse runs: ``leadscore sql``.

DuckDB gets one ``WITH ... SELECT``; Spark a script of one table per step and then the query
(Spark plans a query with every step it reads spelled out, and the plan reads its steps often).

The query reads two relations the team names:

- leads: ``id``, ``email``, ``title``, ``source``, ``created_at`` (a timestamp, UTC), ``account_id``,
  ``"company.name"``, ``"company.domain"``, ``"company.industry"``, ``"company.employees"`` (integer),
  ``"company.annual_revenue"`` (number), ``"company.country"``, ``"company.tier"`` and ``fields``
  (the custom fields as JSON object text, or NULL): the CSV input's columns, typed, with the
  custom fields as JSON Lines nests them;
- activities: ``lead_id``, ``type``, ``at`` (a timestamp, UTC) and ``properties`` (JSON object
  text, or NULL). Activities at the same time are taken in (type, properties) order, an activity
  without properties first.

It returns one row per lead: ``id``, ``total``, ``band``, ``card`` (the JSON line ``leadscore score``
writes for it: sub-scores, route, top reasons, packs), with ``ledger=True`` ``ledger`` (the JSON
array ``--explain`` writes), ``exact`` and ``rejection`` (why a lead got no card, else NULL). When
a pack reads account signals, the account roll-up runs first in the same query (see
:func:`_account_steps`); a contact the query cannot trust makes its whole account inexact. ``exact`` is false for a lead whose card SQL may not reproduce: text that
is not printable ASCII where the extractors lower-case or classify it, an id with control
characters, a revenue beyond 2**53, an age on a rounding tie, a custom field value the query does
not read as Python does (a JSON float, list or object; numeric text that is not a whole number in
a number field), an activity an extractor's SQL forms do not read as its Python does (the syndication
plugin's: properties with text beyond printable ASCII, for one). Score those leads with
``leadscore score`` (the ids are in the rows). Every constant (rule texts, bands, routes) is in the
query itself; the plan is the columnar engine's, with SQL forms for the functions it otherwise runs
in Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlglot import exp

from leadscore.columnar import portable as p
from leadscore.columnar import sql as q
from leadscore.columnar.conditions import Unsupported
from leadscore.columnar.engine import constant_tables, plan_steps
from leadscore.columnar.plan import Plan

# The dialects whose output is run by the tests and gives the python engine's cards.
DIALECTS = ("duckdb", "spark", "postgres")
# Dialects written as a script (a table per step, then the query) rather than one query.
SCRIPTS = ("spark",)
STEP_PREFIX = "leadscore_step_"
# Dialects sqlglot writes but whose output does not run yet, and why (one line each).
NOT_YET = {
    "snowflake": "the plan's list functions with lambdas (list_filter, list_transform) have no Snowflake form in "
                 "the SQL writer",
    "bigquery": "the plan's list functions with lambdas (list_filter, list_transform) have no BigQuery form in "
                "the SQL writer",
}
LEAD_COLUMNS = (("id", "id"), ("email", "email"), ("title", "title"), ("source", "source"),
                ("account_id", "account_id"), ("c_name", "company.name"), ("c_domain", "company.domain"),
                ("c_industry", "company.industry"), ("c_employees", "company.employees"),
                ("c_revenue", "company.annual_revenue"), ("c_country", "company.country"), ("c_tier", "company.tier"),
                ("fields", "fields"))
NO_PACK = ("could not be scored: LookupError: no rulepack applies to this lead (every installed pack has an "
           "applies_when it does not meet); install or pass a pack without applies_when")


def warehouse_query(engine: Any, as_of: datetime, *, leads: str = "leads", activities: str = "activities",
                    dialect: str = "duckdb", top: int = 3, ledger: bool = False, pretty: bool = True) -> str:
    """The scoring query of ``engine``'s composed rulepacks, as of ``as_of``, in ``dialect``.

    :raises Unsupported: a part of the run has no SQL form (the message names it), or the dialect
        is not one whose output is known to score alike.
    """
    if dialect in NOT_YET:
        raise Unsupported(f"--dialect {dialect} is not supported yet: {NOT_YET[dialect]}; use --dialect "
                          + " or ".join(DIALECTS))
    if dialect not in DIALECTS:
        raise Unsupported(f"--dialect {dialect!r} is not a dialect leadscore writes; use one of "
                          + ", ".join((*DIALECTS, *NOT_YET)))
    try:
        select = q.for_dialect(warehouse_select(engine, as_of, leads=leads, activities=activities, top=top,
                                                ledger=ledger), dialect, copy=False)
    except ValueError as err:  # a construct the dialect's forms do not cover (the message names it)
        raise Unsupported(f"--dialect {dialect}: {err}") from None
    if dialect not in SCRIPTS:
        return select.sql(dialect=dialect, pretty=pretty, unsupported_level="raise") + ";\n"
    # Spark plans a query with every step it reads spelled out (a common table expression, a view or
    # a cached table alike), and the plan reads its steps many times over: planning would take
    # longer than scoring. Each step is written to a table of its own instead.
    with_ = select.args.pop("with_")
    steps = {cte.alias: STEP_PREFIX + cte.alias for cte in with_.expressions}
    for name in (leads, activities):
        if name in steps or name.startswith(STEP_PREFIX):
            raise Unsupported(f"the relation name {name!r} is one of the script's own step tables; rename it")

    def renamed(tree: exp.Expression) -> str:
        tree = q.rewrite(tree, lambda n: q.table(steps[n.name], n.alias or None) if isinstance(n, exp.Table)
                         and n.name in steps else n)
        return tree.sql(dialect=dialect, pretty=pretty, unsupported_level="raise")

    statements = []
    for cte in with_.expressions:
        table = q.ident(steps[cte.alias]).sql(dialect=dialect)
        statements += [f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} USING parquet AS {renamed(cte.this)}"]
    statements.append(renamed(select))
    return ";\n".join(statements) + ";\n"


def warehouse_select(engine: Any, as_of: datetime, *, leads: str, activities: str, top: int = 3,
                     ledger: bool = False) -> exp.Select:
    from leadscore.columnar.engine import columnar_forms
    from leadscore.columnar.render import ledger_statement, routable

    if not routable(engine.pm):
        per_lead = next(fn for fn in engine.pm.router_functions() if getattr(fn, "columnar", None) is None
                        and not getattr(fn, "routes_by_table", False))
        raise Unsupported(f"router {getattr(per_lead, '__name__', repr(per_lead))!r} routes per lead only "
                          "(it has no columnar form)")
    routers = engine.pm.get_columnar_routers() if hasattr(engine.pm, "get_columnar_routers") else []
    plan = Plan(engine, columnar_forms(engine), routers, as_of, portable=True)
    if any(combo.composed.has_shares for combo in plan.combos):
        raise Unsupported("a band's minimum is a share of leads (\"top N%\"), which needs every lead scored first")
    # With account signals, the account pass (the plan without them, over every lead) comes first.
    accounts = _account_steps(engine, plan, top) if engine.needs_accounts else []
    steps, _, _, _, _, _ = plan_steps(plan, with_accounts=bool(accounts), explain=ledger, top=top, render="jsonl",
                                      values_needed=False, ledger_in_lines=False)
    steps = [*accounts, *steps]
    if ledger:
        steps.append(("ledger_out", ledger_statement(plan)))
    x = lambda c: q.col(c, "l")  # noqa: E731
    steps.append(("act_ties", _activity_ties(plan)))
    exact = _exact(plan)
    if accounts:
        # A contact's card reads its account's values, which every contact of the account makes.
        steps.append(("lead_exact", _with_ties(q.select(x("k"), exact.as_("exact", copy=False), copy=False).from_(
            q.table("b_leads", "l"), copy=False))))
        steps.append(("account_exact", q.select(q.col("key", "c"), q.fn("bool_and", q.col("exact", "e")).as_(
            "exact", copy=False), copy=False).from_(q.table("contacts", "c"), copy=False).join(
            q.table("lead_exact", "e"), on=q.col("k", "e").eq(q.col("k", "c")), copy=False).group_by(
            q.col("key", "c"), copy=False)))
        exact = q.and_(q.col("exact", "le"), q.coalesce(q.col("exact", "ae"), exp.true()))
    if ledger:
        exact = q.and_(exact, q.coalesce(q.col("ledger_exact", "g"), exp.true()))
    own = {"b_leads", "b_acts", *constant_tables(plan, as_of, render="jsonl"), *(name for name, _ in steps)}
    for name in (leads, activities):
        if name in own:
            raise Unsupported(f"the relation name {name!r} is also the name of one of the query's own steps; "
                              "use a qualified name (e.g. crm.leads) or a view under another name")
    inputs = [("b_leads", _leads_relation(leads)), ("b_acts", _activities_relation(activities, leads))]
    constants = [(name, _values(table)) for name, table in constant_tables(plan, as_of, render="jsonl").items()]
    card = exp.Substring(this=q.col("text", "o"), start=q.lit(1),
                         length=exp.Sub(this=exp.Length(this=q.col("text", "o")), expression=q.lit(1)))
    final = (q.select(x("id"), q.col("total", "c"), q.col("band", "c"), card.as_("card", copy=False),
                      *([q.col("ledger", "g")] if ledger else []), exact.as_("exact", copy=False),
                      q.case([(exp.LT(this=q.col("combo", "s"), expression=q.lit(0)), q.lit(NO_PACK))]).as_("rejection", copy=False))
             .from_(q.table("b_leads", "l"), copy=False)
             .join(q.table("sig", "s"), on=q.col("k", "s").eq(x("k")), copy=False)
             .join(q.table("cards", "c"), on=q.col("k", "c").eq(x("k")), join_type="left", copy=False)
             .join(q.table("lines_out", "o"), on=q.col("k", "o").eq(x("k")), join_type="left", copy=False))
    if ledger:
        final = final.join(q.table("ledger_out", "g"), on=q.col("k", "g").eq(x("k")), join_type="left", copy=False)
    if accounts:
        final = (final.join(q.table("lead_exact", "le"), on=q.col("k", "le").eq(x("k")), copy=False)
                 .join(q.table("contacts", "ct"), on=q.col("k", "ct").eq(x("k")), join_type="left", copy=False)
                 .join(q.table("account_exact", "ae"), on=q.col("key", "ae").eq(q.col("key", "ct")), join_type="left",
                       copy=False))
    else:
        final = _with_ties(final)
    final = final.order_by(x("k"), copy=False)
    return q.with_steps([*inputs, *constants, *steps], final)


ACCOUNT_PREFIX = "acct_"


def _account_steps(engine: Any, plan: Plan, top: int) -> list[tuple[str, exp.Expression]]:
    """The account pass as steps: the plan without account signals (the signals, and the cards when a
    pack reads the best contact's total) under ``acct_`` names, then each contact, each account's
    summary and ``same_account`` counts, its ``account.*`` row, and ``b_acc``, each contact's account
    row, which the scoring pass joins."""
    from leadscore.columnar.accounts import AccountSql

    steps, _, _, _, _, matched = plan_steps(plan, with_accounts=False, explain=False, top=top, render=None,
                                            values_needed=False)
    sql = AccountSql(engine, p.business_domain, None)
    contacts = sql.contacts(matched)
    named = dict(steps)
    needed: set[str] = set()

    def read_by(tree: exp.Expression) -> None:
        for table in tree.find_all(exp.Table):
            if table.name in named and table.name not in needed:
                needed.add(table.name)
                read_by(named[table.name])

    read_by(contacts)
    names = {name: ACCOUNT_PREFIX + name for name in needed}

    def renamed(tree: exp.Expression) -> exp.Expression:
        # Copied first: the scoring pass is built from the same plan and may share these nodes.
        return q.rewrite(tree.copy(), lambda n: q.table(names[n.name], n.alias or None)
                         if isinstance(n, exp.Table) and n.name in names else n)

    out = [(names[name], renamed(step)) for name, step in steps if name in needed]
    out.append(("contacts", renamed(contacts)))
    out.append(("account_sum", sql.summary()))
    out += [(f"same_{index}", sql.same(index)) for index in range(len(sql.signals))]
    out.append(("account_rows", sql.by_account()))
    out.append(("b_acc", sql.rows("account_rows")))
    return out


def _relation(name: str, alias: str | None = None) -> exp.Expression:
    """A relation the team names, qualified or not (``crm.leads``, ``lake.crm.leads``)."""
    table = exp.to_table(name)
    for part in ("this", "db", "catalog"):
        if isinstance(table.args.get(part), exp.Identifier):
            table.args[part].set("quoted", True)
    return table.as_(alias) if alias else table


def _micros(e: exp.Expression) -> exp.Expression:
    """A timestamp as whole microseconds since 1970 (UTC)."""
    return exp.UnixMicros(this=e)


def _leads_relation(leads: str) -> exp.Select:
    cols: list[exp.Expression] = [exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[exp.Ordered(
        this=q.text_order(q.col("id")))])).as_("k", copy=False)]
    for name, source in LEAD_COLUMNS:
        cols.append(q.col(source).as_(name, quoted=True, copy=False))
    cols.append(_micros(q.col("created_at")).as_("created_at", copy=False))
    return q.select(*cols, copy=False).from_(_relation(leads), copy=False)


def _activities_relation(activities: str, leads: str) -> exp.Select:
    a = lambda c: q.col(c, "a")  # noqa: E731
    at = _micros(a("at"))
    where = q.coalesce(*[exp.Nullif(this=q.json_str(a("properties"), key), expression=q.lit(""))
                         for key in ("url", "asset", "title")])
    day = q.utc_day_text(_micros(a("at")))
    evidence = q.concat(a("type"), q.lit(" on "), day,
                        q.coalesce(q.concat(q.lit(" ("), where, q.lit(")")), q.lit("")))
    pos = exp.Sub(this=exp.Window(this=exp.RowNumber(), partition_by=[a("lead_id")], order=exp.Order(expressions=[
        exp.Ordered(this=a("at")), exp.Ordered(this=q.text_order(a("type"))),
        # no properties (NULL) first in every dialect: DuckDB and PostgreSQL would put them last, Spark first
        exp.Ordered(this=q.text_order(a("properties")), nulls_first=True)])), expression=q.lit(1))
    return (q.select(q.col("k", "l"), pos.as_("pos", copy=False), a("type").as_("type", copy=False), at.as_("at", copy=False),
                     a("properties").as_("props", copy=False), evidence.as_("ev", copy=False), copy=False)
            .from_(_relation(activities, "a"), copy=False)
            .join(q.table("b_leads", "l"), on=q.col("id", "l").eq(a("lead_id")), copy=False))


_SQL_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}


def _values(table: pa.Table) -> exp.Select:
    """A constant table as SELECTs of typed literals joined by UNION ALL (no rows: one that is filtered out)."""
    types = [_SQL_TYPES[f.type] for f in table.schema]
    rows = table.to_pylist() or [dict.fromkeys(table.column_names)]
    selects = [q.select(*[q.cast(q.lit(row[name]), kind).as_(name, quoted=True, copy=False)
                          for name, kind in zip(table.column_names, types)], copy=False) for row in rows]
    if not table.num_rows:
        return selects[0].where(exp.false(), copy=False)
    union: exp.Expression = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False, copy=False)
    return q.select(exp.Star(), copy=False).from_(union.subquery("v", copy=False), copy=False)


def _days_before(plan: Plan, micros: exp.Expression) -> exp.Expression:
    return exp.Div(this=exp.Div(this=q.cast(exp.Sub(this=q.lit(plan.as_of_us), expression=micros), "DOUBLE"),
                                expression=q.lit(1_000_000.0)), expression=q.lit(86_400.0))


def _activity_ties(plan: Plan) -> exp.Select:
    """The leads with an activity the query cannot trust (step ``act_ties``): its age in days sits on a
    rounding tie, or it fails a check an extractor's SQL forms asked for (``ctx.exact_only_if``). A
    join rather than a correlated EXISTS: PostgreSQL runs a correlated subquery in the select list
    once per lead, over every activity."""
    t = lambda c: q.col(c, "t")  # noqa: E731
    checks = {check.sql(): check for check in plan.udfs.activity_checks}  # once each, however often asked
    failed = [q.not_(q.coalesce(q.paren(check.copy()), exp.true())) for check in checks.values()]
    return (q.select(t("k"), copy=False).distinct(copy=False).from_(q.table("b_acts", "t"), copy=False)
            .where(q.and_(exp.LTE(this=t("at"), expression=q.lit(plan.as_of_us)),
                          q.or_(p.near_tie3(_days_before(plan, t("at"))), *failed)), copy=False))


def _with_ties(select: exp.Select) -> exp.Select:
    """``select`` over ``b_leads l`` joined with the leads' activity ties, which :func:`_exact` reads."""
    return select.join(q.table("act_ties", "tie"), on=q.col("k", "tie").eq(q.col("k", "l")), join_type="left",
                       copy=False)


def _exact(plan: Plan) -> exp.Expression:
    """Whether the lead's card is the python engine's for sure (see the module's notes), over
    ``b_leads l`` joined as :func:`_with_ties` does."""
    x = lambda c: q.col(c, "l")  # noqa: E731
    texts = [p.plain(x(c)) for c in ("email", "title", "source", "c_domain", "c_industry", "c_country", "c_tier")]
    return q.and_(*texts, p.no_control(x("id")), p.exact_whole_text(x("c_revenue")),
                  q.or_(q.is_null(x("created_at")), q.not_(p.near_tie3(_days_before(plan, x("created_at"))))),
                  q.is_null(q.col("k", "tie")), *_plain_fields(plan, x("fields")))


def _plain_fields(plan: Plan, doc: exp.Expression) -> list[exp.Expression]:
    """For each custom field the packs read: its value is one the query reads as Python does. The
    query reads strings, booleans and integers (a double's text is Python's, which the engine makes
    with a Python function and a warehouse cannot); a number field's text must be a whole number of at
    most 15 digits, or have no digit."""
    from leadscore.rulepack.schema import CUSTOM_FIELDS

    declared = plan.engine.vocabulary.get(CUSTOM_FIELDS) or {}
    out = []
    for name in sorted(plan.engine.wanted):
        if not name.startswith("fields."):
            continue
        key = name[len("fields."):]
        got = q.json_at(doc, key)
        kind = q.json_kind(got)
        checks = [q.not_(q.in_(kind, ("DOUBLE", "OBJECT", "ARRAY")))]
        if key in declared and declared[key][0] in ("number", "int"):
            text = q.py_strip(q.json_str(doc, key))
            numeric = q.and_(kind.eq(q.lit("VARCHAR")), exp.RegexpLike(this=text, expression=q.lit("[0-9]")))
            checks.append(q.not_(q.and_(numeric, q.not_(q.fn("regexp_full_match", text, q.lit("[+-]?[0-9]{1,15}"))))))
        # (an absent field has no kind: Spark's spelling of the kind would call it a number)
        out.append(q.or_(q.is_null(got), q.coalesce(q.and_(*checks), exp.true())))
    return out


__all__ = ["DIALECTS", "NOT_YET", "warehouse_query", "warehouse_select"]
