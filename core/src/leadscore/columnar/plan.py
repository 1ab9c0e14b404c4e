"""The columnar plan: a run's composed rulepacks compiled to SQL steps over a batch of leads.

One plan per run. Its steps, each a statement over the batch's ``leads`` and ``activities``:

1. ``sig``: one row per lead, one column triple per signal (every extractor's columnar form,
   joined on ``k``), the account signals, the lead's pack combination (``applies_when`` of every
   conditional pack) and the run's distinct band gates;
2. ``lines``: the ledger's rule lines: lead-level rules (one CASE per distinct rule line, placed
   in the lead's combination by ``ls_lead_rules``), per-activity rules
   (activities joined with the rule's types, the most recent ``max_count`` kept by a window),
   frequency-cap lines (for the full ledger only: they carry no points) and rule-cap lines;
3. ``cards``: category sums, category and total caps, band with gates, route and top reasons.

Every combination of conditional packs a lead can meet is composed when the plan is built; a
lead-level rule is compiled once however many combinations have it alike, a per-activity rule's
decay once per distinct factor, and their places and texts in each combination are rows of
constant tables (``ls_lead_rules``, ``ls_rule_types``). Ordering keys
(``s1`` rule position, ``s2`` line within the rule) give the ledger the python engine's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.columnar.conditions import TYPE_KIND, Compiler, SignalRef, Unsupported
from leadscore.columnar.context import ColumnarContext, Udfs
from leadscore.rulepack.composer import ComposedPack
from leadscore.rulepack.patterns import ActivityIndex, AtLeastPattern, holds
from leadscore.rulepack.schema import EVENT_PREFIX, Condition, RuleIR, SignalCatalog

WHOLE = 2**53
# Signals the built-in extractors emit whatever the rulepacks use (routers may read them).
ALWAYS_EMITTED = frozenset({
    "email.type", "email.domain", "email.is_business", "email.matches_company", "email.is_role", "email.is_competitor",
    "title.seniority", "title.function", "title.is_decision_maker", "title.text", "company.industry",
    "company.employees", "company.size_band", "company.annual_revenue", "company.revenue_band", "company.country",
    "company.region", "company.domain", "company.name", "company.tier", "lead.source", "lead.channel", "lead.age_days",
})
CAP_ORDER = 1_000_000_000  # s2 of a frequency-cap line (after every activity line of its rule)
LINE_COLUMNS = ("k", "s1", "s2", "rule_id", "category", "points", "reason", "pack", "kind", "raw", "decay", "factor",
                "signal", "observed_at", "evidence")
# The columns of a line the cards read without the full ledger (sums, caps, top reasons).
CARD_LINE_COLUMNS = ("k", "s1", "rule_id", "category", "points", "reason", "kind")


class Numbering:
    """Things numbered in the order first met, one number per distinct key: what the plan writes once
    however many places share it (a lead-level rule line, a decay factor, a band gate)."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.firsts: list[Any] = []  # the first thing met with each number, in number order
        self._by_key: dict[Any, int] = {}

    def number(self, key: Any, thing: Any) -> int:
        """The number of ``key``; ``thing`` becomes the first with it when ``key`` is new."""
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self.start + len(self.firsts)
            self.firsts.append(thing)
        return found


@frozen
class Combo:
    """One combination of rulepacks a lead can get: its index, composed pack and the masks that select it."""

    index: int
    composed: ComposedPack
    masks: tuple[int, ...]


def _ok_number(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and -WHOLE <= value <= WHOLE)


def decay_sql(policy: Any, params: Mapping[str, Any], age: exp.Expression) -> exp.Expression | None:
    """The policy's factor at ``age`` (days, >= 0) as SQL, from its columnar form; None without one."""
    columnar = getattr(policy, "columnar", None)
    return None if columnar is None else columnar(params)(age)


def age_days(as_of_us: int, at: exp.Expression) -> exp.Expression:
    """``max(0, (as_of - at).total_seconds() / 86400.0)``: exact, microseconds being whole."""
    age = exp.Div(this=exp.Div(this=q.cast(exp.Sub(this=q.lit(as_of_us), expression=at), "DOUBLE"),
                               expression=q.lit(1_000_000.0)), expression=q.lit(86_400.0))
    return q.case([(exp.GT(this=age, expression=q.lit(0.0)), age)], q.lit(0.0))


def _rounded(magnitude: exp.Expression, factor: exp.Expression) -> exp.Expression:
    """``int(magnitude * factor + 0.5)`` as BIGINT, ``magnitude`` a DOUBLE >= 0."""
    return q.cast(q.fn("floor", exp.Add(this=exp.Mul(this=magnitude, expression=q.paren(factor)),
                                        expression=q.lit(0.5))), "BIGINT")


def decayed(points: int, factor: exp.Expression) -> exp.Expression:
    """``int(abs(points) * factor + 0.5)`` with the sign of ``points``, as BIGINT."""
    whole = _rounded(q.lit(float(abs(points))), factor)
    return whole if points >= 0 else exp.Neg(this=q.paren(whole))


def decayed_column(points: exp.Expression, factor: exp.Expression) -> exp.Expression:
    """:func:`decayed` for a BIGINT column of points: the same arithmetic in DOUBLE, row by row."""
    whole = _rounded(q.cast(q.fn("abs", points), "DOUBLE"), factor)
    return q.case([(exp.GTE(this=points, expression=q.lit(0)), whole)], exp.Neg(this=q.paren(whole)))


class Plan:
    """Compiles a run (its packs, extractors, router) to the SQL steps that score a batch.

    :param engine: the python :class:`leadscore.engine.Engine` the run was set up with; the plan
        reads its packs, composer, wanted signals, vocabulary and plugins.
    :param columnar_extractors: extractor name -> columnar form.
    :param routers: the run's routers in call order, each a columnar form or None (per lead only).
    :param portable: SQL alone, for a warehouse: a Python function with no SQL form raises Unsupported.
    :raises Unsupported: when some part of the run has no columnar form.
    """

    def __init__(self, engine: Any, columnar_extractors: Mapping[str, Callable[[ColumnarContext], Any]],
                 routers: Sequence[Any], as_of: datetime, *, portable: bool = False) -> None:
        self.engine = engine
        self.as_of = as_of
        self.as_of_us = q.micros(as_of)
        self.udfs = Udfs(portable=portable)
        self.columnar_extractors = columnar_extractors
        self.routers = routers
        specs = [spec for ex in engine.extractors for spec in ex.provides]
        self.catalog = SignalCatalog(specs, engine.vocabulary)
        self._regexes: dict[str, str] = {}
        self._patterns: dict[str, tuple[str, Any]] = {}
        self._activity_decays: tuple[dict[tuple[int, int], int], list[exp.Expression]] | None = None
        self._lead_rules: tuple[dict[tuple[int, int], int], list[tuple[Combo, int, tuple[int, ...]]]] | None = None
        self.combos = self._combos()
        for combo in self.combos:
            self._check(combo.composed)

    # --- set-up -------------------------------------------------------------------------------

    def _combos(self) -> list[Combo]:
        composer = self.engine.composer
        conditional = [name for name, _, _ in composer.conditional]
        closures = {name: closure for name, _, closure in composer.conditional}
        if len(conditional) > 10:
            raise Unsupported("more than 10 conditional rulepacks")
        by_key: dict[frozenset[str], list[int]] = {}
        for mask in range(1 << len(conditional)):
            chosen = set(composer.always)
            for bit, name in enumerate(conditional):
                if mask >> bit & 1:
                    chosen |= closures[name]
            by_key.setdefault(frozenset(chosen), []).append(mask)
        combos = []
        for key, masks in by_key.items():
            if not key:
                self.no_pack_masks = tuple(masks)
                continue
            composed = composer.get(key)
            combos.append(Combo(len(combos), composed, tuple(masks)))
        if not any(not key for key in by_key):
            self.no_pack_masks = ()
        self.conditional = [(name, self.engine.composer.by_name[name].applies_when) for name in conditional]
        return combos

    def _check(self, composed: ComposedPack) -> None:
        if any(name != "rules" for name in composed.scorers):
            raise Unsupported("a rulepack uses a scorer other than the rule engine")
        for rule in composed.rules:
            if not all(_ok_number(v) for v in (rule.points, rule.max_count, rule.max_points, rule.min_points)):
                raise Unsupported(f"rule {rule.id} has numbers beyond 2**53")
        for cat in composed.categories:
            if not (_ok_number(cat.min) and _ok_number(cat.max)):
                raise Unsupported("category caps beyond 2**53")
        if not (_ok_number(composed.total_min) and _ok_number(composed.total_max)):
            raise Unsupported("total caps beyond 2**53")
        for band in composed.bands:
            if not _ok_number(band.min_points):
                raise Unsupported("band minimum beyond 2**53")

    def context(self, leads: str, activities: str) -> ColumnarContext:
        wanted = self.engine.wanted
        if len(self.engine.pm.router_functions()) > 1:
            # Plugin routers read the lead's signals: give them every signal the built-ins always emit.
            wanted = wanted | ALWAYS_EMITTED
        return ColumnarContext(self.as_of, self.as_of_us, self.engine.vocabulary, wanted, leads, activities,
                               self.udfs)

    # --- signals ------------------------------------------------------------------------------

    def signal_relation(self, ctx: ColumnarContext, accounts: str | None) -> tuple[exp.Select, dict[str, SignalRef]]:
        """``sig``'s select: every lead with its signal columns, and how conditions read each signal."""
        selects: list[tuple[str, exp.Select]] = []
        for index, extractor in enumerate(self.engine.extractors):
            if extractor.name == "account":
                continue
            fn = self.columnar_extractors.get(extractor.name)
            if fn is None:
                raise Unsupported(f"signal extractor {extractor.name!r} has no columnar form")
            try:
                made = fn(ctx)
            except Unsupported as err:
                raise Unsupported(f"signal extractor {extractor.name!r}: {err}") from err
            if made is not None:
                selects.append((f"x{index}", made))
        owners: dict[str, list[str]] = {}
        for alias, select in selects:
            for column in select.named_selects:
                if column != "k" and not column.endswith(("#at", "#ev")):
                    owners.setdefault(column, []).append(alias)
        relation = q.select(q.col("k", "l"), copy=False).from_(q.table(ctx.leads, "l"), copy=False)
        for alias, select in selects:
            relation = relation.join(select.subquery(alias, copy=False), on=q.col("k", "l").eq(q.col("k", alias)), join_type="left", copy=False)
        refs: dict[str, SignalRef] = {}
        columns: list[exp.Expression] = []
        for name, aliases in sorted(owners.items()):
            # An extractor later in the run's order wins, as in the python engine's signal dict.
            order = list(reversed(aliases))
            for suffix in ("", "#at", "#ev"):
                parts = [q.col(name + suffix, a) for a in order]
                present = [q.not_null(q.col(name, a)) for a in order]
                value = q.case(list(zip(present, parts))) if len(parts) > 1 else parts[0]
                columns.append(value.as_(name + suffix, quoted=True, copy=False))
            refs[name] = SignalRef(self._kind(name), q.col(name))
        if accounts is not None:
            relation = relation.join(q.table(accounts, "acc"), on=q.col("k", "l").eq(q.col("k", "acc")), join_type="left", copy=False)
            for name in self.account_signals():
                for suffix in ("", "#at", "#ev"):
                    columns.append(q.col(name + suffix, "acc").as_(name + suffix, quoted=True, copy=False))
                refs[name] = SignalRef("str" if name == "account.id" else "num", q.col(name))
        return relation.select(*columns, copy=False), refs

    def reads_properties(self) -> bool:
        """Whether some rule compares an activity property (``event.<property>``)."""
        return any(name.startswith(EVENT_PREFIX) and name not in ("event.type", "event.at", "event.age_days")
                   for combo in self.combos for rule in combo.composed.rules if rule.when is not None
                   for name in rule.when.signals())

    def account_signals(self) -> list[str]:
        names = ["account.id", "account.contacts", "account.engaged_contacts", "account.senior_engaged_contacts",
                 "account.functions_engaged", "account.high_intent_30d"]
        if "account.best_lead_score" in self.engine.wanted:
            names.append("account.best_lead_score")
        names += [spec.signal for spec in self.engine.same_account]
        return names

    def _kind(self, name: str) -> str:
        spec, _ = self.catalog.lookup(name)
        if spec is None:
            return "any"
        kind = TYPE_KIND.get(spec.type)
        if kind is None:
            raise Unsupported(f"signal {name!r} of type {spec.type}")
        return kind

    # --- conditions ---------------------------------------------------------------------------

    def compiler(self, refs: Mapping[str, SignalRef]) -> Compiler:
        return Compiler(refs.get, pattern=self._pattern, regex=self._regex)

    def _regex(self, pattern: re.Pattern[str], text: exp.Expression) -> exp.Expression:
        name = self._regexes.get(pattern.pattern)
        if name is None:
            name = self._regexes[pattern.pattern] = f"ls_re_{len(self._regexes)}"
            fullmatch = pattern.fullmatch
            self.udfs.add(name, lambda v: None if v is None else fullmatch(v) is not None, ("VARCHAR",), "BOOLEAN")
        return q.call(name, text)

    def _pattern(self, cond: Condition) -> exp.Expression:
        key = repr(cond.value)
        found = self._patterns.get(key)
        if found is None:
            found = self._patterns[key] = (f"p{len(self._patterns)}", cond.value)
        return q.coalesce(q.col(found[0]), exp.false())

    def pattern_relation(self, activities: str) -> exp.Select | None:
        """One boolean column per pattern the rules use. ``at_least`` is a count in SQL; ``sequence`` and
        ``absent`` run the reference semantics over each lead's activity history (they search, and are rare)."""
        if not self._patterns:
            return None
        as_of = self.as_of
        columns: list[exp.Expression] = [q.col("k")]
        aggregates: list[exp.Expression] = [q.col("k")]
        lists = False
        for column, pattern in self._patterns.values():
            if isinstance(pattern, AtLeastPattern):
                try:
                    low = q.micros(as_of - pattern.within)
                except OverflowError:
                    low = None
                at = q.col("at")
                cond = q.and_(q.in_(q.col("type"), pattern.of), exp.LTE(this=at, expression=q.lit(self.as_of_us)),
                              exp.true() if low is None else exp.GTE(this=at, expression=q.lit(low)))
                aggregates.append(exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=cond))
                                  .as_(f"{column}_n", copy=False))
                columns.append(exp.GTE(this=q.col(f"{column}_n"), expression=q.lit(pattern.count)).as_(column, quoted=True, copy=False))
                continue

            def check(types: list[str] | None, times: list[int] | None, pattern: Any = pattern) -> bool:
                from leadscore.model import Activities

                events = Activities(list(types or ()), [_datetime(t) for t in times or ()])
                return holds(pattern, ActivityIndex(events, as_of))

            fn = self.udfs.add(f"ls_pattern_{column}", check, ("VARCHAR[]", "BIGINT[]"), "BOOLEAN")
            columns.append(fn(q.col("types"), q.col("times")).as_(column, quoted=True, copy=False))
            lists = True
        if lists:
            for name, source in (("types", "type"), ("times", "at")):
                aggregates.append(exp.WithinGroup(this=q.fn("list", q.col(source)),
                                                  expression=exp.Order(expressions=[exp.Ordered(this=q.col("pos"))])).as_(name, copy=False))
        grouped = q.select(*aggregates, copy=False).from_(q.table(activities), copy=False).group_by(q.col("k"), copy=False)
        return q.select(*columns, copy=False).from_(grouped.subquery("lists", copy=False))

    def compile_same_account(self, compiler: Compiler) -> list[exp.Expression]:
        """Each ``same_account`` condition's ``where`` on one contact (compiled before ``sig`` is built,
        so the patterns it uses get their columns)."""
        return [compiler.compile(spec.where) for spec in self.engine.same_account]

    # --- combos and gates ---------------------------------------------------------------------

    def mask_expression(self, compiler: Compiler) -> exp.Expression:
        """Bit i set when the i-th conditional pack's ``applies_when`` holds for the lead."""
        mask: exp.Expression = q.lit(0)
        for bit, (_, cond) in enumerate(self.conditional):
            mask = exp.Add(this=mask, expression=q.case([(compiler.compile(cond), q.lit(1 << bit))], q.lit(0)))
        return mask

    def combo_of(self, mask: exp.Expression) -> exp.Expression:
        """The combination index for a mask (-1 when no pack applies)."""
        if not self.conditional:
            return q.lit(self.combos[0].index) if self.combos else q.lit(-1)
        return q.case([(q.in_(mask, combo.masks), q.lit(combo.index)) for combo in self.combos], q.lit(-1))

    # --- ledger lines -------------------------------------------------------------------------

    def rule_lines(self, compiler: Compiler, refs: Mapping[str, SignalRef], sig: str, activities: str,
                   explain: bool) -> list[exp.Select]:
        """The selects producing LINE_COLUMNS for every combination: lead-level rule lines, and the
        activity lines with (for the full ledger, ``explain``) their frequency-cap lines."""
        out: list[exp.Select] = []
        firsts = self.lead_rule_ids()[1]
        if firsts:
            # Each distinct lead-level rule is written once (``lid``: its line's id); a rule that only
            # some combinations have is evaluated only for their leads.
            made = []
            for lid, (combo, index, combos) in enumerate(firsts):
                line = self._lead_line(combo.composed, index, lid, compiler, refs, explain)
                made.append(line if len(combos) == len(self.combos) else q.case([(q.in_(q.col("combo"), combos), line)]))
            nonnull = exp.Lambda(this=q.not_null(exp.column("x")), expressions=[exp.to_identifier("x")])
            unnested = q.fn("unnest", q.fn("list_filter", exp.Array(expressions=made), nonnull))
            inner = q.select(q.col("k"), q.col("combo"), unnested.as_("line", quoted=True, copy=False)).from_(
                q.table(sig), copy=False)
            # A lead's line carries what varies by lead; the rule's position in the lead's combination
            # (s1) and its own texts join from ls_lead_rules, which leaves out the lines of rules the
            # combination does not have.
            line = q.col("line", "ll")
            varying = {"points", "factor", "observed_at", "evidence"}
            columns = [q.field(line, c) if c in varying else q.col(c, "r") for c in LINE_COLUMNS[1:]]
            out.append(q.select(q.col("k", "ll"), *[e.as_(c, quoted=True, copy=False) for e, c in zip(columns, LINE_COLUMNS[1:])])
                       .from_(inner.subquery("ll", copy=False))
                       .join(q.table("ls_lead_rules", "r"), on=q.and_(q.col("combo", "r").eq(q.col("combo", "ll")),
                                                                      q.col("lid", "r").eq(q.field(line, "lid"))), copy=False))
        activity_rules = [(combo, index, rule) for combo in self.combos
                          for index, rule in enumerate(combo.composed.rules) if rule.on]
        if activity_rules:
            out.extend(self._activity_lines(activity_rules, compiler, refs, sig, activities, explain))
        return out

    def _lead_line(self, composed: ComposedPack, index: int, lid: int, compiler: Compiler,
                   refs: Mapping[str, SignalRef], explain: bool) -> exp.Expression:
        """The line of the rule at ``index`` of ``composed`` for one lead (NULL when it does not hold),
        numbered ``lid``."""
        rule = composed.rules[index]
        fn, _ = composed.rule_decay[index]
        present = [s for s in rule.signals if s in refs]
        ats = [q.col(s + "#at") for s in present]
        observed = q.fn("greatest", *ats) if len(ats) > 1 else (ats[0] if ats else q.cast(exp.null(), "BIGINT"))
        if fn is None or not ats:
            factor, points = q.lit(1.0), q.lit(rule.points)
        else:
            factor = self._decay_factor(composed, rule, age_days(self.as_of_us, observed))
            factor = q.case([(q.not_null(observed), factor)], q.lit(1.0))
            points = q.case([(q.not_null(observed), decayed(rule.points, factor))], q.lit(rule.points))
        if explain:
            parts = []
            for i, s in enumerate(present):
                ev = q.col(s + "#ev")
                earlier = [q.coalesce(ev.eq(q.col(p + "#ev")), exp.false()) for p in present[:i]]
                keep = q.and_(q.not_null(q.col(s)), q.coalesce(ev.neq(q.lit("")), exp.false()),
                              q.not_(q.or_(*[q.and_(q.not_null(q.col(p)), e) for p, e in zip(present[:i], earlier)])))
                parts.append(q.case([(keep, ev)]))
            evidence = q.fn("concat_ws", q.lit("; "), *parts) if parts else q.lit("")
        else:
            evidence = q.lit("")
        line = q.struct(lid=q.lit(lid), points=q.cast(points, "BIGINT"), factor=q.cast(factor, "DOUBLE"),
                        observed_at=q.cast(observed, "BIGINT"), evidence=q.cast(evidence, "VARCHAR"))
        return q.case([(compiler.compile(rule.when), line)])  # type: ignore[arg-type]

    def _decay_factor(self, composed: ComposedPack, rule: RuleIR, age: exp.Expression) -> exp.Expression:
        definition = composed.decays[rule.decay]
        policy = self.engine.policies[definition.kind]
        made = decay_sql(policy, definition.params, age)
        if made is not None:
            return made
        fn = composed.decay_fns[rule.decay]
        name = f"ls_decay_{abs(hash((id(composed), rule.decay))) % 10**9}"
        return self.udfs.add(name, lambda a: None if a is None else float(fn(a)), ("DOUBLE",), "DOUBLE")(age)

    def _activity_lines(self, rules: list[tuple[Combo, int, RuleIR]], compiler: Compiler,
                        refs: Mapping[str, SignalRef], sig: str, activities: str, explain: bool) -> list[exp.Select]:
        """Every per-activity rule at once: activities joined with the rules naming their type, the
        rule's condition chosen by (combination, rule position), its decay and counting read from its
        row of ``ls_rule_types``, the most recent kept."""
        event_compiler = None
        conds = []
        at = q.col("at", "a")
        for combo, index, rule in rules:
            key = q.and_(q.col("combo", "s").eq(q.lit(combo.index)), q.col("s1", "r").eq(q.lit(index)))
            if rule.when is not None:
                if any(name.startswith(EVENT_PREFIX) for name in rule.when.signals()):
                    if event_compiler is None:
                        event_refs = self.event_refs()
                        event_refs.update(refs)
                        event_compiler = self.compiler(event_refs)
                    conds.append((key, event_compiler.compile(rule.when)))
                else:
                    conds.append((key, compiler.compile(rule.when)))
        cond = q.case(conds, exp.true()) if conds else exp.true()
        # A rule's decay, counting limit and daily counting are columns of ls_rule_types (see
        # rule_constants): each distinct decay factor is written once, not once per rule and combination.
        decay_id, raw = q.col("decay_id", "r"), q.col("raw", "r")
        factors = self.activity_decays()[1]
        factor_e = q.case([(decay_id.eq(q.lit(i)), factor) for i, factor in enumerate(factors)], q.lit(1.0)) \
            if factors else q.lit(1.0)
        points_e = q.case([(q.is_null(decay_id), raw)], decayed_column(raw, factor_e)) if factors else raw
        # The factors read the activity's age in days (``a.age``), written once here.
        source: exp.Expression = q.table(activities, "a")
        if factors:
            source = q.select(exp.Star(), age_days(self.as_of_us, q.col("at")).as_("age", copy=False), copy=False).from_(
                q.table(activities), copy=False).subquery("a", copy=False)
        keep_e = q.col("keep", "r")
        dailies = any(rule.count == "daily" for _, _, rule in rules)
        rank = exp.Window(this=exp.RowNumber(), partition_by=[q.col("k", "a"), q.col("s1", "r")],
                          order=exp.Order(expressions=[exp.Ordered(this=q.col("pos", "a"), desc=True)]))
        found = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[q.col("k", "a"), q.col("s1", "r")])
        # count = "daily": the newest match of each UTC day (dn = 1), the newest days first (drank), and
        # on the newest match, how many days there are (ndays: its day's rank counted from the oldest).
        day = q.utc_day(at)
        daily_cols: list[exp.Expression] = []
        if dailies:
            keys = [q.col("k", "a"), q.col("s1", "r")]
            daily_cols = [
                exp.Window(this=exp.RowNumber(), partition_by=[*keys, day],
                           order=exp.Order(expressions=[exp.Ordered(this=q.col("pos", "a"), desc=True)])).as_("dn", copy=False),
                exp.Window(this=exp.Anonymous(this="dense_rank", expressions=[]), partition_by=keys,
                           order=exp.Order(expressions=[exp.Ordered(this=day, desc=True)])).as_("drank", copy=False),
                q.col("daily", "r").as_("daily", copy=False),
            ]
            if explain:
                daily_cols.append(exp.Window(this=exp.Anonymous(this="dense_rank", expressions=[]), partition_by=keys,
                                             order=exp.Order(expressions=[exp.Ordered(this=day)])).as_("ndays", copy=False))
        # Without the full ledger, the frequency-cap lines (no points, read by the ledger alone) are not
        # made, nor what only they read: how many matches there are (found, ndays).
        counts = [found.as_("found", copy=False)] if explain else []
        matched = (q.select(
            q.col("k", "a").as_("k", copy=False), q.col("s1", "r").as_("s1", copy=False), rank.as_("rn", copy=False), *counts,
            q.col("type", "a").as_("type", copy=False), at.as_("at", copy=False), (q.col("ev", "a") if explain else q.lit("")).as_("ev", copy=False),
            q.col("combo", "s").as_("combo", copy=False), q.col("raw", "r"), q.cast(points_e, "BIGINT").as_("points", copy=False),
            q.cast(factor_e, "DOUBLE").as_("factor", copy=False), keep_e.as_("keep", copy=False),
            q.col("day_limit", "r"), *daily_cols)
            .from_(source, copy=False)
            .join(q.table(sig, "s"), on=q.col("k", "a").eq(q.col("k", "s")), copy=False)
            .join(q.table("ls_rule_types", "r"), on=q.and_(q.col("combo", "r").eq(q.col("combo", "s")),
                                                            q.col("type", "r").eq(q.col("type", "a"))), copy=False)
            .where(q.and_(exp.LTE(this=at, expression=q.lit(self.as_of_us)), cond), copy=False))
        self.matched = matched
        # The rule's texts join the lines kept, not the window's input (a window carries every column it gets).
        texts = q.select(q.col("combo").as_("t_combo", copy=False), q.col("s1").as_("t_s1", copy=False),
                         q.col("type").as_("t_type", copy=False), q.col("rule_id"), q.col("category"), q.col("reason"),
                         q.col("pack"), q.col("decay"), q.col("limit_text"), copy=False).from_("ls_rule_types", copy=False)

        def with_texts(select: exp.Select) -> exp.Select:
            return select.join(texts.subquery("r", copy=False), on=q.and_(
                q.col("combo", "m").eq(q.col("t_combo", "r")), q.col("s1", "m").eq(q.col("t_s1", "r")),
                q.col("type", "m").eq(q.col("t_type", "r"))), copy=False)
        kept = q.or_(q.is_null(q.col("keep")), exp.LTE(this=q.col("rn"), expression=q.col("keep")))
        # How many matches the rule counts (the frequency cap's line says the rest were not).
        counted_n = q.case([(q.is_null(q.col("keep")), q.col("found"))],
                           q.fn("greatest", q.lit(0), q.fn("least", q.col("keep"), q.col("found"))))
        limit_text = q.col("limit_text")
        if dailies:
            day_limited = q.or_(q.is_null(q.col("day_limit")), exp.LTE(this=q.col("drank"), expression=q.col("day_limit")))
            kept = q.case([(q.col("daily"), q.and_(q.col("dn").eq(q.lit(1)), day_limited))], kept)
            counted_n = q.case([(q.col("daily"), q.case([(q.is_null(q.col("day_limit")), q.col("ndays"))],
                                                        q.fn("least", q.col("ndays"), q.col("day_limit"))))], counted_n)
        limit_text = q.case([(q.is_null(limit_text), q.concat(q.lit("at most "), q.cast(counted_n, "VARCHAR"),
                                                               q.lit(" times")))], limit_text)
        line = q.select(
            q.col("k"), q.col("s1"), q.col("rn").as_("s2", copy=False), q.col("rule_id"), q.col("category"), q.col("points"),
            q.col("reason"), q.col("pack"), q.lit("rule").as_("kind", copy=False), q.col("raw"), q.col("decay"), q.col("factor"),
            q.col("type").as_("signal", copy=False), q.col("at").as_("observed_at", copy=False), q.col("ev").as_("evidence", copy=False),
        ).from_(q.table("matches", "m"), copy=False).where(kept, copy=False)
        line = with_texts(line)
        if not explain:
            return [line]
        dropped = exp.Sub(this=q.col("found"), expression=q.paren(counted_n))
        reason = q.concat(q.cast(dropped, "VARCHAR"), q.case(
            [(dropped.eq(q.lit(1)), q.lit(" earlier matching activity not counted: this rule counts "))],
            q.lit(" earlier matching activities not counted: this rule counts ")), limit_text)
        cap = (q.select(
            q.col("k"), q.col("s1"), q.lit(CAP_ORDER).as_("s2", copy=False), q.col("rule_id"), q.col("category"),
            q.lit(0).as_("points", copy=False), reason.as_("reason", copy=False), q.col("pack"), q.lit("frequency_cap").as_("kind", copy=False),
            q.lit(0).as_("raw", copy=False), q.lit("none").as_("decay", copy=False), q.lit(1.0).as_("factor", copy=False), q.col("type").as_("signal", copy=False),
            q.cast(exp.null(), "BIGINT").as_("observed_at", copy=False), q.lit("").as_("evidence", copy=False))
            .from_(q.table("matches", "m"), copy=False)
            .where(q.and_(q.col("rn").eq(q.lit(1)), exp.GT(this=dropped, expression=q.lit(0))), copy=False))
        cap = with_texts(cap)
        return [line, cap]

    def lead_rule_ids(self) -> tuple[dict[tuple[int, int], int], list[tuple[Combo, int, tuple[int, ...]]]]:
        """The lead-level rules that make the same line, numbered once: the line id (``lid``) of each
        (combination, rule position), and for each id its first (combination, rule position) and the
        combinations that have it.

        A rule's line is made from its condition, points, signals and decay (policy and parameters),
        so two rules alike in those make the same line whatever their texts (which join by
        (combination, ``lid``)); with every installed pack, 156 rule copies over 8 combinations make
        41 lines."""
        if self._lead_rules is None:
            ids: dict[tuple[int, int], int] = {}
            lines = Numbering()  # each line's first (combination, rule position) and its combinations
            for combo in self.combos:
                composed = combo.composed
                for index, rule in enumerate(composed.rules):
                    if rule.on or rule.when is None:
                        continue
                    decay = None
                    if composed.rule_decay[index][0] is not None:
                        definition = composed.decays[rule.decay]
                        decay = (definition.kind, repr(definition.params))
                    key = (repr(rule.when), rule.points, tuple(rule.signals), decay)
                    lid = ids[(combo.index, index)] = lines.number(key, (combo, index, []))
                    combos = lines.firsts[lid][2]
                    if not combos or combos[-1] != combo.index:  # two rules alike in one combination
                        combos.append(combo.index)
            self._lead_rules = ids, [(combo, index, tuple(combos)) for combo, index, combos in lines.firsts]
        return self._lead_rules

    def activity_decays(self) -> tuple[dict[tuple[int, int], int], list[exp.Expression]]:
        """The decay factors of the per-activity rules at an activity's age (``a.age``, days), each distinct
        one once, and the index of each decayed rule's factor by (combination, rule position)."""
        if self._activity_decays is None:
            age = q.col("age", "a")  # see _activity_lines
            ids: dict[tuple[int, int], int] = {}
            factors = Numbering()
            for combo in self.combos:
                for index, rule in enumerate(combo.composed.rules):
                    if not rule.on or combo.composed.rule_decay[index][0] is None:
                        continue
                    factor = self._decay_factor(combo.composed, rule, age)
                    ids[(combo.index, index)] = factors.number(q.sql(factor), factor)
            self._activity_decays = ids, factors.firsts
        return self._activity_decays

    def rule_constants(self) -> dict[str, list[Any]]:
        """Per (combo, rule position, type) of a per-activity rule: its texts, counting limit (``keep``:
        the most recent matches counted, NULL for all; ``daily``) and decay (``decay_id``: the index
        of its factor in :meth:`activity_decays`, NULL for none)."""
        table: dict[str, list[Any]] = {k: [] for k in ("combo", "s1", "type", "rule_id", "category", "reason", "pack",
                                                       "raw", "decay", "limit_text", "day_limit", "keep", "daily",
                                                       "decay_id")}
        decay_ids = self.activity_decays()[0]
        for combo in self.combos:
            for index, rule in enumerate(combo.composed.rules):
                if not rule.on:
                    continue
                _, label = combo.composed.rule_decay[index]
                daily = rule.count == "daily"
                # `max_count or found`: 0 keeps all
                keep = None if daily else (1 if rule.count == "once" else (rule.max_count or None))
                # NULL: "at most <counted> times", made in SQL. A daily rule counts every day unless
                # max_count is 0 or more (the python engine stops when it has max_count days).
                limit, day_limit = None, None
                if rule.count == "once":
                    limit = "once"
                elif rule.count == "daily":
                    limit = "once a day" + (f", on at most {rule.max_count} days" if rule.max_count else "")
                    day_limit = rule.max_count if rule.max_count is not None and rule.max_count >= 0 else None
                for kind in rule.on:
                    for key, value in (("combo", combo.index), ("s1", index), ("type", kind), ("rule_id", rule.id),
                                       ("category", rule.category), ("reason", rule.reason), ("pack", rule.pack),
                                       ("raw", rule.points), ("decay", label), ("limit_text", limit),
                                       ("day_limit", day_limit), ("keep", keep), ("daily", daily),
                                       ("decay_id", decay_ids.get((combo.index, index)))):
                        table[key].append(value)
        return table

    def event_refs(self) -> dict[str, SignalRef]:

        refs = {
            "event.type": SignalRef("str", q.col("type", "a")),
            "event.at": SignalRef("dt", q.col("at", "a")),
            "event.age_days": SignalRef("num", exp.Div(this=exp.Div(
                this=q.cast(exp.Sub(this=q.lit(self.as_of_us), expression=q.col("at", "a")), "DOUBLE"),
                expression=q.lit(1_000_000.0)), expression=q.lit(86_400.0))),
        }

        class EventRefs(dict):
            def get(self, name: str, default: Any = None) -> Any:  # event.<property>: read from the JSON
                if name in self:
                    return self[name]
                if name.startswith(EVENT_PREFIX):
                    return SignalRef("any", any_property(q.col("props", "a"), name[len(EVENT_PREFIX):]))
                return default

        return EventRefs(refs)


def any_property(doc: exp.Expression, key: str) -> exp.Expression:
    """An activity property as an ``any`` struct; a JSON null, list or object is present with kind ``other``."""
    got = q.json_at(doc, key)
    kind = q.json_kind(got)
    null = {"s": q.cast(exp.null(), "VARCHAR"), "n": q.cast(exp.null(), "DOUBLE"), "b": q.cast(exp.null(), "BOOLEAN"),
            "t": q.cast(exp.null(), "BIGINT")}
    return q.case([
        (q.is_null(got), exp.null()),
        (kind.eq(q.lit("VARCHAR")), q.struct(k=q.lit("str"), **{**null, "s": q.json_str(doc, key)})),
        (kind.eq(q.lit("BOOLEAN")), q.struct(k=q.lit("bool"), **{**null, "b": q.cast(got, "BOOLEAN")})),
        (q.in_(kind, ("BIGINT", "UBIGINT", "DOUBLE")), q.struct(k=q.lit("num"), **{**null, "n": q.cast(got, "DOUBLE")})),
    ], q.struct(k=q.lit("other"), **null))


def _rebind(old: str, new: str) -> Callable[[exp.Expression], exp.Expression]:
    def change(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.table == old:
            return q.col(node.name, None)
        return node

    return change


def _datetime(us: int) -> datetime:
    from datetime import timedelta

    return q.EPOCH + timedelta(microseconds=us)


__all__ = ["CARD_LINE_COLUMNS", "Combo", "LINE_COLUMNS", "Plan", "age_days", "decay_sql", "decayed"]
