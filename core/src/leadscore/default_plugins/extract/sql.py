"""Columnar forms of the built-in signal extractors: the same signals, values, times and evidence as SQL.

Each extractor of this package names its form here (see ``lazy``); the columnar engine calls it.

Counts, windows, comparisons and text assembly are SQL. What Python's string functions decide
(``str.lower`` on non-ASCII text, keyword tables, alias tables, ``round(x, 3)``, ``f"{x:,.0f}"``)
goes through the extractor's own Python helpers, called once per distinct value, so the result
is the per-lead extractor's by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlglot import exp

from leadscore.columnar import portable as portable_sql
from leadscore.columnar import sql as q
from leadscore.columnar.context import ColumnarContext, day_text, emit
from leadscore.default_plugins.extract import activities as acts_mod
from leadscore.default_plugins.extract import crm as source_mod
from leadscore.default_plugins.extract import email as email_ext
from leadscore.default_plugins.extract import firmographics as firmo
from leadscore.default_plugins.extract import title as title_mod
from leadscore.taxonomy import activities as tiers_mod
from leadscore.taxonomy import email as email_mod
from leadscore.model import Company, ExtractContext, Lead
from leadscore.rulepack import fields as fields_mod
from leadscore.rulepack.schema import CUSTOM_FIELDS

DAY_US = 86_400_000_000


def _ascii_plain(e: exp.Expression) -> exp.Expression:
    """Text whose Python ``strip()`` and ``lower()`` SQL reproduces: ASCII, no space or control at either end."""
    return q.and_(q.fn("strlen", e).eq(q.fn("length", e)),
                  exp.GT(this=q.fn("ascii", e), expression=q.lit(32)),
                  exp.GT(this=q.fn("ascii", q.fn("right", e, q.lit(1))), expression=q.lit(32)))


def _py_context(ctx: ColumnarContext) -> ExtractContext:
    return ExtractContext(ctx.as_of, ctx.vocabulary, None)


# --- email ------------------------------------------------------------------------------------

EMAIL_NAMES = ("email.type", "email.domain", "email.is_business", "email.matches_company", "email.is_role",
               "email.is_competitor")
_EMAIL_STRUCT = ("STRUCT(e VARCHAR, kind VARCHAR, domain VARCHAR, matches BOOLEAN, role BOOLEAN, competitor BOOLEAN, "
                 "match_ev VARCHAR)")


def email_columnar(ctx: ColumnarContext) -> exp.Select | None:
    wanted = [n for n in EMAIL_NAMES if ctx.wants(n)]
    if not wanted:
        return None
    free = sorted(email_ext._entry(ctx.vocabulary)[0])
    competitors = email_ext._entry(ctx.vocabulary)[1]
    py_ctx = _py_context(ctx)

    def reference(email: str | None, company_domain: str | None) -> dict[str, Any] | None:
        # The per-lead extractor itself, for the addresses SQL does not reproduce exactly.
        found = {s.name: s for s in email_ext.extract(Lead("-", email=email, company=Company(domain=company_domain)),
                                                       py_ctx)}
        if not found:
            return None
        return {"e": found["email.type"].evidence, "kind": found["email.type"].value,
                "domain": found["email.domain"].value, "matches": found["email.matches_company"].value,
                "role": found["email.is_role"].value, "competitor": found["email.is_competitor"].value,
                "match_ev": found["email.matches_company"].evidence}

    email, cdom = q.col("email"), q.col("c_domain")
    if ctx.portable:
        # Exported: every address in SQL (an address that is not plain text marks its lead inexact).
        py = None
        plain: exp.Expression = exp.NEQ(this=exp.Trim(this=email), expression=q.lit(""))
        lowered = q.fn("lower", exp.Trim(this=email))
    else:
        py = ctx.udf("ls_email", reference, ("VARCHAR", "VARCHAR"), _EMAIL_STRUCT, nulls=True)
        plain = q.and_(_ascii_plain(email), q.or_(q.is_null(cdom), q.fn("strlen", cdom).eq(q.fn("length", cdom))))
        lowered = q.fn("lower", email)
    # Plain addresses in SQL, in stages so each piece is computed once.
    e = q.col("e")
    has_at = exp.GT(this=q.fn("strpos", e, q.lit("@")), expression=q.lit(0))
    cd0 = q.fn("lower", q.coalesce(cdom, q.lit("")))
    stage1 = (q.select(q.col("k"), lowered.as_("e", copy=False), cdom)
              .from_(q.table(ctx.leads), copy=False).where(q.and_(q.not_null(email), plain), copy=False))
    stage2 = q.select(
        q.col("k"), e, has_at.as_("has_at", copy=False),
        q.case([(has_at, q.fn("regexp_extract", e, q.lit("@([^@]*)$"), q.lit(1)))], e).as_("domain", copy=False),
        q.case([(has_at, q.fn("regexp_extract", e, q.lit("(?s)^(.*)@[^@]*$"), q.lit(1)))], q.lit("")).as_("local", copy=False),
        q.case([(q.fn("starts_with", cd0, q.lit("www.")), q.fn("substr", cd0, q.lit(5)))], cd0).as_("cd", copy=False),
    ).from_(stage1.subquery("s1", copy=False))
    # The domain's verdict is Python's own (its regex has counted repeats, slow in RE2), once per domain.
    free_set = frozenset(free)
    domain_kind = ctx.udf("ls_domain_kind", lambda d: email_mod._domain_kind(d, free_set), ("VARCHAR",), "VARCHAR",
                          portable=lambda d: portable_sql.domain_kind(d, free_set))
    domain, local, cd = q.col("domain"), q.col("local"), q.col("cd")
    stage3 = q.select(q.col("k"), e, q.col("has_at"), domain, local, cd, domain_kind(domain).as_("kind0", copy=False)).from_(
        stage2.subquery("s2", copy=False))
    kind0 = q.col("kind0")
    kind = q.case([(q.and_(kind0.neq(q.lit("invalid")),
                           q.not_(q.and_(q.col("has_at"), q.fn("regexp_full_match", local, q.lit(email_mod._LOCAL.pattern))))),
                    q.lit("invalid"))], kind0)
    strings = [c for c in competitors if isinstance(c, str)]
    sql_rows = q.select(
        q.col("k"), e, kind.as_("kind", copy=False), domain,
        q.and_(cd.neq(q.lit("")), q.or_(domain.eq(cd), q.fn("ends_with", domain, q.concat(q.lit("."), cd)))).as_("matches", copy=False),
        q.in_(q.fn("split_part", e, q.lit("@"), q.lit(1)), sorted(email_mod.ROLE_LOCAL_PARTS)).as_("role", copy=False),
        q.in_(domain, strings).as_("competitor", copy=False),
        q.concat(domain, q.lit(" vs "), q.case([(cd.neq(q.lit("")), cd)], q.lit("no company domain"))).as_("match_ev", copy=False),
    ).from_(stage3.subquery("s3", copy=False))
    r = q.col("r")
    rows: exp.Expression = sql_rows
    if py is not None:
        py_rows = q.select(q.col("k"), *[q.field(r, name).as_(name, copy=False) for name in
                                         ("e", "kind", "domain", "matches", "role", "competitor", "match_ev")], copy=False).from_(
            q.select(q.col("k"), py(email, cdom).as_("r", copy=False)).from_(q.table(ctx.leads), copy=False)
            .where(q.and_(q.not_null(email), q.not_(plain)), copy=False).subquery("p", copy=False))
        rows = exp.union(sql_rows, py_rows, distinct=False)
    cols: list[exp.Expression] = [q.col("k")]
    values = {
        "email.type": (q.col("kind"), e),
        "email.domain": (domain, e),
        "email.is_business": (q.col("kind").eq(q.lit("business")), e),
        "email.matches_company": (q.col("matches"), q.col("match_ev")),
        "email.is_role": (q.col("role"), e),
        "email.is_competitor": (q.col("competitor"), domain),
    }
    for name in wanted:
        value, evidence = values[name]
        cols += emit(name, value, None, evidence)
    return q.select(*cols, copy=False).from_(rows.subquery("e", copy=False))


# --- title ------------------------------------------------------------------------------------

TITLE_NAMES = ("title.seniority", "title.function", "title.is_decision_maker", "title.text")


def title_columnar(ctx: ColumnarContext) -> exp.Select | None:
    wanted = [n for n in TITLE_NAMES if ctx.wants(n)]
    if not wanted:
        return None
    vocabulary = ctx.vocabulary

    def reference(title: str) -> dict[str, Any]:
        seniority, function = title_mod.classify(title, vocabulary)
        return {"seniority": seniority, "function": function, "text": title.lower()}

    def portable(title: exp.Expression) -> exp.Expression:
        seniority_table, function_table = _title_keywords(vocabulary)
        text = portable_sql.padded(title)
        found = lambda table, default: q.case(  # noqa: E731
            [(exp.RegexpLike(this=text, expression=q.lit(portable_sql.keyword_pattern(words))), q.lit(name))
             for name, words in table], q.lit(default))
        return q.struct(seniority=found(seniority_table, "individual"), function=found(function_table, "other"),
                        text=q.fn("lower", title))

    py = ctx.udf("ls_title", reference, ("VARCHAR",), "STRUCT(seniority VARCHAR, function VARCHAR, text VARCHAR)",
                 portable=portable)
    title = q.col("title")
    inner = q.select(q.col("k"), title, py(title).as_("r", quoted=True, copy=False)).from_(q.table(ctx.leads), copy=False).where(
        q.and_(q.not_null(title), title.neq(q.lit(""))), copy=False)
    r = q.col("r")
    values = {
        "title.seniority": q.field(r, "seniority"),
        "title.function": q.field(r, "function"),
        "title.is_decision_maker": q.in_(q.field(r, "seniority"), ("c_level", "vp", "director")),
        "title.text": q.field(r, "text"),
    }
    cols: list[exp.Expression] = [q.col("k")]
    for name in wanted:
        cols += emit(name, values[name], None, title)
    return q.select(*cols, copy=False).from_(inner.subquery("t", copy=False))


def _title_keywords(vocabulary: Any) -> tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, tuple[str, ...]]]]:
    """The title extractor's keyword tables in its order (a rulepack's extensions first)."""
    ext_s = dict(title_mod._freeze(vocabulary.get("title_seniority")))
    ext_f = dict(title_mod._freeze(vocabulary.get("title_function")))
    seniority = [(level, tuple(ext_s.get(level, ())) + title_mod.SENIORITY[level]) for level in title_mod.SENIORITY_ORDER]
    functions = [(fn, tuple(kw)) for fn, kw in ext_f.items() if kw]
    functions += [(fn, kw) for fn, kw in title_mod.FUNCTION.items()]
    return seniority, functions


# --- firmographics ----------------------------------------------------------------------------

FIRMO_NAMES = ("company.industry", "company.employees", "company.size_band", "company.annual_revenue",
               "company.revenue_band", "company.country", "company.region", "company.domain", "company.name",
               "company.tier")


def firmographics_columnar(ctx: ColumnarContext) -> exp.Select | None:
    wanted = [n for n in FIRMO_NAMES if ctx.wants(n)]
    if not wanted:
        return None
    aliases = ctx.vocabulary.get("industry_aliases")
    industry_table = {k: v for k, v in firmo.INDUSTRY_ALIASES.items() if v} | dict(aliases or {})

    def industry_sql(raw: exp.Expression) -> exp.Expression:
        key = portable_sql.words(exp.Replace(this=q.fn("lower", raw), expression=q.lit("_"), replacement=q.lit(" ")))
        fallback = key
        for old in (" & ", " ", "-"):
            fallback = exp.Replace(this=fallback, expression=q.lit(old), replacement=q.lit("_"))
        return portable_sql.lookup(key, industry_table, fallback)

    industry = ctx.udf("ls_industry", lambda raw: firmo.normalise_industry(raw, aliases), ("VARCHAR",), "VARCHAR",
                       portable=industry_sql)

    def country(raw: str) -> dict[str, str]:
        code = firmo.normalise_country(raw)
        return {"code": code, "region": firmo._REGION_BY_COUNTRY.get(code, "unknown")}

    # The region straight from the text (the names' regions, then the codes'), so that no lookup is
    # nested in another: a warehouse may spell a nested CASE out once per entry.
    regions = {code.lower(): region for code, region in firmo._REGION_BY_COUNTRY.items()}
    regions |= {name: firmo._REGION_BY_COUNTRY.get(code, "unknown") for name, code in firmo.COUNTRY_NAMES.items()}

    def country_sql(raw: exp.Expression) -> exp.Expression:
        text = exp.Trim(this=raw)
        code = portable_sql.lookup(q.fn("lower", text), firmo.COUNTRY_NAMES, exp.Upper(this=text))
        return q.struct(code=code, region=portable_sql.lookup(q.fn("lower", exp.Trim(this=raw.copy())), regions,
                                                              q.lit("unknown")))

    country_fn = ctx.udf("ls_country", country, ("VARCHAR",), "STRUCT(code VARCHAR, region VARCHAR)",
                         portable=country_sql)
    revenue_text = ctx.udf("ls_revenue_text", lambda v: f"revenue {v:,.0f}", ("DOUBLE",), "VARCHAR",
                           portable=lambda v: q.concat(q.lit("revenue "), portable_sql.whole_text(v)))
    py_lower = ctx.udf("ls_lower", lambda v: v.lower(), ("VARCHAR",), "VARCHAR", portable=lambda v: q.fn("lower", v))

    def lower(e: exp.Expression) -> exp.Expression:
        if ctx.portable:
            return q.fn("lower", e)
        return q.case([(q.fn("strlen", e).eq(q.fn("length", e)), q.fn("lower", e))], py_lower(e))

    emp, rev = q.col("c_employees"), q.col("c_revenue")
    present = lambda e: q.and_(q.not_null(e), e.neq(q.lit("")))  # noqa: E731
    emp_text = q.concat(q.cast(emp, "VARCHAR"), q.lit(" employees"))
    size = q.case([(exp.GTE(this=emp, expression=q.lit(floor)), q.lit(name)) for floor, name in firmo.SIZE_BANDS],
                  q.lit("micro"))
    band = q.case([(exp.GTE(this=rev, expression=q.lit(float(floor))), q.lit(name))
                   for floor, name in firmo.REVENUE_BANDS], q.lit("under_1m"))
    cty = country_fn(q.col("c_country"))
    dom = lower(q.col("c_domain"))
    specs: dict[str, tuple[exp.Expression, exp.Expression, exp.Expression]] = {
        "company.industry": (present(q.col("c_industry")), industry(q.col("c_industry")), q.col("c_industry")),
        "company.employees": (q.not_null(emp), emp, emp_text),
        "company.size_band": (q.not_null(emp), size, emp_text),
        "company.annual_revenue": (q.not_null(rev), rev, revenue_text(rev)),
        "company.revenue_band": (q.not_null(rev), band, revenue_text(rev)),
        "company.country": (present(q.col("c_country")), q.field(cty, "code"), q.col("c_country")),
        "company.region": (present(q.col("c_country")), q.field(cty, "region"), q.col("c_country")),
        "company.domain": (present(q.col("c_domain")),
                           q.case([(q.fn("starts_with", dom, q.lit("www.")), q.fn("substr", dom, q.lit(5)))], dom),
                           q.col("c_domain")),
        "company.name": (present(q.col("c_name")), q.col("c_name"), q.col("c_name")),
        "company.tier": (present(q.col("c_tier")), lower(q.col("c_tier")), q.col("c_tier")),
    }
    cols: list[exp.Expression] = [q.col("k")]
    for name in wanted:
        when, value, evidence = specs[name]
        cols += emit(name, q.case([(when, value)]), None, q.case([(when, evidence)]))
    return q.select(*cols, copy=False).from_(q.table(ctx.leads), copy=False)


# --- crm: source, age, custom fields ------------------------------------------------------------


def crm_columnar(ctx: ColumnarContext) -> exp.Select | None:
    cols: list[exp.Expression] = [q.col("k")]
    extra = ctx.vocabulary.get("source_channels")

    def source(text: str) -> dict[str, str]:
        name = "_".join(text.lower().replace("-", " ").split())
        return {"source": name, "channel": source_mod.channel_of(name, extra)}

    src = q.col("source")
    has_source = q.and_(q.not_null(src), src.neq(q.lit("")))
    if ctx.wants("lead.source") or ctx.wants("lead.channel"):
        channels = dict(source_mod.CHANNELS) | dict(extra or {})

        def source_sql(text: exp.Expression) -> exp.Expression:
            name = portable_sql.words(exp.Replace(this=q.fn("lower", text), expression=q.lit("-"), replacement=q.lit(" ")), "_")
            return q.struct(source=name, channel=portable_sql.lookup(name, channels, q.lit("other")))

        fn = ctx.udf("ls_source", source, ("VARCHAR",), "STRUCT(source VARCHAR, channel VARCHAR)", portable=source_sql)
        row = fn(src)
        for name, part in (("lead.source", "source"), ("lead.channel", "channel")):
            if ctx.wants(name):
                cols += emit(name, q.case([(has_source, q.field(row, part))]), None, q.case([(has_source, src)]))
    if ctx.wants("lead.age_days"):
        created = q.col("created_at")
        days = exp.Div(this=exp.Div(this=q.cast(exp.Sub(this=q.lit(ctx.as_of_us), expression=created), "DOUBLE"),
                                    expression=q.lit(1_000_000.0)), expression=q.lit(86_400.0))
        round3 = ctx.udf("ls_round3", lambda v: round(v, 3), ("DOUBLE",), "DOUBLE", portable=portable_sql.round3)
        cols += emit("lead.age_days", q.case([(q.not_null(created), round3(days))]), created,
                     q.case([(q.not_null(created), q.concat(q.lit("created "), day_text(created)))]))
    declared = ctx.vocabulary.get(CUSTOM_FIELDS) or {}
    # A double's text as Python prints it (repr); an exported plan has none: a warehouse query
    # reads no double in a custom field (it marks such a lead inexact, see leadscore.columnar.export).
    reads_fields = any(name.startswith("fields.") for name in ctx.wanted)
    float_text = None if ctx.portable or not reads_fields else ctx.udf("ls_float_text", repr, ("DOUBLE",), "VARCHAR")
    for name in sorted(ctx.wanted):
        if name.startswith("fields."):
            key = name[len("fields."):]
            if key in declared:
                value, evidence = declared_field(q.col("fields"), key, declared[key][0], float_text)
                cols += emit(name, value, None, evidence)
                continue
            cols += emit(name, field_value(q.col("fields"), key, doubles=float_text is not None), None,
                         field_evidence(q.col("fields"), key, float_text))
    if len(cols) == 1:
        return None
    return q.select(*cols, copy=False).from_(q.table(ctx.leads), copy=False)


def any_value(doc: exp.Expression, key: str, *, doubles: bool = False) -> exp.Expression:
    """The property ``key`` of a JSON object as an ``any`` struct (NULL when absent or JSON null).

    Strings, booleans and integers, and with ``doubles`` doubles (kind ``num`` as integers: Python
    compares 3 and 3.0 alike): the engine sends leads with other JSON values in custom fields or
    properties it reads to the python engine.
    """
    got = q.json_at(doc, key)
    kind = q.json_kind(got)
    numbers = ("BIGINT", "UBIGINT", "DOUBLE") if doubles else ("BIGINT", "UBIGINT")
    return q.case([
        (kind.eq(q.lit("VARCHAR")), q.struct(k=q.lit("str"), s=q.json_str(doc, key),
                                              n=q.cast(exp.null(), "DOUBLE"), b=q.cast(exp.null(), "BOOLEAN"),
                                              t=q.cast(exp.null(), "BIGINT"))),
        (kind.eq(q.lit("BOOLEAN")), q.struct(k=q.lit("bool"), s=q.cast(exp.null(), "VARCHAR"),
                                              n=q.cast(exp.null(), "DOUBLE"), b=q.cast(got, "BOOLEAN"),
                                              t=q.cast(exp.null(), "BIGINT"))),
        (q.in_(kind, numbers), q.struct(k=q.lit("num"), s=q.cast(exp.null(), "VARCHAR"),
                                                      n=q.cast(got, "DOUBLE"), b=q.cast(exp.null(), "BOOLEAN"),
                                                      t=q.cast(exp.null(), "BIGINT"))),
    ])


def declared_field(doc: exp.Expression, key: str, kind: str,
                   float_text: Callable[[exp.Expression], exp.Expression] | None = None,
                   ) -> tuple[exp.Expression, exp.Expression]:
    """A custom field declared in ``[fields]``: (its value as the declared type, its evidence), as
    leadscore.rulepack.fields.as_declared reads it; NULL when the value cannot be read as that type.

    ``float_text``: a double's text as Python prints it; with it a number field's double is read.
    The engine hands a number or int field the value the python engine reads of it (its text's
    number, an int field's whole double as an integer: leadscore.columnar.engine's _fields); the
    text read here is what an exported plan meets in a warehouse's JSON (whole numbers of 15 digits
    at most; the export marks other numeric text inexact).
    """
    got = q.json_at(doc, key)
    kind_of = q.json_kind(got)
    text = q.json_str(doc, key)
    is_text, is_bool = kind_of.eq(q.lit("VARCHAR")), kind_of.eq(q.lit("BOOLEAN"))
    is_int = q.in_(kind_of, ("BIGINT", "UBIGINT"))
    stripped = q.py_strip(text)
    if kind == "str":
        value = q.case([(is_text, text), (is_int, q.cast(got, "VARCHAR"))])
        shown = value
    elif kind == "bool":
        lowered = q.fn("lower", stripped)
        value = q.case([(is_bool, q.cast(got, "BOOLEAN")),
                        (q.and_(is_text, q.in_(lowered, sorted(fields_mod._TRUE))), exp.true()),
                        (q.and_(is_text, q.in_(lowered, sorted(fields_mod._FALSE))), exp.false())],
                       q.cast(exp.null(), "BOOLEAN"))
        shown = q.case([(value, q.lit("True")), (q.not_(value), q.lit("False"))])
    else:
        whole = q.fn("regexp_full_match", stripped, q.lit(r"[+-]?[0-9]{1,15}"))
        value = q.case([(is_int, q.cast(got, "DOUBLE")), (q.and_(is_text, whole), q.cast(stripped, "DOUBLE"))],
                       q.cast(exp.null(), "DOUBLE"))
        shown = q.case([(is_int, q.cast(got, "VARCHAR")),
                        (q.and_(is_text, whole), q.cast(q.cast(stripped, "BIGINT"), "VARCHAR"))])
        if kind == "number" and float_text is not None:
            is_double = kind_of.eq(q.lit("DOUBLE"))
            value = q.case([(is_double, q.cast(got, "DOUBLE"))], value)
            shown = q.case([(is_double, float_text(q.cast(got.copy(), "DOUBLE")))], shown)
    evidence = q.case([(q.not_null(value), q.concat(q.lit(key + "="), shown))])
    return value, evidence


def field_value(doc: exp.Expression, key: str, *, doubles: bool = False) -> exp.Expression:
    return any_value(doc, key, doubles=doubles)


def field_evidence(doc: exp.Expression, key: str,
                   float_text: Callable[[exp.Expression], exp.Expression] | None = None) -> exp.Expression:
    """``f"{name}={value}"`` for a string, boolean or integer field, and with ``float_text`` (a
    double's text as Python prints it) for a double."""
    got = q.json_at(doc, key)
    kind = q.json_kind(got)
    doubles = [] if float_text is None else [(kind.eq(q.lit("DOUBLE")), float_text(q.cast(got.copy(), "DOUBLE")))]
    text = q.case([
        (kind.eq(q.lit("VARCHAR")), q.json_str(doc, key)),
        (kind.eq(q.lit("BOOLEAN")), q.case([(q.cast(got, "BOOLEAN"), q.lit("True"))], q.lit("False"))),
        (q.in_(kind, ("BIGINT", "UBIGINT")), q.cast(got, "VARCHAR")),
        *doubles,
    ])
    return q.case([(q.not_null(text), q.concat(q.lit(key + "="), text))])


# --- activities -------------------------------------------------------------------------------

_WINDOWS = {"count_7d": 7, "count_30d": 30, "count_90d": 90}


def activities_columnar(ctx: ColumnarContext) -> exp.Select | None:
    wanted: dict[tuple[str, str], list[str]] = {}
    for name in sorted(ctx.wanted):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in ("activity", "intent") and parts[2] in acts_mod.METRICS:
            wanted.setdefault((parts[0], parts[1]), []).append(parts[2])
    if not wanted:
        return None
    tiers = tiers_mod.tiers_for(ctx.vocabulary)
    t = q.col("type")

    def member(group: tuple[str, str]) -> exp.Expression:
        kind, key = group
        if kind == "activity":
            return t.eq(q.lit(key))
        if key == "any":
            return exp.true()
        if key == "beyond_email":
            return q.not_(q.in_(t, sorted(x for x, tier in tiers.items() if tier in ("email", "negative"))))
        if key == "other":
            return q.not_(q.in_(t, sorted(x for x, tier in tiers.items() if tier != "other")))
        return q.in_(t, sorted(x for x, tier in tiers.items() if tier == key))

    as_of = ctx.as_of_us
    at = q.col("at")
    per_type = [q.col("k"), t, exp.Count(this=exp.Star()).as_("n", copy=False)]
    for metric, days in _WINDOWS.items():
        since = q.lit(as_of - days * DAY_US)
        per_type.append(q.fn("count_if", exp.GTE(this=at, expression=since)).as_(metric, copy=False))
    per_type += [q.fn("min", at).as_("first", copy=False), q.fn("max", at).as_("last", copy=False)]
    grouped = (q.select(*per_type, copy=False).from_(q.table(ctx.activities), copy=False)
               .where(exp.LTE(this=at, expression=q.lit(as_of)), copy=False).group_by(q.col("k"), t, copy=False))
    aggs: list[exp.Expression] = [q.col("k")]
    for index, group in enumerate(sorted(wanted)):
        cond = member(group)
        filt = lambda e: exp.Filter(this=e, expression=exp.Where(this=cond)) if not isinstance(cond, exp.Boolean) else e  # noqa: E731
        aggs += [filt(q.fn("sum", q.col("n"))).as_(f"g{index}_n", copy=False)]
        aggs += [filt(q.fn("sum", q.col(m))).as_(f"g{index}_{m}", copy=False) for m in _WINDOWS]
        aggs += [filt(q.fn("min", q.col("first"))).as_(f"g{index}_first", copy=False),
                 filt(q.fn("max", q.col("last"))).as_(f"g{index}_last", copy=False)]
    per_lead = q.select(*aggs, copy=False).from_(grouped.subquery("pt", copy=False)).group_by(q.col("k"), copy=False)
    cols: list[exp.Expression] = [q.col("k")]
    round3 = None
    for index, group in enumerate(sorted(wanted)):
        kind, key = group
        prefix = f"{kind}.{key}."
        label = key if kind == "activity" else f"{key}-intent activities"
        n, first, last = q.col(f"g{index}_n", "a"), q.col(f"g{index}_first", "a"), q.col(f"g{index}_last", "a")
        some = exp.GT(this=q.coalesce(n, q.lit(0)), expression=q.lit(0))
        evidence = q.concat(q.lit(f"{label}: "), q.cast(n, "VARCHAR"), q.lit(" in all, last "), day_text(last))
        for metric in wanted[group]:
            name = prefix + metric
            if metric in ("count", *_WINDOWS):
                value = n if metric == "count" else q.cast(q.col(f"g{index}_{metric}", "a"), "BIGINT")
                value = q.cast(value, "BIGINT")
                observed = last if metric == "count" else q.case([(exp.GT(this=value, expression=q.lit(0)), last)])
                cols += emit(name, q.case([(some, value)], q.lit(0)), q.case([(some, observed)]),
                             q.case([(some, evidence)], q.lit("none before the scoring time")))
            elif metric == "first_at":
                cols += emit(name, q.case([(some, first)]), q.case([(some, first)]), q.case([(some, evidence)]))
            elif metric == "last_at":
                cols += emit(name, q.case([(some, last)]), q.case([(some, last)]), q.case([(some, evidence)]))
            else:  # days_since_last
                if round3 is None:
                    round3 = ctx.udf("ls_round3", lambda v: round(v, 3), ("DOUBLE",), "DOUBLE", portable=portable_sql.round3)
                days = exp.Div(this=exp.Div(this=q.cast(exp.Sub(this=q.lit(as_of), expression=last), "DOUBLE"),
                                            expression=q.lit(1_000_000.0)), expression=q.lit(86_400.0))
                cols += emit(name, q.case([(some, round3(days))]), q.case([(some, last)]), q.case([(some, evidence)]))
    return (q.select(*cols, copy=False).from_(q.table(ctx.leads, "l"), copy=False)
            .join(per_lead.subquery("a", copy=False), on=q.col("k", "l").eq(q.col("k", "a")), join_type="left", copy=False)
            .select(q.col("k", "l").as_("k", copy=False), append=False).select(*cols[1:], copy=False))


__all__ = ["activities_columnar", "any_value", "crm_columnar", "declared_field", "email_columnar", "field_evidence", "field_value",
           "firmographics_columnar", "title_columnar"]

# The window starts above are whole days before the scoring time, as the per-lead extractor's.
assert all(timedelta(days=d) == timedelta(microseconds=d * DAY_US) for d in _WINDOWS.values())
