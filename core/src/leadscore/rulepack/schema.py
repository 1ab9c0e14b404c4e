"""The rule IR that rulepack TOML compiles to, and the checks every condition must pass.

Both backends consume these records; nothing here knows how a condition is evaluated.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timezone
from typing import Any

import attrs
from attrs import frozen

from leadscore.model import SignalSpec

LEAF_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "exists", "matches")
BOOL_OPS = ("all", "any", "not")
PATTERN_OPS = ("sequence", "absent", "at_least")
# Conditions on the other contacts of the lead's account; they read a derived account signal.
ACCOUNT_OPS = ("same_account",)
ORDER_OPS = ("lt", "lte", "gt", "gte", "between")
EVENT_PREFIX = "event."


@frozen
class Condition:
    """One node of a condition tree.

    Leaves have ``op`` in LEAF_OPS, a ``signal`` and a ``value``; ``all``/``any`` have
    ``children``; ``not`` has one child. Pattern nodes (``op`` in PATTERN_OPS) keep their
    parameters in ``value``, a record from :mod:`leadscore.rulepack.patterns`.
    """

    op: str
    signal: str | None = None
    value: Any = None
    children: tuple[Condition, ...] = ()

    def signals(self) -> set[str]:
        """Signal names the condition reads; a pattern implies ``activity.<type>.last_at`` per type."""
        names = {self.signal} if self.signal else set()
        for child in self.children:
            names |= child.signals()
        if self.op in PATTERN_OPS or self.op in ACCOUNT_OPS:
            names |= self.value.signals()
        return names


@frozen
class RuleIR:
    """A compiled rule. ``on`` lists activity types for per-occurrence rules (empty: lead-level)."""

    id: str
    category: str
    points: int
    reason: str
    pack: str
    when: Condition | None = None
    on: tuple[str, ...] = ()
    decay: str = "none"
    count: str = "once"
    max_count: int | None = None
    max_points: int | None = None
    min_points: int | None = None
    signals: tuple[str, ...] = ()
    line: int = 0


@frozen
class CategoryDef:
    name: str
    label: str = ""
    min: int | None = None
    max: int | None = None


@frozen
class BandDef:
    name: str
    min_points: int
    label: str = ""
    requires: Condition | None = None
    gate_reason: str = ""


@frozen
class RouteDef:
    action: str
    queue: str | None = None
    sla_hours: float | None = None
    owner_hint: str | None = None
    reason: str = ""


@frozen
class DecayDef:
    """A named decay instance: the policy kind and its parameters."""

    name: str
    kind: str
    params: Mapping[str, Any]
    line: int = 0


@frozen
class Rulepack:
    """One validated rulepack file."""

    name: str
    version: str
    source: str
    description: str = ""
    priority: int = 0
    extends: tuple[str, ...] = ()
    applies_when: Condition | None = None
    applies_text: str = "always"
    disable: tuple[str, ...] = ()
    categories: tuple[CategoryDef, ...] = ()
    total_min: int | None = None
    total_max: int | None = None
    has_total: bool = False
    decays: tuple[DecayDef, ...] = ()
    rules: tuple[RuleIR, ...] = ()
    bands: tuple[BandDef, ...] = ()
    routing: tuple[tuple[str, RouteDef], ...] = ()
    scorers: tuple[str, ...] = ("rules",)
    vocabulary: Mapping[str, Any] = attrs.field(factory=dict)
    accounts: Mapping[str, Any] = attrs.field(factory=dict)
    """The ``[accounts]`` table: roll-up strategy, its parameters and the account bands."""
    text: str = attrs.field(default="", repr=False, eq=False)


# --- signal lookup ---------------------------------------------------------------------------


class SignalCatalog:
    """Every signal the registered extractors provide, with wildcard (``*``) segments."""

    def __init__(self, specs: list[SignalSpec], vocabulary: Mapping[str, Any] | None = None) -> None:
        self.exact = {s.name: s for s in specs if "*" not in s.name}
        self.wild = [(re.compile("^" + re.escape(s.name).replace(r"\*", "([^.]+)") + "$"), s)
                     for s in specs if "*" in s.name]
        self.vocabulary = vocabulary or {}

    def lookup(self, name: str) -> tuple[SignalSpec | None, str]:
        """(spec, problem): spec None with a message saying what would be right."""
        spec = self.exact.get(name)
        if spec is not None:
            return spec, ""
        for pattern, spec in self.wild:
            m = pattern.match(name)
            if m:
                if spec.vocabulary:
                    allowed = set(self.vocabulary.get(spec.vocabulary, ()))
                    if m.group(1) not in allowed:
                        close = difflib.get_close_matches(m.group(1), sorted(allowed), n=1)
                        hint = f"did you mean {close[0]!r}? " if close else ""
                        return None, (f"unknown {spec.vocabulary[:-1].replace('_', ' ')} {m.group(1)!r} in signal "
                                      f"{name!r}; {hint}declare new ones in [vocabulary] {spec.vocabulary}")
                return spec, ""
        known = list(self.exact) + [s.name for _, s in self.wild]
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else "run `leadscore signals` to list the known signals"
        return None, f"unknown signal {name!r}; {hint}"


# --- condition parsing ------------------------------------------------------------------------

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "datetime": lambda v: isinstance(v, datetime),
    "list": lambda v: isinstance(v, list),
    "any": lambda v: isinstance(v, (str, int, float, bool, datetime)),
}
_TYPE_WORDS = {"str": "a string", "int": "a whole number", "number": "a number", "bool": "true or false",
               "datetime": "a TOML date-time such as 2026-11-01T00:00:00Z", "list": "a list", "any": "a value"}


def _normalise_value(value: Any) -> Any:
    """TOML dates become UTC datetimes; naive date-times are taken as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    if isinstance(value, list):
        return [_normalise_value(v) for v in value]
    return value


class ConditionError(ValueError):
    """A problem in a condition; ``needle`` is text to locate it in the file."""

    def __init__(self, message: str, needle: str = "") -> None:
        super().__init__(message)
        self.needle = needle


def parse_condition(raw: Any, catalog: SignalCatalog, *, allow_event: bool = False,
                    allow_patterns: bool = True, allow_account: bool = True) -> Condition:
    """Turn a TOML condition table into a Condition, checking signals, operators and value types.

    ``allow_event``: the condition belongs to a rule with ``on`` and may read ``event.*``.
    Patterns need the lead's whole activity history, so they are refused there and wherever
    ``allow_patterns`` is false (conditions evaluated over signals alone). ``same_account`` reads
    the account pass's results; ``allow_account`` false refuses it (``applies_when``, and inside
    ``same_account`` itself).
    """
    flags = {"allow_event": allow_event, "allow_patterns": allow_patterns, "allow_account": allow_account}
    if isinstance(raw, list):
        return Condition("all", children=tuple(parse_condition(r, catalog, **flags) for r in raw))
    if not isinstance(raw, dict):
        raise ConditionError(f"a condition must be a table such as {{ signal = \"email.type\", eq = \"business\" }}, "
                             f"not {raw!r}")
    keys = set(raw)
    combos = keys & set(BOOL_OPS)
    if combos:
        if len(keys) != 1:
            raise ConditionError(f"`{sorted(combos)[0]}` must be alone in its table; found {sorted(keys)}")
        op = combos.pop()
        body = raw[op]
        if op == "not":
            return Condition("not", children=(parse_condition(body, catalog, **flags),))
        if not isinstance(body, list) or not body:
            raise ConditionError(f"`{op}` takes a non-empty list of conditions")
        return Condition(op, children=tuple(parse_condition(c, catalog, **flags) for c in body))
    # Imported here: patterns builds on the records of this module.
    from leadscore.rulepack import patterns

    pattern = patterns.pattern_op(raw)
    if pattern == "same_account":
        if "signal" in raw:
            raise ConditionError("a same_account condition counts contacts, it has no `signal`; put the contact's "
                                 "condition in `where`", "signal")
        if not allow_account:
            raise ConditionError("same_account can only be used in a rule's `when` or a band's `requires` (not in "
                                 "applies_when, nor inside another same_account)", "same_account")
        return patterns.parse_pattern(raw, catalog)
    if pattern is not None:
        name = patterns.article(pattern)
        if "signal" in raw:
            raise ConditionError(f"{name} pattern reads activities, not a signal; remove `signal` from it", pattern)
        if allow_event:
            raise ConditionError(f"{name} pattern looks at the lead's whole activity history and cannot be used "
                                 f"in a rule with `on`; put it in a rule without `on`", pattern)
        if not allow_patterns:
            raise ConditionError(f"{name} pattern can only be used in a rule's `when`", pattern)
        return patterns.parse_pattern(raw, catalog)
    if "signal" not in raw:
        raise ConditionError(f"condition {raw!r} has no `signal`; write {{ signal = \"...\", <op> = ... }}, "
                             f"a pattern (sequence, absent, at_least, same_account) or combine conditions with "
                             f"all / any / not")
    signal = raw["signal"]
    if not isinstance(signal, str):
        raise ConditionError(f"`signal` must be a string, not {signal!r}")
    ops = [k for k in raw if k != "signal"]
    if len(ops) != 1 or ops[0] not in LEAF_OPS:
        bad = [k for k in ops if k not in LEAF_OPS]
        what = f"unknown operator `{bad[0]}`" if bad else f"{len(ops)} operators"
        raise ConditionError(f"condition on {signal!r} has {what}; use exactly one of {', '.join(LEAF_OPS)}", signal)
    op = ops[0]
    value = _normalise_value(raw[op])
    if signal.startswith(EVENT_PREFIX):
        if not allow_event:
            raise ConditionError(f"signal {signal!r} describes one activity and only works in a rule with `on = ...`",
                                 signal)
        spec_type = {"event.type": "str", "event.age_days": "number", "event.at": "datetime"}.get(signal, "any")
        spec = SignalSpec(signal, spec_type)
    else:
        spec, problem = catalog.lookup(signal)
        if spec is None:
            raise ConditionError(problem, signal)
    _check_value(op, value, spec, signal)
    if op == "matches":
        try:
            value = re.compile(value)
        except re.error as err:
            raise ConditionError(f"invalid regex {raw[op]!r} for {signal!r}: {err}; "
                                 f"write a Python regular expression (it must match the whole value)", signal) from err
    if op in ("in", "not_in"):
        value = tuple(value)
    if op == "between":
        value = (value[0], value[1])
    return Condition(op, signal, value)


def _check_value(op: str, value: Any, spec: SignalSpec, signal: str) -> None:
    stype = spec.type
    check = _TYPE_CHECKS.get(stype, _TYPE_CHECKS["any"])

    def fail(expected: str) -> None:
        raise ConditionError(f"`{op}` on {signal!r} ({stype}) needs {expected}, not {value!r}", signal)

    if op == "exists":
        if not isinstance(value, bool):
            fail("true or false")
        return
    if op == "matches":
        if stype not in ("str", "any") or not isinstance(value, str):
            fail("a regular expression string (and a string signal)")
        return
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            fail("a non-empty list")
        for item in value:
            if not check(item):
                fail(f"a list of {_TYPE_WORDS.get(stype, stype)}")
        _check_enum(spec, value, signal)
        return
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(check(v) for v in value)):
            fail(f"[low, high], two of {_TYPE_WORDS.get(stype, stype)}")
        if _kind_word(value[0]) != _kind_word(value[1]):
            fail("[low, high] of the same kind (two numbers, two date-times or two strings)")
        if stype not in ("int", "number", "datetime", "any") or value[0] > value[1]:
            fail("[low, high] with low <= high on a number or date-time signal")
        return
    if op in ORDER_OPS and stype in ("str", "bool", "list"):
        fail("a number or date-time signal; compare strings with eq / in / matches")
    if stype == "int" and isinstance(value, float) and not isinstance(value, bool):
        return  # comparing a whole-number signal with 2.5 is meaningful
    if not check(value):
        fail(_TYPE_WORDS.get(stype, stype))
    if op in ("eq", "ne"):
        _check_enum(spec, [value], signal)


def _kind_word(value: Any) -> str:
    """The kind a value compares as: numbers with numbers, never booleans with numbers."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _check_enum(spec: SignalSpec, values: list[Any], signal: str) -> None:
    if not spec.values:
        return
    for v in values:
        if v not in spec.values:
            close = difflib.get_close_matches(str(v), spec.values, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConditionError(f"{v!r} is not a value of {signal!r}; {hint}use one of {', '.join(spec.values)}",
                                 str(v))


def account_leaf(cond: Condition) -> Condition:
    """A ``same_account`` node as the comparison every backend evaluates: its count signal >= N."""
    return Condition("gte", cond.value.signal, cond.value.count)


def same_account_nodes(cond: Condition | None) -> list[Condition]:
    """The ``same_account`` nodes of a condition tree."""
    if cond is None:
        return []
    if cond.op in ACCOUNT_OPS:
        return [cond]
    return [node for child in cond.children for node in same_account_nodes(child)]


def describe(cond: Condition | None) -> str:
    """A short human rendering of a condition, for listings and explanations."""
    if cond is None:
        return "always"
    if cond.op in ("all", "any"):
        joiner = " and " if cond.op == "all" else " or "
        return "(" + joiner.join(describe(c) for c in cond.children) + ")"
    if cond.op == "not":
        return "not " + describe(cond.children[0])
    if cond.op in PATTERN_OPS or cond.op in ACCOUNT_OPS:
        return cond.value.describe()
    value = cond.value.pattern if cond.op == "matches" else cond.value
    if isinstance(value, tuple):
        value = list(value)
    return f"{cond.signal} {cond.op} {value!r}"
