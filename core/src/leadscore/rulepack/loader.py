"""Read rulepack TOML files, validate everything, and report each problem as `file:line: what; fix`.

Validation does not stop at the first problem: a pull request review wants the whole list.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from leadscore.errors import RulepackError, RulepackErrors
from leadscore.files import TomlError, parse_toml, read_text_file
from leadscore.model import DecayPolicy, Route, SignalSpec
from leadscore.rulepack import fairness as fairness_check
from leadscore.rulepack.conditions import parse_condition
from leadscore.rulepack.schema import (
    CUSTOM_FIELDS,
    FIELD_TYPES,
    Actions,
    BandDef,
    CategoryDef,
    ConditionError,
    DecayDef,
    Fact,
    RuleIR,
    Rulepack,
    SignalCatalog,
    describe,
    with_extends,
)
from leadscore.taxonomy.activities import KNOWN_TYPES

TOP_LEVEL = ("pack", "categories", "total", "decay", "vocabulary", "fields", "rules", "bands", "routing", "accounts",
             "fairness", "actions", "provenance")
PACK_KEYS = ("name", "version", "description", "priority", "extends", "applies_when", "disable", "scorers")
RULE_KEYS = ("id", "category", "points", "reason", "when", "on", "decay", "count", "max_count", "max_points",
             "min_points", "fairness")
BAND_KEYS = ("name", "min", "label", "requires", "gate_reason", "observed_conversion")
ROUTE_KEYS = ("action", "queue", "sla_hours", "owner_hint", "reason")
VOCAB_KEYS = ("free_email_domains", "competitor_domains", "title_seniority", "title_function", "activity_tiers",
              "activity_types", "industry_aliases", "source_channels", "topics", "target_accounts")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Points, caps, band minimums and priorities are whole numbers within a million either way, so
# any sum of them stays exact and prints in every output format (docs/rulepacks.md, Limits).
MAX_POINTS = 1_000_000
_WHOLE = f"a whole number from -{MAX_POINTS} to {MAX_POINTS}"


class _Locator:
    """Finds the line of a table or key in the TOML text (tomllib keeps no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def header(self, header: str, index: int = 0) -> int:
        seen = 0
        for no, line in enumerate(self.lines, 1):
            if line.strip().replace(" ", "") == header:
                if seen == index:
                    return no
                seen += 1
        return 0

    def block(self, start: int) -> tuple[int, int]:
        """The lines from a header to the next table of another rule/band (1-based, inclusive)."""
        if not start:
            return 0, 0
        end = len(self.lines)
        for no in range(start + 1, len(self.lines) + 1):
            stripped = self.lines[no - 1].strip()
            if stripped.startswith("[") and not stripped.startswith(("[[rules.", "[rules.", "[[bands.", "[bands.")):
                end = no - 1
                break
        return start, end

    def find(self, start: int, needle: str, key: bool = False) -> int:
        lo, hi = self.block(start)
        if not lo:
            return 0
        pattern = re.compile(r"^\s*" + re.escape(needle) + r"\s*=") if key else None
        for no in range(lo, hi + 1):
            line = self.lines[no - 1]
            if (pattern.search(line) if pattern else needle in line):
                return no
        return start


class _Collector:
    def __init__(self, source: str, locator: _Locator) -> None:
        self.source = source
        self.locator = locator
        self.errors: list[RulepackError] = []

    def add(self, line: int, what: str, fix: str = "", context: str = "") -> None:
        where = f"{self.source}:{line}" if line else self.source
        if context:
            what = f"{context}: {what}"
        self.errors.append(RulepackError(where, what, fix))


def _is_int(value: Any) -> bool:
    """A whole number within MAX_POINTS, the bound on every number a score is made of."""
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_POINTS <= value <= MAX_POINTS


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _parse(text: str, source: str, catalog: SignalCatalog, policies: Mapping[str, DecayPolicy]) -> tuple[Rulepack | None, list[RulepackError]]:
    loc = _Locator(text)
    col = _Collector(source, loc)
    try:
        data = parse_toml(text)
    except TomlError as err:
        col.add(err.line, err.what, err.fix or "fix the syntax (strings need quotes, tables need [brackets])")
        return None, col.errors

    for key in data:
        if key not in TOP_LEVEL:
            col.add(loc.find(1, key, key=True) or loc.header(f"[{key}]"), f"unknown top-level key `{key}`",
                    f"use one of {', '.join(TOP_LEVEL)}")

    pack_line = loc.header("[pack]")
    pack = data.get("pack")
    if not isinstance(pack, dict):
        col.add(0, "missing [pack] table", 'start the file with [pack] name = "my-pack" version = "1.0.0"')
        return None, col.errors
    for key in pack:
        if key not in PACK_KEYS:
            col.add(loc.find(pack_line, key, key=True), f"unknown key `{key}` in [pack]", f"use one of {', '.join(PACK_KEYS)}")
    name = pack.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        col.add(loc.find(pack_line, "name", key=True) or pack_line, f"[pack] name {name!r} is not a valid name",
                "use lower case letters, digits, '-', '_' or '.', e.g. name = \"acme-enterprise\"")
        name = str(name)
    version = pack.get("version")
    if not isinstance(version, str) or not version:
        col.add(loc.find(pack_line, "version", key=True) or pack_line, "[pack] version is missing or not a string",
                'add version = "1.0.0"')
        version = str(version or "")
    priority = pack.get("priority", 0)
    if not _is_int(priority):
        col.add(loc.find(pack_line, "priority", key=True), f"priority must be {_WHOLE}, not {_short(priority)}",
                "higher priority packs override lower ones, e.g. priority = 10")
        priority = 0
    extends = pack.get("extends", [])
    if isinstance(extends, str):
        extends = [extends]
    if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
        col.add(loc.find(pack_line, "extends", key=True), "extends must be a list of rulepack names",
                'e.g. extends = ["firr-base"]')
        extends = []
    disable = pack.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(e, str) for e in disable):
        col.add(loc.find(pack_line, "disable", key=True), "disable must be a list of rule ids",
                'e.g. disable = ["intent.email-open"]')
        disable = []
    scorers = pack.get("scorers", ["rules"])
    if not isinstance(scorers, list) or not all(isinstance(e, str) for e in scorers):
        col.add(loc.find(pack_line, "scorers", key=True), "scorers must be a list of scorer names", 'e.g. scorers = ["rules"]')
        scorers = ["rules"]

    applies_when = None
    if "applies_when" in pack:
        try:
            applies_when = parse_condition(pack["applies_when"], catalog, allow_patterns=False,
                                           allow_account=False)
        except ConditionError as err:
            for problem in err.problems:
                col.add(loc.find(pack_line, problem.needle or "applies_when") or pack_line, str(problem),
                        context="applies_when")

    # categories
    categories: list[CategoryDef] = []
    raw_categories = data.get("categories", {})
    if not isinstance(raw_categories, dict):
        col.add(loc.find(1, "categories", key=True), "categories must be tables: [categories.fit]", "")
        raw_categories = {}
    for cname, cdef in raw_categories.items():
        line = loc.header(f"[categories.{cname}]")
        if not isinstance(cdef, dict):
            col.add(line, f"category {cname!r} must be a table", f"write [categories.{cname}] with label/min/max")
            continue
        for key in cdef:
            if key not in ("label", "min", "max"):
                col.add(loc.find(line, key, key=True) or line, f"unknown key `{key}` in category {cname!r}",
                        "use label, min or max")
        cmin, cmax = cdef.get("min"), cdef.get("max")
        for key, value in (("min", cmin), ("max", cmax)):
            if value is not None and not _is_int(value):
                col.add(loc.find(line, key, key=True) or line, f"category {cname!r} {key} must be {_WHOLE}, not {_short(value)}",
                        f"e.g. {key} = 50")
        if _is_int(cmin) and _is_int(cmax) and cmin > cmax:
            col.add(line, f"category {cname!r} has min {cmin} above max {cmax}", "make min <= max")
        _check_cap_signs(col, loc, line, f"category {cname!r}", cmin, cmax)
        categories.append(CategoryDef(cname, str(cdef.get("label", cname)), cmin if _is_int(cmin) else None,
                                      cmax if _is_int(cmax) else None))

    total = data.get("total", {})
    total_line = loc.header("[total]")
    tmin, tmax = (total.get("min"), total.get("max")) if isinstance(total, dict) else (None, None)
    for key, value in (("min", tmin), ("max", tmax)):
        if value is not None and not _is_int(value):
            col.add(loc.find(total_line, key, key=True) or total_line, f"total {key} must be {_WHOLE}, not {_short(value)}", f"e.g. {key} = 100")
    if _is_int(tmin) and _is_int(tmax) and tmin > tmax:
        col.add(total_line, f"total min {tmin} is above max {tmax}", "make min <= max")
    _check_cap_signs(col, loc, total_line, "total", tmin, tmax)
    tmin = tmin if _is_int(tmin) else None
    tmax = tmax if _is_int(tmax) else None

    # decay instances
    decays: list[DecayDef] = []
    raw_decay = data.get("decay", {})
    for dname, ddef in (raw_decay.items() if isinstance(raw_decay, dict) else []):
        line = loc.header(f"[decay.{dname}]")
        if not isinstance(ddef, dict) or not isinstance(ddef.get("kind"), str):
            col.add(line, f"decay {dname!r} needs a `kind`", f"use one of {', '.join(sorted(policies))}")
            continue
        policy = policies.get(ddef["kind"])
        if policy is None:
            col.add(loc.find(line, "kind", key=True) or line, f"unknown decay policy kind {ddef['kind']!r} in decay {dname!r}",
                    f"use one of {', '.join(sorted(policies))}")
            continue
        try:
            policy.make(ddef)
        except (ValueError, TypeError, KeyError) as err:
            col.add(line, f"decay {dname!r} ({ddef['kind']}): {err}")
            continue
        decays.append(DecayDef(dname, ddef["kind"], {k: v for k, v in ddef.items() if k != "kind"}, line))

    vocabulary = data.get("vocabulary", {})
    if not isinstance(vocabulary, dict):
        col.add(loc.header("[vocabulary]"), "vocabulary must be a table", "")
        vocabulary = {}
    for key in vocabulary:
        if key not in VOCAB_KEYS:
            col.add(loc.find(loc.header("[vocabulary]"), key, key=True), f"unknown vocabulary key `{key}`",
                    f"use one of {', '.join(VOCAB_KEYS)}")

    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        col.add(loc.find(1, "provenance", key=True) or loc.header("[provenance]"), "provenance must be a table",
                "write [provenance] with key = value lines (calibrate writes it; scoring ignores it)")
    _check_fields(data.get("fields", {}), col, loc)
    accounts = _parse_accounts(data.get("accounts", {}), col, loc)
    fairness: Mapping[str, Any] = {}
    if "fairness" in data:
        try:
            fairness = fairness_check.check_config(data["fairness"])
        except ValueError as err:
            col.add(loc.header("[fairness]") or loc.find(1, "fairness", key=True), str(err))
    rules = _parse_rules(data.get("rules", []), col, loc, catalog, policies, name, decays)
    actions = _parse_actions(data.get("actions"), col, loc, catalog)
    bands = _parse_bands(data.get("bands", []), col, loc, catalog)
    routing = _parse_routing(data.get("routing", {}), col, loc, bands)

    pack_obj = Rulepack(
        name=name, version=version, source=source, description=str(pack.get("description", "")),
        priority=priority, extends=tuple(extends), applies_when=applies_when,
        applies_text=describe(applies_when), disable=tuple(disable), categories=tuple(categories),
        total_min=tmin, total_max=tmax, has_total="total" in data, decays=tuple(decays), rules=tuple(rules),
        bands=tuple(bands), routing=tuple(routing), scorers=tuple(scorers), vocabulary=vocabulary, text=text,
        accounts=accounts, fairness=fairness, actions=actions,
    )
    return pack_obj, col.errors


def field_declarations(raw: Any) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """A pack's ``[fields]`` as name -> (type, allowed values); entries that do not fit are left
    for :func:`_check_fields` to report."""
    found: dict[str, tuple[str, tuple[Any, ...]]] = {}
    if not isinstance(raw, dict):
        return found
    for name, spec in raw.items():
        if isinstance(spec, str) and spec in FIELD_TYPES:
            found[name] = (spec, ())
        elif isinstance(spec, dict) and spec.get("type") in FIELD_TYPES and isinstance(spec.get("values", []), list):
            found[name] = (spec["type"], tuple(spec.get("values", ())))
    return found


def _check_fields(raw: Any, col: _Collector, loc: _Locator) -> None:
    line = loc.header("[fields]")
    if not isinstance(raw, dict):
        col.add(line, "fields must be a table", 'write [fields] time_on_site = "number"')
        return
    for name, spec in raw.items():
        where = loc.find(line, name, key=True) or line
        if not _FIELD_NAME.match(name):
            col.add(where, f"[fields] {name!r} is not a field name", "use lower case letters, digits and _")
        kind = spec.get("type") if isinstance(spec, dict) else spec
        if kind not in FIELD_TYPES:
            col.add(where, f"[fields] {name}: unknown type {kind!r}",
                    f'use one of {", ".join(FIELD_TYPES)}, e.g. {name} = "number" or {name} = {{ type = "str", '
                    'values = ["a", "b"] }')
            continue
        if isinstance(spec, dict):
            extra = set(spec) - {"type", "values"}
            values = spec.get("values", [])
            if extra:
                col.add(where, f"[fields] {name}: unknown key {sorted(extra)[0]!r}", "use type and values")
            if not isinstance(values, list) or not all(_TYPE_OF_VALUE[kind](v) for v in values):
                col.add(where, f"[fields] {name}: values must be a list of {kind} values", 'e.g. values = ["a", "b"]')


_FIELD_NAME = re.compile(r"^[a-z0-9_]+$")
_TYPE_OF_VALUE = {
    "str": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}


def _check_cap_signs(col: _Collector, loc: _Locator, line: int, what: str, low: Any, high: Any) -> None:
    """A cap lowers what is above it and a floor raises what is below it: a max below zero, or a
    min above it, would move every lead, even one that scored nothing."""
    if _is_int(high) and high < 0:
        col.add(loc.find(line, "max", key=True) or line, f"{what} max {high} is below 0",
                "a max caps high scores: make it 0 or more")
    if _is_int(low) and low > 0:
        col.add(loc.find(line, "min", key=True) or line, f"{what} min {low} is above 0",
                "a min floors low scores: make it 0 or less")


def _parse_accounts(raw: Any, col: _Collector, loc: _Locator) -> dict[str, Any]:
    """``[accounts]``: ``rollup`` (a strategy name), its parameters, and ``bands = [[name, min], ...]``."""
    line = loc.header("[accounts]")
    if not isinstance(raw, dict):
        col.add(line, "accounts must be a table", 'write [accounts] with rollup = "role_weighted"')
        return {}
    if not raw:
        return {}
    rollup = raw.get("rollup")
    if not isinstance(rollup, str):
        col.add(loc.find(line, "rollup", key=True) or line, "[accounts] needs `rollup`, a strategy name",
                "use sum_capped, mean_scored, role_weighted or one a plugin adds")
    bands = raw.get("bands", [])
    ok = isinstance(bands, list)
    last = None
    for band in bands if ok else ():
        if not (isinstance(band, list) and len(band) == 2 and isinstance(band[0], str) and _is_int(band[1])):
            ok = False
            break
        if last is not None and band[1] <= last:
            col.add(loc.find(line, "bands", key=True) or line,
                    f"account bands not increasing: {band[0]!r} ({band[1]}) is not above {last}",
                    "list account bands from lowest to highest")
        last = band[1]
    if not ok:
        col.add(loc.find(line, "bands", key=True) or line, "[accounts] bands must be [[name, min], ...]",
                'e.g. bands = [["cold", 0], ["warm", 60], ["hot", 150]]')
    return dict(raw)


def _parse_actions(raw: Any, col: _Collector, loc: _Locator, catalog: SignalCatalog) -> Actions:
    """``[actions]``: ``activities`` a lead can be asked to do, ``[[actions.facts]]`` sales can confirm."""
    if raw is None:
        return Actions()
    line = loc.header("[actions]") or loc.find(1, "actions", key=True)
    if not isinstance(raw, dict):
        col.add(line, "actions must be a table", 'write [actions] with activities = [...] and [[actions.facts]]')
        return Actions()
    for key in raw:
        if key not in ("activities", "facts"):
            col.add(loc.find(line, key, key=True) or line, f"unknown key `{key}` in [actions]", "use activities or facts")
    activities = raw.get("activities")
    if activities is not None:
        known = set(catalog.vocabulary.get("activity_types", ()))
        if not isinstance(activities, list) or not all(isinstance(a, str) for a in activities):
            col.add(loc.find(line, "activities", key=True) or line, "[actions] activities must be a list of activity types",
                    'e.g. activities = ["pricing_page_visit", "demo_request"]')
            activities = None
        else:
            for kind in activities:
                if kind not in known:
                    close = difflib.get_close_matches(kind, sorted(known), n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    col.add(loc.find(line, "activities", key=True) or line, f"unknown activity type {kind!r} in [actions]",
                            f"{hint}declare new types in [vocabulary] activity_types")
    facts: list[Fact] = []
    raw_facts = raw.get("facts", [])
    if not isinstance(raw_facts, list):
        col.add(line, "[actions] facts must be an array of tables", 'write each under [[actions.facts]]')
        raw_facts = []
    for index, fact in enumerate(raw_facts):
        fact_line = loc.header("[[actions.facts]]", index) or line
        example = 'e.g. text = "budget confirmed" and set = { "fields.budget_confirmed" = true }'
        if not isinstance(fact, dict) or set(fact) != {"text", "set"} or not isinstance(fact["text"], str) \
                or not fact["text"].strip() or not isinstance(fact["set"], dict) or not fact["set"]:
            col.add(fact_line, "a fact needs `text` (how to say it) and `set` (the signal values it gives)", example)
            continue
        try:
            for signal, value in fact["set"].items():
                parse_condition({"signal": signal, "eq": value}, catalog)
        except ConditionError as err:
            col.add(loc.find(fact_line, err.needle) if err.needle else fact_line, str(err), context=f"fact {fact['text']!r}")
            continue
        facts.append(Fact(fact["text"].strip(), tuple(fact["set"].items())))
    return Actions(tuple(dict.fromkeys(activities)) if isinstance(activities, list) else None, tuple(facts))


def _parse_rules(raw: Any, col: _Collector, loc: _Locator, catalog: SignalCatalog,
                 policies: Mapping[str, DecayPolicy], pack: str, decays: list[DecayDef]) -> list[RuleIR]:
    """Parse [[rules]]; a rule's inline decay table is appended to ``decays`` as ``inline:<id>``."""
    if not isinstance(raw, list):
        col.add(loc.find(1, "rules", key=True), "rules must be an array of tables", "write each rule under [[rules]]")
        return []
    rules: list[RuleIR] = []
    seen: dict[str, int] = {}
    for index, rdef in enumerate(raw):
        line = loc.header("[[rules]]", index)
        if not isinstance(rdef, dict):
            col.add(line, "a rule must be a table", "write it under [[rules]]")
            continue
        rid = rdef.get("id")
        ctx = f"rule {rid!r}" if isinstance(rid, str) else f"rule #{index + 1}"
        if not isinstance(rid, str) or not _NAME.match(rid):
            col.add(line, f"rule id {rid!r} is missing or invalid", "give every rule a unique id such as \"fit.title.vp\"",
                    context=f"rule #{index + 1}")
            continue
        if rid in seen:
            col.add(loc.find(line, "id", key=True) or line, f"duplicate rule id {rid!r} (first defined at line {seen[rid]})",
                    "give each rule a unique id; to change a rule of another pack, reuse its id in a higher-priority pack")
            continue
        seen[rid] = line
        ok = True
        for key in rdef:
            if key not in RULE_KEYS:
                col.add(loc.find(line, key, key=True) or line, f"unknown key `{key}`", f"use one of {', '.join(RULE_KEYS)}",
                        context=ctx)
                ok = False
        category = rdef.get("category")
        if not isinstance(category, str):
            col.add(line, "missing `category`", 'e.g. category = "fit"', context=ctx)
            ok = False
        points = rdef.get("points")
        if not _is_int(points):
            col.add(loc.find(line, "points", key=True) or line, f"points must be {_WHOLE}, not {_short(points)}",
                    "e.g. points = 20 (negative for penalties)", context=ctx)
            ok = False
        reason = rdef.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            col.add(line, "missing `reason`", 'every point needs a reason a sales rep can read, e.g. reason = "VP title"',
                    context=ctx)
            ok = False
        on = rdef.get("on", [])
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not all(isinstance(t, str) for t in on):
            col.add(loc.find(line, "on", key=True) or line, "`on` must be an activity type or a list of them",
                    'e.g. on = "pricing_page_visit"', context=ctx)
            ok = False
            on = []
        known_types = set(catalog.vocabulary.get("activity_types", ()))
        for t in on:
            if t not in known_types:
                close = difflib.get_close_matches(t, sorted(known_types), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                col.add(loc.find(line, "on", key=True) or line, f"unknown activity type {t!r} in `on`",
                        f"{hint}declare new types in [vocabulary] activity_types", context=ctx)
                ok = False
        when = None
        if "when" in rdef:
            try:
                when = parse_condition(rdef["when"], catalog, allow_event=bool(on))
            except ConditionError as err:
                for problem in err.problems:
                    col.add(loc.find(line, problem.needle) if problem.needle else loc.find(line, "when") or line,
                            str(problem), context=ctx)
                ok = False
        elif not on:
            col.add(line, "a rule needs `when` (a condition) or `on` (activity types)",
                    'e.g. when = { signal = "title.seniority", eq = "vp" }', context=ctx)
            ok = False
        decay = rdef.get("decay", "none")
        if isinstance(decay, dict):
            kind = decay.get("kind")
            if kind not in policies:
                col.add(loc.find(line, "decay", key=True) or line, f"unknown decay policy kind {kind!r}",
                        f"use one of {', '.join(sorted(policies))}", context=ctx)
                ok = False
            else:
                try:
                    policies[kind].make(decay)
                except (ValueError, TypeError, KeyError) as err:
                    col.add(loc.find(line, "decay", key=True) or line, f"decay: {err}", context=ctx)
                    ok = False
            decay = "inline:" + rid
        elif not isinstance(decay, str):
            col.add(loc.find(line, "decay", key=True) or line, "decay must be a name or an inline table",
                    'e.g. decay = "web" or decay = { kind = "half_life", half_life_days = 14 }', context=ctx)
            ok = False
        count = rdef.get("count", "once")
        if count not in ("once", "each", "daily"):
            col.add(loc.find(line, "count", key=True) or line,
                    f"count must be \"once\", \"each\" or \"daily\", not {count!r}", context=ctx)
            ok = False
        if count in ("each", "daily") and not on:
            col.add(loc.find(line, "count", key=True) or line, f"count = \"{count}\" needs `on` (it counts activities)",
                    context=ctx)
            ok = False
        for key in ("max_count", "max_points", "min_points"):
            value = rdef.get(key)
            if value is not None and not _is_int(value):
                col.add(loc.find(line, key, key=True) or line, f"{key} must be {_WHOLE}, not {_short(value)}",
                        context=ctx)
                ok = False
        review = ""
        if "fairness" in rdef:
            try:
                review = fairness_check.parse_review(rdef["fairness"])
            except ValueError as err:
                col.add(loc.find(line, "fairness", key=True) or line, str(err), context=ctx)
                ok = False
        max_points, min_points = rdef.get("max_points"), rdef.get("min_points")
        if _is_int(max_points) and _is_int(min_points) and max_points < min_points:
            col.add(loc.find(line, "max_points", key=True) or line,
                    f"max_points {max_points} is below min_points {min_points}",
                    "make min_points <= max_points (they bound the rule's points from below and above)", context=ctx)
            ok = False
        max_count = rdef.get("max_count")
        if _is_int(max_count) and max_count < 1:
            col.add(loc.find(line, "max_count", key=True) or line, f"max_count must be at least 1, not {max_count}",
                    "leave it out to count every activity", context=ctx)
            ok = False
        if rdef.get("max_count") is not None and count not in ("each", "daily"):
            col.add(loc.find(line, "max_count", key=True) or line,
                    "max_count only applies with count = \"each\" or \"daily\"", context=ctx)
            ok = False
        if not ok:
            continue
        signals = sorted(when.signals()) if when else []
        rules.append(RuleIR(
            id=rid, category=category, points=points, reason=reason.strip(), pack=pack, when=when, on=tuple(on),
            decay=decay, count=count, max_count=rdef.get("max_count"), max_points=rdef.get("max_points"),
            min_points=rdef.get("min_points"), signals=tuple(s for s in signals if not s.startswith("event.")),
            line=line, fairness=review,
        ))
        if isinstance(rdef.get("decay"), dict):
            decays.append(DecayDef("inline:" + rid, rdef["decay"]["kind"],
                                   {k: v for k, v in rdef["decay"].items() if k != "kind"}, line))
    return rules


def _parse_bands(raw: Any, col: _Collector, loc: _Locator, catalog: SignalCatalog) -> list[BandDef]:
    if not isinstance(raw, list):
        col.add(loc.find(1, "bands", key=True), "bands must be an array of tables", "write each band under [[bands]]")
        return []
    bands: list[BandDef] = []
    for index, bdef in enumerate(raw):
        line = loc.header("[[bands]]", index)
        if not isinstance(bdef, dict):
            col.add(line, "a band must be a table", "")
            continue
        bname = bdef.get("name")
        ctx = f"band {bname!r}"
        if not isinstance(bname, str) or not _NAME.match(bname):
            col.add(line, f"band name {bname!r} is missing or invalid", 'e.g. name = "mql"')
            continue
        for key in bdef:
            if key not in BAND_KEYS:
                col.add(loc.find(line, key, key=True) or line, f"unknown key `{key}`", f"use one of {', '.join(BAND_KEYS)}",
                        context=ctx)
        bmin = bdef.get("min")
        share = _share(bmin)
        if share is None and not _is_int(bmin):
            col.add(loc.find(line, "min", key=True) or line,
                    f"min must be {_WHOLE} or a share of leads such as \"top 5%\", not {_short(bmin)}",
                    'e.g. min = 60, or min = "top 5%" (the best 5% of the run\'s leads)', context=ctx)
            continue
        if share is not None:
            bmin = 0
        last = bands[-1] if bands else None
        if last is not None and share is None and last.share is None and bmin <= last.min_points:
            col.add(loc.find(line, "min", key=True) or line,
                    f"bands not increasing: min {bmin} is not above {last.name!r} ({last.min_points})",
                    "list bands from lowest to highest with strictly increasing min", context=ctx)
            continue
        if last is not None and share is not None and last.share is not None and share >= last.share:
            col.add(loc.find(line, "min", key=True) or line,
                    f"bands not increasing: {bdef['min']!r} is not a smaller share than {last.name!r} "
                    f"({last.min_text})", "a higher band takes a smaller top share, e.g. top 20% then top 5%",
                    context=ctx)
            continue
        if any(b.name == bname for b in bands):
            col.add(line, f"duplicate band name {bname!r}", "", context=ctx)
            continue
        requires = None
        if "requires" in bdef:
            try:
                requires = parse_condition(bdef["requires"], catalog, allow_patterns=False)
            except ConditionError as err:
                for problem in err.problems:
                    col.add(loc.find(line, problem.needle) if problem.needle else line, str(problem),
                            context=f"{ctx} requires")
                continue
        gate_reason = str(bdef.get("gate_reason", "")) or (describe(requires) if requires else "")
        observed = bdef.get("observed_conversion")
        if observed is not None and (isinstance(observed, bool) or not isinstance(observed, (int, float))
                                     or not 0 <= observed <= 1):
            col.add(loc.find(line, "observed_conversion", key=True) or line,
                    f"observed_conversion must be a share between 0 and 1, not {observed!r}",
                    "e.g. observed_conversion = 0.42 for 42%", context=ctx)
            observed = None
        bands.append(BandDef(bname, bmin, str(bdef.get("label", bname)), requires, gate_reason,
                             float(observed) if observed is not None else None, share=share))
    return bands


_SHARE = re.compile(r"^top\s*([0-9]+(?:\.[0-9]+)?)\s*%$")


def _share(value: Any) -> float | None:
    """``"top 5%"`` as 0.05; None for anything else (a share must be above 0 and below 100)."""
    if not isinstance(value, str):
        return None
    found = _SHARE.match(value.strip().lower())
    if found is None:
        return None
    percent = float(found.group(1))
    return percent / 100 if 0 < percent < 100 else None


def _parse_routing(raw: Any, col: _Collector, loc: _Locator, bands: list[BandDef]) -> list[tuple[str, Route]]:
    """``[routing.<band>]`` tables as Routes; a route without a reason is explained by its band."""
    routes: list[tuple[str, Route]] = []
    if not isinstance(raw, dict):
        col.add(loc.find(1, "routing", key=True), "routing must be tables: [routing.<band>]", "")
        return routes
    for band, rdef in raw.items():
        line = loc.header(f"[routing.{band}]")
        if not isinstance(rdef, dict) or not isinstance(rdef.get("action"), str):
            col.add(line, f"routing for {band!r} needs an `action`", 'e.g. action = "sdr_call"')
            continue
        for key in rdef:
            if key not in ROUTE_KEYS:
                col.add(loc.find(line, key, key=True) or line, f"unknown key `{key}` in routing {band!r}",
                        f"use one of {', '.join(ROUTE_KEYS)}")
        sla = rdef.get("sla_hours")
        if sla is not None and (isinstance(sla, bool) or not isinstance(sla, (int, float)) or not 0 < sla <= 1e6):
            col.add(loc.find(line, "sla_hours", key=True) or line, f"sla_hours must be a positive number of hours (at most 1000000), not {_short(sla)}")
            sla = None
        routes.append((band, Route(rdef["action"], rdef.get("queue"), sla, rdef.get("owner_hint"),
                                   str(rdef.get("reason", "")) or f"band {band}")))
    return routes


def base_vocabulary(packs_raw_vocab: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's vocabulary: the built-in activity types plus every pack's extensions, merged."""
    merged: dict[str, Any] = {"activity_types": set(KNOWN_TYPES)}
    for vocab in packs_raw_vocab:
        for key, value in vocab.items():
            if key in ("free_email_domains", "competitor_domains", "activity_types", "topics"):
                merged.setdefault(key, set()).update(v.lower() if isinstance(v, str) else v for v in value)
            elif isinstance(value, dict):
                table = merged.setdefault(key, {})
                for k, v in value.items():
                    if isinstance(v, list):
                        table.setdefault(k, [])
                        table[k] = [*table[k], *[x for x in v if x not in table[k]]]
                    else:
                        table[k] = v
            else:
                merged[key] = value
    for types in merged.get("activity_tiers", {}).values():
        merged["activity_types"].update(types)
    return {k: frozenset(v) if isinstance(v, set) else v for k, v in merged.items()}


def pack_name(text: str) -> str | None:
    """The ``[pack] name`` of a rulepack's text, read before validation (None when it has none)."""
    try:
        name = parse_toml(text).get("pack", {}).get("name")
    except (TomlError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _merged_fields(texts: list[tuple[str, str]], errors: list[RulepackError]) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Every pack's [fields] declarations as one table; one field declared with two types is an error."""
    merged: dict[str, tuple[str, tuple[Any, ...]]] = {}
    first: dict[str, str] = {}
    for source, text in texts:
        try:
            raw = parse_toml(text).get("fields", {})
        except (TomlError, AttributeError):
            continue
        for name, (kind, values) in field_declarations(raw).items():
            if name in merged and merged[name][0] != kind:
                line = _Locator(text).find(_Locator(text).header("[fields]"), name, key=True)
                errors.append(RulepackError(f"{source}:{line}" if line else source,
                                            f"[fields] {name} is declared as {kind} here and as {merged[name][0]} "
                                            f"in {first[name]}", "declare each custom field with one type"))
                continue
            if name in merged:
                values = tuple(dict.fromkeys((*merged[name][1], *values))) if merged[name][1] and values else ()
            else:
                first[name] = source
            merged[name] = (kind, values)
    return merged


def read_vocabulary(text: str) -> Mapping[str, Any]:
    """The [vocabulary] table of a rulepack, read before full validation (it shapes the catalog)."""
    try:
        data = parse_toml(text)
    except TomlError:
        return {}
    vocab = data.get("vocabulary", {})
    return vocab if isinstance(vocab, dict) else {}


def parse_rulepacks(
    texts: list[tuple[str, str]],
    specs: list[SignalSpec],
    policies: Mapping[str, DecayPolicy],
    extra_vocabulary: Iterable[Mapping[str, Any]] = (),
) -> tuple[list[Rulepack], dict[str, Any]]:
    """Parse and validate (source, text) pairs together; raise RulepackErrors listing every problem.

    Returns the packs and the merged vocabulary. Cross-pack checks: unique names, ``extends``
    targets exist, categories and decay names resolve through ``extends``, ``disable`` targets
    exist, and no two packs of equal priority both define bands.
    """
    vocabulary = base_vocabulary([*extra_vocabulary, *(read_vocabulary(t) for _, t in texts)])
    errors: list[RulepackError] = []
    vocabulary[CUSTOM_FIELDS] = _merged_fields(texts, errors)
    catalog = SignalCatalog(specs, vocabulary)
    packs: list[Rulepack] = []
    for source, text in texts:
        pack, errs = _parse(text, source, catalog, policies)
        errors.extend(errs)
        if pack is not None:
            # Partly valid packs still take part in the cross-pack checks, so one run reports
            # a signal typo and a category typo together.
            packs.append(pack)
    errors.extend(check_packs(packs))
    if errors:
        raise RulepackErrors(errors)
    return packs, vocabulary


def _chain(pack: Rulepack, by_name: Mapping[str, Rulepack]) -> list[Rulepack]:
    """The pack and everything it extends, transitively (cycles are reported by check_packs)."""
    return [pack] + [by_name[n] for n in with_extends(pack.extends, by_name) if n != pack.name]


def check_packs(packs: list[Rulepack]) -> list[RulepackError]:
    errors: list[RulepackError] = []
    by_name: dict[str, Rulepack] = {}
    for pack in packs:
        if pack.name in by_name:
            errors.append(RulepackError(pack.source, f"rulepack name {pack.name!r} is also used by {by_name[pack.name].source}",
                                        "give each rulepack a unique [pack] name"))
        by_name[pack.name] = pack
    all_rule_ids = {r.id for p in packs for r in p.rules}
    for pack in packs:
        loc = _Locator(pack.text)
        pack_line = loc.header("[pack]")
        for ext in pack.extends:
            if ext not in by_name:
                errors.append(RulepackError(f"{pack.source}:{loc.find(pack_line, 'extends', key=True)}",
                                            f"extends unknown rulepack {ext!r}",
                                            f"install the plugin that ships it or pass its file; known: {', '.join(sorted(by_name))}"))
        chain = _chain(pack, by_name)
        if any(pack.name in p.extends for p in chain if p is not pack):
            errors.append(RulepackError(pack.source, f"rulepack {pack.name!r} extends itself through {', '.join(pack.extends)}",
                                        "remove the cycle from `extends`"))
        categories = {c.name for p in chain for c in p.categories}
        decays = {d.name for p in chain for d in p.decays} | {"none"}
        for rule in pack.rules:
            if rule.category not in categories:
                errors.append(RulepackError(f"{pack.source}:{loc.find(rule.line, 'category', key=True) or rule.line}",
                                            f"rule {rule.id!r}: unknown category {rule.category!r}",
                                            f"declare [categories.{rule.category}] or use one of {', '.join(sorted(categories)) or 'none declared'}"))
            if rule.decay not in decays:
                errors.append(RulepackError(f"{pack.source}:{loc.find(rule.line, 'decay', key=True) or rule.line}",
                                            f"rule {rule.id!r}: unknown decay policy {rule.decay!r}",
                                            f"define [decay.{rule.decay}] or use one of {', '.join(sorted(decays))}"))
        for rid in pack.disable:
            if rid not in all_rule_ids:
                errors.append(RulepackError(f"{pack.source}:{loc.find(pack_line, 'disable', key=True)}",
                                            f"disable names rule {rid!r}, which no loaded rulepack defines",
                                            "check the id (leadscore rulepacks --rules lists them)"))
        errors.extend(_unreachable_bands(pack, chain, loc))
        if pack.bands:
            for other in chain[1:]:
                if other.bands and other.priority == pack.priority:
                    errors.append(RulepackError(
                        f"{pack.source}:{loc.header('[[bands]]')}",
                        f"rulepacks {other.name} ({other.source}), {pack.name} ({pack.source}) both define bands at "
                        f"priority {pack.priority}",
                        "give the more specific pack a higher priority, or drop one [[bands]] list"))
        routed = {b.name for p in chain for b in p.bands}
        for band, _route in pack.routing:
            if routed and band not in routed:
                errors.append(RulepackError(f"{pack.source}:{loc.header(f'[routing.{band}]')}",
                                            f"routing for unknown band {band!r}",
                                            f"use one of {', '.join(sorted(routed))}"))
    return errors


def _unreachable_bands(pack: Rulepack, chain: list[Rulepack], loc: _Locator) -> list[RulepackError]:
    errors = []
    if not pack.bands:
        return errors
    cap = pack.total_max
    cat_max: dict[str, int | None] = {}
    for p in reversed(chain):
        for c in p.categories:
            cat_max[c.name] = c.max
    if cap is None and cat_max and all(v is not None for v in cat_max.values()):
        cap = sum(v for v in cat_max.values() if v is not None and v > 0)
    if cap is None:
        return errors
    for band in pack.bands:
        if band.share is None and band.min_points > cap:
            errors.append(RulepackError(f"{pack.source}:{loc.find(loc.header('[[bands]]', pack.bands.index(band)), 'min', key=True)}",
                                        f"band {band.name!r} is unreachable: it needs {band.min_points} points but the "
                                        f"total can reach at most {cap}",
                                        "lower the band's min or raise the category/total caps"))
    return errors


def _file_error(where: str, what: str, fix: str) -> RulepackErrors:
    if what == "rulepack not found":
        what, fix = "rulepack file not found", "check the path, or name an installed rulepack (leadscore rulepacks)"
    return RulepackErrors([RulepackError(where, what, fix)])


def read_source(path_or_resource: Any) -> tuple[str, str]:
    """(display name, text) for a Path, a str path or an importlib Traversable.

    A file must be a regular file of at most MAX_TEXT_FILE_BYTES, in UTF-8.
    """
    if isinstance(path_or_resource, (str, Path)):
        path = Path(path_or_resource)
        return str(path), read_text_file(path, "rulepack", _file_error)
    return str(path_or_resource.name), path_or_resource.read_text(encoding="utf-8")
