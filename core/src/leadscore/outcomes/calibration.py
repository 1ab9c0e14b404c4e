"""Calibrate: fit an explainable points model from outcomes and write it as an ordinary rulepack.

The model is a regularised logistic regression whose features are the packs' rules (each rule's
post-decay activation) and, with ``discover``, candidate rules proposed from the training leads.
Points are the coefficients on a fixed scale: ``points_per_double`` points double the odds of
converting. The fitted pack is scored by the real engine on held-out leads, and those figures
(AUC, each band's conversion) are what the pack records, not the regression's own.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import tempfile
import tomllib
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from threadpoolctl import threadpool_limits

from leadscore import __version__
from leadscore.engine import Engine
from leadscore.errors import ConfigurationError, InputError
from leadscore.io.timestamps import format_timestamp
from leadscore.model import Rejection
from leadscore.outcomes import features, metrics
from leadscore.outcomes.backtesting import clean
from leadscore.outcomes.data import Case, Evaluation
from leadscore.outcomes.scoring import score_cases
from leadscore.plugins import PluginManager
from leadscore.rulepack import fairness
from leadscore.rulepack.schema import Rulepack

DEFAULT_BANDS = "sales_ready=5%,mql=20%,engaged=50%"
EXAMPLE_BAND_CONVERSION = "sales_ready=50%,mql=25%,engaged=10%"
POINTS_PER_DOUBLE = 20
_BAND_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
CS = tuple(float(c) for c in np.logspace(-3, 1, 9))
FOLDS = 5
# Keys a fitted rule drops: its points now come from the data, so hand-set caps no longer apply.
_RULE_CAPS = ("max_points", "min_points")


class CalibrationResult:
    """A fitted pack (``toml``, ready to write), the figures behind it (``data``, JSON-ready), every
    lead or row that could not be used, and the ids of the held-out leads (to backtest on them)."""

    def __init__(self, toml: str, data: dict[str, Any], rejections: Sequence[Rejection] = (),
                 heldout_ids: Sequence[str] = ()) -> None:
        self.toml = toml
        self.data = data
        self.rejections = tuple(rejections)
        self.heldout_ids = tuple(heldout_ids)

    def text(self) -> str:
        from leadscore.outcomes.text import calibrate_text

        return calibrate_text(self.data)


def _named_values(spec: str, option: str, what: str, fix: str) -> list[tuple[str, float]]:
    """``"a=5%,b=0.2"`` -> [("a", 0.05), ("b", 0.2)]: each value a share strictly between 0 and 1, each
    name a valid band name given once; anything else is one ConfigurationError naming ``option``."""
    out: list[tuple[str, float]] = []
    for part in spec.split(","):
        name, sep, raw = part.strip().partition("=")
        name, raw = name.strip(), raw.strip()
        try:
            value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
        except ValueError:
            value = math.nan
        if not sep or not name or math.isnan(value):
            raise ConfigurationError(option, f"{part.strip()!r} is not name={what}", fix)
        if not 0 < value < 1:
            raise ConfigurationError(option, f"{part.strip()!r}: a {what} must be above 0% and below 100%", fix)
        out.append((name, value))
    names = [n for n, _ in out]
    for band in names:
        if not _BAND_NAME.match(band):
            raise ConfigurationError(option, f"{band!r} is not a valid band name",
                                     "use lower case letters, digits, '-', '_' or '.'")
    if len(set(names)) != len(names):
        raise ConfigurationError(option, "a band is named twice", "name each band once")
    return out


def parse_bands(spec: str) -> list[tuple[str, float]]:
    """``"sales_ready=5%,mql=20%,engaged=50%"`` -> [(name, share of leads in that band or above)], top first."""
    out = _named_values(spec, "--bands", "share",
                        f"write names with the share of leads in that band or above, e.g. {DEFAULT_BANDS}")
    shares = [s for _, s in out]
    if len(set(shares)) != len(shares):
        raise ConfigurationError("--bands", "two bands have the same share", "give each band its own share")
    return sorted(out, key=lambda item: item[1])


def parse_band_conversion(spec: str, bands: Sequence[str], packs: str = "the packs") -> list[tuple[str, float]]:
    """``"sales_ready=50%,mql=25%,engaged=10%"`` -> [(name, conversion rate at which the band starts)],
    lowest band first.

    ``bands`` are the band names of ``packs`` (named in messages), lowest first. Only those above the lowest can be named (the
    lowest takes every lead below the others), and a higher band must start at a higher rate: a
    misspelt name or a swapped pair would otherwise write a pack whose bands mean something else.
    """
    out = _named_values(spec, "--band-conversion", "rate",
                        f"write each band with the conversion at which it starts, e.g. {EXAMPLE_BAND_CONVERSION}")
    lowest, above = bands[0], list(bands[1:])
    for band, _ in out:
        if band == lowest:
            raise ConfigurationError("--band-conversion", f"{band!r} is the lowest band, which takes every lead "
                                     "below the others", "name only the bands above it")
        if band not in above:
            raise ConfigurationError("--band-conversion", f"{band!r} is not a band of {packs}",
                                     f"name bands above {lowest!r}: {', '.join(above) or '(the packs have none)'}")
    out.sort(key=lambda item: above.index(item[0]))
    for (low, low_rate), (high, high_rate) in zip(out, out[1:]):
        if high_rate <= low_rate:
            raise ConfigurationError("--band-conversion",
                                     f"{high} is above {low} but starts at {_percent(high_rate)}, not above "
                                     f"{low}'s {_percent(low_rate)}", "give each band a higher rate than the bands below it")
    return out


def split_cases(cases: Sequence[Case], split_at: datetime | None, holdout: float,
                seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A boolean mask of held-out cases and a description of the split.

    With ``split_at``, leads scored at or after it are held out. Otherwise, when the leads have
    their own scoring times, the latest ``holdout`` share is held out (a time split: the model is
    judged on leads that came after the ones it learnt from); when they share one scoring time, a
    seeded random ``holdout`` share of each class is held out.
    """
    if not 0 < holdout < 1:
        raise ConfigurationError("--holdout", f"{holdout:g} is not a share between 0 and 1", "e.g. --holdout 0.3")
    times = [c.when for c in cases]
    if split_at is None and len(set(times)) > 1:
        ordered = sorted(times)
        split_at = ordered[min(len(ordered) - 1, int(len(ordered) * (1 - holdout)))]
        how = "time"
    else:
        how = "time" if split_at is not None else "random"
    if how == "time":
        assert split_at is not None
        test = np.array([t >= split_at for t in times])
        detail = {"kind": "time", "split_at": format_timestamp(split_at)}
    else:
        rng = np.random.default_rng(seed)
        labels = np.array([c.positive for c in cases])
        test = np.zeros(len(cases), dtype=bool)
        for value in (True, False):
            members = np.flatnonzero(labels == value)
            chosen = rng.permutation(members)[: int(round(holdout * len(members)))]
            test[chosen] = True
        detail = {"kind": "random", "holdout": holdout, "seed": seed}
    labels = np.array([c.positive for c in cases])
    for name, mask in (("training", ~test), ("held-out", test)):
        k, n = int(labels[mask].sum()), int(mask.sum())
        if k == 0 or k == n:
            what = "no leads" if n == 0 else ("no conversions" if k == 0 else "only conversions")
            raise InputError("calibrate",
                             f"the {name} part of the split has {what} ({n} leads; split {_split_text(detail)})",
                             "move --split-at or change --holdout so both parts have conversions and non-conversions")
    return test, detail


def _split_text(detail: Mapping[str, Any]) -> str:
    if detail["kind"] == "time":
        return f"by time at {detail['split_at']}"
    return f"random {detail['holdout']:.0%} held out, seed {detail['seed']}"


def _fit(x: np.ndarray, y: np.ndarray, l1: bool, seed: int, cs: Sequence[float] = CS) -> tuple[np.ndarray, float, float]:
    """Coefficients, intercept and C of a regularised logistic regression, C chosen by 5-fold
    cross-validation on the given (training) leads.

    The L1 fit selects features, so its C is the one with the best held-out-fold AUC; the L2 fit
    gives the points, so its C is the one with the best held-out-fold log loss: AUC ignores the
    scale of the coefficients, and the points' scale (points per doubling of the odds) must hold.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def model(c: float) -> Any:
        return LogisticRegression(C=c, l1_ratio=1.0 if l1 else 0.0, solver="liblinear", max_iter=2000,
                                  random_state=seed)

    def quality(fitted: Any, xs: np.ndarray, ys: np.ndarray) -> float:
        if l1:
            return metrics.auc(fitted.decision_function(xs), ys)
        p = np.clip(fitted.predict_proba(xs)[:, 1], 1e-12, 1 - 1e-12)
        return float(np.mean(ys * np.log(p) + (1 - ys) * np.log(1 - p)))

    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(x, y))
    best_c, best = cs[-1], -math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for c in cs:
            mean = float(np.mean([quality(model(c).fit(x[train], y[train]), x[test], y[test]) for train, test in folds]))
            if mean > best + 1e-9:
                best_c, best = c, mean
        final = model(best_c).fit(x, y)
    return final.coef_[0], float(final.intercept_[0]), best_c


def share_ratio(scores: np.ndarray, labels: np.ndarray, top: float, bottom: float) -> float | None:
    """Conversion of the top ``top`` share of leads by score over that of the bottom ``bottom`` share
    (ties counted proportionally): what bands with those shares would show for these scores."""
    high, rest = metrics.capture(scores, labels, [top, 1 - bottom])
    positives, n = float(labels.sum()), len(labels)
    top_rate = high * positives / (top * n)
    bottom_rate = (1 - rest) * positives / (bottom * n)
    return top_rate / bottom_rate if bottom_rate else None


def _baselines(x: np.ndarray, raw: np.ndarray, y: np.ndarray, test: np.ndarray, seed: int,
               shares: tuple[float, float] | None) -> dict[str, float | None]:
    """Held-out AUC of a gradient-boosting and a logistic model trained on the same features and split.

    The logistic model takes the rule and candidate columns, unrounded and unselected; gradient
    boosting takes them plus each proposed signal's raw number, so it can find its own cut points.
    Both use their library defaults (the logistic C is chosen by cross-validation on training leads).
    With ``shares`` (top band share, bottom band share), also the gradient-boosting model's top/bottom
    conversion ratio at those shares.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Raw columns with fewer than two values among the training leads carry nothing (and an all-NaN
    # column cannot be binned).
    useful = [j for j in range(raw.shape[1]) if len(np.unique(raw[~test, j][~np.isnan(raw[~test, j])])) > 1]
    both = np.hstack([x, raw[:, useful]]) if useful else x
    gbm = HistGradientBoostingClassifier(random_state=seed).fit(both[~test], y[~test])
    coef, intercept, _ = _fit(x[~test], y[~test], l1=False, seed=seed)
    logistic = x[test] @ coef + intercept
    predicted = gbm.predict_proba(both[test])[:, 1]
    out: dict[str, float | None] = {"gradient_boosting": metrics.auc(predicted, y[test]),
                                    "logistic": metrics.auc(logistic, y[test])}
    if shares is not None:
        out["gradient_boosting_top_bottom"] = share_ratio(predicted, y[test], *shares)
        out["top_bottom_shares"] = list(shares)
    return out


def _merged(packs: Sequence[Rulepack]) -> dict[str, Any]:
    """The packs' TOML merged the way composition merges them: rules by id (later packs replace in
    place, ``disable`` removes), categories and decays by name, bands, routing and accounts whole
    from the most specific pack that has them; vocabularies, ``[actions]`` and ``[fairness]`` are
    unions. ``[total]`` is not carried: a fitted pack's points are not capped."""
    merged: dict[str, Any] = {"rules": {}, "categories": {}, "decay": {}, "vocabulary": {}, "bands": [],
                              "routing": {}, "accounts": {}, "scorers": [], "actions": {}, "fairness": {}}
    disabled: set[str] = set()
    for pack in packs:
        data = tomllib.loads(pack.text)
        for rule in data.get("rules", []):
            merged["rules"][rule["id"]] = dict(rule)
        merged["categories"].update(data.get("categories", {}))
        merged["decay"].update(data.get("decay", {}))
        _merge_vocabulary(merged["vocabulary"], data.get("vocabulary", {}))
        _merge_tables(merged["actions"], data.get("actions", {}))
        _merge_tables(merged["fairness"], data.get("fairness", {}))
        for key in ("bands", "routing", "accounts"):
            if data.get(key):
                merged[key] = data[key]
        for scorer in data.get("pack", {}).get("scorers", ["rules"]):
            if scorer not in merged["scorers"]:
                merged["scorers"].append(scorer)
        disabled.update(data.get("pack", {}).get("disable", []))
    merged["rules"] = {rid: rule for rid, rule in merged["rules"].items() if rid not in disabled}
    return merged


def _merge_tables(into: dict[str, Any], table: Mapping[str, Any]) -> None:
    """``[actions]`` and ``[fairness]`` merge across packs: lists are unions (in order), tables update."""
    for key, value in table.items():
        if isinstance(value, list):
            into[key] = [*into.get(key, []), *(v for v in value if v not in into.get(key, []))]
        elif isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        else:
            into[key] = value


def _merge_vocabulary(into: dict[str, Any], vocab: Mapping[str, Any]) -> None:
    for key, value in vocab.items():
        if isinstance(value, list):
            into[key] = [*into.get(key, []), *(v for v in value if v not in into.get(key, []))]
        elif isinstance(value, dict):
            table = into.setdefault(key, {})
            for sub, item in value.items():
                if isinstance(item, list) and isinstance(table.get(sub), list):
                    table[sub] = [*table[sub], *(v for v in item if v not in table[sub])]
                else:
                    table[sub] = item
        else:
            into[key] = value


def _category(points: int, signal: str) -> str:
    if points < 0:
        return "negative"
    return "intent" if signal.startswith(("activity.", "intent.")) else "fit"


def _rate_text(k: int, n: int, base: float) -> str:
    return f"{k / n:.0%} of {n} training leads converted (all: {base:.0%})"


def _unique_id(rid: str, taken: set[str]) -> str:
    out, number = rid, 2
    while out in taken:
        out, number = f"{rid}_{number}", number + 1
    taken.add(out)
    return out


def _fingerprint(cases: Sequence[Case], x: np.ndarray) -> str:
    """A hash of what was fitted: each lead's id, scoring time and label, and the feature matrix."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(f"{case.lead.id}\t{format_timestamp(case.when)}\t{int(case.positive)}\n".encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    return "sha256:" + digest.hexdigest()


def _thresholds(totals: np.ndarray, spec: list[tuple[str, float]]) -> list[tuple[str, int]]:
    """Each named band's ``min``: the score at which the share of leads at or above it is closest to
    its target share; mins strictly increase from lower to higher bands."""
    distinct = np.unique(totals)
    share_at = {int(v): float((totals >= v).mean()) for v in distinct}
    out: list[tuple[str, int]] = []
    previous: int | None = None
    for name, share in sorted(spec, key=lambda item: -item[1]):  # lowest band (largest share) first
        best = min(share_at, key=lambda v: (abs(share_at[v] - share), -v))
        if previous is not None and best <= previous:
            best = previous + 1
        out.append((name, best))
        previous = best
    return out


def _percent(rate: float) -> str:
    return f"{rate * 100:g}%"


def conversion_curve(totals: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(intercept, slope) of ``logit P(convert) = intercept + slope * total``: a logistic regression of
    conversion on the pack's total over the given (training) leads.

    The fitted points already are log-odds on a fixed scale, less the intercept; two parameters
    refitted on the total restore the intercept and absorb what rounding, unfitted rules and
    regularisation did to the scale. The curve rises strictly with the total, so each rate has one
    score where it is reached.
    """
    from sklearn.linear_model import LogisticRegression

    spread = float(totals.std())
    if spread == 0:
        raise InputError("calibrate", f"every training lead has the same total ({totals[0]:g} points), so no score "
                         "marks a conversion rate", "use --bands with shares, or add rules that tell leads apart")
    centre = float(totals.mean())
    model = LogisticRegression(C=math.inf, max_iter=1000).fit(((totals - centre) / spread)[:, None], labels)
    slope = float(model.coef_[0][0]) / spread
    intercept = float(model.intercept_[0]) - slope * centre
    if slope <= 0:
        raise InputError("calibrate", "on the training leads, conversion does not rise with the fitted pack's total, "
                         "so no score marks a conversion rate", "use --bands with shares, or check the outcome definition")
    return intercept, slope


def predicted_conversion(curve: tuple[float, float], total: float) -> float:
    intercept, slope = curve
    return 1 / (1 + math.exp(-(intercept + slope * total)))


def conversion_thresholds(curve: tuple[float, float], spec: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """Each named band's ``min`` (lowest band first): the smallest whole score at which the curve
    reaches the band's rate; mins strictly increase (a steep curve can put two rates in one point)."""
    intercept, slope = curve
    out: list[tuple[str, int]] = []
    previous: int | None = None
    for name, rate in spec:
        exact = (math.log(rate / (1 - rate)) - intercept) / slope
        if not abs(exact) < 2 ** 53:
            raise InputError("calibrate", f"the conversion curve is too flat to reach {_percent(rate)} for {name} "
                             f"at any score", "use --bands with shares, or check the outcome definition")
        # The tolerance keeps a score that meets the rate up to rounding (e.g. 40.000000001) at 40.
        minimum = math.ceil(exact - 1e-9)
        if previous is not None and minimum <= previous:
            minimum = previous + 1
        out.append((name, minimum))
        previous = minimum
    return out


def comparison_shares(totals: np.ndarray, thresholds: Sequence[tuple[str, int]],
                      min_support: int) -> tuple[float, float] | None:
    """The shares of the training leads that bands set by conversion hold: the highest band (with those
    above it) that holds at least ``min_support`` of them, and the lowest band. Gradient boosting's
    top/bottom ratio is taken at these shares; a top band of a handful of leads would make it noise."""
    top = next((float((totals >= m).mean()) for _, m in reversed(thresholds) if (totals >= m).sum() >= min_support),
               0.0)
    bottom = float((totals < thresholds[0][1]).mean())
    return (top, bottom) if top > 0 and bottom > 0 else None


def run_calibrate(evaluation: Evaluation, engine: Engine, plugins: PluginManager, *, discover: bool = False,
                  min_support: int = 30, bands: str | None = None, band_conversion: str | None = None,
                  keep_gates: bool = False, split_at: datetime | None = None, holdout: float = 0.3, seed: int = 7, baseline: bool = False,
                  name: str | None = None, points_per_double: float = POINTS_PER_DOUBLE, backend: str = "python",
                  sources: Mapping[str, str] | None = None, bootstrap: int = 1000,
                  now: datetime | None = None) -> CalibrationResult:
    """Fit, write and measure a pack; see the module docstring."""
    evaluation.check_both_classes("calibrate")
    packs = engine.active_packs()
    for pack in packs:
        if pack.applies_when is not None:
            raise ConfigurationError("--rulepack", f"rulepack {pack.name!r} applies only when {pack.applies_text}; "
                                     f"calibrate fits one pack for every lead",
                                     "pass -r with packs that apply to every lead, e.g. -r firr-base")
    if points_per_double <= 0:
        raise ConfigurationError("--points-per-double", f"{points_per_double:g} is not above 0", "e.g. 20")
    points_per_double = float(points_per_double)  # the same pack whether 20 came from Python or the CLI
    if bands is not None and band_conversion is not None:
        raise ConfigurationError("--band-conversion", "cannot be combined with --bands",
                                 "set bands by shares of leads (--bands) or by conversion rates (--band-conversion), "
                                 "not both")
    merged = _merged(packs)
    lowest = merged["bands"][0] if merged["bands"] else {"name": "early", "label": "Early"}
    band_spec = parse_bands(bands) if bands is not None else None
    if band_spec is not None and lowest["name"] in {n for n, _ in band_spec}:
        raise ConfigurationError("--bands", f"{lowest['name']!r} is the lowest band, which takes every lead "
                                 f"below the others", "name only the bands above it")
    if band_spec is not None and merged["bands"]:
        # The packs' gates and routes name their bands: a misspelt or new name would write a pack
        # whose band is routed nowhere (packs without bands take the names given).
        above = [b["name"] for b in merged["bands"][1:]]
        for band, _ in band_spec:
            if band not in above:
                close = difflib.get_close_matches(band, above, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigurationError("--bands", f"{band!r} is not a band of {', '.join(p.name for p in packs)}",
                                         f"{hint}name bands above {lowest['name']!r}: {', '.join(above)}")
    rate_spec = (parse_band_conversion(band_conversion, [b["name"] for b in merged["bands"]] or [lowest["name"]],
                                       ", ".join(p.name for p in packs)) if band_conversion is not None else None)
    pack_name = name or f"{packs[-1].name}-fitted"
    if pack_name in {p.name for p in engine.packs}:
        raise ConfigurationError("--name", f"a rulepack named {pack_name!r} is already loaded",
                                 "give the fitted pack its own name with --name")
    cases = list(evaluation.cases)
    cards, rejected, _ = score_cases(engine, cases, keep=features.activations)
    if rejected:
        keep = [i for i, card in enumerate(cards) if card is not None]
        cases = [cases[i] for i in keep]
        cards = [cards[i] for i in keep]
    y = np.array([c.positive for c in cases], dtype=bool)
    test, split = split_cases(cases, split_at, holdout, seed)
    train = ~test
    base = float(y[train].mean())

    rule_ids = list(merged["rules"])
    act = np.array([[card.get(rid, 0.0) for rid in rule_ids] for card in cards]) if rule_ids else np.zeros((len(cases), 0))
    fires = (act[train] > 0).sum(axis=0)
    n_train = int(train.sum())
    fit_rules = [j for j, f in enumerate(fires) if f >= min_support and n_train - f >= min_support]
    unfitted = [rule_ids[j] for j in range(len(rule_ids)) if j not in fit_rules]

    candidates: list[features.Candidate] = []
    values: list[dict[str, Any]] = []
    protected: list[dict[str, str]] = []
    if discover:
        values = [{k: s.value for k, s in engine.signals(c.lead, c.when).items()} for c in cases]
        train_values = [v for v, t in zip(values, train, strict=True) if t]
        candidates = features.propose(train_values, min_support)
        # Never propose a rule on a protected attribute or a proxy for one (see rulepack.fairness):
        # a team may keep such a rule after review, but a fit must not introduce one unasked.
        attributes = fairness.attributes_for(packs)
        for signal in sorted({c.signal for c in candidates}):
            attribute = fairness.reads(signal, attributes)
            if attribute is not None:
                protected.append({"signal": signal, "attribute": attribute.name})
        candidates = [c for c in candidates if c.signal not in {p["signal"] for p in protected}]
    learned = features.matrix(candidates, values) if candidates else np.zeros((len(cases), 0))
    # A candidate identical (on training leads) to a rule or an earlier candidate, or its exact
    # complement (which the intercept and that column already say), adds nothing.
    seen_columns = {(act[train][:, j] > 0).tobytes() for j in fit_rules}
    unique = []
    for j in range(learned.shape[1]):
        column = learned[train][:, j].astype(bool)
        if column.tobytes() not in seen_columns and (~column).tobytes() not in seen_columns:
            seen_columns.add(column.tobytes())
            unique.append(j)
    candidates = [candidates[j] for j in unique]
    learned = learned[:, unique]

    x = np.hstack([act[:, fit_rules], learned])
    if x.shape[1] == 0:
        raise InputError("calibrate", f"nothing to fit: no rule of {', '.join(p.name for p in packs)} fires on at least "
                         f"{min_support} training leads (and misses as many)",
                         "pass --discover to propose rules from the leads' signals, or lower --min-support")
    # One thread: OpenMP and BLAS thread pools oversubscribe a shared machine many times over,
    # and a single thread gives the same coefficients on every machine.
    with threadpool_limits(limits=1):
        if discover:
            coef, _, _ = _fit(x[train], y[train], l1=True, seed=seed)
            selected = [j for j in range(x.shape[1]) if coef[j] != 0]
        else:
            selected = list(range(x.shape[1]))
        weights = np.zeros(x.shape[1])
        if selected:
            coef, _, _ = _fit(x[train][:, selected], y[train], l1=False, seed=seed)
            weights[selected] = coef
    scale = points_per_double / math.log(2)
    points = [int(round(w * scale)) for w in weights]

    refit, dropped, flips = [], [], []
    new_rules: dict[str, dict[str, Any]] = {}
    position = {rule_ids[j]: k for k, j in enumerate(fit_rules)}
    for rid, rule in merged["rules"].items():
        if rid not in position:
            new_rules[rid] = rule
            continue
        after = points[position[rid]]
        before = int(rule.get("points", 0))
        fired = int(fires[rule_ids.index(rid)])
        flipped = before != 0 and after != 0 and (before > 0) != (after > 0)
        refit.append({"rule": rid, "before": before, "after": after, "fires": fired, "flipped": flipped,
                      "reason": rule.get("reason", "")})
        if flipped:
            flips.append(rid)
        if after == 0:
            dropped.append(rid)
            continue
        table = {k: v for k, v in rule.items() if k not in _RULE_CAPS}
        table["points"] = after
        new_rules[rid] = table
    discovered = []
    taken = set(new_rules)
    for k, candidate in enumerate(candidates):
        got = points[len(fit_rules) + k]
        if got == 0:
            continue
        column = learned[train][:, k].astype(bool)
        rid = _unique_id(candidate.id, taken)
        reason = f"{candidate.text}: {_rate_text(int(y[train][column].sum()), int(column.sum()), base)}"
        category = _category(got, candidate.signal)
        new_rules[rid] = {"id": rid, "category": category, "points": got, "reason": reason, "when": dict(candidate.when)}
        discovered.append({"rule": rid, "points": got, "condition": candidate.text, "support": int(column.sum()),
                           "conversion": float(y[train][column].mean()), "category": category})

    categories = {cname: {"label": c.get("label", cname)} if isinstance(c, dict) else {"label": cname}
                  for cname, c in merged["categories"].items()}
    for rule in new_rules.values():
        categories.setdefault(rule["category"], {"label": rule["category"].replace("_", " ").capitalize()})
    doc: dict[str, Any] = {
        "pack": {"name": pack_name, "version": (now or datetime.now(timezone.utc)).strftime("%Y.%m.%d"),
                 "description": f"Points fitted from outcomes ({evaluation.definition.text()}) starting from "
                                f"{', '.join(f'{p.name} {p.version}' for p in packs)}",
                 "priority": 0},
    }
    if merged["scorers"] != ["rules"]:
        doc["pack"]["scorers"] = merged["scorers"]
    doc["categories"] = categories
    if merged["decay"]:
        doc["decay"] = merged["decay"]
    if merged["vocabulary"]:
        doc["vocabulary"] = merged["vocabulary"]
    doc["rules"] = list(new_rules.values())
    for key in ("accounts", "actions", "fairness"):
        if merged[key]:
            doc[key] = merged[key]

    with tempfile.TemporaryDirectory(prefix="leadscore-calibrate-") as folder:
        def measure(bands_doc: list[dict[str, Any]], routing: Mapping[str, Any],
                    which: np.ndarray) -> tuple[list[Any], np.ndarray]:
            """Score the ``which`` cases with the pack as it stands: (scored, their labels)."""
            trial = dict(doc, bands=bands_doc, **({"routing": dict(routing)} if routing else {}))
            path = Path(folder) / f"{pack_name}.toml"
            path.write_text(tomli_w.dumps(trial), encoding="utf-8")
            with Engine(plugins=plugins, rulepacks=[path], backend=backend) as fitted:
                scored, _, _ = score_cases(fitted, [c for c, w in zip(cases, which, strict=True) if w])
            labels = y[which]
            ok = [i for i, s in enumerate(scored) if s is not None]
            return [scored[i] for i in ok], labels[ok]

        curve: tuple[float, float] | None = None
        train_shares: tuple[float, float] | None = None
        if band_spec is None and rate_spec is None:
            bands_doc = [dict(b) for b in merged["bands"]] or [{"name": "early", "min": 0}]
            dropped_gates: list[str] = []
        else:
            scored_train, y_train = measure([{"name": lowest["name"], "min": 0}], {}, train)
            totals = np.array([s.total for s in scored_train], dtype=float)
            if band_spec is not None:
                thresholds = _thresholds(totals, band_spec)
            else:
                assert rate_spec is not None
                curve = conversion_curve(totals, y_train)
                thresholds = conversion_thresholds(curve, rate_spec)
                train_shares = comparison_shares(totals, thresholds, min_support)
            by_name = {b["name"]: b for b in merged["bands"]}
            bottom_min = min(0, thresholds[0][1] - 1)
            bands_doc = [{"name": lowest["name"], "min": bottom_min, "label": lowest.get("label", lowest["name"])}]
            dropped_gates = [b["name"] for b in merged["bands"] if b.get("requires") is not None]
            for band_name, minimum in thresholds:
                old = by_name.get(band_name, {})
                table = {"name": band_name, "min": minimum, "label": old.get("label", band_name)}
                if keep_gates and old.get("requires") is not None:
                    table["requires"] = old["requires"]
                    if old.get("gate_reason"):
                        table["gate_reason"] = old["gate_reason"]
                bands_doc.append(table)
            if keep_gates:
                dropped_gates = [g for g in dropped_gates if g not in {b["name"] for b in bands_doc}]
        names = {b["name"] for b in bands_doc}
        routing = {band: route for band, route in merged["routing"].items() if band in names}
        scored_test, y_test = measure(bands_doc, routing, test)

    test_totals = np.array([s.total for s in scored_test], dtype=float)
    auc = metrics.auc(test_totals, y_test)
    low, high = metrics.bootstrap_auc(test_totals, y_test, bootstrap, seed)
    band_rows = []
    for band in bands_doc:
        members = np.array([s.band == band["name"] for s in scored_test])
        k, n = int(y_test[members].sum()), int(members.sum())
        if n:
            band["observed_conversion"] = round(k / n, 4)
        row = {"band": band["name"], "min_points": band["min"], "heldout_leads": n, "heldout_positives": k,
               "conversion": k / n if n else None}
        if curve is not None:
            # The lowest band has no rate of its own: it takes every lead below the others.
            target = dict(rate_spec or ()).get(band["name"])
            row["starts_at"] = target
            row["predicted_at_min"] = predicted_conversion(curve, band["min"]) if target is not None else None
            # The curve's mean prediction for the band's held-out leads, beside what they did: a
            # calibration check on leads the curve never saw.
            row["predicted"] = (float(np.mean([predicted_conversion(curve, total) for total in test_totals[members]]))
                                if n else None)
        band_rows.append(row)
    doc["bands"] = bands_doc
    if routing:
        doc["routing"] = routing

    result: dict[str, Any] = {
        "pack": pack_name, "from_packs": [f"{p.name} {p.version}" for p in packs],
        "outcome": evaluation.definition.text(), "scoring_time": evaluation.timing.text(),
        "split": split, "counts": dict(evaluation.counts),
        "train": {"leads": int(train.sum()), "positives": int(y[train].sum())},
        "heldout": {"leads": len(y_test), "positives": int(y_test.sum()), "auc": auc, "low": low, "high": high},
        "points_per_double": points_per_double, "features": {"rules": len(fit_rules), "candidates": len(candidates),
                                                             "selected": len(selected)},
        "refit": refit, "dropped": dropped, "flipped": flips, "unfitted": unfitted, "discovered": discovered,
        "not_proposed_protected": protected,
        "bands": band_rows, "band_basis": _band_basis(band_spec, rate_spec, curve),
        "dropped_gates": dropped_gates if band_spec is not None or rate_spec is not None else [],
        "baselines": None, "notes": [],
    }
    if baseline:
        raw_names = sorted({c.signal for c in candidates})
        raw = features.raw_numbers(values, raw_names)
        full = np.hstack([act[:, fit_rules], learned])
        with threadpool_limits(limits=1):
            # The top band's target share, and the lowest band's (every lead below the lowest named band);
            # with conversion rates, the shares those gave the training leads.
            shares = (band_spec[0][1], 1 - band_spec[-1][1]) if band_spec else train_shares
            result["baselines"] = _baselines(full, raw, y, test, seed, shares)
        gbm = result["baselines"]["gradient_boosting"]
        result["baselines"]["pack_to_gradient_boosting"] = auc / gbm if gbm else None
    provenance: dict[str, Any] = {
        "tool": f"leadscore calibrate {__version__}",
        "fitted_at": format_timestamp(now or datetime.now(timezone.utc)),
        "from_packs": result["from_packs"],
        "data_fingerprint": _fingerprint(cases, x),
        "outcome": evaluation.definition.text(),
        "scoring_time": evaluation.timing.text(),
        "split": _split_text(split),
        "train_leads": result["train"]["leads"], "train_conversions": result["train"]["positives"],
        "heldout_leads": result["heldout"]["leads"], "heldout_conversions": result["heldout"]["positives"],
        "heldout_auc": round(auc, 4),
        "heldout_auc_interval": [round(low, 4), round(high, 4)],
        "points_per_double_odds": points_per_double,
    }
    if result["band_basis"]["kind"] != "packs":
        provenance["bands_from"] = result["band_basis"]["text"]
        if "how" in result["band_basis"]:
            provenance["bands_from"] += f" ({result['band_basis']['how']})"
    if curve is not None:
        provenance["conversion_curve"] = {"intercept": round(curve[0], 6), "slope_per_point": round(curve[1], 6)}
    for key, value in (sources or {}).items():
        provenance[key] = value
    if result["baselines"]:
        provenance["baseline_gradient_boosting_auc"] = round(result["baselines"]["gradient_boosting"], 4)
        provenance["baseline_logistic_auc"] = round(result["baselines"]["logistic"], 4)
    if flips:
        provenance["sign_flipped"] = flips
    if dropped:
        provenance["dropped_rules"] = dropped
    if unfitted:
        provenance["unfitted_rules"] = unfitted
    doc["provenance"] = provenance
    ordered = {key: doc[key] for key in ("pack", "provenance", "categories", "decay", "vocabulary", "rules", "bands",
                                         "routing", "accounts", "actions", "fairness") if key in doc}
    text = tomli_w.dumps(ordered)
    return CalibrationResult(_header(result) + text, clean(result), [*evaluation.rejections, *rejected],
                             [c.lead.id for c, held in zip(cases, test, strict=True) if held])


def _header(result: Mapping[str, Any]) -> str:
    """Comment lines on top of the fitted pack: what it is and what a reviewer must look at."""
    lines = [f"# {result['pack']}: points fitted by leadscore calibrate from {', '.join(result['from_packs'])}.",
             f"# Outcome: {result['outcome']}; scored {result['scoring_time']}; split {_split_text(result['split'])}.",
             f"# Held-out AUC {result['heldout']['auc']:.3f} on {result['heldout']['leads']} leads; "
             f"{result['points_per_double']:g} points double the odds of converting.",
             "# Review before publishing: run leadscore backtest with --candidate on this file."]
    if result["band_basis"]["kind"] != "packs":
        lines.append(f"# Bands from {result['band_basis']['text']}.")
        if "how" in result["band_basis"]:
            lines.append(f"# ({result['band_basis']['how'].capitalize()}.)")
    if result["flipped"]:
        lines.append(f"# Sign flipped by the data (check their reasons): {', '.join(result['flipped'])}.")
    return "\n".join(lines) + "\n\n"



def _band_basis(shares: Sequence[tuple[str, float]] | None, rates: Sequence[tuple[str, float]] | None,
                curve: tuple[float, float] | None) -> dict[str, Any]:
    """How the bands were set, as data and as one phrase (for the text, the header and provenance)."""
    if shares is not None:
        spec = dict(sorted(shares, key=lambda item: item[1]))
        return {"kind": "shares", "spec": spec,
                "text": "shares of the training leads in each band or above: "
                        + ", ".join(f"{name} {_percent(value)}" for name, value in spec.items())}
    if rates is not None and curve is not None:
        spec = dict(reversed(rates))
        return {"kind": "conversion", "spec": spec, "curve": {"intercept": curve[0], "slope": curve[1]},
                "text": "conversion rates: " + ", ".join(f"{name} {_percent(value)}" for name, value in spec.items()),
                "how": f"each band starts where the training leads' conversion curve, logit p = {curve[0]:.3f} + "
                       f"{curve[1]:.4f} x points, reaches its rate"}
    return {"kind": "packs", "spec": {}, "text": "the packs' bands, kept as they were"}
