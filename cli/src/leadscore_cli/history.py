"""History commands: ``history``, ``alerts``, ``diff``, ``ingest``, ``replay``, and ``score --history``.

Commands parse options and print; the work is in ``leadscore.history``. ``register(cli, get_pm)``
adds them to the group that ``build_cli`` makes.
"""

from __future__ import annotations

import csv
import json
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any

import click

from leadscore.errors import InputError, LeadscoreError
from leadscore.io.timestamps import format_timestamp
from leadscore_cli.main import (
    EXIT_REJECTED,
    InputOptions,
    UsageFailure,
    _fail,
    _read,
    _report_shares,
    input_label,
    input_options,
    parse_as_of,
    say,
)

history_option = click.option("--history", "history", metavar="TARGET", required=True,
                              help="History database: a file path (DuckDB) or a postgresql:// URL.")


def _open(target: str, create: bool = False) -> Any:
    from leadscore.history import open_store

    try:
        return open_store(target, create=create)
    except LeadscoreError as err:
        raise _fail(err) from err


# --- score --history -------------------------------------------------------------------------


class HistoryRun:
    """``score --history``: the run is recorded while it is scored and committed at the end."""

    def __init__(self, target: str, engine: Any, *, with_ledger: bool, source: str, engine_name: str) -> None:
        from leadscore.history.recorder import RunRecorder

        self.store = _open(target, create=True)
        self.recorder = RunRecorder(self.store, engine, source=source, with_ledger=with_ledger,
                                    engine_name=engine_name)
        try:
            self.recorder.start(engine.as_of)
        except LeadscoreError as err:
            self.store.close()
            raise _fail(err) from err

    def score(self, leads: Any, scoring: Callable[[Any], Iterator[Any]]) -> Iterator[Any]:
        """``scoring(leads)``, each card recorded beside its lead."""
        return self.recorder.score(leads, scoring)

    def commit(self) -> None:
        try:
            run_id = self.recorder.commit()
        except LeadscoreError as err:
            raise _fail(err) from err
        say(f"stored as run {run_id} in {self.store.target}", err=True)

    def close(self) -> None:
        self.recorder.abort()
        self.store.close()


@contextmanager
def history_run(target: str | None, engine: Any, with_ledger: bool, source: str,
                engine_name: str) -> Iterator[HistoryRun | None]:
    """The recorder for ``score --history`` (None without it); an unfinished run is rolled back."""
    if target is None:
        if with_ledger:
            raise UsageFailure("--history-ledger: needs --history TARGET; add --history history.duckdb")
        yield None
        return
    run = HistoryRun(target, engine, with_ledger=with_ledger, source=source, engine_name=engine_name)
    try:
        yield run
    finally:
        run.close()


# --- output helpers ----------------------------------------------------------------------------


def _emit(rows: list[dict[str, Any]], fmt: str, columns: list[str], out: IO[str]) -> None:
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    elif fmt == "csv":
        from leadscore.io.writers import safe_cell

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(" | ".join(map(str, v))) if isinstance(v, list)
                             else safe_cell(v) if isinstance(v, str) else "" if v is None else v
                             for v in (row[c] for c in columns)])


def _policy(to_bands: tuple[str, ...], margin: int, cooldown: str | None, include_new: bool) -> Any:
    from leadscore.history.alerts import AlertPolicy, parse_duration

    if margin < 0:
        raise UsageFailure(f"--margin: {margin} is negative; give 0 or more points")
    try:
        return AlertPolicy(tuple(to_bands), margin, parse_duration(cooldown) if cooldown else None, include_new)
    except LeadscoreError as err:
        raise _fail(err) from err


def _channel(webhook: str | None, timeout: float, retries: int) -> Any:
    from leadscore.history.alerts import StreamChannel, WebhookChannel

    if webhook is None:
        return StreamChannel(sys.stdout)
    try:
        return WebhookChannel(webhook, timeout=timeout, retries=retries)
    except LeadscoreError as err:
        raise _fail(err) from err


def _alert_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--to", "to_bands", multiple=True, metavar="BAND",
                     help="Alert on entering this band (repeatable); default: any upward crossing."),
        click.option("--margin", default=0, show_default=True, metavar="POINTS",
                     help="Hysteresis: after an alert, the lead must fall this many points below the band's "
                          "threshold before it can alert for that band again."),
        click.option("--cooldown", metavar="DURATION", help="No second alert for a lead within this time (7d, 12h)."),
        click.option("--include-new", is_flag=True, help="A lead's first stored card counts as a crossing."),
        click.option("--webhook", metavar="URL", help="POST each alert as JSON to URL instead of printing it."),
        click.option("--timeout", default=5.0, show_default=True, metavar="SECONDS", help="Webhook timeout per try."),
        click.option("--retries", default=3, show_default=True, help="Webhook retries after the first try."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _report_delivery(report: Any) -> None:
    for error in report.errors[:20]:
        say(f"leadscore: {error}", err=True)
    say(f"alerts: {report.sent} sent, {report.failed} failed (retried next time), "
               f"{report.already} already delivered", err=True)


def register(cli: click.Group, get_pm: Callable[[], Any]) -> None:
    """Add the history commands to ``cli``."""

    @cli.command("history")
    @click.argument("lead_id")
    @history_option
    @click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv"]), default="table",
                  show_default=True, help="Output format.")
    def history_cmd(lead_id: str, history: str, fmt: str) -> None:
        """Show LEAD_ID's score, band and route over the stored runs, and what changed between them.

        Changes are the ledger lines that appeared, disappeared or decayed; cards stored without a
        ledger (score without --history-ledger) get theirs by rescoring the stored snapshot under the
        run's stored packs.

        \b
        Example:
          leadscore history L-1001 --history history.duckdb
        """
        from leadscore.history.changes import ledger_changes
        from leadscore.history.rescore import LedgerSource

        store = _open(history)
        with store, LedgerSource(store, get_pm()) as ledgers:
            try:
                cards = store.cards_for_leads([lead_id])[lead_id]
                if not cards:
                    raise UsageFailure(f"{store.target}: no lead {lead_id!r} in the history; check the id "
                                       "(ids are case-sensitive)")
                rows, previous_ledger = [], None
                for i, card in enumerate(cards):
                    ledger = ledgers.ledger(card)
                    if i == 0:
                        changes = None
                    elif ledger is None or previous_ledger is None:
                        changes = None
                    else:
                        changes = [c for c in ledger_changes(previous_ledger, ledger) if c.delta]
                    previous_ledger = ledger
                    rows.append({
                        "run_id": card.run_id, "seq": card.seq, "as_of": format_timestamp(card.as_of),
                        "total": card.total, "band": card.band, "route": card.route_action,
                        "delta": None if i == 0 else card.total - cards[i - 1].total,
                        "changes": None if changes is None else [c.text() for c in changes],
                        "reasons": list(card.reasons),
                    })
            except LeadscoreError as err:
                raise _fail(err) from err
        if fmt != "table":
            _emit(rows, fmt, ["run_id", "seq", "as_of", "total", "delta", "band", "route", "changes", "reasons"],
                  sys.stdout)
            return
        say(f"{lead_id}: {len(rows)} card{'s' if len(rows) != 1 else ''}")
        for i, row in enumerate(rows):
            delta = "" if row["delta"] is None else f" ({row['delta']:+d})"
            say(f"run {row['run_id']}{'.' + str(row['seq']) if row['seq'] else ''}  {row['as_of']}  "
                       f"{row['total']:>4}{delta}  {row['band']}  {row['route'] or '-'}")
            if i == 0:
                for reason in row["reasons"]:
                    say(f"      {reason}")
            elif row["changes"] is None:
                say("      (ledger not stored and the stored packs no longer give the stored total)")
            else:
                for text in row["changes"] or ["no ledger line changed"]:
                    say(f"      {text}")

    @cli.command()
    @history_option
    @click.option("--since", "since_run", type=int, metavar="RUN", help="Only crossings in run RUN and later.")
    @_alert_options
    def alerts(history: str, since_run: int | None, to_bands: tuple[str, ...], margin: int, cooldown: str | None,
               include_new: bool, webhook: str | None, timeout: float, retries: int) -> None:
        """Send one alert per band crossing not yet delivered: JSON Lines on stdout, or a webhook POST.

        A crossing is a lead whose band went up since its previous stored card (or into a --to
        band). Deliveries are recorded in the history: running it again sends nothing twice, and a
        failed webhook delivery is tried again next time.

        \b
        Examples:
          leadscore alerts --history history.duckdb --to sales_ready --margin 5 --cooldown 7d
          leadscore alerts --history history.duckdb --webhook https://hooks.example.com/leads
        """
        from leadscore.history.alerts import deliver, find_alerts, with_changes
        from leadscore.history.rescore import LedgerSource

        policy = _policy(to_bands, margin, cooldown, include_new)
        channel = _channel(webhook, timeout, retries)
        store = _open(history)
        with store, LedgerSource(store, get_pm()) as ledgers:
            try:
                if since_run is not None and store.run(since_run) is None:
                    raise UsageFailure(f"--since: no run {since_run} in {store.target}; "
                                       f"runs are numbered 1 to {len(store.runs())}")
                delivered = {k for k, r in store.alert_records().items() if r.status == "sent"}
                skipped = [0]

                def fresh() -> Iterator[Any]:
                    # Delivered alerts are counted, not rebuilt (their ledger lines are not needed).
                    for alert in find_alerts(store, policy, since_run):
                        if alert.key in delivered:
                            skipped[0] += 1
                        else:
                            yield with_changes(alert, ledgers.ledger)

                report = deliver(store, fresh(), channel)
                report = type(report)(report.sent, report.failed, report.already + skipped[0], report.errors)
            except LeadscoreError as err:
                raise _fail(err) from err
        _report_delivery(report)
        if report.failed:
            sys.exit(EXIT_REJECTED)

    @cli.command()
    @click.argument("input_path", metavar="LEADS", required=False)
    @click.option("--rulepack", "-r", "old", multiple=True, metavar="PACK|DIR",
                  help="The current packs (repeatable): names, .toml files or directories of them.")
    @click.option("--to", "new", multiple=True, required=True, metavar="PACK|DIR",
                  help="The candidate packs (repeatable), as for --rulepack.")
    @click.option("--as-of", "as_of", metavar="TIMESTAMP", help="Scoring time for both (default now).")
    @click.option("--history", "history", metavar="TARGET", help="Rescore the snapshots of a stored run instead.")
    @click.option("--run", "run_id", type=int, help="The stored run (with --history; default the latest).")
    @click.option("--fail-if", "gates", multiple=True, metavar="GATE",
                  help="Exit 1 when a gate holds, e.g. sales_ready>+10%, mql<-5%, changed>2% (repeatable).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    @click.option("--input-format", "input_fmt", type=click.Choice(["jsonl", "csv"]), help="Input format of LEADS.")
    @click.option("--activities", type=click.Path(dir_okay=False), metavar="FILE", help="Activities CSV for LEADS.")
    @input_options
    def diff(input_path: str | None, old: tuple[str, ...], new: tuple[str, ...], as_of: str | None,
             history: str | None, run_id: int | None, gates: tuple[str, ...], fmt: str, input_fmt: str | None,
             activities: str | None, map_spec: str | None, delimiter: str | None, strict: bool,
             dedupe: bool) -> None:
        """Compare two pack sets on the same leads: band transitions, volume per band, and the leads
        that change band or route with the ledger lines responsible.

        \b
        Examples:
          leadscore diff leads.jsonl -r old/ --to new/ --as-of 2026-11-23 --fail-if "sales_ready>+10%"
          leadscore diff --history history.duckdb --run 7 --to candidate.toml
        """
        from leadscore.history.diff import compare, parse_gate, render, score_both
        from leadscore.history.packs import StoredPackEngine, engine_for_packs
        from leadscore.history.recorder import engine_bands

        if (input_path is None) == (history is None):
            raise UsageFailure("diff: give either LEADS or --history TARGET (to rescore a stored run)")
        if run_id is not None and history is None:
            raise UsageFailure("--run: needs --history TARGET")
        when = parse_as_of(as_of)
        with ExitStack() as stack:
            try:
                pm = get_pm()
                new_engine = stack.enter_context(engine_for_packs(pm, new, "--to", as_of=when))
                if history is None:
                    old_engine = stack.enter_context(engine_for_packs(pm, old, "--rulepack", as_of=when))
                    assert input_path is not None
                    path = input_path
                    if path == "-":
                        from leadscore_cli.main import _spool_stdin

                        path = stack.enter_context(_spool_stdin(input_fmt))
                    options = InputOptions(map_spec, delimiter, strict, dedupe)
                    label = input_label(input_path)
                    pairs = score_both(lambda: _read(path, activities, input_fmt, options=options, label=label), old_engine,
                                       new_engine, when, lambda side, summary: _report_shares(summary, f"({side} packs)"))
                else:
                    store = stack.enter_context(_open(history))
                    runs = store.runs()
                    chosen = run_id if run_id is not None else (runs[-1].run_id if runs else None)
                    run = store.run(chosen, with_texts=True) if chosen is not None else None
                    if run is None or run.kind != "score":
                        raise UsageFailure(f"--run: no scoring run {chosen} in {store.target}; "
                                           "list the runs with leadscore runs --history TARGET")
                    old_engine = stack.enter_context(
                        engine_for_packs(pm, old, "--rulepack") if old else StoredPackEngine(pm, run))
                    leads = _run_leads(store, run.run_id)
                    when = run.as_of
                    pairs = score_both(leads, old_engine, new_engine, when, lambda side, summary: _report_shares(summary, f"({side} packs)"))
                bands = [b for b, _ in engine_bands(old_engine)] + [b for b, _ in engine_bands(new_engine)]
                checks = [parse_gate(g, bands) for g in gates]
                report = compare(pairs, sorted(set(bands), key=_rank(old_engine, new_engine)))
            except LeadscoreError as err:
                raise _fail(err) from err
        if fmt == "json":
            data = report.to_dict()
            data["gates"] = [{"gate": g.text, "failed": g.failed(report), "detail": g.explain(report)} for g in checks]
            click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            for line in render(report):
                say(line)
        failed = [g for g in checks if g.failed(report)]
        for gate in failed:
            say(f"leadscore: {gate.explain(report)}; failing", err=True)
        if failed:
            sys.exit(EXIT_REJECTED)

    @cli.command()
    @click.argument("events_path", metavar="EVENTS")
    @history_option
    @click.option("--rulepack", "-r", "rulepacks", multiple=True, metavar="PACK|DIR",
                  help="Packs to score with (repeatable); default: every installed rulepack.")
    @click.option("--batch", default=500, show_default=True,
                  help="Events per transaction (fewer when the input pauses).")
    @click.option("--alerts/--no-alerts", "send_alerts", default=True, show_default=True,
                  help="Deliver alerts for the crossings the events cause.")
    @_alert_options
    def ingest(events_path: str, history: str, rulepacks: tuple[str, ...], batch: int, send_alerts: bool,
               to_bands: tuple[str, ...], margin: int, cooldown: str | None, include_new: bool,
               webhook: str | None, timeout: float, retries: int) -> None:
        """Apply EVENTS (JSON Lines; - for stdin) to the stored leads, one at a time.

        An event adds an activity, changes fields or adds a lead. Only the touched lead (and its
        account's contacts, when account rules move) is rescored; each batch of events commits
        whole. Alerts go to stdout (or --webhook) as crossings happen. An event for an unknown
        lead is rejected with its line.

        \b
        Example:
          echo '{"event":"activity","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}' \\
            | leadscore ingest - --history history.duckdb --to sales_ready
        """
        from leadscore.history.alerts import deliver, with_changes
        from leadscore.history.ingest import Ingestor, parse_event
        from leadscore.history.packs import engine_for_packs
        from leadscore.history.rescore import LedgerSource

        if batch < 1:
            raise UsageFailure(f"--batch: {batch} is not a positive number of events")
        policy = _policy(to_bands, margin, cooldown, include_new) if send_alerts else None
        channel = _channel(webhook, timeout, retries) if send_alerts else None
        name = input_label(events_path)
        try:
            stream = sys.stdin.buffer if events_path == "-" else open(events_path, "rb")  # noqa: SIM115
        except OSError as err:
            raise UsageFailure(f"{events_path}: cannot read ({err.strerror}); check the path") from err
        store = _open(history)
        shown = 0
        totals = {"sent": 0, "failed": 0}
        with ExitStack() as stack:
            stack.enter_context(store)
            if stream is not sys.stdin.buffer:
                stack.enter_context(stream)
            try:
                engine = stack.enter_context(engine_for_packs(get_pm(), rulepacks, "--rulepack"))
                ledgers = stack.enter_context(LedgerSource(store, get_pm()))
                ingestor = Ingestor(store, engine, source=name, policy=policy)
                if engine.needs_accounts and engine.undeclared_readers:
                    say(f"leadscore: note: {', '.join(engine.undeclared_readers)} "
                        f"{'does' if len(engine.undeclared_readers) == 1 else 'do'} not declare the signals "
                        "read (leadscore.plugin.reads_signals), so an event rescores every contact of its account "
                        "whenever any account signal moves", err=True)
                for lines in _batches(stream, batch):
                    events, bad = [], []
                    for number, raw in lines:
                        where = f"{name}:{number}"
                        if not raw.strip():
                            continue
                        try:
                            events.append(parse_event(raw, where, number))
                        except InputError as err:
                            bad.append(ingestor.reject_line(where, err.what, err.fix))
                    ingestor.prepare(events)
                    outcomes = bad + [ingestor.apply(e) for e in events]
                    for outcome in outcomes:
                        if outcome.status == "rejected" and shown < 20:
                            say(f"rejected {outcome.detail}", err=True)
                            shown += 1
                    ready = ingestor.commit()
                    if ready and channel is not None:
                        report = deliver(store, [with_changes(a, ledgers.ledger) for a in ready], channel)
                        totals["sent"] += report.sent
                        totals["failed"] += report.failed
                        for error in report.errors[:5]:
                            say(f"leadscore: {error}", err=True)
            except LeadscoreError as err:
                raise _fail(err) from err
        say(f"events: applied {ingestor.applied} + duplicate {ingestor.duplicates} + rejected "
                   f"{ingestor.rejected} (run {ingestor.run_id}); alerts: {totals['sent']} sent, "
                   f"{totals['failed']} failed", err=True)
        if ingestor.rejected or totals["failed"]:
            sys.exit(EXIT_REJECTED)

    @cli.command()
    @history_option
    @click.option("--rulepack", "-r", "rulepacks", multiple=True, required=True, metavar="PACK|DIR",
                  help="The packs to replay under (repeatable).")
    @click.option("--from", "start", metavar="DATE", help="First scoring time to replay (ISO 8601).")
    @click.option("--to", "end", metavar="DATE", help="Last scoring time to replay (ISO 8601).")
    @click.option("--alert-to", "to_bands", multiple=True, metavar="BAND", help="Alert rule: entering BAND.")
    @click.option("--margin", default=0, show_default=True, help="Alert rule: hysteresis points.")
    @click.option("--cooldown", metavar="DURATION", help="Alert rule: per-lead cooldown.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
    def replay(history: str, rulepacks: tuple[str, ...], start: str | None, end: str | None,
               to_bands: tuple[str, ...], margin: int, cooldown: str | None, fmt: str) -> None:
        """Rescore the stored runs between --from and --to under other packs, as of each run's time,
        and show what would have differed: bands per run and the alerts that would or would not
        have fired. Nothing is written.

        \b
        Example:
          leadscore replay --history history.duckdb -r candidate.toml --from 2026-07-01 --to 2026-09-30
        """
        from leadscore.history.packs import engine_for_packs
        from leadscore.history.replay import replay as run_replay
        from leadscore.history.replay import runs_between

        policy = _policy(to_bands, margin, cooldown, False)
        first = parse_as_of(start) if start else None
        last = parse_as_of(end) if end else None
        if last is not None and end is not None and len(end.strip()) == 10:
            from datetime import timedelta

            last = last + timedelta(days=1) - timedelta(microseconds=1)  # a date alone means the whole day
        store = _open(history)
        with store:
            try:
                runs = runs_between(store, first, last)
                if not runs:
                    raise UsageFailure(f"{store.target}: no complete run scored between {start or 'the start'} and "
                                       f"{end or 'now'}; widen --from/--to")
                with engine_for_packs(get_pm(), rulepacks, "--rulepack") as engine:
                    report = run_replay(store, engine, runs, policy)
            except LeadscoreError as err:
                raise _fail(err) from err
        only_stored, only_new = report.only_stored(), report.only_replayed()
        if fmt == "json":
            click.echo(json.dumps({
                "runs": [{"run_id": r.run.run_id, "kind": r.run.kind,
                          "as_of": format_timestamp(r.run.as_of or r.run.started_at), "cards": r.cards,
                          "band_changes": r.band_changes, "unscored": r.unscored,
                          "transitions": [{"from": a, "to": b, "cards": n} for (a, b), n in sorted(r.transitions.items())
                                          if a != b]} for r in report.runs],
                "alerts": {"stored": len(report.stored_alerts), "replayed": len(report.replayed_alerts),
                           "would_not_fire": [a.payload() for a in only_stored],
                           "would_fire": [a.payload() for a in only_new]},
            }, ensure_ascii=False, indent=2))
            return
        for r in report.runs:
            moves = ", ".join(f"{a} -> {b}: {n}" for (a, b), n in sorted(r.transitions.items(), key=lambda x: -x[1])
                              if a != b)
            say(f"run {r.run.run_id} ({r.run.kind}, {format_timestamp(r.run.as_of or r.run.started_at)}): "
                       f"{r.cards} cards, {r.band_changes} would change band" + (f" ({moves})" if moves else ""))
        say(f"alerts: {len(report.stored_alerts)} under the stored packs, "
                   f"{len(report.replayed_alerts)} under the replayed ones")
        for label, items in (("would have fired", only_new), ("would not have fired", only_stored)):
            say(f"{label}: {len(items)}")
            for a in items[:30]:
                say(f"  {a.lead_id} run {a.run_id}: {a.from_band} -> {a.to_band} ({a.total})")

    @cli.command()
    @history_option
    @click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
    def runs(history: str, fmt: str) -> None:
        """List the stored runs: id, kind, time, packs with versions and hashes, counts.

        \b
        Example:
          leadscore runs --history history.duckdb
        """
        store = _open(history)
        with store:
            try:
                rows = [{"run_id": r.run_id, "kind": r.kind, "started_at": format_timestamp(r.started_at),
                         "as_of": None if r.as_of is None else format_timestamp(r.as_of), "engine": r.engine,
                         "source": r.source, "scored": r.scored, "rejected": r.rejected, "ledger": r.with_ledger,
                         "complete": r.complete,
                         "packs": [f"{p.name}@{p.version}#{p.hash}" for p in r.packs if p.active]} for r in store.runs()]
            except LeadscoreError as err:
                raise _fail(err) from err
        if fmt == "jsonl":
            _emit(rows, "jsonl", [], sys.stdout)
            return
        for row in rows:
            say(f"run {row['run_id']:<4} {row['kind']:<7} {row['as_of'] or row['started_at']}  "
                       f"scored {row['scored']}, rejected {row['rejected']}  {' '.join(row['packs'])}"
                       + ("" if row["complete"] else "  (still running)"))


def _rank(*engines: Any) -> Callable[[str], tuple[int, str]]:
    from leadscore.history.recorder import engine_bands

    points: dict[str, int] = {}
    for engine in engines:
        for name, minimum in engine_bands(engine):
            points.setdefault(name, minimum)
    return lambda band: (points.get(band, 0), band)


def _run_leads(store: Any, run_id: int) -> Callable[[], Iterator[Any]]:
    from leadscore.history.rescore import lead_from_snapshot

    def read() -> Iterator[Any]:
        page: list[Any] = []
        for card in store.run_cards(run_id):
            page.append(card)
            if len(page) >= 2000:
                yield from _page(page)
                page = []
        yield from _page(page)

    def _page(cards: list[Any]) -> Iterator[Any]:
        texts = store.snapshots(c.snapshot for c in cards)
        for card in cards:
            yield lead_from_snapshot(texts[card.snapshot], f"run {run_id} lead {card.lead_id}")

    return read


_END = object()


def _batches(stream: IO[bytes], size: int) -> Iterator[list[tuple[int, bytes]]]:
    """Numbered lines in batches of up to ``size``; a batch ends early when the input pauses, so a
    live stream is applied (and alerted on) as it arrives rather than when ``size`` lines are in."""
    lines: queue.Queue[Any] = queue.Queue(maxsize=4 * size)

    def pump() -> None:
        try:
            for number, raw in enumerate(stream, 1):
                lines.put((number, raw))
        finally:
            lines.put(_END)

    threading.Thread(target=pump, daemon=True).start()
    done = False
    while not done:
        item = lines.get()
        if item is _END:
            return
        batch = [item]
        while len(batch) < size:
            try:
                item = lines.get(timeout=0.05)
            except queue.Empty:
                break
            if item is _END:
                done = True
                break
            batch.append(item)
        yield batch
