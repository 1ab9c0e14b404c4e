"""Decay arithmetic: a ledger line's factor at the scoring time, and its whole points after decay.

The curves themselves are plugins (``leadscore_decay_policies``; the built-ins live in
``default_plugins/decay``); this module only applies one to a line. A decayed line is
``round(raw × factor)`` with halves rounded away from zero, so ledgers add up exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadscore.model import age_days

DecayFn = Callable[[float], float]


def decayed(points: int, factor: float) -> int:
    """Whole points after decay, halves away from zero; never larger in size than ``points``."""
    whole = int(abs(points) * factor + 0.5)
    return whole if points >= 0 else -whole


def factor_at(fn: DecayFn | None, as_of: datetime, observed_at: datetime | None) -> float:
    """The factor of a line observed at ``observed_at``: 1.0 without a curve or a time; a line from
    after the scoring time counts as age 0."""
    if fn is None or observed_at is None:
        return 1.0
    age = age_days(as_of, observed_at)
    return fn(age if age > 0.0 else 0.0)
