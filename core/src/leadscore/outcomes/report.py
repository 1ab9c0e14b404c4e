"""The backtest report: one self-contained HTML file (tables plus matplotlib charts as SVG data URIs).

No script, no external font or stylesheet, and a Content-Security-Policy that forbids fetching
anything: the file opens offline and shows the same figures as the JSON it is rendered from.
Every text that comes from the data (channel names, rule reasons) is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from leadscore.outcomes.text import interval, num, pct, ratio, sides

COLOURS = ("#2f5d8a", "#d9822b")
MAX_CHANNELS_CHARTED = 8
# Nothing may be fetched or run: the charts are data URIs, the style is inline.
_FIGURE = re.compile(r"^(-|[-+]?[0-9][0-9,.]*(%|x)?( \([0-9,]+\))?|\[.*\])$")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px}
body{color:#1d2733;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:1px solid #d5dbe1;padding-bottom:.3rem}
.meta{color:#5b6875;margin:.2rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #d5dbe1;border-radius:6px;padding:.6rem .9rem;min-width:12rem}
.card b{display:block;font-size:1.3rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #e3e7eb;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child,td.text{text-align:left}
th{background:#f3f5f7}
tr.flag td{background:#fdecea}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
.charts img{max-width:100%;border:1px solid #e3e7eb}
.note{color:#5b6875;font-size:.9rem}
"""


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg_uri(figure: Any, salt: str) -> str:
    import matplotlib

    buffer = io.BytesIO()
    # A fixed salt and no date keep the file byte-identical from run to run.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _error_bars(rows: Sequence[Mapping[str, Any]], value: str) -> list[list[float]]:
    """Matplotlib's yerr (below, above) in percent, from rows with ``value``, ``low`` and ``high`` shares."""
    return [[(r[value] - r["low"]) * 100 for r in rows], [(r["high"] - r[value]) * 100 for r in rows]]


def lift_chart(data: Mapping[str, Any]) -> str:
    shown = sides(data)
    figure = _figure(6.4 if len(shown) == 1 else 10, 3.6)
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for ax, (name, side), colour in zip(axes, shown, COLOURS, strict=False):
        bands = [b for b in side["bands"] if b["leads"]]
        rates = [b["conversion"] * 100 for b in bands]
        ax.bar([b["band"] for b in bands], rates, yerr=_error_bars(bands, "conversion"), color=colour, capsize=4)
        ax.axhline(data["base_rate"] * 100, color="#555", linestyle="--", linewidth=1, label="base rate")
        for x, b in enumerate(bands):
            ax.annotate(f"{ratio(b['lift'])}", (x, b["conversion"] * 100), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
        ax.set_title(f"{name}: conversion by band (lift over base rate)", fontsize=10)
        ax.set_ylabel("converted (%)")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    return _img(_svg_uri(figure, "lift"), "Conversion rate by band with 95% intervals and the base rate")


def capture_chart(data: Mapping[str, Any]) -> str:
    figure = _figure(5.2, 4.2)
    ax = figure.subplots()
    ax.plot([0, 100], [0, 100], color="#999", linestyle=":", label="random order")
    for (name, side), colour in zip(sides(data), COLOURS, strict=False):
        curve = side["capture_curve"]
        xs = [100 * i / (len(curve) - 1) for i in range(len(curve))]
        ax.plot(xs, [100 * (v or 0) for v in curve], color=colour, label=name)
        ax.scatter([100 * c["top_share"] for c in side["capture"]], [100 * (c["captured"] or 0) for c in side["capture"]],
                   color=colour, s=14)
    ax.set_xlabel("top share of leads by score (%)")
    ax.set_ylabel("share of all conversions (%)")
    ax.set_title("Capture curve", fontsize=10)
    ax.legend(fontsize=8)
    return _img(_svg_uri(figure, "capture"), "Share of conversions captured by the top share of leads")


def calibration_chart(data: Mapping[str, Any]) -> str | None:
    stated = [(name, side) for name, side in sides(data) if side["calibration"]]
    if not stated:
        return None
    figure = _figure(5.2, 4.2)
    ax = figure.subplots()
    top = 0.0
    for (name, side), colour in zip(stated, COLOURS, strict=False):
        points = [c for c in side["calibration"] if c["observed"] is not None]
        xs = [c["stated"] * 100 for c in points]
        ys = [c["observed"] * 100 for c in points]
        ax.errorbar(xs, ys, yerr=_error_bars(points, "observed"), fmt="o", color=colour, capsize=3, label=name)
        for c, x, y in zip(points, xs, ys, strict=True):
            ax.annotate(c["band"], (x, y), textcoords="offset points", xytext=(5, -3), fontsize=8)
        top = max([top, *xs, *(c["high"] * 100 for c in points)])
    ax.plot([0, top], [0, top], color="#999", linestyle=":", label="stated = observed")
    ax.set_xlabel("stated conversion of the band (%)")
    ax.set_ylabel("observed conversion (%)")
    ax.set_title("Calibration: each band's stated vs observed conversion", fontsize=10)
    ax.legend(fontsize=8)
    return _img(_svg_uri(figure, "calibration"), "Stated against observed conversion per band")


def channel_chart(data: Mapping[str, Any]) -> str | None:
    channels = data["current"]["channels"][:MAX_CHANNELS_CHARTED]
    stages = data["funnel_stages"]
    if not channels or not stages:
        return None
    figure = _figure(10, 3.8)
    ax = figure.subplots()
    width = 0.8 / len(stages)
    palette = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c", "#08306b")
    for k, stage in enumerate(stages):
        xs = [i + (k - (len(stages) - 1) / 2) * width for i in range(len(channels))]
        ax.bar(xs, [100 * c["reached"][stage] for c in channels], width, label=stage,
               color=palette[min(k + max(0, len(palette) - len(stages)), len(palette) - 1)])
    ax.set_xticks(range(len(channels)), [f"{c['channel']}\n({c['leads']} leads)" for c in channels], fontsize=8)
    ax.set_ylabel("leads reaching the stage (%)")
    ax.set_title("Channel funnel: share of each channel's leads reaching each stage", fontsize=10)
    ax.legend(fontsize=8, title="stage", title_fontsize=8)
    return _img(_svg_uri(figure, "channels"), "Share of each channel's leads reaching each funnel stage")


def _cell(value: Any) -> str:
    """A table cell: figures right-aligned (the default), words left-aligned."""
    text = str(value)
    align = "" if _FIGURE.match(text) else ' class="text"'
    return f"<td{align}>{html.escape(text)}</td>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], flags: Sequence[bool] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="flag"' if flags and flags[i] else ""
        body.append(f"<tr{cls}>" + "".join(_cell(c) for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def backtest_html(data: Mapping[str, Any]) -> str:
    shown = sides(data)
    counts = data["counts"]
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>leadscore backtest: {e(', '.join(data['current']['packs']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Backtest: does the score rank the leads that converted?</h1>",
        f'<p class="meta">Outcome: {e(data["outcome"])}. Scoring time: {e(data["scoring_time"])}. '
        f"leadscore {e(data['leadscore_version'])}.</p>",
        f'<p class="meta">{counts["evaluated"]} leads evaluated, {counts["positives"]} converted '
        f"(base rate {pct(data['base_rate'])}). Not evaluated: "
        f"{counts['leads_rejected'] + counts.get('scoring_rejected', 0)} rejected, "
        f"{counts['excluded_converted_before']} converted before their scoring time, "
        f"{counts['excluded_censored']} censored; {counts['outcome_rows_rejected']} of {counts['outcome_rows']} "
        "outcome rows rejected.</p>",
    ]
    parts.extend(f'<p class="note">Note: {e(n)}</p>' for n in data.get("notes", []))
    parts.append('<div class="cards">')
    for name, side in shown:
        tb = side["top_bottom"]
        tb_text = f"{ratio(tb['ratio'])} ({tb['top']} / {tb['bottom']})" if tb["ratio"] is not None else tb["note"]
        parts.append(f'<div class="card">{e(name)}: {e(", ".join(side["packs"]))}'
                     f"<b>AUC {num(side['auc']['value'])}</b>{e(interval(side['auc']['low'], side['auc']['high'], False))} "
                     f"({side['auc']['resamples']} bootstrap resamples)<br>top / bottom band: {e(tb_text)}</div>")
    parts.append("</div>")

    parts.append("<h2>Charts</h2><div class=\"charts\">")
    parts.append(lift_chart(data))
    parts.append(capture_chart(data))
    calibration = calibration_chart(data)
    parts.append(calibration or '<p class="note">No band states an expected conversion yet '
                 "(<code>leadscore calibrate</code> writes <code>observed_conversion</code> into each band).</p>")
    channels = channel_chart(data)
    if channels:
        parts.append(channels)
    parts.append("</div>")

    parts.append("<h2>Bands</h2>")
    for name, side in shown:
        parts.append(f"<h3>{e(name)}</h3>")
        header = ["band", "min points", "leads", "share", "converted", "conversion", "95% interval", "lift", "stated"]
        rows = [[b["band"], b["min_points"], b["leads"], pct(b["share"]), b["positives"], pct(b["conversion"]),
                 interval(b["low"], b["high"]), ratio(b["lift"]), pct(b["stated"])] for b in side["bands"]]
        if any("revenue" in b for b in side["bands"]):
            header.append("revenue")
            for row, b in zip(rows, side["bands"], strict=True):
                row.append(f"{b['revenue']:,.0f}")
        parts.append(_table(header, rows))
        capture = ", ".join(f"top {pct(c['top_share'], 0)}: {pct(c['captured'])}" for c in side["capture"])
        scores = side["scores"]
        parts.append(f'<p class="note">Conversions captured: {e(capture)}. Scores from {scores["min"]:g} to '
                     f'{scores["max"]:g} (median {scores["median"]:g}, {scores["distinct"]} distinct values; '
                     f'{pct(scores["most_common_share"], 0)} of leads score {scores["most_common"]:g}).</p>')
        if side["calibration"]:
            parts.append(_table(["band", "stated", "observed", "95% interval", "leads", "stated within interval"],
                                [[c["band"], pct(c["stated"]), pct(c["observed"]), interval(c["low"], c["high"]),
                                  c["leads"], {True: "yes", False: "no", None: "-"}[c["within_interval"]]]
                                 for c in side["calibration"]],
                                [c["within_interval"] is False for c in side["calibration"]]))

    parts.append("<h2>Rules</h2>")
    parts.append('<p class="note">Conversion of the leads a rule gave points to, against the others. A rule '
                 "points the wrong way when its sign disagrees with that difference (flagged when the difference is "
                 "significant at 95%).</p>")
    for name, side in shown:
        parts.append(f"<h3>{e(name)}</h3>")
        rules = side["rules"]
        parts.append(_table(["rule", "points", "fires", "share", "converted when it fires", "otherwise", "verdict",
                             "reason"],
                            [[r["rule"], r["points"], r["fires"], pct(r["fire_share"]), pct(r["conversion_when_fires"]),
                              pct(r["conversion_otherwise"]), r["verdict"], r["reason"]] for r in rules],
                            [r["verdict"].startswith("wrong way") for r in rules]))

    stages = data["funnel_stages"]
    parts.append("<h2>Channels</h2>")
    parts.append('<p class="note">Lead quality by channel: the share of each channel\'s leads reaching each stage, '
                 "their median score and their conversion.</p>")
    channel_header = ["channel", "also", "leads", *stages, *(f"median score ({n})" for n, _ in shown), "conversion",
                      "95% interval"]
    rows = []
    by_name = [{c["channel"]: c for c in side["channels"]} for _, side in shown]
    for c in data["current"]["channels"]:
        rows.append([c["channel"], ", ".join(c["also"]), c["leads"], *(pct(c["reached"][s]) for s in stages),
                     *(f"{m[c['channel']]['median_score']:g}" for m in by_name), pct(c["conversion"]),
                     interval(c["low"], c["high"])])
    parts.append(_table(channel_header, rows))

    parts.append("<h2>Funnel by band</h2>")
    for name, side in shown:
        parts.append(f"<h3>{e(name)}</h3>")
        steps = list(side["funnel"][0]["step_conversion"]) if side["funnel"] else []
        parts.append(_table(["band", "leads", *stages, *steps],
                            [[f["band"], *f["reached"].values(), *(pct(v) for v in f["step_conversion"].values())]
                             for f in side["funnel"]]))

    for column in data["current"].get("fairness") or ():
        e = html.escape
        parts.append(f"<h2>Fairness: {e(column['column'])}</h2>")
        parts.append(f'<p class="note">{e(column["column"])} ({e(column["attribute"])}: {e(column["why"])}) is in the '
                     f"data but no rule reads it; a score can still treat its groups differently through other "
                     f"signals. Selected: placed at {e(column['selected_from'])} or above. An impact ratio under 0.8 "
                     f"(the four-fifths rule) is flagged.</p>")
        parts.append(_table(["value", "leads", f"{column['selected_from']}+", "impact ratio", "conversion"],
                            [[g["value"], g["leads"], pct(g["selected"]), num(g["impact_ratio"]),
                              pct(g["conversion"]["rate"])] for g in column["groups"]],
                            [g["flagged"] for g in column["groups"]]))
    if data.get("comparison"):
        comparison = data["comparison"]
        parts.append("<h2>Current vs candidate</h2>")
        parts.append('<p class="note">Leads per band move (rows: current band, columns: candidate band; '
                     "each cell: leads, and how many of them converted).</p>")
        parts.append(_table(["current \\ candidate", *comparison["to_bands"]],
                            [[row["from"], *(f"{row['to'][b]['leads']} ({row['to'][b]['positives']})"
                                             for b in comparison["to_bands"])] for row in comparison["matrix"]]))
        movers = comparison["movers"]
        parts.append(_table(["movers", "leads", "converted", "conversion", "95% interval"],
                            [[d, movers[d]["leads"], movers[d]["positives"], pct(movers[d]["rate"]),
                              interval(movers[d]["low"], movers[d]["high"])] for d in ("up", "same", "down")]))
    parts.append('<p class="note">Intervals: Wilson 95% for rates, percentile bootstrap for the AUC. Tied scores count '
                 "half in the AUC and proportionally at a capture cut-off.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
