"""Which packs read which activity types: for `leadscore activities` and the unknown-type warnings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from leadscore.rulepack.schema import PATTERN_OPS, Condition, Rulepack
from leadscore.taxonomy.activities import tier_table


def _condition_types(cond: Condition | None, tiers: Mapping[str, str]) -> set[str]:
    """Activity types a condition reads: ``activity.<type>.*``, ``intent.<tier>.*`` and patterns."""
    if cond is None:
        return set()
    found: set[str] = set()
    if cond.op in PATTERN_OPS and hasattr(cond.value, "types"):
        found.update(cond.value.types())
    where = getattr(cond.value, "where", None)
    if isinstance(where, Condition):
        found |= _condition_types(where, tiers)
    signal = cond.signal or ""
    parts = signal.split(".")
    if parts[0] == "activity" and len(parts) >= 3:
        found.add(parts[1])
    elif parts[0] == "intent" and len(parts) >= 3:
        tier = parts[1]
        if tier == "any":
            found.update(tiers)
        elif tier == "beyond_email":
            found.update(t for t, name in tiers.items() if name not in ("email", "negative"))
        else:
            found.update(t for t, name in tiers.items() if name == tier)
    for child in cond.children:
        found |= _condition_types(child, tiers)
    return found


def activity_uses(packs: Iterable[Rulepack], vocabulary: Mapping[str, Any]) -> dict[str, list[str]]:
    """Activity type -> the names of the packs that read it (in a rule's ``on`` or condition, a
    band's gate or ``applies_when``, directly, through its tier, or in a pattern)."""
    tiers = tier_table(vocabulary)
    uses: dict[str, set[str]] = {}
    for pack in packs:
        read: set[str] = _condition_types(pack.applies_when, tiers)
        for rule in pack.rules:
            read.update(rule.on)
            read |= _condition_types(rule.when, tiers)
        for band in pack.bands:
            read |= _condition_types(band.requires, tiers)
        for kind in read:
            uses.setdefault(kind, set()).add(pack.name)
    return {kind: sorted(names) for kind, names in uses.items()}


__all__ = ["activity_uses"]
