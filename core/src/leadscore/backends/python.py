"""The default backend: conditions compiled once into Python closures, activity rules indexed by type.

The meaning of every condition is :func:`leadscore.rulepack.predicates.compile_condition`, the
reference every backend agrees with; this backend calls it, and for lead-level rules generates
one function that looks each signal up once (:class:`_Codegen`, held equal to the reference by
tests). Pattern conditions read the lead's activities through a :class:`LeadView`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from leadscore.model import Activities, Activity, age_days
from leadscore.rulepack.patterns import ActivityIndex
from leadscore.rulepack.predicates import MISSING, Pred, compile_condition
from leadscore.rulepack.schema import EVENT_PREFIX, PATTERN_OPS, Condition

class LeadView:
    """Signal lookup for lead-level rules that also lets pattern conditions see the activities."""

    __slots__ = ("values", "events", "as_of", "_index")

    def __init__(self, values: Mapping[str, Any], events: Sequence[Activity], as_of: datetime) -> None:
        self.values = values
        self.events = events
        self.as_of = as_of
        self._index: ActivityIndex | None = None

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def activity_index(self) -> ActivityIndex:
        # Built on first use and shared by every pattern of the lead.
        if self._index is None:
            self._index = ActivityIndex(self.events, self.as_of)
        return self._index


def has_pattern(cond: Condition | None) -> bool:
    return cond is not None and (cond.op in PATTERN_OPS or any(has_pattern(c) for c in cond.children))


class EventView:
    """Signal lookup for one activity: ``event.*`` names read the activity, others the lead."""

    __slots__ = ("values", "event", "as_of")

    def __init__(self, values: Mapping[str, Any], event: Activity, as_of: datetime) -> None:
        self.values = values
        self.event = event
        self.as_of = as_of

    def get(self, name: str, default: Any = None) -> Any:
        if not name.startswith(EVENT_PREFIX):
            return self.values.get(name, default)
        key = name[len(EVENT_PREFIX):]
        if key == "type":
            return self.event.type
        if key == "at":
            return self.event.at
        if key == "age_days":
            return age_days(self.as_of, self.event.at)
        return self.event.properties.get(key, default)


_NUMBERS = (int, float)


class _Codegen:
    """Turns the lead-level rules of one pack into a single generated function.

    Each signal is looked up once per lead, and each comparison is an inline expression with
    the same semantics as :func:`compile_condition` (which stays the reference, and is called
    for the conditions not specialised here: patterns, regexes, mixed-kind lists). Values and
    signal names reach the code as bound constants, never as source text.
    """

    def __init__(self) -> None:
        self.names: dict[str, Any] = {"MISSING": MISSING, "NUMBERS": _NUMBERS}
        self.locals: dict[str, str] = {}

    def const(self, value: Any) -> str:
        name = f"k{len(self.names)}"
        self.names[name] = value
        return name

    def var(self, signal: str) -> str:
        local = self.locals.get(signal)
        if local is None:
            local = self.locals[signal] = f"s{len(self.locals)}"
        return local

    def kind(self, x: str, value: Any) -> str:
        """The test that ``x`` may be compared with ``value`` (see _same_kind)."""
        t = type(value)
        if t is bool:
            return f"type({x}) is bool"
        if t in _NUMBERS:
            return f"type({x}) in NUMBERS"
        return f"type({x}) is {self.const(t)}"

    def expr(self, cond: Condition) -> str:
        op = cond.op
        if op in ("all", "any"):
            joiner = " and " if op == "all" else " or "
            return "(" + joiner.join(self.expr(c) for c in cond.children) + ")"
        if op == "not":
            return f"(not {self.expr(cond.children[0])})"
        value = cond.value
        if op in ("eq", "ne", "lt", "lte", "gt", "gte") and type(value) in (str, bool, int, float, datetime):
            x = self.var(cond.signal)
            symbol = {"eq": "==", "ne": "==", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
            test = f"({self.kind(x, value)} and {x} {symbol} {self.const(value)})"
            return f"({x} is not MISSING and not {test})" if op == "ne" else test
        if op == "between" and all(type(v) in (int, float, datetime) for v in value):
            x = self.var(cond.signal)
            lo, hi = value
            return (f"({self.kind(x, lo)} and {self.kind(x, hi)} and "
                    f"{self.const(lo)} <= {x} <= {self.const(hi)})")
        if op in ("in", "not_in") and value and len({type(v) for v in value}) == 1 \
                and type(value[0]) in (str, int, bool, datetime):
            # One kind of option and no NaN: set membership is exactly "same kind and equal".
            x = self.var(cond.signal)
            test = f"({self.kind(x, value[0])} and {x} in {self.const(frozenset(value))})"
            return f"({x} is not MISSING and not {test})" if op == "not_in" else test
        if op == "exists":
            x = self.var(cond.signal)
            return f"({x} is not MISSING)" if value else f"({x} is MISSING)"
        return f"{self.const(compile_condition(cond))}(v)"

    def function(self, rules: Sequence[tuple[int, Condition]]) -> Callable[[Any], list[tuple[int, int]]]:
        tests = [(self.const((index, -1)), self.expr(cond)) for index, cond in rules]
        lines = ["def match_lead(v):", "    g = v.get"]
        lines += [f"    {local} = g({self.const(signal)}, MISSING)" for signal, local in self.locals.items()]
        lines.append("    out = []")
        for match, test in tests:
            lines += [f"    if {test}:", f"        out.append({match})"]
        lines.append("    return out")
        namespace = dict(self.names)
        exec(compile("\n".join(lines), "<leadscore lead rules>", "exec"), namespace)  # noqa: S102
        return namespace["match_lead"]


def compile_lead_rules(rules: Sequence[tuple[int, Condition]]) -> Callable[[Any], list[tuple[int, int]]]:
    """One function ``f(values) -> [(rule_index, -1), ...]`` for lead-level rules, in the order given."""
    return _Codegen().function(rules)


def _uses_event(cond: Condition | None) -> bool:
    return cond is not None and any(s.startswith(EVENT_PREFIX) for s in cond.signals())


class PythonMatcher:
    def __init__(self, rules: Sequence[Any]) -> None:
        # Only packs with patterns pay for wrapping the signals in a LeadView.
        self.needs_view = any(has_pattern(rule.when) for rule in rules)
        self.lead_rules: list[tuple[int, Pred]] = []
        self.by_type: dict[str, list[tuple[int, Pred | None, bool]]] = {}
        for index, rule in enumerate(rules):
            pred = compile_condition(rule.when) if rule.when is not None else None
            if rule.on:
                per_event = _uses_event(rule.when)
                for t in rule.on:
                    self.by_type.setdefault(t, []).append((index, pred, per_event))
            elif pred is not None:
                self.lead_rules.append((index, pred))
        self.match_lead = compile_lead_rules([(index, rules[index].when) for index, _ in self.lead_rules])

    def match(self, values: Mapping[str, Any], events: Sequence[Activity], as_of: datetime) -> list[tuple[int, int]]:
        subject = LeadView(values, events, as_of) if self.needs_view else values
        out = self.match_lead(subject)
        if events and self.by_type:
            if type(events) is not Activities:
                events = Activities.of(events)
            by_type = self.by_type
            times = events.times
            lead_level: dict[int, bool] = {}
            # Per activity type, not per activity: the lead's activities are grouped once.
            for kind, positions in events.groups().items():
                candidates = by_type.get(kind)
                if not candidates:
                    continue
                if times[positions[-1]] > as_of or not events.in_time_order():
                    positions = [i for i in positions if times[i] <= as_of]
                    if not positions:
                        continue
                for index, pred, per_event in candidates:
                    if pred is None:
                        out.extend([(index, i) for i in positions])
                    elif per_event:
                        record = events.record
                        out.extend([(index, i) for i in positions if pred(EventView(values, record(i), as_of))])
                    else:
                        ok = lead_level.get(index)
                        if ok is None:
                            ok = lead_level[index] = pred(values)
                        if ok:
                            out.extend([(index, i) for i in positions])
            out.sort()
        return out

    def close(self) -> None:
        pass


class PythonBackend:
    name = "python"

    def compile(self, rules: Sequence[Any], key: Sequence[str]) -> PythonMatcher:
        return PythonMatcher(rules)

    def close(self) -> None:
        pass
