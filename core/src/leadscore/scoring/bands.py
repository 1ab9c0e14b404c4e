"""Bands: the highest band whose ``min`` the total reaches and whose gate (``requires``) the lead meets.

A gate that holds a lead back is explained in a note ("sales_ready not reached despite 140
points: requires a business email"); the band by points alone is kept beside the band given.
"""

from __future__ import annotations

import math
from fractions import Fraction
from collections.abc import Mapping, Sequence
from typing import Any

from leadscore.rulepack.composer import ComposedPack
from leadscore.rulepack.schema import BandDef

# A share band no lead of the run can reach (there were no leads for its band set).
UNREACHABLE = 2**63 - 1


def choose_band(composed: ComposedPack, total: int, values: Mapping[str, Any],
                minimums: Sequence[int] | None = None) -> tuple[str, str, tuple[str, ...]]:
    """(band, band by points alone, notes on gates that held the lead back).

    ``minimums`` are the bands' thresholds for this run when some are shares of leads
    (:func:`share_thresholds`); otherwise each band's ``min``.
    """
    bands = composed.bands
    mins = minimums if minimums is not None else [band.min_points for band in bands]
    points_index = 0
    for index, threshold in enumerate(mins):
        if total >= threshold:
            points_index = index
    notes: list[str] = []
    for index in range(points_index, -1, -1):
        gate = composed.gates[index]
        if gate is None or gate(values):
            return bands[index].name, bands[points_index].name, tuple(notes)
        band = bands[index]
        notes.append(f"{band.name} not reached despite {total} points: requires {band.gate_reason}")
    return bands[0].name, bands[points_index].name, tuple(notes)


def share_thresholds(bands: Sequence[BandDef], totals: Sequence[int]) -> list[int]:
    """Each band's minimum for a run whose leads (of this band set) have ``totals``.

    A ``top N%`` band's minimum is the total of the k-th best lead, k = ceil(N/100 x leads) (at
    least 1): every lead with at least that total qualifies, so ties can make the band hold more
    than N%. With no leads the band is unreachable. Then, lowest band first, each minimum is
    raised to one above the band below when it is not already above it, so bands stay ordered.
    """
    ranked = sorted(totals, reverse=True)
    found: list[int] = []
    for band in bands:
        if band.share is None:
            value = band.min_points
        elif not ranked:
            value = UNREACHABLE
        else:
            # Exact arithmetic: 5% of 100 leads is 5 leads, not 5.000000000000001.
            k = max(1, math.ceil(Fraction(repr(band.share)) * len(ranked)))
            value = ranked[min(k, len(ranked)) - 1]
        if found and value <= found[-1]:
            value = found[-1] + 1
        found.append(value)
    return found


def band_key(bands: Sequence[Any]) -> tuple[Any, ...]:
    """One band set (the bands of the pack that supplies them), as a dict key (both engines key the
    minimums of "top N%" bands by it)."""
    return tuple((band.name, band.min_points, band.share) for band in bands)
