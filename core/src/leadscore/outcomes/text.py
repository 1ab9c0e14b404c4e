"""Plain-text summaries of backtest, calibrate and drift results, for the terminal.

They render the same ``data`` dicts the JSON output and the HTML report are made from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def interval(low: float | None, high: float | None, as_pct: bool = True) -> str:
    if low is None or high is None:
        return ""
    return f"[{pct(low)}, {pct(high)}]" if as_pct else f"[{num(low)}, {num(high)}]"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def sides(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """A backtest's packs to show: ("current", figures), and ("candidate", figures) when there is one."""
    out = [("current", data["current"])]
    if data.get("candidate"):
        out.append(("candidate", data["candidate"]))
    return out


def backtest_text(data: Mapping[str, Any]) -> str:
    counts = data["counts"]
    out = [f"backtest: {counts['evaluated']} leads evaluated, {counts['positives']} converted "
           f"(base rate {pct(data['base_rate'])})",
           f"  outcome: {data['outcome']}; scoring time: {data['scoring_time']}",
           f"  not evaluated: {counts['leads_rejected'] + counts.get('scoring_rejected', 0)} leads rejected, "
           f"{counts['excluded_converted_before']} converted before their scoring time, "
           f"{counts['excluded_censored']} censored; {counts['outcome_rows_rejected']} of "
           f"{counts['outcome_rows']} outcome rows rejected"]
    out.extend(f"  note: {note}" for note in data.get("notes", []))
    shown = sides(data)
    out.append("")
    header = [""] + [f"{name} ({', '.join(side['packs'])})" for name, side in shown]
    rows = [["ROC AUC"] + [f"{num(s['auc']['value'])} {interval(s['auc']['low'], s['auc']['high'], False)}"
                           for _, s in shown]]
    tb = [s["top_bottom"] for _, s in shown]
    rows.append(["top / bottom band"] + [f"{ratio(t['ratio'])} ({t['top']} / {t['bottom']})" if t["ratio"] is not None
                                         else (t["note"] or "-") for t in tb])
    for k, share in enumerate(s["top_share"] for s in shown[0][1]["capture"]):
        rows.append([f"conversions in top {pct(share, 0)}"] + [pct(s["capture"][k]["captured"]) for _, s in shown])
    rows.append(["median score"] + [f"{s['scores']['median']:g} ({pct(s['scores']['most_common_share'], 0)} of leads "
                                    f"score {s['scores']['most_common']:g})" for _, s in shown])
    out.extend(table(header, rows))
    for name, side in shown:
        out.append("")
        out.append(f"bands ({name}):")
        band_rows = [[b["band"], str(b["leads"]), pct(b["share"]), f"{pct(b['conversion'])} {interval(b['low'], b['high'])}",
                      ratio(b["lift"]), pct(b["stated"])] for b in side["bands"]]
        out.extend("  " + line for line in table(["band", "leads", "share", "conversion [95% CI]", "lift", "stated"],
                                                 band_rows, right=(1, 2, 4, 5)))
        flagged = [r for r in side["rules"] if r["verdict"].startswith("wrong way")]
        if flagged:
            out.append(f"rules pointing the wrong way ({name}):")
            for r in flagged:
                out.append(f"  {r['rule']} ({r['points']:+d}): {pct(r['conversion_when_fires'])} convert when it fires "
                           f"({r['fires']} leads) vs {pct(r['conversion_otherwise'])} otherwise: {r['verdict']}")
        missed = [c for c in side["calibration"] if c["within_interval"] is False]
        if missed:
            out.append(f"bands whose stated conversion is off ({name}):")
            for c in missed:
                out.append(f"  {c['band']}: states {pct(c['stated'])}, observed {pct(c['observed'])} "
                           f"{interval(c['low'], c['high'])} on {c['leads']} leads")
    current = data["current"]
    out.append("")
    out.append("channels (by " + ("source" if data["run"].get("channel_by", "source") == "source" else "channel") + "):")
    stages = data["funnel_stages"]
    channel_rows = [[c["channel"], str(c["leads"]), *(pct(c["reached"][s]) for s in stages), f"{c['median_score']:g}",
                     f"{pct(c['conversion'])} {interval(c['low'], c['high'])}"] for c in current["channels"][:12]]
    out.extend("  " + line for line in table(["channel", "leads", *stages, "median score", "conversion [95% CI]"],
                                             channel_rows, right=tuple(range(1, len(stages) + 3))))
    if len(current["channels"]) > 12:
        out.append(f"  ... and {len(current['channels']) - 12} more (see --json or --report)")
    for column in current.get("fairness") or ():
        out.append("")
        out.append(f"{column['column']} ({column['attribute']}) is in the data but no rule reads it; by value, "
                   f"the share placed at {column['selected_from']} or above and the ratio to the most selected:")
        out.extend("  " + line for line in table(
            ["value", "leads", f"{column['selected_from']}+", "impact ratio", "conversion", ""],
            [[g["value"], str(g["leads"]), pct(g["selected"]), num(g["impact_ratio"], 2), pct(g["conversion"]["rate"]),
              "below four-fifths" if g["flagged"] else ""] for g in column["groups"]], right=(1, 2, 3, 4)))
    if data.get("comparison"):
        comparison = data["comparison"]
        out.append("")
        out.append("band transitions (rows: current, columns: candidate):")
        trans_rows = [[row["from"], *(str(row["to"][b]["leads"]) for b in comparison["to_bands"])]
                      for row in comparison["matrix"]]
        out.extend("  " + line for line in table(["", *comparison["to_bands"]], trans_rows,
                                                 right=tuple(range(1, len(comparison["to_bands"]) + 1))))
        movers = comparison["movers"]
        out.append("movers: " + "; ".join(f"{d} {movers[d]['leads']} leads, {pct(movers[d]['rate'])} converted"
                                           for d in ("up", "same", "down")))
    return "\n".join(out)


def calibrate_text(data: Mapping[str, Any]) -> str:
    held = data["heldout"]
    split = data["split"]
    how = f"by time at {split['split_at']}" if split["kind"] == "time" else \
        f"random {pct(split['holdout'], 0)} held out (seed {split['seed']})"
    out = [f"calibrate: {data['pack']} from {', '.join(data['from_packs'])}",
           f"  outcome: {data['outcome']}; scoring time: {data['scoring_time']}; split {how}",
           f"  training: {data['train']['leads']} leads, {data['train']['positives']} converted; "
           f"held out: {held['leads']} leads, {held['positives']} converted",
           f"  features: {data['features']['rules']} rules refitted, {data['features']['candidates']} candidate rules, "
           f"{data['features']['selected']} kept by the fit; {data['points_per_double']:g} points double the odds",
           "",
           f"held-out AUC of the fitted pack: {num(held['auc'])} {interval(held['low'], held['high'], False)}"]
    if data.get("baselines"):
        b = data["baselines"]
        out.append(f"  gradient boosting, same features and split: {num(b['gradient_boosting'])} "
                   f"(fitted pack / gradient boosting = {num(b['pack_to_gradient_boosting'])})")
        out.append(f"  logistic regression, same features and split: {num(b['logistic'])}")
        if b.get("gradient_boosting_top_bottom") is not None:
            top, bottom = b.get("top_bottom_shares") or (None, None)
            shares = f" (top {pct(top)}, bottom {pct(bottom)} of leads)" if top is not None else ""
            out.append(f"  gradient boosting's top / bottom conversion at the bands' shares{shares}: "
                       f"{ratio(b['gradient_boosting_top_bottom'])}")
    out.append("")
    out.append("bands (held out):")
    basis = data.get("band_basis") or {"kind": "packs"}
    if basis["kind"] != "packs":
        out.append(f"  set from {basis['text']}")
        if "how" in basis:
            out.append(f"  ({basis['how']})")
    if basis["kind"] == "conversion":
        # The curve's rate at each band's min: at or just above the rate asked for (mins are whole points).
        out.extend("  " + line for line in table(
            ["band", "min", "curve at min", "leads", "predicted", "conversion"],
            [[b["band"], str(b["min_points"]), pct(b["predicted_at_min"]), str(b["heldout_leads"]), pct(b["predicted"]),
              pct(b["conversion"])] for b in data["bands"]], right=(1, 2, 3, 4, 5)))
        out.append("  (curve at min: the training curve's rate where the band starts; predicted: its mean for the "
                   "band's held-out leads)")
    else:
        out.extend("  " + line for line in table(["band", "min", "leads", "conversion"],
                                                 [[b["band"], str(b["min_points"]), str(b["heldout_leads"]),
                                                   pct(b["conversion"])] for b in data["bands"]], right=(1, 2, 3)))
    if data["dropped_gates"]:
        out.append(f"  gates dropped with the new thresholds: {', '.join(data['dropped_gates'])} (--keep-gates keeps them)")
    if data["refit"]:
        out.append("")
        out.append("refitted rules:")
        out.extend("  " + line for line in table(
            ["rule", "before", "after", "fires", ""],
            [[r["rule"], f"{r['before']:+d}", f"{r['after']:+d}", str(r["fires"]),
              "SIGN FLIPPED: review its reason" if r["flipped"] else ("dropped (0 points)" if r["after"] == 0 else "")]
             for r in data["refit"]], right=(1, 2, 3)))
    if data["unfitted"]:
        out.append(f"kept as they were (too few training leads to refit): {', '.join(data['unfitted'])}")
    if data.get("not_proposed_protected"):
        out.append("not proposed (a protected attribute or a proxy for one; see docs/rulepacks.md, Fairness): "
                   + ", ".join(f"{p['signal']} ({p['attribute']})" for p in data["not_proposed_protected"]))
    if data["discovered"]:
        out.append("")
        out.append(f"discovered rules ({len(data['discovered'])}):")
        for r in sorted(data["discovered"], key=lambda r: -abs(r["points"]))[:25]:
            out.append(f"  {r['points']:+4d}  {r['condition']}  ({r['support']} training leads, "
                       f"{pct(r['conversion'])} converted)")
        if len(data["discovered"]) > 25:
            out.append(f"  ... and {len(data['discovered']) - 25} more (see the pack)")
    return "\n".join(out)


def drift_text(data: Mapping[str, Any]) -> str:
    out = [f"drift: reference {data['reference']['leads']} leads ({data['reference']['label']}), "
           f"current {data['current']['leads']} leads ({data['current']['label']}); packs {', '.join(data['packs'])}",
           f"  thresholds: PSI {data['thresholds']['psi']:g}, rates {pct(data['thresholds']['rate'], 0)} points", ""]
    out.extend(table(["score", "PSI", "reference mean", "current mean", ""],
                     [[s["name"], num(s["psi"]), f"{s['reference_mean']:.1f}", f"{s['current_mean']:.1f}",
                       "DRIFT" if s["flagged"] else ""] for s in data["scores"]], right=(1, 2, 3)))
    out.append("")
    out.extend(table(["band", "reference", "current", "change", ""],
                     [[b["band"], pct(b["reference"]), pct(b["current"]), f"{b['change'] * 100:+.1f} pts",
                       "DRIFT" if b["flagged"] else ""] for b in data["bands"]], right=(1, 2, 3)))
    moved = [r for r in data["rules"] if r["flagged"]]
    out.append("")
    if moved:
        out.append("rules whose firing rate moved:")
        out.extend("  " + line for line in table(
            ["rule", "reference", "current", "change"],
            [[r["rule"], pct(r["reference"]), pct(r["current"]), f"{r['change'] * 100:+.1f} pts"] for r in moved],
            right=(1, 2, 3)))
    else:
        out.append("no rule's firing rate moved beyond the threshold")
    out.append("")
    out.append(f"drift flagged: {', '.join(data['flagged'])}" if data["flagged"] else "no drift beyond the thresholds")
    return "\n".join(out)
