"""Bands: the highest band whose ``min`` the total reaches and whose gate (``requires``) the lead meets.

A gate that holds a lead back is explained in a note ("sales_ready not reached despite 140
points: requires a business email"); the band by points alone is kept beside the band given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadscore.rulepack.composer import ComposedPack


def choose_band(composed: ComposedPack, total: int, values: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(band, band by points alone, notes on gates that held the lead back)."""
    bands = composed.bands
    points_index = 0
    for index, band in enumerate(bands):
        if total >= band.min_points:
            points_index = index
    notes: list[str] = []
    for index in range(points_index, -1, -1):
        gate = composed.gates[index]
        if gate is None or gate(values):
            return bands[index].name, bands[points_index].name, tuple(notes)
        band = bands[index]
        notes.append(f"{band.name} not reached despite {total} points: requires {band.gate_reason}")
    return bands[0].name, bands[points_index].name, tuple(notes)
