"""Drift: has the population being scored moved? PSI of the total and each sub-score, band share
change and per-rule firing rate change between a reference set of leads and a current one.

It needs no outcomes: it is the check a scheduled job runs between backtests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from leadscore import __version__
from leadscore.engine import Engine
from leadscore.model import Lead
from leadscore.outcomes import metrics
from leadscore.outcomes.backtesting import clean
from leadscore.outcomes.data import Case, ScoringTime, as_seen_at
from leadscore.outcomes.scoring import Scored, band_order, pack_names, rule_table, score_cases

PSI_THRESHOLD = 0.2
RATE_THRESHOLD = 0.05


class DriftResult:
    """Drift figures (``data``, JSON-ready); ``flagged`` is true when anything moved beyond a threshold."""

    def __init__(self, data: dict[str, Any], rejections: Sequence[Any]) -> None:
        self.data = data
        self.rejections = tuple(rejections)

    @property
    def flagged(self) -> bool:
        return bool(self.data["flagged"])

    def text(self) -> str:
        from leadscore.outcomes.text import drift_text

        return drift_text(self.data)


def cases_at(leads: Sequence[Lead], timing: ScoringTime) -> tuple[list[Case], list[Lead]]:
    """Each lead as seen at its scoring time (no outcome: ``positive`` is unused here); and the leads
    that have no scoring time."""
    cases, missing = [], []
    for lead in leads:
        when = timing.for_lead(lead)
        if when is None:
            missing.append(lead)
        else:
            cases.append(Case(as_seen_at(lead, when), when, False, frozenset()))
    return cases, missing


def run_drift(reference: Sequence[Case], current: Sequence[Case], engine: Engine, *, labels: tuple[str, str],
              psi_threshold: float = PSI_THRESHOLD, rate_threshold: float = RATE_THRESHOLD, bins: int = 10,
              run: dict[str, Any] | None = None, rejections: Sequence[Any] = ()) -> DriftResult:
    ref_scored, ref_rejected, _ = score_cases(engine, reference)
    cur_scored, cur_rejected, _ = score_cases(engine, current)
    ref = [s for s in ref_scored if s is not None]
    cur = [s for s in cur_scored if s is not None]
    if not ref or not cur:
        from leadscore.errors import InputError

        empty = labels[0] if not ref else labels[1]
        raise InputError("drift", f"no lead of the {empty} set could be scored", "check the leads and the scoring time")
    flagged: list[str] = []
    scores = []
    for name, pick in [("total", lambda s: s.total)] + [
            (f"sub-score {cat}", lambda s, c=cat: dict(s.subscores).get(c, 0))
            for cat in _categories(ref + cur)]:
        a = np.array([pick(s) for s in ref], dtype=float)
        b = np.array([pick(s) for s in cur], dtype=float)
        value = metrics.psi(a, b, bins)
        hit = value > psi_threshold
        if hit:
            flagged.append(f"{name} PSI {value:.3f}")
        scores.append({"name": name, "psi": value, "reference_mean": float(a.mean()), "current_mean": float(b.mean()),
                       "flagged": hit})
    ref_bands = Counter(s.band for s in ref)
    cur_bands = Counter(s.band for s in cur)
    bands = []
    order = [b.name for b in band_order(engine.active_packs())]
    order += sorted((set(ref_bands) | set(cur_bands)) - set(order))
    for band in order:
        r, c = ref_bands.get(band, 0) / len(ref), cur_bands.get(band, 0) / len(cur)
        hit = abs(c - r) > rate_threshold
        if hit:
            flagged.append(f"band {band} share {(c - r) * 100:+.1f} pts")
        bands.append({"band": band, "reference": r, "current": c, "change": c - r, "flagged": hit})
    band_psi = metrics.share_psi(dict(ref_bands), dict(cur_bands))
    rules = []
    for info in rule_table(engine.active_packs()):
        r = sum(1 for s in ref if info.id in s.fired) / len(ref)
        c = sum(1 for s in cur if info.id in s.fired) / len(cur)
        hit = abs(c - r) > rate_threshold
        if hit:
            flagged.append(f"rule {info.id} fires {(c - r) * 100:+.1f} pts")
        rules.append({"rule": info.id, "points": info.points, "reference": r, "current": c, "change": c - r,
                      "flagged": hit})
    data = {
        "leadscore_version": __version__, "run": dict(run or {}), "packs": pack_names(engine),
        "reference": {"label": labels[0], "leads": len(ref), "rejected": len(ref_rejected)},
        "current": {"label": labels[1], "leads": len(cur), "rejected": len(cur_rejected)},
        "thresholds": {"psi": psi_threshold, "rate": rate_threshold},
        "scores": scores, "bands": bands, "band_psi": band_psi, "rules": rules, "flagged": flagged,
    }
    return DriftResult(clean(data), [*rejections, *ref_rejected, *cur_rejected])


def _categories(scored: Sequence[Scored]) -> list[str]:
    seen: list[str] = []
    for s in scored:
        for name, _ in s.subscores:
            if name not in seen:
                seen.append(name)
    return seen
