"""Outcomes: does the score predict conversion? ``backtest``, ``calibrate`` and ``drift``.

These functions are what the ``leadscore backtest / calibrate / drift`` commands call, with the
same arguments, so the Python API and the command line give the same figures. They need the
``learn`` extra (``pip install 'leadscore[learn]'``); reading outcomes does not.

    from leadscore.outcomes import backtest
    result = backtest("leads.jsonl", "outcomes.csv", rulepacks=["firr-base"], score_at="created+7d")
    print(result.text())
    open("report.html", "w").write(result.html())
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.errors import ConfigurationError, InputError
from leadscore.io.timestamps import format_timestamp
from leadscore.model import Lead, Rejection
from leadscore.outcomes._learn import require
from leadscore.outcomes.data import (
    Case,
    Evaluation,
    Funnel,
    OutcomeDefinition,
    OutcomeTable,
    ScoringTime,
    as_seen_at,
    evaluation_set,
    load_funnel,
    read_outcomes,
)
from leadscore.plugins import PluginManager

if TYPE_CHECKING:
    from leadscore.engine import Engine
    from leadscore.outcomes.backtesting import BacktestResult
    from leadscore.outcomes.calibration import CalibrationResult
    from leadscore.outcomes.stability import DriftResult

Leads = str | os.PathLike[str] | Iterable[Lead | Rejection]
Outcomes = str | os.PathLike[str] | OutcomeTable | None


def _leads(leads: Leads, activities: str | os.PathLike[str] | None,
           input_format: str | None) -> tuple[Iterable[Lead | Rejection], str]:
    if isinstance(leads, (str, os.PathLike)):
        from leadscore.io import read_leads

        return read_leads(leads, activities=activities, fmt=input_format), os.fspath(leads)
    return leads, "leads"


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def prepare(leads: Leads, outcomes: Outcomes = None, *, target: str = "won", within_days: float | None = None,
            observed_until: datetime | None = None, label: str | None = None, score_at: str | None = None,
            as_of: datetime | None = None, funnel: Funnel | None = None, activities: str | os.PathLike[str] | None = None,
            input_format: str | None = None) -> Evaluation:
    """The evaluation set: each lead as seen at its scoring time, its label, and every rejection."""
    funnel = funnel or Funnel()
    if within_days is not None and within_days <= 0:
        raise ConfigurationError("--within", f"{within_days:g} days is not a window", "give a number of days above 0")
    timing = ScoringTime.parse(score_at, as_of)
    definition = OutcomeDefinition(target.strip().lower(), within_days, observed_until, label)
    table = read_outcomes(outcomes, funnel) if isinstance(outcomes, (str, os.PathLike)) else outcomes
    stream, name = _leads(leads, activities, input_format)
    return evaluation_set(stream, table, definition, timing, funnel, name)


def _engine(plugins: PluginManager | None, rulepacks: Sequence[str | Path] | None, backend: str) -> Engine:
    from leadscore.engine import Engine

    return Engine(plugins=plugins, rulepacks=list(rulepacks) if rulepacks else None, backend=backend)


def _run_info(leads: Leads, outcomes: Outcomes, rulepacks: Sequence[str | Path] | None, **extra: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"leads": os.fspath(leads) if isinstance(leads, (str, os.PathLike)) else "(in memory)",
                            "outcomes": (os.fspath(outcomes) if isinstance(outcomes, (str, os.PathLike))
                                         else getattr(outcomes, "source", None)),
                            "rulepacks": [os.fspath(r) for r in rulepacks] if rulepacks else None}
    info.update(extra)
    return info


def backtest(leads: Leads, outcomes: Outcomes = None, *, rulepacks: Sequence[str | Path] | None = None,
             candidate: Sequence[str | Path] | None = None, plugins: PluginManager | None = None, target: str = "won",
             within_days: float | None = None, observed_until: datetime | None = None, label: str | None = None,
             score_at: str | None = None, as_of: datetime | None = None, funnel: Funnel | None = None,
             activities: str | os.PathLike[str] | None = None, input_format: str | None = None,
             bootstrap: int = 1000, seed: int = 7, channel_by: str = "source", min_support: int = 30,
             backend: str = "python") -> BacktestResult:
    """Backtest ``rulepacks`` (default: every installed pack) against outcomes, and ``candidate`` beside it.

    ``leads`` is a path (JSON Lines or CSV, with ``activities`` as a CSV) or an iterable of Leads.
    ``outcomes`` is an outcomes file (``lead_id, stage[, at][, amount]``) or a read OutcomeTable;
    or pass ``label="fields.<name>"`` to read a 0/1 column of the leads instead. ``score_at``
    (``created``, ``created+7d``) or ``as_of`` fixes each lead's scoring time; nothing after it is
    seen. ``target`` and ``within_days`` define a conversion.
    """
    require()
    from leadscore.outcomes.backtesting import run_backtest

    if channel_by not in ("source", "channel"):
        raise ConfigurationError("--channel-by", f"{channel_by!r} is not a way to group channels", "use source or channel")
    if bootstrap < 0:
        raise ConfigurationError("--bootstrap", f"{bootstrap} resamples", "give 0 (no interval) or more, e.g. 1000")
    plugins = plugins if plugins is not None else PluginManager()
    evaluation = prepare(leads, outcomes, target=target, within_days=within_days, observed_until=observed_until,
                         label=label, score_at=score_at, as_of=as_of, funnel=funnel, activities=activities,
                         input_format=input_format)
    run = _run_info(leads, outcomes, rulepacks, candidate=[os.fspath(c) for c in candidate] if candidate else None,
                    channel_by=channel_by, seed=seed)
    with _engine(plugins, rulepacks, backend) as current:
        if candidate:
            with _engine(plugins, candidate, backend) as other:
                return run_backtest(evaluation, current, other, bootstrap=bootstrap, seed=seed, channel_by=channel_by,
                                    min_support=min_support, run=run)
        return run_backtest(evaluation, current, None, bootstrap=bootstrap, seed=seed, channel_by=channel_by,
                            min_support=min_support, run=run)


def calibrate(leads: Leads, outcomes: Outcomes = None, *, rulepacks: Sequence[str | Path] | None = None,
              plugins: PluginManager | None = None, target: str = "won", within_days: float | None = None,
              observed_until: datetime | None = None, label: str | None = None, score_at: str | None = None,
              as_of: datetime | None = None, funnel: Funnel | None = None,
              activities: str | os.PathLike[str] | None = None, input_format: str | None = None,
              discover: bool = False, min_support: int = 30, bands: str | None = None,
              band_conversion: str | None = None, keep_gates: bool = False,
              split_at: datetime | None = None, holdout: float = 0.3, seed: int = 7, baseline: bool = False,
              name: str | None = None, points_per_double: float = 20.0, bootstrap: int = 1000,
              backend: str = "python", now: datetime | None = None) -> CalibrationResult:
    """Fit the points of ``rulepacks`` (default: firr-base) from outcomes; return the fitted pack's TOML.

    ``discover`` proposes new rules from the leads' signals and ``fields.*``; ``bands`` sets band
    thresholds from target shares (``"sales_ready=5%,mql=20%,engaged=50%"``), or ``band_conversion``
    from conversion rates (``"sales_ready=50%,mql=25%,engaged=10%"``: each band starts where the
    conversion the training leads predict reaches its rate); else the packs' bands are kept. The split is by time (``split_at``, or the latest ``holdout`` share when leads
    have their own scoring times) or a seeded random ``holdout`` share. ``baseline`` also fits a
    gradient-boosting and a logistic model on the same features and split.
    """
    require()
    from leadscore.outcomes.calibration import run_calibrate

    if min_support < 1:
        raise ConfigurationError("--min-support", f"{min_support} leads", "give a whole number of leads, e.g. 30")
    plugins = plugins if plugins is not None else PluginManager()
    evaluation = prepare(leads, outcomes, target=target, within_days=within_days, observed_until=observed_until,
                         label=label, score_at=score_at, as_of=as_of, funnel=funnel, activities=activities,
                         input_format=input_format)
    sources: dict[str, str] = {}
    for key, path in (("leads", leads), ("outcomes", outcomes)):
        if isinstance(path, (str, os.PathLike)):
            sources[f"{key}_file"] = Path(path).name
            sources[f"{key}_sha256"] = _sha256(path)
    with _engine(plugins, list(rulepacks) if rulepacks else ["firr-base"], backend) as engine:
        return run_calibrate(evaluation, engine, plugins, discover=discover, min_support=min_support, bands=bands,
                             band_conversion=band_conversion, keep_gates=keep_gates, split_at=split_at, holdout=holdout, seed=seed, baseline=baseline,
                             name=name, points_per_double=points_per_double, backend=backend, sources=sources,
                             bootstrap=bootstrap, now=now)


def drift(reference: Leads, current: Leads | None = None, *, split_at: datetime | None = None,
          rulepacks: Sequence[str | Path] | None = None, plugins: PluginManager | None = None,
          score_at: str | None = None, as_of: datetime | None = None,
          activities: str | os.PathLike[str] | None = None,
          current_activities: str | os.PathLike[str] | None = None, input_format: str | None = None,
          psi_threshold: float = 0.2, rate_threshold: float = 0.05, bins: int = 10,
          backend: str = "python") -> DriftResult:
    """Compare the scores of ``reference`` and ``current`` leads (or of ``reference`` before and from
    ``split_at``, by ``created_at``); ``result.flagged`` is true when something moved past a threshold.

    ``activities`` is the activities CSV of ``reference``, ``current_activities`` that of ``current``.
    """
    require()
    from leadscore.outcomes.stability import cases_at, run_drift

    if (current is None) == (split_at is None):
        raise ConfigurationError("--current", "give either --current FILE or --split-at DATE",
                                 "e.g. --reference q1.jsonl --current q2.jsonl, "
                                 "or --reference all.jsonl --split-at 2026-04-01")
    if psi_threshold <= 0 or not 0 < rate_threshold < 1:
        raise ConfigurationError("--psi-threshold", "thresholds must be above 0 (rates below 1)",
                                 "e.g. --psi-threshold 0.2 --rate-threshold 0.05")
    if bins < 2:
        raise ConfigurationError("--bins", f"{bins} bins cannot show a shift", "use 2 or more, e.g. 10")
    timing = ScoringTime.parse(score_at, as_of)
    rejections: list[Rejection] = []

    def read(source: Leads, acts: str | os.PathLike[str] | None) -> list[Lead]:
        stream, _ = _leads(source, acts, input_format)
        out = []
        for item in stream:
            if isinstance(item, Rejection):
                rejections.append(item)
            else:
                out.append(item)
        return out

    ref_leads = read(reference, activities)
    if current is not None:
        cur_leads = read(current, current_activities)
        labels = (_label(reference), _label(current))
    else:
        assert split_at is not None
        undated = [lead for lead in ref_leads if lead.created_at is None]
        rejections.extend(Rejection(f"lead {lead.id}", "has no created_at, so --split-at cannot place it; add created_at",
                                    lead.id) for lead in undated)
        cur_leads = [lead for lead in ref_leads if lead.created_at is not None and lead.created_at >= split_at]
        ref_leads = [lead for lead in ref_leads if lead.created_at is not None and lead.created_at < split_at]
        stamp = format_timestamp(split_at)
        labels = (f"created before {stamp}", f"created from {stamp}")
    ref_cases, ref_missing = cases_at(ref_leads, timing)
    cur_cases, cur_missing = cases_at(cur_leads, timing)
    rejections.extend(Rejection(f"lead {lead.id}", timing.missing_reason(), lead.id) for lead in ref_missing + cur_missing)
    for cases, which in ((ref_cases, labels[0]), (cur_cases, labels[1])):
        if not cases:
            raise InputError("drift", f"no lead to score in the {which} set", "check the files and --split-at")
    run = {"reference": _label(reference), "current": _label(current) if current is not None else None,
           "split_at": format_timestamp(split_at) if split_at else None, "scoring_time": timing.text(),
           "rulepacks": [os.fspath(r) for r in rulepacks] if rulepacks else None}
    with _engine(plugins, rulepacks, backend) as engine:
        return run_drift(ref_cases, cur_cases, engine, labels=labels, psi_threshold=psi_threshold,
                         rate_threshold=rate_threshold, bins=bins, run=run, rejections=rejections)


def _label(source: Leads | None) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "(in memory)"


__all__ = [
    "Case", "Evaluation", "Funnel", "OutcomeDefinition", "OutcomeTable", "ScoringTime", "as_seen_at", "backtest",
    "calibrate", "drift", "evaluation_set", "load_funnel", "prepare", "read_outcomes",
]
