"""Caps: when a rule, a category or the total passes its limit, the difference is its own ledger line.

A cap never changes another line: it adds one (kind ``rule_cap``, ``category_cap`` or
``total_cap``) whose points bring the sum back to the limit, so the ledger still explains every
point. Frequency caps (``count = "once"``, ``max_count``) are lines of 0 points that say how many
matching activities were not counted; :mod:`.ledger` writes those.
"""

from __future__ import annotations

from collections.abc import Sequence

from leadscore.model import CATEGORY, POINTS, LedgerLine
from leadscore.rulepack.composer import ComposedPack


def cap_line(rule_id: str, category: str, points: int, reason: str, pack: str, kind: str,
             signal: str | None = None) -> LedgerLine:
    return (rule_id, category, points, reason, pack, kind, 0, "none", 1.0, signal, None, "")


def rule_cap(rule_id: str, category: str, pack: str, max_points: int | None, min_points: int | None,
             lines: Sequence[LedgerLine]) -> LedgerLine | None:
    """The line that holds one rule's ``lines`` to its ``max_points`` / ``min_points``, if one is needed."""
    got = sum(line[POINTS] for line in lines)
    if max_points is not None and got > max_points:
        return cap_line(rule_id, category, max_points - got, f"rule capped at {max_points} points (had {got})",
                        pack, "rule_cap")
    if min_points is not None and got < min_points:
        return cap_line(rule_id, category, min_points - got, f"rule floored at {min_points} points (had {got})",
                        pack, "rule_cap")
    return None


def apply_caps(composed: ComposedPack, ledger: list[LedgerLine]) -> tuple[list[tuple[str, int]], int]:
    """Append the category and total cap lines to ``ledger``; return (sub-scores in category order, total)."""
    sums: dict[str, int] = {c.name: 0 for c in composed.categories}
    for line in ledger:
        sums[line[CATEGORY]] = sums.get(line[CATEGORY], 0) + line[POINTS]
    pack = composed.key[-1]
    for cat in composed.categories:
        got = sums[cat.name]
        label = cat.label or cat.name
        if cat.max is not None and got > cat.max:
            ledger.append(cap_line(f"cap.{cat.name}", cat.name, cat.max - got,
                                   f"{label} capped at {cat.max} points (had {got})", pack, "category_cap"))
            sums[cat.name] = cat.max
        elif cat.min is not None and got < cat.min:
            ledger.append(cap_line(f"cap.{cat.name}", cat.name, cat.min - got,
                                   f"{label} floored at {cat.min} points (had {got})", pack, "category_cap"))
            sums[cat.name] = cat.min
    total = sum(sums.values())
    if composed.total_max is not None and total > composed.total_max:
        ledger.append(cap_line("cap.total", "total", composed.total_max - total,
                               f"total capped at {composed.total_max} points (had {total})", pack, "total_cap"))
        total = composed.total_max
    elif composed.total_min is not None and total < composed.total_min:
        ledger.append(cap_line("cap.total", "total", composed.total_min - total,
                               f"total floored at {composed.total_min} points (had {total})", pack, "total_cap"))
        total = composed.total_min
    return list(sums.items()), total
