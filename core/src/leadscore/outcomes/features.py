"""Features for calibration: each rule's post-decay activation, and candidate rules proposed from the
signals and ``fields.*`` columns of the training leads.

A candidate is a rulepack condition (written to TOML as it is) plus a Python test of the same
condition on a lead's signal values, so the fit sees exactly what the written rule will match.
Candidates are proposed from the training leads only: their support and bucket edges never look
at held-out data.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from attrs import frozen

from leadscore.model import ScoreCard

BUCKETS = 5
MAX_VALUES_PER_SIGNAL = 40
# Signals that name one lead or company rather than a kind of lead: rules on them would not carry over.
_NOT_PROPOSED = ("company.name", "company.domain", "email.domain", "title.text", "account.id")
_COUNT = re.compile(r"(^|\.)count(_\d+d)?$")
_SLUG = re.compile(r"[^a-z0-9]+")


def activations(card: ScoreCard) -> dict[str, float]:
    """Rule id -> the sum of its ledger lines' decay factors: how much of the rule's points it earned.

    A lead-level rule that matched is 1 (or its decay factor); a rule counted per activity adds one
    factor per counted activity. Scorer lines are not rules of a pack and are left out.
    """
    out: dict[str, float] = {}
    for line in card.ledger:
        if line.kind == "rule" and not line.pack.startswith("scorer:"):
            out[line.rule_id] = out.get(line.rule_id, 0.0) + line.decay_factor
    return out


@frozen
class Candidate:
    """A proposed rule: ``when`` is its TOML condition, ``test`` the same condition on signal values."""

    id: str
    signal: str
    when: Mapping[str, Any]
    text: str
    test: Callable[[Mapping[str, Any]], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality as the rule engine sees it: booleans never equal numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _slug(value: Any) -> str:
    text = _SLUG.sub("-", str(value).lower()).strip("-")
    return (text or "blank")[:40]


def _edge(value: float) -> str:
    return f"{value:g}".replace("-", "minus").replace("+", "")


def _nice(value: float, integral: bool) -> float | int:
    """A bucket edge a reviewer can read: whole numbers for whole-number data, else 4 significant digits."""
    if integral:
        return int(math.ceil(value))
    if value == 0:
        return 0.0
    digits = 3 - int(math.floor(math.log10(abs(value))))
    return float(round(value, digits))


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else f"{value:g}"


def propose(values: Sequence[Mapping[str, Any]], min_support: int) -> list[Candidate]:
    """Candidate rules from the training leads' signal values (``values[i]``: signal name -> value).

    Categorical values (strings, booleans, numbers with few values) with at least ``min_support``
    leads get an ``eq`` rule; other numbers get quantile buckets (and activity counts ``gte``
    thresholds); a signal missing on enough leads gets an ``exists = false`` rule. A candidate
    must leave at least ``min_support`` leads on each side.
    """
    n = len(values)
    names = sorted({name for row in values for name in row})
    out: list[Candidate] = []
    for name in names:
        if name in _NOT_PROPOSED:
            continue
        column = [row.get(name) for row in values]
        present = [v for v in column if v is not None]
        if not present or any(isinstance(v, (datetime, list, tuple, dict)) for v in present):
            continue
        distinct = Counter((type(v) is bool, v) for v in present)
        if len(distinct) < 2 and len(present) == n:
            continue  # the same value on every lead says nothing
        numeric = all(_is_number(v) for v in present)
        if numeric and _COUNT.search(name):
            out.extend(_count_thresholds(name, present, n, min_support))
        elif numeric and len(distinct) > 6:
            out.extend(_buckets(name, present, min_support, n))
        else:
            out.extend(_categories(name, distinct, min_support, n))
        missing = n - len(present)
        if missing >= min_support and len(present) >= min_support and not _COUNT.search(name):
            out.append(Candidate(f"learned.{name}.missing", name, {"signal": name, "exists": False},
                                 f"{name} is missing", lambda row, s=name: s not in row))
    return out


def _categories(name: str, distinct: Counter, min_support: int, n: int) -> list[Candidate]:
    out = []
    for (_, value), count in distinct.most_common(MAX_VALUES_PER_SIGNAL):
        if count < min_support or n - count < min_support:
            continue
        out.append(Candidate(f"learned.{name}.{_slug(value)}", name, {"signal": name, "eq": value},
                             f"{name} = {_show(value)}",
                             lambda row, s=name, v=value: s in row and _same(row[s], v)))
    return out


def _buckets(name: str, present: list[Any], min_support: int, n: int) -> list[Candidate]:
    integral = all(float(v).is_integer() for v in present)
    qs = np.quantile(np.array(present, dtype=float), np.linspace(0, 1, BUCKETS + 1)[1:-1])
    edges = sorted({_nice(q, integral) for q in qs})
    edges = [e for e in edges if min(present) < e <= max(present)]
    out = []
    bounds = [None, *edges, None]
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        if low is None and high is None:
            continue
        if low is None:
            when: dict[str, Any] = {"signal": name, "lt": high}
            text = f"{name} < {high:g}"
        elif high is None:
            when = {"signal": name, "gte": low}
            text = f"{name} >= {low:g}"
        else:
            when = {"all": [{"signal": name, "gte": low}, {"signal": name, "lt": high}]}
            text = f"{low:g} <= {name} < {high:g}"
        count = sum(1 for v in present if (low is None or v >= low) and (high is None or v < high))
        if count < min_support or n - count < min_support:
            continue
        rid = (f"learned.{name}.under_{_edge(high)}" if low is None else
               f"learned.{name}.{_edge(low)}_up" if high is None else f"learned.{name}.{_edge(low)}_to_{_edge(high)}")
        out.append(Candidate(rid, name, when, text,
                             lambda row, s=name, lo=low, hi=high: s in row and _is_number(row[s])
                             and (lo is None or row[s] >= lo) and (hi is None or row[s] < hi)))
    return out


def _count_thresholds(name: str, present: list[Any], n: int, min_support: int) -> list[Candidate]:
    """``count >= k`` for k = 1 and the quartiles of the non-zero counts (a missing count is 0)."""
    nonzero = [v for v in present if v > 0]
    if not nonzero:
        return []
    ks = sorted({1, *(int(math.ceil(q)) for q in np.quantile(np.array(nonzero, dtype=float), [0.25, 0.5, 0.75]))})
    out = []
    for k in ks:
        count = sum(1 for v in nonzero if v >= k)
        if count < min_support or n - count < min_support:
            continue
        out.append(Candidate(f"learned.{name}.{k}_or_more", name, {"signal": name, "gte": k}, f"{name} >= {k}",
                             lambda row, s=name, kk=k: s in row and _is_number(row[s]) and row[s] >= kk))
    return out


def matrix(candidates: Sequence[Candidate], values: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """0/1 matrix: lead i meets candidate j."""
    out = np.zeros((len(values), len(candidates)))
    for j, candidate in enumerate(candidates):
        test = candidate.test
        out[:, j] = [1.0 if test(row) else 0.0 for row in values]
    return out


def raw_numbers(values: Sequence[Mapping[str, Any]], names: Sequence[str]) -> np.ndarray:
    """Each named signal as a number (NaN when missing or not a number): the baselines' raw inputs.

    Signals that are never numbers come out as all-NaN columns, which the baselines ignore.
    """
    out = np.full((len(values), len(names)), np.nan)
    for j, name in enumerate(names):
        for i, row in enumerate(values):
            value = row.get(name)
            if _is_number(value) or isinstance(value, bool):
                out[i, j] = float(value)
    return out
