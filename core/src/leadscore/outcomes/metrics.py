"""Ranking and conversion metrics for scores with many ties: AUC with a bootstrap interval, Wilson
intervals, capture (share of conversions in the top share of scores), PSI.

Points scores tie a lot (a whole pack may give most leads 0), so every metric here counts ties
as a random order would: half credit in the AUC, a proportional share at a capture cut-off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054


def auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
        weights: np.ndarray | None = None) -> float:
    """ROC AUC: the chance a converting lead outscores a non-converting one, ties counting half.

    ``weights`` (non-negative, e.g. bootstrap counts) weigh each lead; the result equals
    scikit-learn's ``roc_auc_score(labels, scores, sample_weight=weights)``.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    _, group = np.unique(s, return_inverse=True)
    return _auc_grouped(group, y, w)


def _auc_grouped(group: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """AUC from each lead's score group (groups numbered in ascending score order)."""
    size = int(group.max()) + 1 if len(group) else 0
    pos = np.bincount(group, weights=w * y, minlength=size)
    neg = np.bincount(group, weights=w * ~y, minlength=size)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos == 0 or total_neg == 0:
        return math.nan
    below = np.cumsum(neg) - neg  # negatives with a strictly lower score
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def bootstrap_auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
                  resamples: int = 1000, seed: int = 7, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC (leads resampled with replacement, seeded)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if resamples <= 0 or len(s) == 0:
        return math.nan, math.nan
    _, group = np.unique(s, return_inverse=True)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, len(s), len(s)), minlength=len(s)).astype(float)
        value = _auc_grouped(group, y, counts)
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound for small counts and for rates near 0 or 1)."""
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float:
    """z statistic of the difference between two rates (pooled); 0 when undefined."""
    if n1 == 0 or n2 == 0:
        return 0.0
    pooled = (k1 + k2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return 0.0 if spread == 0 else (k1 / n1 - k2 / n2) / spread


def capture(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray,
            shares: Sequence[float]) -> list[float]:
    """Share of all conversions among the top ``share`` of leads by score, for each share.

    Leads tied at the cut-off score count in proportion to the places left for them, as a random
    order among equal scores would on average.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    total = y.sum()
    if total == 0:
        return [math.nan for _ in shares]
    values, group = np.unique(-s, return_inverse=True)  # group 0 is the highest score
    count = np.bincount(group, minlength=len(values)).astype(float)
    pos = np.bincount(group, weights=y.astype(float), minlength=len(values))
    count_before = np.cumsum(count) - count
    pos_before = np.cumsum(pos) - pos
    out = []
    for share in shares:
        places = share * len(s)
        if places <= 0:
            out.append(0.0)
            continue
        if places >= len(s):
            out.append(1.0)
            continue
        g = int(np.searchsorted(np.cumsum(count), places, side="left"))
        taken = places - count_before[g]
        out.append(float((pos_before[g] + pos[g] * taken / count[g]) / total))
    return out


def psi(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10,
        floor: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``: sum((cur - ref) * ln(cur / ref)).

    A score that takes at most ``bins`` distinct values is compared value by value; otherwise the
    bins are the reference's deciles (distinct edges only). Each share is floored at ``floor`` so
    an empty bin does not divide by zero.
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return math.nan
    values = np.unique(np.concatenate((ref, cur)))
    if len(values) <= bins:
        ref_share = np.array([(ref == v).mean() for v in values])
        cur_share = np.array([(cur == v).mean() for v in values])
    else:
        inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate(([-np.inf], inner, [np.inf]))
        ref_share = np.histogram(ref, edges)[0] / len(ref)
        cur_share = np.histogram(cur, edges)[0] / len(cur)
    ref_share = np.maximum(ref_share, floor)
    cur_share = np.maximum(cur_share, floor)
    return float(((cur_share - ref_share) * np.log(cur_share / ref_share)).sum())


def share_psi(reference: dict[str, int], current: dict[str, int], floor: float = 1e-4) -> float:
    """PSI between two distributions over named categories (e.g. band shares)."""
    names = sorted(set(reference) | set(current))
    ref_total = sum(reference.values()) or 1
    cur_total = sum(current.values()) or 1
    total = 0.0
    for name in names:
        r = max(reference.get(name, 0) / ref_total, floor)
        c = max(current.get(name, 0) / cur_total, floor)
        total += (c - r) * math.log(c / r)
    return total
