"""Outcome metrics against scikit-learn and against counting by hand, on synthetic scores with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from leadscore.outcomes import metrics


def _data(seed: int, n: int = 500, levels: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    # Integer points with many ties, higher for converting leads on average.
    scores = np.clip(np.round(rng.normal(3 + 2 * labels, 3)), -2, levels).astype(float)
    return scores, labels


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_scikit_learn_with_ties(seed: int) -> None:
    scores, labels = _data(seed)
    assert metrics.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_auc_matches_scikit_learn_sample_weight(seed: int) -> None:
    # Bootstrap intervals weigh leads by how often a resample drew them: the same sum scikit-learn does.
    scores, labels = _data(seed)
    weights = np.random.default_rng(seed + 100).integers(0, 4, len(scores)).astype(float)
    expected = roc_auc_score(labels, scores, sample_weight=weights)
    assert metrics.auc(scores, labels, weights) == pytest.approx(expected, abs=1e-12)


@given(st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=60))
@settings(max_examples=200, deadline=None)
def test_auc_matches_scikit_learn_on_any_input(rows: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in rows], dtype=float)
    labels = np.array([y for _, y in rows])
    if labels.all() or not labels.any():
        assert math.isnan(metrics.auc(scores, labels))
    else:
        assert metrics.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_every_lead_tied_is_exactly_chance() -> None:
    assert metrics.auc([0, 0, 0, 0], [True, False, True, False]) == 0.5


def test_bootstrap_interval_brackets_the_auc_and_is_reproducible() -> None:
    scores, labels = _data(1, n=800)
    value = metrics.auc(scores, labels)
    low, high = metrics.bootstrap_auc(scores, labels, resamples=300, seed=3)
    assert low < value < high
    assert high - low < 0.15
    assert metrics.bootstrap_auc(scores, labels, resamples=300, seed=3) == (low, high)
    # A percentile interval of resampled AUCs, each one scikit-learn's on the drawn leads.
    rng = np.random.default_rng(3)
    drawn = []
    for _ in range(300):
        counts = np.bincount(rng.integers(0, len(scores), len(scores)), minlength=len(scores)).astype(float)
        drawn.append(roc_auc_score(labels, scores, sample_weight=counts))
    assert (low, high) == pytest.approx(tuple(np.percentile(drawn, [2.5, 97.5])), abs=1e-12)


def test_capture_counts_ties_as_a_random_order_would() -> None:
    scores, labels = _data(2, n=300)
    rng = np.random.default_rng(0)
    shares = [0.05, 0.1, 0.2, 0.3]
    # Average over many random orders of the tied leads: the share of conversions in the top k.
    totals = np.zeros(len(shares))
    rounds = 3000
    for _ in range(rounds):
        order = np.lexsort((rng.random(len(scores)), -scores))
        for i, share in enumerate(shares):
            k = share * len(scores)
            whole = int(k)
            part = k - whole
            got = labels[order[:whole]].sum() + (labels[order[whole]] * part if part else 0)
            totals[i] += got / labels.sum()
    expected = totals / rounds
    assert metrics.capture(scores, labels, shares) == pytest.approx(list(expected), abs=0.01)


def test_capture_without_ties_is_a_plain_count() -> None:
    scores = np.arange(10, dtype=float)
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    assert metrics.capture(scores, labels, [0.2, 0.5, 1.0]) == [0.5, 0.75, 1.0]


def test_wilson_interval_known_values() -> None:
    # 8 of 10: the textbook Wilson 95% interval is [0.490, 0.943].
    low, high = metrics.wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert metrics.wilson(0, 20)[0] == 0.0
    assert metrics.wilson(20, 20)[1] == 1.0
    assert all(math.isnan(v) for v in metrics.wilson(0, 0))


def test_psi_is_zero_for_the_same_distribution_and_matches_the_formula() -> None:
    scores, _ = _data(4, n=1000, levels=40)
    assert metrics.psi(scores, scores) == pytest.approx(0.0, abs=1e-12)
    # Few distinct values: compared value by value.
    ref = np.array([0] * 50 + [10] * 30 + [20] * 20, dtype=float)
    cur = np.array([0] * 30 + [10] * 30 + [20] * 40, dtype=float)
    expected = sum((c - r) * math.log(c / r) for r, c in ((0.5, 0.3), (0.3, 0.3), (0.2, 0.4)))
    assert metrics.psi(ref, cur) == pytest.approx(expected)
    shifted = scores + 5
    assert metrics.psi(scores, shifted) > 0.2


def test_share_psi_of_band_counts() -> None:
    assert metrics.share_psi({"a": 50, "b": 50}, {"a": 50, "b": 50}) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert metrics.share_psi({"a": 5, "b": 5}, {"a": 8, "b": 2}) == pytest.approx(expected)


def test_two_proportion_z() -> None:
    assert metrics.two_proportion_z(50, 100, 50, 100) == 0.0
    assert metrics.two_proportion_z(70, 100, 30, 100) > 5
    assert metrics.two_proportion_z(0, 0, 3, 10) == 0.0
