"""Backtest: does the score rank the leads that converted? By band, rule, channel and funnel stage,
for the current packs and, side by side, a candidate.

The result is one JSON-ready dict (``BacktestResult.data``); the text summary and the HTML report
are renderings of it, so the CLI, the Python API and the report always show the same figures.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from leadscore import __version__
from leadscore.engine import Engine
from leadscore.model import Rejection
from leadscore.outcomes import metrics
from leadscore.outcomes.data import Case, Evaluation
from leadscore.outcomes.scoring import (
    BandInfo,
    RuleInfo,
    Scored,
    band_order,
    channel_namer,
    pack_names,
    rule_table,
    score_cases,
)

CAPTURE_SHARES = (0.05, 0.10, 0.20, 0.30)
CURVE_POINTS = 101
MIN_SUPPORT = 30


class BacktestResult:
    """A backtest's figures (``data``, JSON-ready) and every lead or row it could not use."""

    def __init__(self, data: dict[str, Any], rejections: Sequence[Rejection]) -> None:
        self.data = data
        self.rejections = tuple(rejections)

    def text(self) -> str:
        from leadscore.outcomes.text import backtest_text

        return backtest_text(self.data)

    def html(self) -> str:
        from leadscore.outcomes.report import backtest_html

        return backtest_html(self.data)


def run_backtest(evaluation: Evaluation, current: Engine, candidate: Engine | None = None, *,
                 bootstrap: int = 1000, seed: int = 7, channel_by: str = "source",
                 min_support: int = MIN_SUPPORT, run: dict[str, Any] | None = None) -> BacktestResult:
    """Score the evaluation set with ``current`` (and ``candidate``) and measure everything."""
    rejections = list(evaluation.rejections)
    scored_now, rejected_now, note_now = score_cases(current, evaluation.cases)
    scored_new: list[Scored | None] = [None] * len(evaluation.cases)
    note_new = ""
    if candidate is not None:
        scored_new, rejected_new, note_new = score_cases(candidate, evaluation.cases)
        rejected_ids = {r.lead_id for r in rejected_now}
        rejections.extend(r for r in rejected_new if r.lead_id not in rejected_ids)
    rejections.extend(rejected_now)
    # A lead either pack cannot score leaves the comparison, so both columns count the same leads.
    keep = [i for i in range(len(evaluation.cases))
            if scored_now[i] is not None and (candidate is None or scored_new[i] is not None)]
    cases = [evaluation.cases[i] for i in keep]
    counts = dict(evaluation.counts)
    counts["scoring_rejected"] = len(evaluation.cases) - len(keep)
    counts["evaluated"] = len(cases)
    counts["positives"] = sum(1 for c in cases if c.positive)
    counts["negatives"] = counts["evaluated"] - counts["positives"]
    trimmed = Evaluation(tuple(cases), tuple(rejections), counts, evaluation.definition, evaluation.timing,
                         evaluation.funnel_stages, evaluation.observed_until)
    trimmed.check_both_classes("backtest")

    first_time = cases[0].when
    namer = channel_namer(current, first_time)
    channels = [namer(c.lead.source) for c in cases]
    has_amounts = any(c.amount for c in cases)
    base_rate = counts["positives"] / counts["evaluated"]
    common = dict(cases=cases, channels=channels, stages=evaluation.funnel_stages, base_rate=base_rate,
                  bootstrap=bootstrap, seed=seed, channel_by=channel_by, has_amounts=has_amounts,
                  min_support=min_support)
    now = [scored_now[i] for i in keep]
    data: dict[str, Any] = {
        "leadscore_version": __version__,
        "run": dict(run or {}),
        "outcome": evaluation.definition.text(),
        "scoring_time": evaluation.timing.text(),
        "observed_until": evaluation.observed_until.isoformat() if evaluation.observed_until else None,
        "counts": counts,
        "base_rate": base_rate,
        "funnel_stages": list(evaluation.funnel_stages),
        "notes": [n for n in (note_now, note_new) if n],
        "current": _pack_figures(current, now, **common),  # type: ignore[arg-type]
        "candidate": None,
        "comparison": None,
    }
    if candidate is not None:
        new = [scored_new[i] for i in keep]
        data["candidate"] = _pack_figures(candidate, new, **common)  # type: ignore[arg-type]
        data["comparison"] = _comparison(cases, now, new, band_order(current.active_packs()),  # type: ignore[arg-type]
                                         band_order(candidate.active_packs()))
    return BacktestResult(clean(data), rejections)


def _pack_figures(engine: Engine, scored: list[Scored], *, cases: list[Case], channels: list[tuple[str, str]],
                  stages: Sequence[str], base_rate: float, bootstrap: int, seed: int, channel_by: str,
                  has_amounts: bool, min_support: int) -> dict[str, Any]:
    labels = np.array([c.positive for c in cases], dtype=bool)
    totals = np.array([s.total for s in scored], dtype=float)
    bands = _with_seen_bands(band_order(engine.active_packs()), scored)
    low, high = metrics.bootstrap_auc(totals, labels, bootstrap, seed)
    band_rows = _bands(bands, scored, cases, base_rate, has_amounts)
    return {
        "packs": pack_names(engine),
        "auc": {"value": metrics.auc(totals, labels), "low": low, "high": high, "resamples": bootstrap},
        "scores": _score_summary(totals),
        "bands": band_rows,
        "top_bottom": _top_bottom(band_rows),
        "capture": [{"top_share": share, "captured": value}
                    for share, value in zip(CAPTURE_SHARES, metrics.capture(totals, labels, CAPTURE_SHARES),
                                            strict=True)],
        "capture_curve": metrics.capture(totals, labels, [i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]),
        "calibration": _calibration(band_rows),
        "rules": _rules(rule_table(engine.active_packs()), scored, labels, min_support),
        "channels": _channels(cases, scored, channels, stages, channel_by, has_amounts),
        "funnel": _funnel(bands, scored, cases, stages),
        "fairness": _groups_by_sensitive_column(engine, bands, scored, cases, min_support),
    }


# The four-fifths rule (US EEOC Uniform Guidelines, 29 CFR 1607.4(D)): a group selected at less
# than 80% of the rate of the most selected group is evidence of adverse impact.
FOUR_FIFTHS = 0.8


def _groups_by_sensitive_column(engine: Engine, bands: list[BandInfo], scored: list[Scored], cases: list[Case],
                                min_support: int) -> list[dict[str, Any]]:
    """For each custom field in the data that names a protected attribute or proxy and that no rule
    reads: band shares, selection and conversion per value, and the disparate-impact ratio.

    A lead is "selected" when its band is at or above ``mql`` (or the middle band of packs without
    one): handed to sales. Values held by fewer than ``min_support`` leads are pooled.
    """
    from leadscore.rulepack.fairness import attributes_for, reads

    packs = engine.active_packs()
    attributes = attributes_for(packs)
    read = {signal for pack in packs for rule in pack.rules for signal in (rule.when.signals() if rule.when else ())}
    read |= {s for pack in packs for band in pack.bands if band.requires for s in band.requires.signals()}
    columns = sorted({key for case in cases for key in case.lead.fields})
    names = [b.name for b in bands]
    selected_from = names.index("mql") if "mql" in names else len(names) // 2
    out = []
    for column in columns:
        signal = f"fields.{column}"
        attribute = reads(signal, attributes)
        if attribute is None or signal in read:
            continue
        members: dict[str, list[int]] = {}
        for i, case in enumerate(cases):
            value = case.lead.fields.get(column)
            members.setdefault("(missing)" if value is None else str(value), []).append(i)
        pooled: dict[str, list[int]] = {}
        for value, idx in sorted(members.items()):
            key = value if len(idx) >= min_support else f"(values under {min_support} leads)"
            pooled.setdefault(key, []).extend(idx)
        groups = []
        for value, idx in pooled.items():
            in_band = Counter(scored[i].band for i in idx)
            chosen = sum(n for band, n in in_band.items() if band in names and names.index(band) >= selected_from)
            positives = sum(1 for i in idx if cases[i].positive)
            groups.append({"value": value, "leads": len(idx), "band_shares": {b: in_band.get(b, 0) / len(idx)
                                                                               for b in names},
                           "selected": chosen / len(idx), "conversion": _rate(positives, len(idx))})
        best = max(g["selected"] for g in groups)
        for g in groups:
            g["impact_ratio"] = g["selected"] / best if best else None
            g["flagged"] = g["impact_ratio"] is not None and g["impact_ratio"] < FOUR_FIFTHS
        out.append({"column": signal, "attribute": attribute.name, "why": attribute.why,
                    "selected_from": names[selected_from], "groups": groups})
    return out


def _with_seen_bands(bands: list[BandInfo], scored: list[Scored]) -> list[BandInfo]:
    """The packs' bands plus any band a card named that they do not list (a plugin's, say), on top."""
    known = {b.name for b in bands}
    extra = sorted({s.band for s in scored} - known)
    top = bands[-1].min_points if bands else 0
    return bands + [BandInfo(name, top + 1 + i) for i, name in enumerate(extra)]


def _rate(k: int, n: int) -> dict[str, Any]:
    low, high = metrics.wilson(k, n)
    return {"rate": k / n if n else None, "low": low, "high": high}


def _bands(bands: list[BandInfo], scored: list[Scored], cases: list[Case], base_rate: float,
           has_amounts: bool) -> list[dict[str, Any]]:
    total = len(scored)
    rows = []
    for band in bands:
        members = [i for i, s in enumerate(scored) if s.band == band.name]
        positives = sum(1 for i in members if cases[i].positive)
        rate = _rate(positives, len(members))
        row = {"band": band.name, "label": band.label, "min_points": band.min_points, "leads": len(members),
               "share": len(members) / total, "positives": positives, "conversion": rate["rate"],
               "low": rate["low"], "high": rate["high"],
               "lift": rate["rate"] / base_rate if rate["rate"] is not None and base_rate else None,
               "stated": band.observed_conversion}
        if has_amounts:
            row["revenue"] = sum(cases[i].amount for i in members)
        rows.append(row)
    return rows


def _top_bottom(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Conversion of the highest populated band over the lowest populated band."""
    filled = [r for r in rows if r["leads"]]
    if len(filled) < 2:
        return {"top": filled[-1]["band"] if filled else None, "bottom": None, "ratio": None,
                "note": "every lead is in one band, so bands do not separate anything"}
    top, bottom = filled[-1], filled[0]
    if not bottom["conversion"]:
        return {"top": top["band"], "bottom": bottom["band"], "ratio": None,
                "note": f"no lead in {bottom['band']} converted, so the ratio is unbounded"}
    return {"top": top["band"], "bottom": bottom["band"], "ratio": top["conversion"] / bottom["conversion"],
            "note": ""}


def _calibration(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each band's stated conversion (``observed_conversion`` in the pack) against what happened."""
    out = []
    for row in rows:
        if row["stated"] is None:
            continue
        within = None if row["conversion"] is None else bool(row["low"] <= row["stated"] <= row["high"])
        out.append({"band": row["band"], "stated": row["stated"], "observed": row["conversion"],
                    "low": row["low"], "high": row["high"], "leads": row["leads"], "within_interval": within})
    return out


def _score_summary(totals: np.ndarray) -> dict[str, Any]:
    most, count = Counter(totals.tolist()).most_common(1)[0]
    return {"min": float(totals.min()), "median": float(np.median(totals)), "max": float(totals.max()),
            "mean": float(totals.mean()), "distinct": int(len(np.unique(totals))),
            "most_common": most, "most_common_share": count / len(totals)}


def _rules(rules: list[RuleInfo], scored: list[Scored], labels: np.ndarray, min_support: int) -> list[dict[str, Any]]:
    """How often each rule fires, conversion when it fires vs not, and whether its sign fits the data."""
    n = len(scored)
    known = {r.id for r in rules}
    extra = sorted({rid for s in scored for rid in s.fired} - known)  # scorer lines outside the packs' rules
    rows = []
    for info in rules + [RuleInfo(rid, 0, "", "", "scorer") for rid in extra]:
        fires = np.array([info.id in s.fired for s in scored], dtype=bool)
        k1, n1 = int((labels & fires).sum()), int(fires.sum())
        k0, n0 = int((labels & ~fires).sum()), n - n1
        z = metrics.two_proportion_z(k1, n1, k0, n0)
        rows.append({"rule": info.id, "points": info.points, "category": info.category, "reason": info.reason,
                     "pack": info.pack, "fires": n1, "fire_share": n1 / n if n else 0.0,
                     "conversion_when_fires": k1 / n1 if n1 else None, "conversion_otherwise": k0 / n0 if n0 else None,
                     "z": z, "verdict": _verdict(info.points, k1, n1, k0, n0, z, min_support)})
    return rows


def _verdict(points: int, k1: int, n1: int, k0: int, n0: int, z: float, min_support: int) -> str:
    if n1 == 0:
        return "never fires"
    if n1 < min_support or n0 < min_support:
        return "too few leads"
    difference = k1 / n1 - k0 / n0
    if points == 0 or difference == 0:
        return "no effect"
    if (points > 0) == (difference > 0):
        return "agrees" if abs(z) >= metrics.Z95 else "agrees (not significant)"
    return "wrong way" if abs(z) >= metrics.Z95 else "wrong way (not significant)"


def _channels(cases: list[Case], scored: list[Scored], channels: list[tuple[str, str]], stages: Sequence[str],
              channel_by: str, has_amounts: bool) -> list[dict[str, Any]]:
    """The channel-quality table: leads, share reaching each stage, median score, conversion."""
    groups: dict[str, list[int]] = {}
    normalised: dict[str, set[str]] = {}
    for i, (source, channel) in enumerate(channels):
        key = source if channel_by == "source" else channel
        groups.setdefault(key, []).append(i)
        normalised.setdefault(key, set()).add(channel if channel_by == "source" else source)
    rows = []
    for key, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        positives = sum(1 for i in members if cases[i].positive)
        rate = _rate(positives, len(members))
        row = {"channel": key, "also": sorted(normalised[key]), "leads": len(members),
               "reached": {stage: sum(1 for i in members if stage in cases[i].stages) / len(members)
                           for stage in stages},
               "median_score": statistics.median(scored[i].total for i in members),
               "conversion": rate["rate"], "low": rate["low"], "high": rate["high"]}
        if has_amounts:
            row["revenue"] = sum(cases[i].amount for i in members)
        rows.append(row)
    return rows


def _funnel(bands: list[BandInfo], scored: list[Scored], cases: list[Case], stages: Sequence[str]) -> list[dict[str, Any]]:
    """Per band: how many leads reached each stage, and the conversion from each stage to the next."""
    rows = []
    for band in bands:
        members = [i for i, s in enumerate(scored) if s.band == band.name]
        reached = [len(members)] + [sum(1 for i in members if stage in cases[i].stages) for stage in stages]
        names = ["lead", *stages]
        rows.append({"band": band.name, "reached": dict(zip(names, reached, strict=True)),
                     "step_conversion": {f"{names[j]}->{names[j + 1]}": reached[j + 1] / reached[j] if reached[j] else None
                                         for j in range(len(stages))}})
    return rows


def _merged_order(current: list[BandInfo], candidate: list[BandInfo]) -> list[str]:
    """The current bands in order, with bands only the candidate has placed after their lower neighbour."""
    order = [b.name for b in current]
    previous = None
    for band in candidate:
        if band.name not in order:
            order.insert(order.index(previous) + 1 if previous in order else 0, band.name)
        previous = band.name
    return order


def _comparison(cases: list[Case], now: list[Scored], new: list[Scored], current_bands: list[BandInfo],
                candidate_bands: list[BandInfo]) -> dict[str, Any]:
    """The band transition matrix and the conversion of the leads that moved up, down or stayed."""
    order = _merged_order(_with_seen_bands(current_bands, now), _with_seen_bands(candidate_bands, new))
    rank = {name: i for i, name in enumerate(order)}
    cells: dict[tuple[str, str], list[int]] = {}
    movers: dict[str, list[int]] = {"up": [], "same": [], "down": []}
    for i, (a, b) in enumerate(zip(now, new, strict=True)):
        cells.setdefault((a.band, b.band), []).append(i)
        direction = "same" if rank[a.band] == rank[b.band] else ("up" if rank[b.band] > rank[a.band] else "down")
        movers[direction].append(i)
    rows_from = [name for name in order if any(a == name for a, _ in cells)]
    cols_to = [name for name in order if any(b == name for _, b in cells)]
    matrix = [{"from": a, "to": {b: {"leads": len(cells.get((a, b), [])),
                                     "positives": sum(1 for i in cells.get((a, b), []) if cases[i].positive)}
                                 for b in cols_to}} for a in rows_from]
    moved = {}
    for direction, members in movers.items():
        positives = sum(1 for i in members if cases[i].positive)
        moved[direction] = {"leads": len(members), "positives": positives, **_rate(positives, len(members))}
    return {"band_order": order, "from_bands": rows_from, "to_bands": cols_to, "matrix": matrix, "movers": moved}


def clean(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy numbers plain Python ones, tuples lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    return value

