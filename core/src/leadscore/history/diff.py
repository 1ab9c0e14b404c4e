"""What a pack change does to the pipeline before it is published: bands, routes and the lines behind them.

The same leads are scored under the old and the new packs; the report has the band transition
matrix, each band's change in volume, and every lead that changes band or route with the ledger
lines responsible. ``--fail-if`` gates turn it into a CI check.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from attrs import frozen

from leadscore.errors import ConfigurationError
from leadscore.history.changes import LineChange, ledger_changes
from leadscore.io.writers import contribution_to_dict
from leadscore.model import Lead, Rejection, ScoreCard


@frozen
class LeadDiff:
    lead_id: str
    old_band: str
    new_band: str
    old_total: int
    new_total: int
    old_route: str | None
    new_route: str | None
    lines: tuple[LineChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"lead_id": self.lead_id, "old_band": self.old_band, "new_band": self.new_band,
                "old_total": self.old_total, "new_total": self.new_total, "old_route": self.old_route,
                "new_route": self.new_route, "lines": [c.to_dict() for c in self.lines]}


@frozen
class DiffReport:
    bands: tuple[str, ...]
    leads: int
    rejected: int
    matrix: dict[tuple[str, str], int]
    changed: tuple[LeadDiff, ...]

    def volume(self, band: str) -> tuple[int, int]:
        old = sum(n for (a, _), n in self.matrix.items() if a == band)
        new = sum(n for (_, b), n in self.matrix.items() if b == band)
        return old, new

    def band_changes(self) -> int:
        return sum(1 for c in self.changed if c.old_band != c.new_band)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leads": self.leads, "rejected": self.rejected, "bands": list(self.bands),
            "matrix": [{"from": a, "to": b, "leads": n} for (a, b), n in sorted(self.matrix.items(), key=self._order)],
            "volume": {band: dict(zip(("old", "new"), self.volume(band))) for band in self.bands},
            "band_changes": self.band_changes(),
            "route_changes": sum(1 for c in self.changed if c.old_route != c.new_route),
            "changed": [c.to_dict() for c in self.changed],
        }

    def _order(self, item: tuple[tuple[str, str], int]) -> tuple[int, int]:
        (a, b), _ = item
        rank = {name: i for i, name in enumerate(self.bands)}
        return rank.get(a, len(rank)), rank.get(b, len(rank))


def _ledger(card: ScoreCard) -> list[dict[str, Any]]:
    return [contribution_to_dict(line) for line in card.ledger]


def compare(pairs: Iterable[tuple[ScoreCard | Rejection, ScoreCard | Rejection]], bands: Iterable[str]) -> DiffReport:
    """A report from (old, new) results of the same leads; ``bands`` orders the matrix (lowest first)."""
    matrix: Counter[tuple[str, str]] = Counter()
    changed: list[LeadDiff] = []
    leads = rejected = 0
    for old, new in pairs:
        if not isinstance(old, ScoreCard) or not isinstance(new, ScoreCard):
            rejected += 1
            continue
        leads += 1
        matrix[(old.band, new.band)] += 1
        old_route = old.route.action if old.route else None
        new_route = new.route.action if new.route else None
        if old.band != new.band or old_route != new_route:
            lines = tuple(c for c in ledger_changes(_ledger(old), _ledger(new)) if c.delta)
            changed.append(LeadDiff(old.lead_id, old.band, new.band, old.total, new.total, old_route, new_route,
                                    lines))
    order = list(dict.fromkeys(bands))
    for a, b in matrix:
        for name in (a, b):
            if name not in order:
                order.append(name)
    changed.sort(key=lambda c: c.lead_id)
    return DiffReport(tuple(order), leads, rejected, dict(matrix), tuple(changed))


def score_both(read: Callable[[], Iterable[Lead | Rejection]], old: Any, new: Any,
               as_of: datetime | None,
               shares: Callable[[str, list[tuple[str, str, int, int]]], None] | None = None,
               ) -> Iterator[tuple[ScoreCard | Rejection, ScoreCard | Rejection]]:
    """(old card, new card) for every lead ``read()`` gives; reads it again for each account pass
    and, for a side with "top N%" bands, once more to set their minimums from these leads (each
    side ranks the same leads under its own packs); ``shares("old"|"new", summary)`` hears them."""
    old_index = old.build_accounts(read(), as_of=as_of) if old.needs_accounts else None
    new_index = new.build_accounts(read(), as_of=as_of) if new.needs_accounts else None
    for side, engine, index in (("old", old, old_index), ("new", new, new_index)):
        if engine.needs_shares:
            summary = engine.resolve_shares(read(), as_of=as_of, accounts=index)
            if shares is not None:
                shares(side, summary)
    for item in read():
        if isinstance(item, Rejection):
            yield item, item
            continue
        yield next(old.score([item], as_of=as_of, accounts=old_index)), next(new.score([item], as_of=as_of,
                                                                                       accounts=new_index))


# --- gates ------------------------------------------------------------------------------------

_GATE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|>|<)\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")


@frozen
class Gate:
    """``BAND>+10%`` fails when the band's volume grows by more than 10%; ``changed>5%`` bounds the
    share of leads that change band; without ``%`` the number is a count of leads."""

    text: str
    subject: str
    op: str
    limit: float
    percent: bool

    def value(self, report: DiffReport) -> float:
        if self.subject == "changed":
            count = report.band_changes()
            return 100.0 * count / report.leads if self.percent and report.leads else float(count)
        old, new = report.volume(self.subject)
        if not self.percent:
            return float(new - old)
        if old == 0:
            return 0.0 if new == 0 else math.inf
        return 100.0 * (new - old) / old

    def failed(self, report: DiffReport) -> bool:
        value = self.value(report)
        return {">": value > self.limit, ">=": value >= self.limit, "<": value < self.limit,
                "<=": value <= self.limit}[self.op]

    def explain(self, report: DiffReport) -> str:
        value = self.value(report)
        shown = "new band" if math.isinf(value) else f"{value:+.1f}{'%' if self.percent else ''}"
        if self.subject == "changed":
            return f"--fail-if {self.text}: {report.band_changes()} of {report.leads} leads change band ({shown})"
        old, new = report.volume(self.subject)
        return f"--fail-if {self.text}: {self.subject} goes from {old} to {new} leads ({shown})"


def parse_gate(text: str, bands: Iterable[str] | None = None) -> Gate:
    match = _GATE.match(text)
    if match is None:
        raise ConfigurationError("--fail-if", f"{text!r} is not a gate",
                                 "write BAND>+10%, BAND<-5%, BAND>+25 (a count) or changed>5%")
    subject, op, number, percent = match.groups()
    known = set(bands or ())
    if known and subject != "changed" and subject not in known:
        raise ConfigurationError("--fail-if", f"{text!r} names no band of these packs",
                                 f"use one of: {', '.join(sorted(known))}, or changed")
    return Gate(text.strip(), subject, op, float(number), bool(percent))


def render(report: DiffReport, *, limit: int = 50) -> Iterator[str]:
    """The report as text for a terminal."""
    yield f"{report.leads} leads scored under both pack sets; {report.band_changes()} change band, " \
          f"{sum(1 for c in report.changed if c.old_route != c.new_route)} change route"
    if report.rejected:
        yield f"{report.rejected} leads could not be scored under one of them (left out)"
    yield ""
    width = max([len(b) for b in report.bands] + [8])
    yield "band transitions (rows: old band, columns: new band)"
    yield " " * (width + 2) + "".join(f"{b:>{width + 2}}" for b in report.bands)
    for a in report.bands:
        yield f"{a:<{width + 2}}" + "".join(f"{report.matrix.get((a, b), 0):>{width + 2}}" for b in report.bands)
    yield ""
    yield "volume by band"
    for band in report.bands:
        old, new = report.volume(band)
        pct = "" if old == 0 else f" ({100.0 * (new - old) / old:+.1f}%)"
        yield f"  {band:<{width}}  {old:>7} -> {new:<7} {new - old:+d}{pct}"
    if report.changed:
        yield ""
        yield "leads that change band or route, with the lines responsible"
        for change in report.changed[:limit]:
            route = "" if change.old_route == change.new_route else f", route {change.old_route} -> {change.new_route}"
            yield (f"  {change.lead_id}: {change.old_band} -> {change.new_band} "
                   f"({change.old_total} -> {change.new_total}{route})")
            for line in change.lines[:6]:
                yield f"      {line.text()}"
            if not change.lines:
                yield "      no ledger line changed: the band thresholds, gates or routing moved"
        if len(report.changed) > limit:
            yield f"  ... and {len(report.changed) - limit} more (--format json lists them all)"
