"""The durable backend: the rule IR as a durable_rules Rete ruleset, driven through its C module.

durable-rules 2.0.28 is old and has sharp edges (see docs/backends.md), so this adapter talks to
``durable_rules_engine`` directly and keeps to what it does exactly:

- one ruleset per composed pack; per lead one short-lived session, one batched ``assert_facts``,
  every action dispatched, the session always deleted; no threads;
- values reach the engine encoded so that its comparisons are exact and mixed kinds never meet:
  one property per (signal, kind), strings as order-preserving integer codes, datetimes as integer
  microseconds, and a kind tag for ``ne``/``not_in``/``not``/``exists``;
- what durable cannot express exactly (regular expressions, non-scalar comparands) is evaluated
  by the python backend's predicates into derived 0/1 properties;
- patterns are Rete joins over activity facts; a rule whose condition holds a pattern, or is too
  large for one durable pattern, is split into parts whose results are combined here.
"""

from __future__ import annotations

import bisect
import ctypes
import importlib.metadata
import itertools
import json
import math
import re
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

from leadscore.backends.python import EventView
from leadscore.errors import ConfigurationError
from leadscore.model import Activity
from leadscore.rulepack.patterns import AbsentPattern, AtLeastPattern, SequencePattern
from leadscore.rulepack.predicates import MISSING, compile_condition
from leadscore.rulepack.schema import EVENT_PREFIX, PATTERN_OPS, Condition, account_leaf

DURABLE_VERSION = "2.0.28"
INSTALL_HINT = "how to install: pip install 'leadscore[durable]' on Python 3.11-3.12 with a C compiler"

# Fact kinds (property "k"). Negation copies of activities form their own kind so they can be
# asserted before everything else (see DurableMatcher._facts).
_LEAD, _EVENT, _NEGATED = 1, 2, 3
# Kind tags: what kind of value a signal holds; "other" covers NaN, None, lists and the like.
_TAG = {"n": 1, "s": 2, "b": 3, "d": 4, None: 5}
_SAFE_INT = 2**53  # C doubles hold every integer up to here, so int/float comparisons stay exact
_CAP = 65535  # `cap` is an unsigned short in the C engine
# Limits of the C engine, with a margin: an alpha node pushes its matching children on a 64-entry
# stack, a pattern holds at most 31 expression-sequence entries ($and/$or take two each), and a
# message at most 255 properties.
_FANOUT = 8
_MAX_LEVELS = 4
_MAX_WIDTH = 16
_MAX_ENTRIES = 28
_MAX_PROPERTIES = 240
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_RESERVED = ("id", "sid", "k", "i", "now", "$s", "_init")


# --- loading the C module ---------------------------------------------------------------------


def load_engine() -> ModuleType:
    """Import durable_rules_engine, or fail with one line saying why and how to install it."""
    if ctypes.sizeof(ctypes.c_long) < 8:
        raise ConfigurationError("--engine", "the durable backend needs 64-bit C longs (durable-rules keeps "
                                             "integer rule constants in a C long); this platform has 32-bit ones",
                                 "use --engine python here")
    try:
        import durable_rules_engine
    except ImportError as err:
        if sys.version_info >= (3, 13):
            why = (f"durable-rules {DURABLE_VERSION} does not import on Python {sys.version_info.major}."
                   f"{sys.version_info.minor} ({err})")
        else:
            why = f"durable-rules {DURABLE_VERSION} is not installed ({err})"
        raise ConfigurationError("--engine", why, INSTALL_HINT) from err
    try:
        version = importlib.metadata.version("durable-rules")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    if version != DURABLE_VERSION:
        raise ConfigurationError("--engine", f"the durable backend is written against durable-rules "
                                             f"{DURABLE_VERSION}, found {version}", INSTALL_HINT)
    return durable_rules_engine


# --- names the C engine identifies by a 32-bit hash only --------------------------------------


def fnv1_32(text: str) -> int:
    """The hash durable_rules uses for property names, message ids and sids (no string compare)."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


class _Names:
    """Hands out short names whose hashes differ from every name handed out before."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.hashes = {fnv1_32(name) for name in reserved}
        self.counters: dict[str, itertools.count] = {}

    def new(self, prefix: str) -> str:
        counter = self.counters.setdefault(prefix, itertools.count())
        while True:
            name = f"{prefix}{next(counter)}"
            h = fnv1_32(name)
            if h not in self.hashes:
                self.hashes.add(h)
                return name


class _MessageIds:
    """Message ids for the facts of one session: position j gets ``ids[j]``, all hash-distinct."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.position: dict[int, int] = {fnv1_32("a"): -1}
        self.lock = threading.Lock()
        self.candidates = itertools.count()

    def first(self, n: int) -> list[str]:
        if len(self.ids) < n:
            with self.lock:
                while len(self.ids) < n:
                    name = str(next(self.candidates))
                    h = fnv1_32(name)
                    if h not in self.position:
                        self.position[h] = len(self.ids)
                        self.ids.append(name)
        return self.ids

    def clashes(self, name: str, n: int) -> bool:
        """Whether ``name`` hashes like "a" or one of the first ``n`` ids."""
        return self.position.get(fnv1_32(name), n) < n


_IDS = _MessageIds()


# --- JSON the C parser reads exactly ----------------------------------------------------------


def _number(value: int | float) -> str:
    """A number as JSON durable parses back exactly: its parser only reads an exponent after a '.'."""
    if type(value) is int:
        return str(value)
    text = repr(value)
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _dumps(obj: Any) -> str:
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_dumps(v) for v in obj) + "]"
    if isinstance(obj, _Chain):
        return _dumps(obj.json())
    if isinstance(obj, str):
        return json.dumps(obj)
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        raise TypeError(f"cannot send {obj!r} to durable_rules")
    return _number(obj)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _kind(value: Any) -> str | None:
    """The comparison kind of a value, by exact type as the python backend compares them."""
    t = type(value)
    if t is str:
        return "s"
    if t is bool:
        return "b"
    if t is int:
        return "n"
    if t is float:
        return "n" if value == value else None  # NaN equals and orders with nothing
    if t is datetime:
        if value.tzinfo is None:
            raise TypeError(f"naive datetime {value!r} in a signal; signals carry timezone-aware datetimes")
        return "d"
    return None


def _exact(value: Any) -> bool:
    """Whether a comparand can go into the ruleset as itself (with an exact meaning)."""
    kind = _kind(value)
    if kind == "n":
        return math.isfinite(value) and (type(value) is float or -_SAFE_INT <= value <= _SAFE_INT)
    return kind is not None


# --- one signal as durable properties ----------------------------------------------------------


class _Field:
    """How one signal reaches durable: an optional kind tag and one property per compared kind."""

    __slots__ = ("signal", "tag", "props", "strings", "codes", "numbers", "floats")

    def __init__(self, signal: str) -> None:
        self.signal = signal
        self.tag: str | None = None
        self.props: dict[str, str] = {}
        self.strings: list[str] = []
        self.codes: dict[str, int] = {}
        self.numbers: list[int | float] = []
        self.floats: list[float] = []

    def freeze(self, strings: set[str], numbers: set[int | float]) -> None:
        self.strings = sorted(strings)
        self.codes = {s: 2 * i + 1 for i, s in enumerate(self.strings)}
        self.numbers = sorted(numbers)
        self.floats = [float(n) for n in self.numbers]

    def literal(self, value: Any) -> int | float:
        """A comparand as it appears in the ruleset."""
        kind = _kind(value)
        if kind == "s":
            return self.codes[value]
        if kind == "b":
            return int(value)
        if kind == "d":
            return _micros(value)
        return value

    def encode(self, value: Any, parts: list[str]) -> None:
        """Append this signal's properties for ``value`` (a present signal) to ``parts``."""
        kind = _kind(value)
        if self.tag is not None:
            parts.append(f'"{self.tag}":{_TAG[kind]}')
        prop = self.props.get(kind) if kind is not None else None
        if prop is None:
            return
        if kind == "n":
            text = _number(value) if _exact(value) else self._surrogate(value)
        elif kind == "s":
            code = self.codes.get(value)
            # Strings between comparands get the even code between theirs, so order holds too.
            text = str(code if code is not None else 2 * bisect.bisect_left(self.strings, value))
        elif kind == "b":
            text = "1" if value else "0"
        else:
            text = str(_micros(value))
        parts.append(f'"{prop}":{text}')

    def gaps_ok(self) -> bool:
        """Whether every value can be given a double that orders like it against the comparands."""
        floats = self.floats
        if not floats:
            return True
        if not (math.isfinite(math.nextafter(floats[0], -math.inf))
                and math.isfinite(math.nextafter(floats[-1], math.inf))):
            return False
        return all(math.nextafter(a, math.inf) < b for a, b in itertools.pairwise(floats))

    def _surrogate(self, value: int | float) -> str:
        # An integer beyond 2**53 or an infinity: send a double that sits in the same place among
        # the comparands (gaps_ok() guaranteed there is room).
        pos = bisect.bisect_left(self.numbers, value)
        if pos < len(self.numbers) and self.numbers[pos] == value:
            return _number(self.floats[pos])
        lo = self.floats[pos - 1] if pos else -math.inf
        hi = self.floats[pos] if pos < len(self.floats) else math.inf
        try:
            guess = float(value)
        except OverflowError:
            guess = math.inf if value > 0 else -math.inf
        if not lo < guess < hi:
            # Rounding (or infinity) put it on or past a neighbour: take the double next to that one.
            guess = math.nextafter(lo, math.inf) if guess <= lo else math.nextafter(hi, -math.inf)
        return _number(guess)


# --- expressions ---------------------------------------------------------------------------------


def _and(parts: Iterable[Any]) -> Any:
    flat: list[Any] = []
    for part in parts:
        if part is None:
            continue
        flat.extend(part["$and"] if isinstance(part, dict) and "$and" in part else [part])
    return None if not flat else flat[0] if len(flat) == 1 else {"$and": flat}


def _or(parts: Iterable[Any]) -> Any:
    flat: list[Any] = []
    for part in parts:
        flat.extend(part["$or"] if isinstance(part, dict) and "$or" in part else [part])
    return flat[0] if len(flat) == 1 else {"$or": flat}


def _entries(expr: Any) -> int:
    """Expression-sequence entries a pattern uses: two per $and/$or, one per join reference."""
    if expr is None:
        return 0
    if isinstance(expr, dict) and ("$and" in expr or "$or" in expr):
        return 2 + sum(_entries(e) for e in next(iter(expr.values())))
    (op, body), = expr.items()
    if op.startswith("$") and isinstance(body, dict):
        return 1 if isinstance(next(iter(body.values())), dict) else 0
    return 0


def _width(expr: Any) -> int:
    """An upper bound on the alpha-network stack entries a condition adds while matching one fact."""
    if expr is None:
        return 0
    if "$and" in expr:
        return 1 + sum(_width(e) - 1 for e in expr["$and"])
    if "$or" in expr:
        # Equality tests of one property on distinct values: at most one of them matches.
        equalities = {next(iter(e)) for e in expr["$or"] if not next(iter(e)).startswith("$")}
        return len(equalities) + sum(_width(e) for e in expr["$or"] if next(iter(e)).startswith("$"))
    return 1


def _fits(expr: Any) -> bool:
    return 2 + _entries(expr) <= _MAX_ENTRIES and _width(expr) <= _MAX_WIDTH


class _Chain:
    """The alpha test of one durable pattern: a fact kind, its place in the fan-out tree, a condition.

    All chains of a kind share the kind test; below it every chain gets its own path of
    always-true tests (``k != -n``) through a tree of fan-out 8, so no alpha node ever has more
    than eight children for the C engine's 64-entry matching stack.
    """

    __slots__ = ("kind", "expr", "path")

    def __init__(self, kind: int, expr: Any) -> None:
        self.kind = kind
        self.expr = expr
        self.path: list[int] = []

    def json(self) -> Any:
        expr = _and([{"k": self.kind}, *({"$neq": {"k": code}} for code in self.path), self.expr])
        if isinstance(expr, dict) and "$and" in expr:
            groups = [p for p in expr["$and"] if "$and" in p or "$or" in p]
            joins = [p for p in expr["$and"] if p not in groups and _entries(p)]
            if joins:
                # Two bugs in how the C engine evaluates tests against other patterns (a flat
                # sequence with $and/$or groups marked by begin/end entries): it stops at the end of
                # the first nested group, so joins must come before any group; and when the last test
                # of a group fails it reads past the group's end (a crash), so an always-true group
                # closes the sequence.
                plain = [p for p in expr["$and"] if p not in groups and p not in joins]
                expr = {"$and": [*plain, *joins, *groups, {"$or": [{"k": self.kind}]}]}
        return expr


# --- plans: how a rule's result is read from the fired parts -------------------------------------


class _Atom:
    """One durable rule. ``key`` names the pattern whose fact is an activity (None: lead-level)."""

    __slots__ = ("index", "name", "key")

    def __init__(self, index: int, name: str, key: str | None) -> None:
        self.index = index
        self.name = name
        self.key = key


# A plan is ("atom", atom index, per activity?) | ("not", plan) | ("and" | "or", [plans])
# | ("gate", lead-level plan, per-activity plan). Per-activity plans yield sets of activity indices.
Plan = tuple


def _truth(plan: Plan, fired: set[int], hits: Mapping[int, set[int]]) -> Any:
    op = plan[0]
    if op == "atom":
        return hits.get(plan[1], set()) if plan[2] else plan[1] in fired
    if op == "not":
        return not _truth(plan[1], fired, hits)
    if op == "gate":
        return _truth(plan[2], fired, hits) if _truth(plan[1], fired, hits) else set()
    values = [_truth(p, fired, hits) for p in plan[1]]
    if isinstance(values[0], set):
        return set.intersection(*values) if op == "and" else set.union(*values)
    return all(values) if op == "and" else any(values)


def _nnf(cond: Condition, positive: bool) -> tuple:
    """Negation pushed down to the leaves: ("and"|"or", [nodes]) | ("leaf"|"pattern", cond, positive)."""
    if cond.op == "not":
        return _nnf(cond.children[0], not positive)
    if cond.op in ("all", "any"):
        op = ("and" if cond.op == "all" else "or") if positive else ("or" if cond.op == "all" else "and")
        return (op, [_nnf(c, positive) for c in cond.children])
    if cond.op == "same_account":
        return ("leaf", account_leaf(cond), positive)
    return ("pattern" if cond.op in PATTERN_OPS else "leaf", cond, positive)


def _leaves(node: tuple) -> Iterable[tuple]:
    if node[0] in ("and", "or"):
        for child in node[1]:
            yield from _leaves(child)
    else:
        yield node


def _key(cond: Condition) -> Any:
    """A dict key for a leaf: the condition, or its identity when a list comparand makes it unhashable."""
    try:
        hash(cond)
    except TypeError:
        return ("id", id(cond))
    return cond


def _uses_event(cond: Condition | None) -> bool:
    return cond is not None and any(s.startswith(EVENT_PREFIX) for s in cond.signals())


_COMPLEMENT = {"$lt": "$gte", "$lte": "$gt", "$gt": "$lte", "$gte": "$lt"}


class _Compiler:
    """Turns a composed pack's rules into a durable ruleset, the plans to read it, and fact layouts."""

    def __init__(self, rules: Sequence[Any], pack_key: tuple[str, ...]) -> None:
        self.pack_key = pack_key
        self.names = _Names(_RESERVED)
        self.fields: dict[str, _Field] = {}
        self.rules: dict[str, Any] = {"_init": {"all": [{"m": {"$s": 1}}]}}
        self.atoms: list[_Atom] = []
        self.atom_by_text: dict[str, _Atom] = {}
        self.chains: dict[int, list[_Chain]] = {_LEAD: [], _EVENT: [], _NEGATED: []}
        self.derived: dict[tuple[Any, bool], str] = {}
        self.derived_preds: dict[bool, list[tuple[str, Callable[[Any], bool]]]] = {False: [], True: []}
        self.context_signals: dict[bool, set[str]] = {False: set(), True: set()}
        self.event_types: set[str] = set()
        self.negated_types: set[str] = set()
        self.plans: list[tuple[int, bool, Plan]] = []
        self.native: dict[tuple[Any, bool], bool] = {}
        self._prepare(rules)
        for index, rule in enumerate(rules):
            self._rule(index, rule)
        self._fan_out()

    # -- pass 1: every comparand of every signal, so strings and numbers get their encodings --

    def _prepare(self, rules: Sequence[Any]) -> None:
        strings: dict[str, set[str]] = {}
        numbers: dict[str, set[int | float]] = {}
        leaves: list[tuple[Condition, bool]] = []
        for rule in rules:
            if rule.on:
                leaves.append((Condition("in", "event.type", tuple(rule.on)), True))
                self.event_types.update(rule.on)
            if rule.when is not None:
                in_event = bool(rule.on) and _uses_event(rule.when)
                for node in _leaves(_nnf(rule.when, True)):
                    if node[0] == "leaf":
                        leaves.append((node[1], in_event))
                    else:
                        leaves.extend((c, True) for c in self._pattern_leaves(node[1]))
        for cond, in_event in leaves:
            comparands = self._comparands(cond)
            native = cond.op != "matches" and all(_exact(c) for c in comparands)
            self.native[(_key(cond), in_event)] = native
            self.context_signals[in_event].add(cond.signal)
            if native:
                field = self.fields.setdefault(cond.signal, _Field(cond.signal))
                for c in comparands:
                    kind = _kind(c)
                    if kind not in field.props:
                        field.props[kind] = self.names.new(kind)
                    if kind == "s":
                        strings.setdefault(cond.signal, set()).add(c)
                    elif kind == "n":
                        numbers.setdefault(cond.signal, set()).add(c)
        for name, field in self.fields.items():
            field.freeze(strings.get(name, set()), numbers.get(name, set()))
            if not field.gaps_ok():
                # No double fits between two comparands: leave this signal's numbers to Python.
                field.props.pop("n")
                field.freeze(strings.get(name, set()), set())
                for cond, in_event in leaves:
                    if cond.signal == name and any(_kind(c) == "n" for c in self._comparands(cond)):
                        self.native[(_key(cond), in_event)] = False
        if any(node[0] == "pattern" for rule in rules if rule.when is not None
               for node in _leaves(_nnf(rule.when, True))):
            # Patterns compare activity times with each other: every activity fact carries its time.
            at = self.fields.setdefault("event.at", _Field("event.at"))
            at.props.setdefault("d", self.names.new("d"))
            self.context_signals[True].add("event.at")

    @staticmethod
    def _comparands(cond: Condition) -> list[Any]:
        if cond.op == "exists":
            return []
        if cond.op in ("in", "not_in", "between"):
            return list(cond.value)
        return [cond.value]

    def _pattern_leaves(self, cond: Condition) -> list[Condition]:
        pattern = cond.value
        if isinstance(pattern, SequencePattern):
            groups = pattern.steps
        elif isinstance(pattern, AbsentPattern):
            groups = (pattern.after, pattern.absent)
        else:
            groups = (pattern.of,)
        return [Condition("in", "event.type", tuple(g)) for g in groups]

    # -- pass 2: rules ---------------------------------------------------------------------------

    def _rule(self, index: int, rule: Any) -> None:
        if not rule.on:
            self.plans.append((index, False, self._plan(_nnf(rule.when, True), False, None)))
            return
        on = self._leaf(Condition("in", "event.type", tuple(rule.on)), True, True)
        if rule.when is None:
            plan: Plan = self._atom(on, True)
        elif _uses_event(rule.when):
            plan = self._plan(_nnf(rule.when, True), True, on)
        else:
            lead = self._expr(_nnf(rule.when, True), False)
            if lead is not None and _fits(lead):
                # The rule's condition on the lead joined with each activity of its types.
                plan = self._join({"l": _Chain(_LEAD, lead), "e": _Chain(_EVENT, on)}, "e", {"cap": _CAP})
            else:
                plan = ("gate", self._plan(_nnf(rule.when, True), False, None), self._atom(on, True))
        self.plans.append((index, True, plan))

    def _plan(self, node: tuple, in_event: bool, base: Any) -> Plan:
        """Split a condition into durable rules that each fit the engine's limits."""
        if node[0] == "pattern":
            plan = self._pattern(node[1])
            return plan if node[2] else ("not", plan)
        whole = self._expr(node, in_event)
        if whole is not None and _fits(_and([base, whole])):
            return self._atom(whole if base is None else _and([base, whole]), in_event)
        if node[0] == "leaf":
            raise ConfigurationError("--engine", f"condition {node[1]!r} is too large for durable_rules",
                                     "use --engine python for this rulepack")
        combine = _and if node[0] == "and" else _or
        parts: list[Plan] = []
        batch: list[Any] = []
        for child in node[1]:
            expr = self._expr(child, in_event)
            if expr is not None and _fits(_and([base, combine([*batch, expr])])):
                batch.append(expr)
                continue
            if batch:
                parts.append(self._atom(_and([base, combine(batch)]), in_event))
                batch = []
            if expr is not None and _fits(_and([base, expr])):
                batch = [expr]
            else:
                parts.append(self._plan(child, in_event, base))
        if batch:
            parts.append(self._atom(_and([base, combine(batch)]), in_event))
        return parts[0] if len(parts) == 1 else (node[0], parts)

    def _expr(self, node: tuple, in_event: bool) -> Any:
        """The durable condition for a pattern-free node (None when it holds a pattern)."""
        if node[0] == "pattern":
            return None
        if node[0] == "leaf":
            return self._leaf(node[1], node[2], in_event)
        parts = [self._expr(c, in_event) for c in node[1]]
        if any(p is None for p in parts):
            return None
        return _and(parts) if node[0] == "and" else _or(parts)

    def _leaf(self, cond: Condition, positive: bool, in_event: bool) -> Any:
        key = (_key(cond), in_event)
        if not self.native[key]:
            prop = self.derived.get(key)
            if prop is None:
                prop = self.derived[key] = self.names.new("v")
                self.derived_preds[in_event].append((prop, compile_condition(cond)))
            return {prop: 1 if positive else 0}
        field = self.fields[cond.signal]
        op, value = cond.op, cond.value

        def tag() -> str:
            if field.tag is None:
                field.tag = self.names.new("g")
            return field.tag

        def test(operator: str, c: Any) -> dict:
            prop, lit = field.props[_kind(c)], field.literal(c)
            return {prop: lit} if operator == "$eq" else {operator: {prop: lit}}

        def other_kind(c: Any) -> dict:
            return {"$neq": {tag(): _TAG[_kind(c)]}}

        def absent() -> dict:
            return {"$nex": {tag(): 1}}

        def distinct(options: Iterable[Any]) -> list[Any]:
            # By kind and value: True == 1 as a dict key, but they are different options here.
            return list({(_kind(o), o): o for o in options}.values())

        def any_of(options: Iterable[Any]) -> Any:
            return _or(test("$eq", o) for o in distinct(options))

        def none_of(options: Iterable[Any]) -> Any:
            by_kind: dict[str | None, list[Any]] = {}
            for o in distinct(options):
                by_kind.setdefault(_kind(o), []).append(o)
            return _and(_or([{"$neq": {tag(): _TAG[k]}}, _and(test("$neq", o) for o in opts)])
                        for k, opts in by_kind.items())

        if op == "exists":
            return {"$ex": {tag(): 1}} if bool(value) == positive else absent()
        if op == "eq":
            return test("$eq", value) if positive else _or([absent(), other_kind(value), test("$neq", value)])
        if op == "ne":
            return _or([test("$neq", value), other_kind(value)]) if positive else _or([absent(), test("$eq", value)])
        if op in ("lt", "lte", "gt", "gte"):
            operator = "$" + op
            if positive:
                return test(operator, value)
            return _or([absent(), other_kind(value), test(_COMPLEMENT[operator], value)])
        if op == "between":
            lo, hi = value
            if positive:
                return _and([test("$gte", lo), test("$lte", hi)])
            return _or([absent(), other_kind(lo), test("$lt", lo), test("$gt", hi)])
        if op == "in":
            return any_of(value) if positive else _or([absent(), none_of(value)])
        if op == "not_in":
            return none_of(value) if positive else _or([absent(), any_of(value)])
        raise ValueError(f"unknown operator {op!r}")

    def _atom(self, expr: Any, in_event: bool) -> Plan:
        """A durable rule matching one fact: the lead (fires once) or each activity it accepts."""
        if in_event:
            return self._join({"e": _Chain(_EVENT, expr)}, "e", {"cap": _CAP})
        return self._join({"m": _Chain(_LEAD, expr)}, None, {})

    def _join(self, patterns: Mapping[str, _Chain], key: str | None, settings: Mapping[str, int]) -> Plan:
        rule = {"all": [{name: chain} for name, chain in patterns.items()], **settings}
        text = _dumps(rule)
        atom = self.atom_by_text.get(text)
        if atom is None:
            atom = _Atom(len(self.atoms), self.names.new("r"), key)
            self.atoms.append(atom)
            self.atom_by_text[text] = atom
            self.rules[atom.name] = rule
            for chain in patterns.values():
                self.chains[chain.kind].append(chain)
        return ("atom", atom.index, key is not None)

    def _pattern(self, cond: Condition) -> Plan:
        """A pattern as a Rete join over activity facts (times in microseconds, windows exact)."""
        pattern = cond.value
        at = self.fields["event.at"].props["d"]
        window = pattern.within // _MICROSECOND

        def of(types: Iterable[str]) -> Any:
            return self._leaf(Condition("in", "event.type", tuple(types)), True, True)

        if isinstance(pattern, SequencePattern):
            self.event_types.update(pattern.types())
            chains: dict[str, _Chain] = {"x0": _Chain(_EVENT, of(pattern.steps[0]))}
            for k, step in enumerate(pattern.steps[1:], 1):
                chains[f"x{k}"] = _Chain(_EVENT, _and([
                    of(step),
                    {"$gte": {at: {f"x{k - 1}": at}}},
                    {"$lte": {at: {"$add": {"$l": {"x0": at}, "$r": window}}}},
                ]))
            return self._join(chains, None, {"cap": _CAP})
        if isinstance(pattern, AbsentPattern):
            self.event_types.update(pattern.after)
            self.negated_types.update(pattern.absent)
            return self._join({
                "y": _Chain(_EVENT, of(pattern.after)),
                "z$not": _Chain(_NEGATED, _and([
                    of(pattern.absent),
                    {"$gte": {at: {"y": at}}},
                    {"$lte": {at: {"$add": {"$l": {"y": at}, "$r": window}}}},
                    {"$neq": {"i": {"y": "i"}}},
                ])),
            }, None, {"cap": _CAP})
        assert isinstance(pattern, AtLeastPattern)
        self.event_types.update(pattern.of)
        return self._join({
            "a": _Chain(_LEAD, None),
            "m": _Chain(_EVENT, _and([of(pattern.of), {"$gte": {at: {"$sub": {"$l": {"a": "now"}, "$r": window}}}}])),
        }, None, {"count": pattern.count})

    # -- pass 3: the fan-out tree under each kind --------------------------------------------------

    def _fan_out(self) -> None:
        codes = itertools.count(1)
        for chains in self.chains.values():
            if not chains:
                continue
            levels = 1
            while _FANOUT ** levels < len(chains):
                levels += 1
            if levels > _MAX_LEVELS:
                raise ConfigurationError("--engine", f"rulepacks {', '.join(self.pack_key)} compile to "
                                                     f"{len(chains)} durable patterns of one kind, more than the "
                                                     f"backend supports", "use --engine python for these rulepacks")
            node_codes: dict[tuple[int, ...], int] = {}
            for position, chain in enumerate(chains):
                digits = [(position // _FANOUT ** level) % _FANOUT for level in reversed(range(levels))]
                chain.path = [node_codes.setdefault(tuple(digits[:depth + 1]), -next(codes))
                              for depth in range(levels)]


# --- the matcher ---------------------------------------------------------------------------------


_INDEX = re.compile(r'"i":(\d+)')
_LIVE_RULESETS: set[int] = set()
_ruleset_names = itertools.count(1)


def live_rulesets() -> int:
    """Rulesets this process has registered with durable_rules and not yet deleted."""
    return len(_LIVE_RULESETS)


def _delete_ruleset(engine: ModuleType, handle: int) -> None:
    if handle in _LIVE_RULESETS:
        _LIVE_RULESETS.discard(handle)
        engine.delete_ruleset(handle)


class DurableMatcher:
    """One composed pack as a registered durable ruleset. Thread-safe; sessions never overlap."""

    def __init__(self, engine: ModuleType, rules: Sequence[Any], key: Sequence[str]) -> None:
        self.engine = engine
        compiled = _Compiler(rules, tuple(key))
        self.plans = compiled.plans
        self.atoms = {atom.name: atom for atom in compiled.atoms}
        self.fields = compiled.fields
        self.event_types = frozenset(compiled.event_types)
        self.negated_types = frozenset(compiled.negated_types)
        self.lead_fields = [(name, self.fields[name]) for name in sorted(compiled.context_signals[False])
                            if name in self.fields and not name.startswith(EVENT_PREFIX)]
        # event.type is encoded once per type (see _type_text), the rest per activity.
        self.event_fields = [(name, self.fields[name]) for name in sorted(compiled.context_signals[True])
                             if name in self.fields and name != "event.type"]
        self._type_texts: dict[str, str] = {}
        self.lead_derived = compiled.derived_preds[False]
        self.event_derived = compiled.derived_preds[True]
        self.type_field = self.fields["event.type"] if "event.type" in self.fields else None
        # Negation copies (absent patterns) carry the activity time; patterns always give it a property.
        self.at_prop = self.fields["event.at"].props.get("d") if "event.at" in self.fields else None
        self._check_size(key)
        self.ruleset = _dumps(compiled.rules)
        self.name = f"leadscore-{next(_ruleset_names)}"
        self._lock = threading.Lock()
        self._sids = itertools.count(1)
        self.live_sessions = 0
        self.handle = engine.create_ruleset(self.name, self.ruleset)
        _LIVE_RULESETS.add(self.handle)
        # A matcher dropped without close() still frees its ruleset when collected.
        self._finalizer = weakref.finalize(self, _delete_ruleset, engine, self.handle)

    def _check_size(self, key: Sequence[str]) -> None:
        def size(fields: Iterable[tuple[str, _Field]], derived: list) -> int:
            return 4 + len(derived) + sum((f.tag is not None) + bool(f.props) for _, f in fields)

        event_fields = [*self.event_fields, *([("event.type", self.type_field)] if self.type_field else [])]
        biggest = max(size(self.lead_fields, self.lead_derived), size(event_fields, self.event_derived))
        if biggest > _MAX_PROPERTIES:
            raise ConfigurationError("--engine", f"rulepacks {', '.join(key)} need {biggest} properties in one "
                                                 f"durable fact; durable_rules holds at most 255",
                                     "use --engine python for these rulepacks")

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    # -- scoring one lead ------------------------------------------------------------------------

    def match(self, values: Mapping[str, Any], events: Sequence[Activity], as_of: datetime) -> list[tuple[int, int]]:
        facts, lead_at = self._facts(values, events, as_of)
        with self._lock:
            if self.closed:
                raise RuntimeError("this durable matcher is closed")
            fired, hits = self._session(facts, lead_at)
        out: list[tuple[int, int]] = []
        for index, per_event, plan in self.plans:
            if plan[0] == "atom":  # most rules are one durable rule
                if per_event:
                    out.extend((index, e) for e in hits.get(plan[1], ()))
                elif plan[1] in fired:
                    out.append((index, -1))
                continue
            result = _truth(plan, fired, hits)
            if per_event:
                out.extend((index, e) for e in result)
            elif result:
                out.append((index, -1))
        out.sort()
        return out

    def _facts(self, values: Mapping[str, Any], events: Sequence[Activity], as_of: datetime) -> tuple[list[str], int]:
        """The properties of the lead's facts in assert order (negation copies, the lead, activities),
        and the lead's position.

        durable_rules decides a `$not` when the positive fact arrives and never revisits it, so the
        facts a negation looks at must already be there.
        """
        negated: list[str] = []
        positive: list[str] = []
        event_fields, event_derived = self.event_fields, self.event_derived
        for index, event in enumerate(events):
            if event.at > as_of:
                continue
            kind = event.type
            if kind in self.negated_types:
                negated.append(f'"k":{_NEGATED},"i":{index},"{self.at_prop}":{_micros(event.at)},'
                               f'{self._type_text(kind)}')
            if kind in self.event_types:
                parts = [f'"k":{_EVENT},"i":{index}', self._type_text(kind)]
                if event_fields or event_derived:
                    view = EventView(values, event, as_of)
                    for name, field in event_fields:
                        value = view.get(name, MISSING)
                        if value is not MISSING:
                            field.encode(value, parts)
                    for prop, pred in event_derived:
                        parts.append(f'"{prop}":{1 if pred(view) else 0}')
                positive.append(",".join(parts))
        lead = [f'"k":{_LEAD},"now":{_micros(as_of)}']
        for name, field in self.lead_fields:
            value = values.get(name, MISSING)
            if value is not MISSING:
                field.encode(value, lead)
        for prop, pred in self.lead_derived:
            lead.append(f'"{prop}":{1 if pred(values) else 0}')
        return [*negated, ",".join(lead), *positive], len(negated)

    def _type_text(self, kind: str) -> str:
        # Activity types come from a small vocabulary: encode each once.
        text = self._type_texts.get(kind)
        if text is None:
            parts: list[str] = []
            self.type_field.encode(kind, parts)
            text = self._type_texts[kind] = ",".join(parts)
        return text

    def _session(self, facts: list[str], lead_at: int) -> tuple[set[int], dict[int, set[int]]]:
        engine, handle = self.engine, self.handle
        ids = _IDS.first(len(facts) - 1)
        sid = str(next(self._sids))
        while _IDS.clashes(f"sid-{sid}", len(facts) - 1):
            sid = str(next(self._sids))
        texts = []
        for j, properties in enumerate(facts):
            mid = "a" if j == lead_at else ids[j if j < lead_at else j - 1]
            texts.append(f'{{"id":"{mid}","sid":"{sid}",{properties}}}')
        payload = "[" + ",".join(texts) + "]"
        fired: set[int] = set()
        hits: dict[int, set[int]] = {}
        started = False
        self.live_sessions += 1
        try:
            code, state = engine.assert_facts(handle, payload)
            if code == 2:
                raise RuntimeError("durable_rules saw a fact id twice in one session")
            # Code 1 only says some fact matched no rule; the actions of the others are queued.
            result = engine.start_action_for_state(handle, state)
            started = True
            while result:
                messages = result if isinstance(result, str) else result[1]
                self._collect(messages, fired, hits)
                result = engine.complete_and_start_action(handle, state)
        finally:
            self._end_session(sid, started)
        return fired, hits

    def _collect(self, messages: str, fired: set[int], hits: dict[int, set[int]]) -> None:
        """Record one action's matches. An action is ``{"<rule>": frame or [frames]}`` for one rule.

        Every fact's text is ours and only activity facts have an ``i`` property, so the activity
        indices are read straight from the text instead of decoding the whole JSON.
        """
        atom = self.atoms.get(messages[2:messages.index('"', 2)])
        if atom is None:
            return
        if atom.key is None:
            fired.add(atom.index)
        else:
            hits.setdefault(atom.index, set()).update(int(i) for i in _INDEX.findall(messages))

    def _end_session(self, sid: str, started: bool) -> None:
        engine, handle = self.engine, self.handle
        try:
            if not started:
                # Deleting a session no action ever ran for crashes the C engine: run its _init.
                try:
                    engine.start_action(handle)
                except Exception:  # noqa: BLE001 - the delete below reports what matters
                    pass
            try:
                engine.delete_state(handle, sid)
            except Exception as err:  # noqa: BLE001
                if "error code: 309" not in str(err):  # the session was never created
                    raise
        finally:
            self.live_sessions -= 1


class DurableBackend:
    """Compiles composed packs into durable rulesets; ``close()`` deletes every one it made."""

    name = "durable"

    def __init__(self) -> None:
        self.engine = load_engine()
        self._matchers: weakref.WeakSet[DurableMatcher] = weakref.WeakSet()

    def compile(self, rules: Sequence[Any], key: Sequence[str]) -> DurableMatcher:
        matcher = DurableMatcher(self.engine, rules, key)
        self._matchers.add(matcher)
        return matcher

    @property
    def live_rulesets(self) -> int:
        return sum(1 for m in list(self._matchers) if not m.closed)

    def close(self) -> None:
        for matcher in list(self._matchers):
            matcher.close()
