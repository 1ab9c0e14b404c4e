"""The rule IR that rulepack TOML compiles to, and the checks every condition must pass.

Both backends consume these records; nothing here knows how a condition is evaluated.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from attrs import frozen

from leadscore.model import Route, SignalSpec

LEAF_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "exists", "matches")
BOOL_OPS = ("all", "any", "not")
PATTERN_OPS = ("sequence", "absent", "at_least")
# Conditions on the other contacts of the lead's account; they read a derived account signal.
ACCOUNT_OPS = ("same_account",)
ORDER_OPS = ("lt", "lte", "gt", "gte", "between")
EVENT_PREFIX = "event."
FIELDS_PREFIX = "fields."
# The merged [fields] declarations of a run's packs, kept in its vocabulary: name -> (type, values).
CUSTOM_FIELDS = "custom_fields"
FIELD_TYPES = ("str", "number", "int", "bool")
# What a rule with `on` can read of the one activity it is looking at (any other event.<name> is
# that activity's property <name>).
EVENT_SIGNALS = (
    ("event.type", "str", "the activity's type"),
    ("event.at", "datetime", "when the activity happened"),
    ("event.age_days", "number", "days from the activity to the scoring time"),
    ("event.*", "any", "a property of the activity (event.url, event.asset, ...), from properties.<name>"),
)


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
    fairness: str = ""
    """The team's review of a rule that reads a protected attribute (``fairness = "reviewed: ..."``)."""


@frozen
class CategoryDef:
    name: str
    label: str = ""
    min: int | None = None
    max: int | None = None


@frozen
class BandDef:
    """A band. ``share`` (0-1) is set for ``min = "top N%"``: the run sets ``min_points`` from the
    totals of its leads (docs/rulepacks.md, "Bands by share of leads"); until then it is 0."""

    name: str
    min_points: int
    label: str = ""
    requires: Condition | None = None
    gate_reason: str = ""
    observed_conversion: float | None = None
    """The share of this band's leads that converted when the pack was measured (``leadscore
    calibrate`` writes it from held-out data); shown by ``explain`` and checked by ``backtest``."""
    share: float | None = None

    @property
    def min_text(self) -> str:
        return f"top {self.share * 100:g}%" if self.share is not None else str(self.min_points)


@frozen
class DecayDef:
    """A named decay instance: the policy kind and its parameters."""

    name: str
    kind: str
    params: Mapping[str, Any]
    line: int = 0


@frozen
class Fact:
    """Something sales can confirm about a lead, and the signal values it would give."""

    text: str
    set: tuple[tuple[str, Any], ...]


@frozen
class Actions:
    """What ``explain --to`` may suggest: activities a lead can be asked to do (None: the default
    set) and facts sales can confirm. Firmographics are never suggested unless listed as a fact."""

    activities: tuple[str, ...] | None = None
    facts: tuple[Fact, ...] = ()


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
    routing: tuple[tuple[str, Route], ...] = ()
    scorers: tuple[str, ...] = ("rules",)
    vocabulary: Mapping[str, Any] = attrs.field(factory=dict)
    accounts: Mapping[str, Any] = attrs.field(factory=dict)
    """The ``[accounts]`` table: roll-up strategy, its parameters and the account bands."""
    fairness: Mapping[str, Any] = attrs.field(factory=dict)
    """The ``[fairness]`` table: attributes to flag besides the defaults, and defaults to drop."""
    actions: Actions = Actions()
    """The ``[actions]`` table: what next-step suggestions may ask of a lead or of sales."""
    text: str = attrs.field(default="", repr=False, eq=False)

    def where(self, start: int, needle: str) -> str:
        """``source:line`` of the first line from ``start`` on that contains ``needle`` (for
        warnings about a rule or gate: its own line, or the line of the signal it reads)."""
        lines = self.text.splitlines()
        for number in range(max(start, 1), len(lines) + 1):
            if needle in lines[number - 1]:
                return f"{self.source}:{number}"
        return f"{self.source}:{start}" if start else self.source


class ConditionError(ValueError):
    """A problem in a condition; ``needle`` is text to locate it in the file. A condition with
    several problems raises one ConditionError whose ``problems`` lists each (itself first)."""

    def __init__(self, message: str, needle: str = "") -> None:
        super().__init__(message)
        self.needle = needle
        self.problems: list[ConditionError] = [self]

    @classmethod
    def several(cls, problems: list[ConditionError]) -> ConditionError:
        first = problems[0]
        first.problems = [p for found in problems for p in found.problems]
        return first


def with_extends(names: Iterable[str], by_name: Mapping[str, Rulepack]) -> list[str]:
    """``names`` and every pack they extend, transitively, each once, in the order first reached.

    Names missing from ``by_name`` are skipped (the loader reports them); cycles end the walk.
    """
    out: list[str] = []
    todo = [n for n in names if n in by_name]
    while todo:
        name = todo.pop(0)
        if name not in out:
            out.append(name)
            todo.extend(e for e in by_name[name].extends if e in by_name)
    return out


# --- signal lookup ---------------------------------------------------------------------------


class SignalCatalog:
    """Every signal the registered extractors provide, with wildcard (``*``) segments."""

    def __init__(self, specs: list[SignalSpec], vocabulary: Mapping[str, Any] | None = None) -> None:
        self.exact = {s.name: s for s in specs if "*" not in s.name}
        self.wild = [(re.compile("^" + re.escape(s.name).replace(r"\*", "([^.]+)") + "$"), s)
                     for s in specs if "*" in s.name]
        self.vocabulary = vocabulary or {}

    def lookup(self, name: str) -> tuple[SignalSpec | None, str]:
        """(spec, problem): spec None with a message saying what would be right.

        A custom field declared in a pack's ``[fields]`` has its declared type (and values);
        an undeclared ``fields.<name>`` stays ``any`` (``leadscore check`` warns about it).
        """
        spec = self.exact.get(name)
        if spec is not None:
            return spec, ""
        if name.startswith(FIELDS_PREFIX):
            declared = self.vocabulary.get(CUSTOM_FIELDS, {}).get(name[len(FIELDS_PREFIX):])
            if declared is not None:
                kind, values = declared
                return SignalSpec(name, kind, f"custom field declared in [fields] as {kind}", values), ""
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
