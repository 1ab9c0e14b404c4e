"""Records that flow through leadscore: leads in, score cards out, and the registry records hooks return.

Every record is a frozen, slotted attrs class. Nothing in the engine mutates a record it was handed;
plugins return new records and the core aggregates them.
"""

from __future__ import annotations

import bisect
import functools
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import attrs
from attrs import frozen

# Shared default for empty mappings: read-only, so one record can never change another's default.
EMPTY: Mapping[str, Any] = MappingProxyType({})


@frozen
class Company:
    """Firmographic facts about the lead's company (all optional: CRMs are patchy)."""

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    tier: str | None = None


@frozen
class Activity:
    """One thing a lead did, at a timezone-aware UTC instant.

    ``type`` comes from an open vocabulary (see docs/activities.md): unknown types are kept.
    """

    type: str
    at: datetime
    properties: Mapping[str, Any] = EMPTY
    id: str | None = None


class LazyRecords(Sequence[Any]):
    """An immutable sequence whose records are built on first read (see Activities and Ledger).

    A subclass keeps its compact form and implements ``_all()``, which builds (once) and returns
    the tuple of records; indexing, iteration, equality (with the same class or a tuple of the
    records), hashing and repr all read that tuple.
    """

    __slots__ = ()

    @abstractmethod
    def _all(self) -> tuple[Any, ...]:
        """Every record, in order (built on the first call)."""

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._all() == other._all()  # type: ignore[attr-defined]
        if isinstance(other, tuple):
            return self._all() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._all())!r})"


class Activities(LazyRecords):
    """A lead's activities: an immutable sequence of Activity records, stored as columns.

    Scoring reads the columns (``types``, ``times``) and the per-type index (:meth:`groups`)
    without building a record per activity; iterating or indexing gives Activity records, built
    on first use. It compares equal to a tuple of the same records. Build one with
    :meth:`of` from records; readers fill the columns directly.
    """

    __slots__ = ("types", "times", "props", "ids", "_records", "_groups", "_ordered")

    def __init__(self, types: list[str], times: list[datetime], props: list[Mapping[str, Any]] | None = None,
                 ids: list[str | None] | None = None) -> None:
        self.types = types
        self.times = times
        # None stands for "all empty" / "all None", the common case for lean inputs.
        self.props = props
        self.ids = ids
        self._records: tuple[Activity, ...] | None = None
        self._groups: dict[str, list[int]] | None = None
        self._ordered: bool | None = None

    @classmethod
    def of(cls, records: Iterable[Activity]) -> Activities:
        if isinstance(records, Activities):
            return records
        items = tuple(records)
        for item in items:
            if not isinstance(item, Activity):
                raise TypeError(f"activities must be Activity records, not {type(item).__name__}")
        made = cls([a.type for a in items], [a.at for a in items], [a.properties for a in items],
                   [a.id for a in items])
        made._records = items
        return made

    def record(self, index: int) -> Activity:
        """The Activity at ``index`` (without building the others)."""
        if self._records is not None:
            return self._records[index]
        return Activity(self.types[index], self.times[index], self.props[index] if self.props else EMPTY,
                        self.ids[index] if self.ids else None)

    def properties(self, index: int) -> Mapping[str, Any]:
        return self.props[index] if self.props else EMPTY

    def _all(self) -> tuple[Activity, ...]:
        records = self._records
        if records is None:
            records = self._records = tuple(self.record(i) for i in range(len(self.types)))
        return records

    def groups(self) -> dict[str, list[int]]:
        """Activity type -> positions of its activities, in sequence order (built once)."""
        groups = self._groups
        if groups is None:
            groups = self._groups = {}
            for index, kind in enumerate(self.types):
                found = groups.get(kind)
                if found is None:
                    groups[kind] = [index]
                else:
                    found.append(index)
        return groups

    def in_time_order(self) -> bool:
        ordered = self._ordered
        if ordered is None:
            # A stable sort of an ordered list changes nothing (and runs in one C-level pass).
            times = self.times
            ordered = self._ordered = times == sorted(times)
        return ordered

    def by_time(self) -> Activities:
        """The same activities oldest first (equal instants keep their order)."""
        if self.in_time_order():
            return self
        order = sorted(range(len(self.times)), key=self.times.__getitem__)
        made = Activities([self.types[i] for i in order], [self.times[i] for i in order],
                          [self.props[i] for i in order] if self.props else None,
                          [self.ids[i] for i in order] if self.ids else None)
        made._ordered = True
        return made

    def until(self, at: datetime) -> Activities:
        """These activities oldest first, up to and including ``at`` (the later ones left out)."""
        acts = self.by_time()
        end = bisect.bisect_right(acts.times, at)
        if end == len(acts):
            return acts
        made = Activities(acts.types[:end], acts.times[:end], acts.props[:end] if acts.props else None,
                          acts.ids[:end] if acts.ids else None)
        made._ordered = True
        return made

    def inserted(self, activity: Activity) -> Activities:
        """These activities with ``activity`` added in time order (after any at the same instant);
        the others are not rebuilt as records."""
        acts = self.by_time()
        at = bisect.bisect_right(acts.times, activity.at)
        props = acts.props
        if props is not None or activity.properties:
            props = [*(props or [EMPTY] * len(acts))]
            props.insert(at, activity.properties)
        ids = acts.ids
        if ids is not None or activity.id is not None:
            ids = [*(ids or [None] * len(acts))]
            ids.insert(at, activity.id)
        made = Activities([*acts.types[:at], activity.type, *acts.types[at:]],
                          [*acts.times[:at], activity.at, *acts.times[at:]], props, ids)
        made._ordered = True
        return made

    def __len__(self) -> int:
        return len(self.types)

    def __add__(self, other: Iterable[Activity]) -> Activities:
        return Activities.of(self._all() + tuple(other))


NO_ACTIVITIES = Activities([], [])


def _to_activities(value: Iterable[Activity]) -> Activities:
    return value if type(value) is Activities else Activities.of(value)


@frozen
class Lead:
    """One person to score, with what they did and the company they work for.

    ``activities`` accepts any iterable of Activity records and holds them as :class:`Activities`.
    """

    id: str
    email: str | None = None
    title: str | None = None
    source: str | None = None
    created_at: datetime | None = None
    account_id: str | None = None
    company: Company = Company()
    fields: Mapping[str, Any] = EMPTY
    activities: Activities = attrs.field(default=NO_ACTIVITIES, converter=_to_activities)
    first_name: str | None = None
    last_name: str | None = None


@frozen
class Signal:
    """A typed fact extracted from a lead.

    ``observed_at`` is when the underlying behaviour happened (None for timeless facts such as a
    job title); decay acts on it. ``evidence`` is a short human string: what the value came from.
    """

    name: str
    value: Any
    observed_at: datetime | None = None
    evidence: str = ""


@frozen
class Contribution:
    """One ledger line. The lines of a card sum exactly to its total.

    ``kind`` is ``rule`` for a matched rule or scorer line, or one of ``frequency_cap``,
    ``rule_cap``, ``category_cap``, ``total_cap`` for an adjustment a cap made.
    """

    rule_id: str
    category: str
    points: int
    reason: str
    pack: str
    kind: str = "rule"
    raw_points: int = 0
    decay: str = "none"
    decay_factor: float = 1.0
    signal: str | None = None
    observed_at: datetime | None = None
    evidence: str = ""


# A ledger line as scoring builds it is a plain tuple of Contribution's fields, in order (a tuple
# subclass with named fields costs about twice as much to build and more to read, and a run
# builds tens of millions of lines); code reads a field by its position, ``line[POINTS]``.
# ``evidence`` may still be a tuple of texts (joined with "; " when read) or the position of the
# activity behind the line in the lead's activities (its text is built when read); the
# :class:`Ledger` turns lines into Contribution records only when someone reads them.
LedgerLine = tuple
(RULE_ID, CATEGORY, POINTS, REASON, PACK, KIND, RAW_POINTS, DECAY, DECAY_FACTOR, SIGNAL, OBSERVED_AT,
 EVIDENCE) = range(12)


SECONDS_PER_DAY = 86400.0


def age_days(as_of: datetime, at: datetime) -> float:
    """Days from ``at`` to ``as_of`` (negative when ``at`` is later): how old a fact is at scoring time."""
    return (as_of - at).total_seconds() / SECONDS_PER_DAY


@functools.lru_cache(maxsize=4096)
def _ordinal_text(day: int) -> str:
    return date.fromordinal(day).isoformat()


def day_text(value: date) -> str:
    """The calendar day of ``value`` (a date, or a datetime in its own zone) as ``2026-11-20``."""
    # Evidence names days, and a run sees a few hundred of them at most: each text is made once.
    return _ordinal_text(value.toordinal())


def evidence_place(props: Mapping[str, Any] | None) -> Any:
    """The page or asset an activity's evidence names: the first of its ``url``, ``asset`` and
    ``title`` properties that is not empty, else None."""
    return (props.get("url") or props.get("asset") or props.get("title") or None) if props else None


def evidence_text(kind: str, at: date, where: Any) -> str:
    """How a ledger line names an activity: its type, its day and (``where``) the page or asset."""
    text = f"{kind} on {day_text(at)}"
    return f"{text} ({where})" if where else text


def activity_evidence(event: Activity) -> str:
    """How a ledger line names the activity behind it: type, day and the page or asset."""
    return evidence_text(event.type, event.at, evidence_place(event.properties))


def _evidence(raw: str | tuple[str, ...] | int, events: Activities | None) -> str:
    if type(raw) is str:
        return raw
    if type(raw) is tuple:
        return "; ".join(raw)
    if events is None:
        raise ValueError(f"a ledger line names activity #{raw} but the ledger has no activities")
    return activity_evidence(events.record(raw))


class Ledger(LazyRecords):
    """A score card's ledger lines, in order, as an immutable sequence of Contribution records.

    Scoring keeps each line as a :class:`LedgerLine` and the records are built only when someone
    reads them: most runs print the total and top reasons, not every line.
    """

    __slots__ = ("_raw", "_lines", "_events")

    def __init__(self, raw: Iterable[LedgerLine | Contribution], events: Activities | None = None) -> None:
        self._raw = tuple(raw)
        self._lines: tuple[Contribution, ...] | None = None
        # A line's evidence may be the position of an activity in these (its text is built on read).
        self._events = events

    def _all(self) -> tuple[Contribution, ...]:
        lines = self._lines
        if lines is None:
            events = self._events
            lines = self._lines = tuple(
                r if isinstance(r, Contribution) else Contribution(*r[:EVIDENCE], _evidence(r[EVIDENCE], events))
                for r in self._raw
            )
        return lines

    def __len__(self) -> int:
        return len(self._raw)

    def total(self) -> int:
        return sum(r.points if isinstance(r, Contribution) else r[POINTS] for r in self._raw)

    def top_reasons(self, n: int) -> list[str]:
        """Reasons of the ``n`` rule lines with the most points either way (without building records)."""
        if self._raw and isinstance(self._raw[0], Contribution):
            raw = [attrs.astuple(r, recurse=False) for r in self._raw]
        else:
            raw = self._raw
        lines = [(-abs(r[POINTS]), r[RULE_ID], r[POINTS], r[REASON]) for r in raw
                 if r[KIND] == "rule" and r[POINTS] != 0]
        # Ties on (size, rule id) are lines of one rule with the same points: identical text.
        lines.sort()
        return [f"+{points} {reason}" if points > 0 else f"{points} {reason}" for _, _, points, reason in lines[:n]]


@frozen
class Route:
    """What should happen next for a lead: the router's decision."""

    action: str
    queue: str | None = None
    sla_hours: float | None = None
    owner_hint: str | None = None
    reason: str = ""


@frozen
class ScoreCard:
    """The result for one lead: total, sub-scores, band, route and the ledger behind them."""

    lead_id: str
    as_of: datetime
    total: int
    subscores: tuple[tuple[str, int], ...]
    band: str
    points_band: str
    gate_notes: tuple[str, ...]
    route: Route | None
    ledger: Sequence[Contribution]
    packs: tuple[tuple[str, str], ...]
    account_id: str | None = None

    @property
    def subscore_map(self) -> dict[str, int]:
        return dict(self.subscores)

    def top_reasons(self, n: int = 3) -> list[str]:
        """The ``n`` rule lines that moved the score most, largest absolute points first."""
        if isinstance(self.ledger, Ledger):
            return self.ledger.top_reasons(n)
        lines = [c for c in self.ledger if c.kind == "rule" and c.points != 0]
        lines.sort(key=lambda c: (-abs(c.points), c.rule_id))
        return [f"{c.points:+d} {c.reason}" for c in lines[:n]]


@frozen
class Rejection:
    """An input lead that could not be scored, and why (``where`` names file and line)."""

    where: str
    reason: str
    lead_id: str | None = None


# --- registry records returned by the collect-all hooks -----------------------------------


@frozen
class SignalSpec:
    """A signal an extractor provides: its name (``*`` matches one dotted segment) and type.

    ``type`` is one of ``str``, ``int``, ``number``, ``bool``, ``datetime``, ``list``, ``any``.
    """

    name: str
    type: str
    doc: str = ""
    values: tuple[str, ...] = ()
    vocabulary: str = ""
    """For a wildcard name: the vocabulary key listing the allowed values of the ``*`` segment."""


@frozen
class ExtractContext:
    """What an extractor may read besides the lead: the scoring time and the run's vocabulary.

    ``wanted`` is the set of signal names the composed rulepacks use, or None for "everything";
    extractors may skip the rest, which keeps the hot path short.
    """

    as_of: datetime
    vocabulary: Mapping[str, Any] = EMPTY
    wanted: frozenset[str] | None = None
    account: Mapping[str, Any] = EMPTY
    """The lead's account signals (``account.*`` -> value) when account roll-up is on."""


@frozen
class SignalExtractor:
    """A named function ``fn(lead, ctx) -> Iterable[Signal]`` and the signals it provides.

    ``columnar`` (optional) is the same extractor for the columnar engine: ``columnar(ctx)``
    returns a SQL relation of the signals for a whole batch of leads (see
    :mod:`leadscore.columnar.context`). Without it the columnar engine scores per lead.
    """

    name: str
    fn: Callable[[Lead, ExtractContext], Iterable[Signal]]
    provides: tuple[SignalSpec, ...] = ()
    doc: str = ""
    columnar: Callable[..., Any] | None = None


@frozen
class RulepackSource:
    """A rulepack shipped by a plugin, read with importlib.resources (never a globbed path)."""

    name: str
    resource: Traversable


@frozen
class ScoreLine:
    """A line a custom scorer contributes; it is decayed and capped like a rule match."""

    rule_id: str
    category: str
    points: int
    reason: str
    observed_at: datetime | None = None
    signal: str | None = None
    decay: str = "none"


@frozen
class Scorer:
    """A named scoring function ``fn(lead, signals, ctx) -> Iterable[ScoreLine]``.

    The rule engine is the built-in scorer ``rules``; a rulepack lists the scorers it uses.
    """

    name: str
    fn: Callable[..., Iterable[ScoreLine]]
    doc: str = ""


@frozen
class DecayPolicy:
    """A decay curve kind. ``make(params)`` validates the params and returns ``factor(age_days)``.

    ``make`` raises ValueError with a readable message when the params are wrong; the factor it
    returns must lie in [0, 1], be 1.0 at age 0 and never increase with age.
    """

    name: str
    make: Callable[[Mapping[str, Any]], Callable[[float], float]]
    doc: str = ""
    params: tuple[str, ...] = ()
    columnar: Callable[[Mapping[str, Any]], Callable[[Any], Any]] | None = None
    """Optional: ``columnar(params)`` returns ``sql(age)``, the factor as a SQL expression of the age in
    days (a sqlglot expression, never negative); without it the columnar engine calls ``make``'s
    function once per value."""


@frozen
class RollupStrategy:
    """Turns an account's scored contacts into one account score.

    ``fn(contacts, params) -> (score, reasons)``: ``contacts`` are
    :class:`leadscore.accounts.Contact` records, highest score first; ``params`` is the
    rulepack's ``[accounts]`` table. A rulepack picks a strategy with ``rollup = "<name>"``.
    """

    name: str
    fn: Callable[..., tuple[int, Iterable[str]]]
    doc: str = ""


def evolve(record: Any, **changes: Any) -> Any:
    """A copy of ``record`` with ``changes`` (records are frozen)."""
    return attrs.evolve(record, **changes)


__all__ = [
    "Activity",
    "Company",
    "Contribution",
    "DecayPolicy",
    "ExtractContext",
    "Lead",
    "Ledger",
    "LedgerLine",
    "POINTS",
    "Rejection",
    "Route",
    "RollupStrategy",
    "RulepackSource",
    "ScoreCard",
    "ScoreLine",
    "Scorer",
    "Signal",
    "SignalExtractor",
    "SignalSpec",
    "age_days",
    "day_text",
    "evolve",
]
