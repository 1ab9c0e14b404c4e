"""The same lead id twice in one input: later copies rejected (the default) or merged into one lead.

Scoring a lead twice would give it two rows and, through its account, count it twice; so the
first copy is scored and each later one is a Rejection that says so, or, with ``merge``, the
copies become one lead (docs/maps.md, "Duplicates").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

from leadscore.caching import SeenHashes
from leadscore.model import EMPTY, Activities, Company, Lead, Rejection, evolve

DEDUPE_FIX = "each lead id once per input; pass --dedupe to merge the copies into one lead"


def reject_duplicates(items: Iterable[Lead | Rejection], label: str = "input") -> Iterator[Lead | Rejection]:
    """The first lead of each id; every later one becomes a Rejection naming the id.

    The ids met are kept as hashes in a compact table (:class:`~leadscore.caching.SeenHashes`): two
    different ids share a hash with a chance of about n^2 / 2^65 (1 in 37 million runs of a million
    leads); the later one would then be rejected as a duplicate, which says so.
    """
    seen = SeenHashes()
    for item in items:
        if isinstance(item, Lead) and not seen.add(item.id):
            yield Rejection(f"lead {item.id}", f"duplicate lead id {item.id!r}: an earlier row of {label} "
                            f"has it and was scored; {DEDUPE_FIX}", item.id)
            continue
        yield item


def duplicate_ids(items: Iterable[Lead | Rejection]) -> Counter[str]:
    """How many copies of each lead id that appears more than once (a first pass for :func:`merge_duplicates`)."""
    counts = Counter(item.id for item in items if isinstance(item, Lead))
    return Counter({lead_id: n for lead_id, n in counts.items() if n > 1})


def merge_duplicates(items: Iterable[Lead | Rejection], copies: Counter[str]) -> Iterator[Lead | Rejection]:
    """Leads whose id is in ``copies`` are held until their last copy, then given as one merged lead.

    Only the duplicated leads are held, so memory grows with them, not with the input.
    """
    held: dict[str, Lead] = {}
    left = dict(copies)
    for item in items:
        if not isinstance(item, Lead) or item.id not in left:
            yield item
            continue
        lead_id = item.id
        held[lead_id] = merge(held[lead_id], item) if lead_id in held else item
        left[lead_id] -= 1
        if left[lead_id] == 0:
            del left[lead_id]
            yield held.pop(lead_id)
    # Copies that were rejected by the reader never arrive: what was merged is still given.
    yield from held.values()


def merge(first: Lead, later: Lead) -> Lead:
    """Two copies of a lead as one: the later copy's values win where it has one, custom fields
    merge key by key, and activities are combined with exact repeats kept once."""
    values: dict[str, Any] = {}
    for field in attrs.fields(Lead):
        name = field.name
        if name in ("id", "company", "fields", "activities"):
            continue
        newer = getattr(later, name)
        values[name] = newer if newer is not None else getattr(first, name)
    company = Company(**{f.name: (getattr(later.company, f.name) if getattr(later.company, f.name) is not None
                                  else getattr(first.company, f.name)) for f in attrs.fields(Company)})
    fields = {**first.fields, **later.fields} or EMPTY
    seen: set[Any] = set()
    combined = []
    for activity in (*first.activities, *later.activities):
        key = (activity.type, activity.at, activity.id, tuple(sorted((k, repr(v)) for k, v in activity.properties.items())))
        if key not in seen:
            seen.add(key)
            combined.append(activity)
    combined.sort(key=lambda a: a.at)
    return evolve(first, company=company, fields=fields, activities=Activities.of(combined), **values)


__all__ = ["duplicate_ids", "merge", "merge_duplicates", "reject_duplicates"]
