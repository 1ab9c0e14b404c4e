"""Outcomes in: the funnel's stages, the outcomes file, the scoring time of each lead and its label.

Everything here is plain Python (no numpy): it decides, for every lead, when it is scored, what it
may see at that moment, and whether it counts as a conversion. Nothing after a lead's scoring time
reaches the scorer: later activities are cut off, outcomes never enter the lead at all, and a
``--label`` column is removed from the lead's fields before scoring.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from attrs import frozen

from leadscore.errors import ConfigurationError, InputError
from leadscore.files import TomlError, parse_toml, read_text_file
from leadscore.io.timestamps import TIMESTAMP_FIX, format_timestamp, parse_timestamp
from leadscore.model import Lead, Rejection, evolve

DEFAULT_STAGES = ("mql", "sal", "sql", "opportunity", "won")
DEFAULT_CLOSED = ("lost",)
CONFIG_NAME = "leadscore.toml"
OUTCOME_COLUMNS = ("lead_id", "stage", "at", "amount")
MAX_LINE = 1 << 20
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_SCORE_AT = re.compile(r"^created(?:\s*\+\s*([0-9]+(?:\.[0-9]+)?)\s*([dh]))?$")
_DAY = timedelta(days=1)


# --- the funnel --------------------------------------------------------------------------------


@frozen
class Funnel:
    """The stages a lead can reach, in funnel order after ``lead`` itself, and the closed ones.

    ``stages`` are ordered: reaching one implies having passed the ones before it (a CRM that
    skips a stage still moved the lead through it). ``closed`` are terminal stages outside the
    funnel order, such as ``lost`` or ``disqualified``.
    """

    stages: tuple[str, ...] = DEFAULT_STAGES
    closed: tuple[str, ...] = DEFAULT_CLOSED

    def known(self) -> tuple[str, ...]:
        return self.stages + self.closed

    def reached(self, names: Iterable[str]) -> frozenset[str]:
        """The funnel stages ``names`` imply: the furthest one and every stage before it."""
        furthest = max((self.stages.index(n) for n in names if n in self.stages), default=-1)
        return frozenset(self.stages[: furthest + 1])


def load_funnel(path: str | os.PathLike[str] | None = None) -> Funnel:
    """The funnel from ``[outcomes]`` in a config file; without a path, ``./leadscore.toml`` if it exists.

    ``stages`` lists the funnel stages in order, ``closed`` the terminal stages outside it::

        [outcomes]
        stages = ["mql", "sal", "demo", "opportunity", "won"]
        closed = ["lost", "disqualified"]
    """
    if path is None:
        if not Path(CONFIG_NAME).is_file():
            return Funnel()
        path = CONFIG_NAME
    label = os.fspath(path)
    text = read_text_file(path, "config file", ConfigurationError)
    try:
        data = parse_toml(text)
    except TomlError as err:
        raise ConfigurationError(f"{label}:{err.line}" if err.line else label, err.what,
                                 err.fix or "fix the syntax") from None
    section = data.get("outcomes", {})
    if not isinstance(section, dict):
        raise ConfigurationError(_line_of(label, text, "outcomes"), "[outcomes] must be a table",
                                 'write [outcomes] with stages = ["mql", "sal", "opportunity", "won"]')
    unknown = sorted(set(section) - {"stages", "closed"})
    if unknown:
        raise ConfigurationError(_line_of(label, text, unknown[0]), f"unknown key {unknown[0]!r} in [outcomes]",
                                 "use stages or closed")
    stages = _stage_list(section.get("stages", list(DEFAULT_STAGES)), "stages", label, text)
    closed = _stage_list(section.get("closed", list(DEFAULT_CLOSED)), "closed", label, text)
    if not stages:
        raise ConfigurationError(_line_of(label, text, "stages"), "[outcomes] stages is empty",
                                 "list the funnel stages in order, the last one usually won")
    both = sorted(set(stages) & set(closed))
    if both:
        raise ConfigurationError(_line_of(label, text, "closed"), f"stage {both[0]!r} is both a funnel stage and closed",
                                 "list each stage once")
    return Funnel(tuple(stages), tuple(closed))


def _stage_list(value: Any, key: str, label: str, text: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(_line_of(label, text, key), f"[outcomes] {key} must be a list of stage names",
                                 f'e.g. {key} = ["mql", "won"]')
    names = [v.strip().lower() for v in value]
    for name in names:
        if not _STAGE_NAME.match(name):
            raise ConfigurationError(_line_of(label, text, key), f"stage name {name!r} is not valid",
                                     "use lower case letters, digits, '_' or '-', starting with a letter")
    if len(set(names)) != len(names):
        raise ConfigurationError(_line_of(label, text, key), f"[outcomes] {key} lists a stage twice", "list each stage once")
    return names


def _line_of(label: str, text: str, key: str) -> str:
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*\[?\s*" + re.escape(key) + r"\b", line):
            return f"{label}:{number}"
    return label


# --- the outcomes file -------------------------------------------------------------------------


@frozen
class OutcomeEvent:
    """One row of an outcomes file: the lead reached ``stage`` (at ``at`` when known)."""

    stage: str
    at: datetime | None
    amount: float | None
    line: int


@frozen
class OutcomeTable:
    """An outcomes file read whole: events by lead id, and the rows that could not be used."""

    source: str
    events: Mapping[str, tuple[OutcomeEvent, ...]]
    rows: int
    rejections: tuple[Rejection, ...]

    def latest(self) -> datetime | None:
        """The latest timestamp in the file: where observation ends unless told otherwise."""
        times = [e.at for events in self.events.values() for e in events if e.at is not None]
        return max(times) if times else None


def read_outcomes(source: str | os.PathLike[str] | IO[str], funnel: Funnel = Funnel(), *,
                  name: str | None = None, fmt: str | None = None) -> OutcomeTable:
    """Read an outcomes file (CSV with a header, or JSON Lines): ``lead_id, stage[, at][, amount]``.

    A bad row (no lead id, unknown stage, bad timestamp or amount) becomes a Rejection naming
    ``file:line``; a problem with the whole file (missing, no header, unknown column) raises
    InputError.
    """
    if isinstance(source, (str, os.PathLike)):
        label = name or os.fspath(source)
        path = Path(source)
        if not path.is_file():
            raise InputError(label, "file not found" if not path.exists() else "is not a file", "check the --outcomes path")
        fmt = fmt or _format_of(path.suffix.lower(), label)
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                return _read_table(handle, label, fmt, funnel)
        except UnicodeDecodeError:
            raise InputError(label, "not UTF-8 text", "save the outcomes file as UTF-8") from None
    label = name or getattr(source, "name", None) or "<outcomes>"
    return _read_table(source, str(label), fmt or _format_of(Path(str(label)).suffix.lower(), str(label)), funnel)


def _format_of(suffix: str, label: str) -> str:
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise InputError(label, f"cannot tell the format from the suffix {suffix!r}" if suffix else "cannot tell the format",
                     "name the outcomes file .csv or .jsonl")


def _read_table(stream: IO[str], label: str, fmt: str, funnel: Funnel) -> OutcomeTable:
    events: dict[str, list[OutcomeEvent]] = {}
    rejections: list[Rejection] = []
    rows = 0
    known = funnel.known()
    for line, raw in (_csv_rows(stream, label) if fmt == "csv" else _jsonl_rows(stream, label)):
        rows += 1
        where = f"{label}:{line}"
        if isinstance(raw, str):
            rejections.append(Rejection(where, raw))
            continue
        lead_id = raw.get("lead_id")
        lead_id = str(lead_id).strip() if isinstance(lead_id, (str, int)) and not isinstance(lead_id, bool) else ""
        try:
            if not lead_id:
                raise InputError(where, "lead_id is missing", "every outcome row names the lead it belongs to")
            stage = _stage(raw.get("stage"), where, known)
            at = _at(raw.get("at"), where)
            amount = _amount(raw.get("amount"), where)
        except InputError as err:
            rejections.append(Rejection(err.where, f"{err.what}; {err.fix}", lead_id or None))
            continue
        events.setdefault(lead_id, []).append(OutcomeEvent(stage, at, amount, line))
    return OutcomeTable(label, {k: tuple(v) for k, v in events.items()}, rows, tuple(rejections))


def _csv_rows(stream: IO[str], label: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(label, "no header row",
                         "write the header lead_id,stage,at,amount then one row per outcome") from None
    except csv.Error as err:
        raise InputError(f"{label}:1", f"unreadable header row: {err}", "check the quoting") from None
    names = [h.strip().lower() for h in header]
    for name in names:
        if name not in OUTCOME_COLUMNS:
            raise InputError(f"{label}:1", f"unknown column {name!r}", f"use {', '.join(OUTCOME_COLUMNS)}")
    if len(set(names)) != len(names):
        raise InputError(f"{label}:1", "a column appears twice", "keep one column per name")
    for required in ("lead_id", "stage"):
        if required not in names:
            raise InputError(f"{label}:1", f"missing column {required!r}", "the header needs at least lead_id,stage")
    end = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            start, end = end + 1, reader.line_num
            yield start, f"unreadable CSV row: {err}; check the quoting on this line"
            continue
        start, end = end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield start, f"row has {len(row)} cells but the header has {len(names)}; quote cells that contain commas"
            continue
        yield start, dict(zip(names, row, strict=True))


def _jsonl_rows(stream: IO[str], label: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    line = 0
    while True:
        text = stream.readline(MAX_LINE + 1)
        if not text:
            return
        line += 1
        if len(text) > MAX_LINE and not text.endswith("\n"):
            # A line this long is a broken export, not an outcome: skip it without holding it.
            while (rest := stream.readline(MAX_LINE)) and not rest.endswith("\n"):
                pass
            yield line, "line is longer than 1 MiB; each line must be one JSON object"
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            yield line, f"malformed JSON: {err.msg} at column {err.colno}; each line must be one JSON object"
            continue
        if not isinstance(obj, dict):
            yield line, "line is not a JSON object; write {\"lead_id\": \"L-1\", \"stage\": \"won\"}"
            continue
        unknown = sorted(set(obj) - set(OUTCOME_COLUMNS))
        if unknown:
            yield line, f"unknown key {unknown[0]!r}; use {', '.join(OUTCOME_COLUMNS)}"
            continue
        yield line, obj


def _stage(value: Any, where: str, known: Sequence[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(where, "stage is missing", f"use one of {', '.join(known)}")
    stage = value.strip().lower()
    if stage not in known:
        raise InputError(where, f"unknown stage {value.strip()!r}",
                         f"use one of {', '.join(known)}, or declare it in {CONFIG_NAME} [outcomes] stages")
    return stage


def _at(value: Any, where: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InputError(where, f"at: {value!r} is not a timestamp", TIMESTAMP_FIX)
    return parse_timestamp(value, where, "at")


def _amount(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
    if not math.isfinite(number):
        raise InputError(where, f"amount: {value!r} is not a number",
                         "write the deal amount as a plain number such as 12500.50")
    return number


# --- scoring time ------------------------------------------------------------------------------


@frozen
class ScoringTime:
    """When each lead is scored: its ``created_at`` plus ``delay``, or the fixed instant ``as_of``.

    With both, ``as_of`` is the scoring time of leads that have no ``created_at``.
    """

    delay: timedelta | None = timedelta(0)
    as_of: datetime | None = None

    @classmethod
    def parse(cls, score_at: str | None, as_of: datetime | None = None) -> ScoringTime:
        """From ``--score-at`` (``created``, ``created+7d``, ``created+12h``) and ``--as-of``.

        Neither given means ``created``; ``--as-of`` alone scores every lead at that instant.
        """
        if score_at is None:
            return cls(None if as_of is not None else timedelta(0), as_of)
        match = _SCORE_AT.match(score_at.strip().lower())
        if match is None:
            raise ConfigurationError("--score-at", f"{score_at!r} is not a scoring time",
                                     "write created, created+7d or created+12h (or pass --as-of for one fixed time)")
        amount, unit = match.groups()
        delay = timedelta(0) if amount is None else timedelta(**{"days" if unit == "d" else "hours": float(amount)})
        return cls(delay, as_of)

    def for_lead(self, lead: Lead) -> datetime | None:
        if self.delay is not None and lead.created_at is not None:
            return lead.created_at + self.delay
        return self.as_of

    def text(self) -> str:
        if self.delay is None:
            return f"as of {format_timestamp(self.as_of)}" if self.as_of else "as of now"
        hours = self.delay / timedelta(hours=1)
        delay = "" if not hours else (f"+{_number(hours / 24)}d" if hours % 24 == 0 else f"+{_number(hours)}h")
        fallback = f" (leads without created_at: as of {format_timestamp(self.as_of)})" if self.as_of else ""
        return f"created{delay}{fallback}"

    def missing_reason(self) -> str:
        return (f"has no created_at, so its scoring time ({self.text()}) is unknown; add created_at or pass --as-of")


def _number(value: float) -> str:
    return f"{value:g}"


def as_seen_at(lead: Lead, when: datetime, drop_fields: Sequence[str] = ()) -> Lead:
    """``lead`` as it looked at ``when``: activities after ``when`` removed, ``drop_fields`` removed.

    The engine already ignores later activities; cutting them here as well means no signal plugin,
    however it is written, can see the future of a lead being evaluated. The activities come oldest
    first, as the engine reads them (``Activities.until``, which the account pass's
    ``leadscore.engine.seen_at`` uses too).
    """
    acts = lead.activities.until(when)
    fields = lead.fields
    if drop_fields and any(name in fields for name in drop_fields):
        fields = {k: v for k, v in fields.items() if k not in drop_fields}
    if acts is lead.activities and fields is lead.fields:
        return lead
    return evolve(lead, activities=acts, fields=fields)


# --- the outcome definition and the evaluation set ----------------------------------------------


@frozen
class OutcomeDefinition:
    """What counts as a conversion.

    With an outcomes file: the lead reached ``target`` after its scoring time and, with
    ``within_days``, at most that many days after it. A lead that reached ``target`` at or before
    its scoring time is left out (it had already converted), and so is a lead whose window ends
    after ``observed_until`` without a conversion (its outcome is not known yet). With ``label``
    (``fields.<name>``): the lead's own 0/1 or true/false field, which the scorer never sees.
    """

    target: str = "won"
    within_days: float | None = None
    observed_until: datetime | None = None
    label: str | None = None

    def text(self) -> str:
        if self.label:
            return f"{self.label} is 1/true"
        if self.within_days is None:
            return f"{self.target} after the scoring time (any time)"
        return f"{self.target} within {_number(self.within_days)} days of the scoring time"

    def label_field(self) -> str | None:
        """The custom-field name behind ``label`` (``fields.converted`` -> ``converted``)."""
        if self.label is None:
            return None
        if not self.label.startswith("fields.") or len(self.label) <= len("fields."):
            raise ConfigurationError("--label", f"{self.label!r} is not a custom field of the leads",
                                     "name a 0/1 or true/false column as fields.<name>, e.g. --label fields.converted")
        return self.label[len("fields."):]


@frozen
class Case:
    """One lead in an evaluation: the lead as seen at ``when``, whether it converted, how far it got."""

    lead: Lead
    when: datetime
    positive: bool
    stages: frozenset[str]
    amount: float = 0.0


@frozen
class Evaluation:
    """The leads of a run that can be evaluated, and an account of every lead and outcome row that cannot."""

    cases: tuple[Case, ...]
    rejections: tuple[Rejection, ...]
    counts: Mapping[str, int]
    definition: OutcomeDefinition
    timing: ScoringTime
    funnel_stages: tuple[str, ...]
    observed_until: datetime | None = None

    @property
    def positives(self) -> int:
        return sum(1 for c in self.cases if c.positive)

    def check_both_classes(self, what: str = "the run") -> None:
        """Stop with one line when there is nothing to rank: no conversions, or nothing but conversions."""
        positives = self.positives
        negatives = len(self.cases) - positives
        if not self.cases:
            first = f" (first: {self.rejections[0].where}: {self.rejections[0].reason})" if self.rejections else ""
            raise InputError(what, f"no lead could be evaluated: {self.counts.get('leads_rejected', 0)} rejected, "
                             f"{self.counts.get('excluded_converted_before', 0)} converted before their scoring time, "
                             f"{self.counts.get('excluded_censored', 0)} censored{first}",
                             "check the leads, the outcomes and the scoring time")
        if positives == 0:
            raise InputError(what, f"no conversions among the {len(self.cases)} evaluated leads "
                             f"({self.definition.text()})",
                             "check --target, --within and the outcomes file (a score cannot be judged without them)")
        if negatives == 0:
            raise InputError(what, f"every one of the {len(self.cases)} evaluated leads converted "
                             f"({self.definition.text()})", "include leads that did not convert")


_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


def _label_value(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def evaluation_set(
    leads: Iterable[Lead | Rejection],
    outcomes: OutcomeTable | None,
    definition: OutcomeDefinition,
    timing: ScoringTime,
    funnel: Funnel = Funnel(),
    leads_label: str = "leads",
) -> Evaluation:
    """Decide each lead's scoring time, what it may see then, and its label; account for the rest.

    Every input lead ends up in exactly one of: evaluated, rejected (reader rejection, duplicate
    id, no scoring time, bad label), excluded as converted before its scoring time, or excluded
    as censored. Outcome rows for ids that are not in the leads are rejected with their line.
    """
    if (outcomes is None) == (definition.label is None):
        raise ConfigurationError("--outcomes", "give either an outcomes file or --label FIELD, not both or neither",
                                 "e.g. --outcomes outcomes.csv, or --label fields.converted")
    label_field = definition.label_field()
    if outcomes is not None and definition.target not in funnel.known():
        raise ConfigurationError("--target", f"unknown stage {definition.target!r}",
                                 f"use one of {', '.join(funnel.known())} (declare more in {CONFIG_NAME})")
    observed_until = definition.observed_until or (outcomes.latest() if outcomes is not None else None)
    within = timedelta(days=definition.within_days) if definition.within_days is not None else None
    cases: list[Case] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    counts = {"leads_read": 0, "leads_rejected": 0, "excluded_converted_before": 0, "excluded_censored": 0,
              "outcome_rows": outcomes.rows if outcomes else 0,
              "outcome_rows_rejected": len(outcomes.rejections) if outcomes else 0}
    drop = (label_field,) if label_field else ()
    for item in leads:
        counts["leads_read"] += 1
        if isinstance(item, Rejection):
            rejections.append(item)
            counts["leads_rejected"] += 1
            if item.lead_id:
                seen.add(item.lead_id)
            continue
        if item.id in seen:
            rejections.append(Rejection(f"{leads_label}: lead {item.id}", "duplicate lead id; an outcome cannot tell "
                                        "which of the two it belongs to: give each lead its own id", item.id))
            counts["leads_rejected"] += 1
            continue
        seen.add(item.id)
        when = timing.for_lead(item)
        if when is None:
            rejections.append(Rejection(f"{leads_label}: lead {item.id}", timing.missing_reason(), item.id))
            counts["leads_rejected"] += 1
            continue
        if label_field is not None:
            raw = item.fields.get(label_field)
            positive = _label_value(raw)
            if positive is None:
                what = "is missing" if raw is None else f"is {raw!r}"
                rejections.append(Rejection(f"{leads_label}: lead {item.id}",
                                            f"{definition.label} {what}; write 0/1 or true/false", item.id))
                counts["leads_rejected"] += 1
                continue
            cases.append(Case(as_seen_at(item, when, drop), when, positive,
                              frozenset({"converted"}) if positive else frozenset()))
            continue
        assert outcomes is not None
        events = outcomes.events.get(item.id, ())
        horizon = when + within if within is not None else None
        target = [e for e in events if e.stage == definition.target]
        if any(e.at is not None and e.at <= when for e in target):
            counts["excluded_converted_before"] += 1
            continue
        counted = [e for e in events if e.at is None or horizon is None or e.at <= horizon]
        hits = [e for e in counted if e.stage == definition.target]
        positive = bool(hits)
        if not positive and horizon is not None and observed_until is not None and horizon > observed_until:
            counts["excluded_censored"] += 1
            continue
        stages = funnel.reached(e.stage for e in counted)
        amount = sum(e.amount for e in hits if e.amount is not None)
        cases.append(Case(as_seen_at(item, when, drop), when, positive, stages, amount))
    if outcomes is not None:
        rows = [(int(r.where.rpartition(":")[2] or 0), r) for r in outcomes.rejections]
        for lead_id, events in outcomes.events.items():
            if lead_id not in seen:
                for event in events:
                    rows.append((event.line, Rejection(f"{outcomes.source}:{event.line}",
                                                       f"no lead with id {lead_id!r} in {leads_label}; check the id "
                                                       f"(ids are case-sensitive)", lead_id)))
                    counts["outcome_rows_rejected"] += 1
        rejections.extend(r for _, r in sorted(rows, key=lambda item: item[0]))
    counts["evaluated"] = len(cases)
    counts["positives"] = sum(1 for c in cases if c.positive)
    counts["negatives"] = counts["evaluated"] - counts["positives"]
    # The stages the outcomes name (a stage only ever implied by a later one is not part of this funnel).
    named = {e.stage for events in outcomes.events.values() for e in events} if outcomes is not None else set()
    stages_shown = (("converted",) if label_field else
                    tuple(s for s in funnel.stages if s in named or s == definition.target))
    return Evaluation(tuple(cases), tuple(rejections), counts, definition, timing, stages_shown, observed_until)
