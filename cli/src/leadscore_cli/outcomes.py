"""The outcome commands: ``backtest``, ``calibrate`` and ``drift``.

They parse options, call ``leadscore.outcomes`` (which does all the work, and which the Python API
exposes with the same arguments) and print. Exit codes: 0 clean; 1 rows rejected, or drift
flagged; 2 usage or input that stops the run (including no conversions, or nothing but).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from leadscore.errors import LeadscoreError
from leadscore.model import Rejection
from leadscore.plugins import PluginManager
from leadscore_cli.main import (
    EXIT_REJECTED,
    MAX_REJECTIONS_SHOWN,
    UsageFailure,
    _fail,
    refuse_overwriting_inputs,
    say,
    write_file,
)


def _timestamp(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    from leadscore.io.timestamps import parse_timestamp

    try:
        return parse_timestamp(value, option, option)
    except LeadscoreError as err:
        raise UsageFailure(f"{option}: {value!r} is not a timestamp; write ISO 8601 such as 2026-11-23 or "
                           "2026-11-23T00:00:00Z") from err


def _write_rejections(rejections: Sequence[Rejection], path: str | None) -> None:
    """All rejections to ``path`` (.csv or .jsonl), else the first few on stderr."""
    if path:
        import io

        from leadscore.io.writers import RejectionWriter

        text = io.StringIO()
        with RejectionWriter(text, "csv" if path.lower().endswith(".csv") else "jsonl") as writer:
            for rejection in rejections:
                writer.write(rejection)
        write_file(path, text.getvalue())
        return
    for rejection in rejections[:MAX_REJECTIONS_SHOWN]:
        say(f"rejected {rejection.where}: {rejection.reason}", err=True)
    if len(rejections) > MAX_REJECTIONS_SHOWN:
        say(f"... and {len(rejections) - MAX_REJECTIONS_SHOWN} more rejections (write them all with --rejects FILE)",
                   err=True)


def _write_json(data: Any, path: str) -> None:
    write_file(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _outcome_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by backtest and calibrate: where outcomes come from and when each lead is scored."""
    options = [
        click.option("--outcomes", "outcomes_path", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Outcomes CSV or JSON Lines: lead_id, stage[, at][, amount]; one row per stage reached."),
        click.option("--label", metavar="FIELD",
                     help="Instead of --outcomes: a 0/1 or true/false column of the leads, e.g. fields.converted "
                          "(the scorer never sees it)."),
        click.option("--target", default="won", show_default=True, metavar="STAGE",
                     help="The stage that counts as a conversion."),
        click.option("--within", "within_days", type=float, metavar="DAYS",
                     help="Count a conversion only within DAYS of the scoring time."),
        click.option("--score-at", "score_at", metavar="SPEC",
                     help="Score each lead as of created, created+7d or created+12h (default: created); only what "
                          "happened by then is seen."),
        click.option("--as-of", "as_of", metavar="TIMESTAMP",
                     help="Score every lead at one fixed time (with --score-at: for leads without created_at)."),
        click.option("--observed-until", "observed_until", metavar="TIMESTAMP",
                     help="When outcomes stop being recorded (default: the latest outcome); a --within window "
                          "ending later without a conversion is left out as censored."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Config with the funnel's stages in [outcomes] (default: ./leadscore.toml if present)."),
        click.option("--activities", type=click.Path(dir_okay=False), metavar="FILE",
                     help="Activities CSV (lead_id,type,at,...) joined on lead_id."),
        click.option("--input-format", "input_fmt", type=click.Choice(["jsonl", "csv"]),
                     help="Leads format; default: from the suffix."),
        click.option("--engine", "engine_name", type=click.Choice(["python", "durable"]), default="python",
                     show_default=True, help="Rule backend."),
        click.option("--rejects", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                     help="Write every rejected lead and outcome row with its reason to FILE (.csv or .jsonl)."),
        click.option("--seed", default=7, show_default=True, help="Seed of the bootstrap (and of a random split)."),
        click.option("--bootstrap", default=1000, show_default=True, metavar="N",
                     help="Bootstrap resamples for the AUC interval (0: none)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _outcome_inputs(leads: str, outcomes: str | None, config: str | None, activities: str | None,
                    rulepacks: Sequence[str], candidates: Sequence[str]) -> list[tuple[str, str | None]]:
    return [("input", leads), ("outcomes file", outcomes), ("config file", config), ("activities file", activities),
            *(("rulepack", path) for path in (*rulepacks, *candidates))]


def _common(get_pm: Callable[[], PluginManager], outcomes_path: str | None, label: str | None, target: str,
            within_days: float | None, score_at: str | None, as_of: str | None, observed_until: str | None,
            config_path: str | None, activities: str | None, input_fmt: str | None) -> dict[str, Any]:
    from leadscore.outcomes import load_funnel

    if (outcomes_path is None) == (label is None):
        raise UsageFailure("--outcomes: give either --outcomes FILE or --label FIELD; e.g. --outcomes outcomes.csv")
    try:
        funnel = load_funnel(config_path)
    except LeadscoreError as err:
        raise _fail(err) from err
    return {"outcomes": outcomes_path, "label": label, "target": target, "within_days": within_days,
            "score_at": score_at, "as_of": _timestamp(as_of, "--as-of"),
            "observed_until": _timestamp(observed_until, "--observed-until"), "funnel": funnel,
            "activities": activities, "input_format": input_fmt, "plugins": get_pm()}


def register(cli: click.Group, get_pm: Callable[[], PluginManager]) -> None:
    """Add ``backtest``, ``calibrate`` and ``drift`` to ``cli``."""

    @cli.command()
    @click.argument("leads_path", metavar="LEADS")
    @_outcome_options
    @click.option("--rulepack", "-r", "rulepacks", multiple=True, metavar="NAME|PATH",
                  help="The current packs (repeatable); default: every installed rulepack.")
    @click.option("--candidate", "candidates", multiple=True, metavar="NAME|PATH",
                  help="A candidate pack to compare side by side (repeatable: the packs that make up the candidate).")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                  help="Write every figure as JSON.")
    @click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE.html",
                  help="Write one self-contained HTML report (charts included; opens offline).")
    @click.option("--channel-by", type=click.Choice(["source", "channel"]), default="source", show_default=True,
                  help="Group the channel table by the lead's source as given, or by the normalised channel.")
    @click.option("--min-support", default=30, show_default=True, metavar="N",
                  help="Leads a rule must fire on (and miss) before its direction is judged.")
    def backtest(leads_path: str, outcomes_path: str | None, label: str | None, target: str, within_days: float | None,
                 score_at: str | None, as_of: str | None, observed_until: str | None, config_path: str | None,
                 activities: str | None, input_fmt: str | None, engine_name: str, rejects: str | None, seed: int,
                 bootstrap: int, rulepacks: tuple[str, ...], candidates: tuple[str, ...], json_path: str | None,
                 report_path: str | None, channel_by: str, min_support: int) -> None:
        """Does the score rank the leads that converted? AUC, bands, rules, channels and funnel.

        Each lead is scored as of its scoring time with only what had happened by then; a lead
        converts when it reaches --target (within --within days). With --candidate, every figure
        is shown for both packs, with the band transitions and the conversion of the leads that move.

        \b
        Examples:
          leadscore backtest leads.jsonl --outcomes outcomes.csv --score-at created+7d --within 90
          leadscore backtest leads.jsonl --outcomes outcomes.csv -r firr-base --candidate fitted.toml --report review.html
          leadscore backtest leads.csv --label fields.converted --as-of 2026-01-01 --json backtest.json
        """
        from leadscore.outcomes import backtest as run

        refuse_overwriting_inputs(_outcome_inputs(leads_path, outcomes_path, config_path, activities, rulepacks,
                                                  candidates),
                                  [("--json", json_path), ("--report", report_path), ("--rejects", rejects)])
        common = _common(get_pm, outcomes_path, label, target, within_days, score_at, as_of, observed_until,
                         config_path, activities, input_fmt)
        try:
            result = run(leads_path, rulepacks=list(rulepacks) or None, candidate=list(candidates) or None,
                         bootstrap=bootstrap, seed=seed, channel_by=channel_by, min_support=min_support,
                         backend=engine_name, **common)
        except LeadscoreError as err:
            raise _fail(err) from err
        click.echo(result.text())
        if json_path:
            _write_json(result.data, json_path)
        if report_path:
            write_file(report_path, result.html())
            click.echo(f"report: {report_path}", err=True)
        _finish(result.rejections, rejects)

    @cli.command()
    @click.argument("leads_path", metavar="LEADS")
    @_outcome_options
    @click.option("--rulepack", "-r", "rulepacks", multiple=True, metavar="NAME|PATH",
                  help="The packs whose points to refit (repeatable); default: firr-base.")
    @click.option("--output", "-o", "output", required=True, type=click.Path(dir_okay=False, writable=True),
                  metavar="FITTED.toml", help="Where to write the fitted rulepack.")
    @click.option("--discover", is_flag=True,
                  help="Also propose rules from every signal and fields.* column, kept when they help on held-out folds.")
    @click.option("--min-support", default=30, show_default=True, metavar="N",
                  help="Leads a rule or proposed value must match (and miss) to be fitted.")
    @click.option("--bands", metavar="SPEC",
                  help="Band thresholds from target shares, e.g. \"sales_ready=5%,mql=20%,engaged=50%\" "
                       "(share of leads in that band or above); default: keep the packs' bands.")
    @click.option("--band-conversion", "band_conversion", metavar="SPEC",
                  help="Band thresholds from conversion rates, e.g. \"sales_ready=50%,mql=25%,engaged=10%\": each "
                       "band starts where the conversion the training leads predict reaches its rate. Not with --bands.")
    @click.option("--keep-gates", is_flag=True,
                  help="With --bands or --band-conversion: keep the packs' band gates (requires).")
    @click.option("--split-at", "split_at", metavar="DATE",
                  help="Hold out the leads scored at or after DATE (default: the latest --holdout share when leads "
                       "have their own scoring times, else a seeded random share).")
    @click.option("--holdout", default=0.3, show_default=True, help="Share of leads held out.")
    @click.option("--baseline", is_flag=True,
                  help="Also fit gradient boosting and logistic regression on the same features and split.")
    @click.option("--name", metavar="NAME", help="Name of the fitted pack (default: <last pack>-fitted).")
    @click.option("--points-per-double", default=20.0, show_default=True, metavar="POINTS",
                  help="Points that double the odds of converting: the scale of the fitted points.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                  help="Write the fit's figures as JSON.")
    def calibrate(leads_path: str, outcomes_path: str | None, label: str | None, target: str, within_days: float | None,
                  score_at: str | None, as_of: str | None, observed_until: str | None, config_path: str | None,
                  activities: str | None, input_fmt: str | None, engine_name: str, rejects: str | None, seed: int,
                  bootstrap: int, rulepacks: tuple[str, ...], output: str, discover: bool, min_support: int,
                  bands: str | None, band_conversion: str | None, keep_gates: bool, split_at: str | None, holdout: float, baseline: bool,
                  name: str | None, points_per_double: float, json_path: str | None) -> None:
        """Fit a rulepack's points from outcomes and write it as an ordinary rulepack.

        Rules keep their ids, reasons and categories; their points become the coefficients of a
        regularised logistic regression (rules whose sign flips are reported). The fitted pack is
        scored on held-out leads: its AUC and each band's conversion are printed and recorded in
        the pack. Review it with backtest --candidate before publishing.

        \b
        Examples:
          leadscore calibrate leads.jsonl --outcomes outcomes.csv -r firr-base -o fitted.toml
          leadscore calibrate leads.jsonl --outcomes outcomes.csv --discover --baseline -o fitted.toml \
              --bands "sales_ready=5%,mql=20%,engaged=50%"
          leadscore calibrate leads.jsonl --outcomes outcomes.csv --discover -o fitted.toml \
              --band-conversion "sales_ready=50%,mql=25%,engaged=10%"
          leadscore check fitted.toml
        """
        from leadscore.outcomes import calibrate as run

        refuse_overwriting_inputs(_outcome_inputs(leads_path, outcomes_path, config_path, activities, rulepacks, ()),
                                  [("-o", output), ("--json", json_path), ("--rejects", rejects)])
        common = _common(get_pm, outcomes_path, label, target, within_days, score_at, as_of, observed_until,
                         config_path, activities, input_fmt)
        try:
            result = run(leads_path, rulepacks=list(rulepacks) or None, discover=discover, min_support=min_support,
                         bands=bands, band_conversion=band_conversion, keep_gates=keep_gates, split_at=_timestamp(split_at, "--split-at"),
                         holdout=holdout, seed=seed, baseline=baseline, name=name, points_per_double=points_per_double,
                         bootstrap=bootstrap, backend=engine_name, **common)
        except LeadscoreError as err:
            raise _fail(err) from err
        write_file(output, result.toml)
        click.echo(result.text())
        click.echo(f"\nwrote {output} (review it: leadscore backtest ... --candidate {output})")
        if json_path:
            _write_json(result.data, json_path)
        _finish(result.rejections, rejects)

    @cli.command()
    @click.option("--reference", "reference", required=True, type=click.Path(dir_okay=False), metavar="FILE",
                  help="The leads to compare against (JSON Lines or CSV).")
    @click.option("--current", "current", type=click.Path(dir_okay=False), metavar="FILE",
                  help="The leads to check; or use --split-at to split --reference in two.")
    @click.option("--split-at", "split_at", metavar="DATE",
                  help="Compare the leads of --reference created before DATE with those created from DATE on.")
    @click.option("--rulepack", "-r", "rulepacks", multiple=True, metavar="NAME|PATH",
                  help="Rulepacks to score with (repeatable); default: every installed rulepack.")
    @click.option("--score-at", "score_at", metavar="SPEC", help="Score each lead as of created, created+7d... "
                  "(default: created).")
    @click.option("--as-of", "as_of", metavar="TIMESTAMP", help="Score every lead at one fixed time.")
    @click.option("--reference-activities", type=click.Path(dir_okay=False), metavar="FILE",
                  help="Activities CSV for --reference.")
    @click.option("--current-activities", type=click.Path(dir_okay=False), metavar="FILE",
                  help="Activities CSV for --current.")
    @click.option("--psi-threshold", default=0.2, show_default=True, help="Flag a score whose PSI exceeds this.")
    @click.option("--rate-threshold", default=0.05, show_default=True,
                  help="Flag a band share or rule firing rate that moves more than this (0.05 = 5 points).")
    @click.option("--bins", default=10, show_default=True, help="Bins of the score distribution for the PSI.")
    @click.option("--engine", "engine_name", type=click.Choice(["python", "durable"]), default="python",
                  show_default=True, help="Rule backend.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                  help="Write the figures as JSON.")
    @click.option("--rejects", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                  help="Write every rejected lead with its reason to FILE (.csv or .jsonl).")
    def drift(reference: str, current: str | None, split_at: str | None, rulepacks: tuple[str, ...],
              score_at: str | None, as_of: str | None, reference_activities: str | None,
              current_activities: str | None, psi_threshold: float, rate_threshold: float, bins: int,
              engine_name: str, json_path: str | None, rejects: str | None) -> None:
        """Has the scored population moved? PSI of the score and sub-scores, band shares, rule firing rates.

        Exits 1 when anything moves beyond a threshold, so a scheduled CI job fails on drift.

        \b
        Examples:
          leadscore drift --reference leads-q1.jsonl --current leads-q2.jsonl
          leadscore drift --reference leads.jsonl --split-at 2026-10-01 -r my-pack.toml --json drift.json
        """
        from leadscore.outcomes import drift as run

        refuse_overwriting_inputs([("input", reference), ("input", current), ("activities file", reference_activities),
                                   ("activities file", current_activities), *(("rulepack", r) for r in rulepacks)],
                                  [("--json", json_path), ("--rejects", rejects)])
        try:
            result = run(reference, current, split_at=_timestamp(split_at, "--split-at"),
                         rulepacks=list(rulepacks) or None, plugins=get_pm(), score_at=score_at,
                         as_of=_timestamp(as_of, "--as-of"), activities=reference_activities,
                         current_activities=current_activities, psi_threshold=psi_threshold,
                         rate_threshold=rate_threshold, bins=bins, backend=engine_name)
        except LeadscoreError as err:
            raise _fail(err) from err
        click.echo(result.text())
        if json_path:
            _write_json(result.data, json_path)
        if result.rejections:
            _write_rejections(result.rejections, rejects)
        if result.flagged or result.rejections:
            sys.exit(EXIT_REJECTED)


def _finish(rejections: Sequence[Rejection], path: str | None) -> None:
    """Report what could not be used; exit 1 when anything was rejected."""
    if rejections:
        _write_rejections(rejections, path)
        sys.exit(EXIT_REJECTED)
