"""What packs read: activity types (for `leadscore activities`) and undeclared custom fields (for `check`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from attrs import frozen

from leadscore.rulepack.schema import CUSTOM_FIELDS, FIELDS_PREFIX, PATTERN_OPS, Condition, Rulepack
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


@frozen
class UndeclaredField:
    """A rule, gate or applies_when reading a custom field no loaded pack declares."""

    where: str
    subject: str
    signal: str
    hint: str

    def line(self) -> str:
        name = self.signal[len(FIELDS_PREFIX):]
        return (f"{self.where}: warning: {self.subject} reads {self.signal!r}, which no pack declares in [fields], "
                f"so check cannot tell a misspelling or a value of the wrong type; {self.hint}declare it, "
                f'e.g. [fields] {name} = "number" (or "str", "int", "bool")')


def undeclared_fields(packs: Sequence[Rulepack], vocabulary: Mapping[str, Any]) -> list[UndeclaredField]:
    """Every read of an undeclared ``fields.<name>`` in ``packs``, with a did-you-mean among the declared ones."""
    declared = sorted(vocabulary.get(CUSTOM_FIELDS, {}))
    found = []
    for pack in packs:
        subjects: list[tuple[str, int, Condition | None]] = [("applies_when", 1, pack.applies_when)]
        subjects += [(f"rule {rule.id!r}", rule.line, rule.when) for rule in pack.rules]
        subjects += [(f"band {band.name!r} requires", 1, band.requires) for band in pack.bands]
        for subject, start, cond in subjects:
            for signal in sorted(cond.signals()) if cond is not None else ():
                name = signal[len(FIELDS_PREFIX):]
                if signal.startswith(FIELDS_PREFIX) and name not in declared:
                    close = difflib.get_close_matches(name, declared, n=1)
                    hint = f"did you mean 'fields.{close[0]}'? or " if close else ""
                    found.append(UndeclaredField(pack.where(start, signal), subject, signal, hint))
    return found


__all__ = ["UndeclaredField", "activity_uses", "undeclared_fields"]
