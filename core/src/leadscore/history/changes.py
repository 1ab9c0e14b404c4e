"""What changed between two cards of a lead: the ledger lines that appeared, disappeared or decayed.

Lines are compared by rule (and kind: a cap is its own line); a rule that matched several
activities counts as one line with its points added up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen


@frozen
class LineChange:
    """One rule's part in a change of score; ``what`` is appeared, disappeared, decayed or changed."""

    rule_id: str
    kind: str
    what: str
    old_points: int
    new_points: int
    reason: str

    @property
    def delta(self) -> int:
        return self.new_points - self.old_points

    def text(self) -> str:
        sign = f"{self.delta:+d}"
        if self.what == "appeared":
            return f"{sign} {self.rule_id}: {self.reason} (new)"
        if self.what == "disappeared":
            return f"{sign} {self.rule_id}: {self.reason} (gone)"
        return f"{sign} {self.rule_id}: {self.reason} ({self.what} {self.old_points} -> {self.new_points})"

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "kind": self.kind, "what": self.what, "old_points": self.old_points,
                "new_points": self.new_points, "reason": self.reason}


def _summary(lines: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    """(rule id, kind) -> [points, raw points, reason]."""
    out: dict[tuple[str, str], list[Any]] = {}
    for line in lines:
        key = (line["rule_id"], line["kind"])
        entry = out.get(key)
        if entry is None:
            out[key] = [line["points"], line.get("raw_points", 0), line["reason"]]
        else:
            entry[0] += line["points"]
            entry[1] += line.get("raw_points", 0)
            if line["kind"] != "rule":
                entry[2] = line["reason"]
    return out


def ledger_changes(old: Iterable[Mapping[str, Any]] | None, new: Iterable[Mapping[str, Any]]) -> list[LineChange]:
    """The lines that differ between two ledgers (``old`` None: every line of ``new`` appeared).

    Largest change first, then by rule id. A line whose raw points stayed while its points fell
    ``decayed``; any other difference in points ``changed``.
    """
    before = _summary(old or ())
    after = _summary(new)
    changes: list[LineChange] = []
    for key in before.keys() | after.keys():
        rule_id, kind = key
        if key not in before:
            points, _, reason = after[key]
            if points:
                changes.append(LineChange(rule_id, kind, "appeared", 0, points, reason))
        elif key not in after:
            points, _, reason = before[key]
            if points:
                changes.append(LineChange(rule_id, kind, "disappeared", points, 0, reason))
        else:
            (old_points, old_raw, _), (new_points, new_raw, reason) = before[key], after[key]
            if old_points != new_points:
                what = "decayed" if new_raw == old_raw and abs(new_points) < abs(old_points) else "changed"
                changes.append(LineChange(rule_id, kind, what, old_points, new_points, reason))
    changes.sort(key=lambda c: (-abs(c.delta), c.rule_id, c.kind))
    return changes
