"""The ``leadscore`` command, built by a factory from a plugin manager.

Commands parse options and print; scoring, reading and writing live in the ``leadscore`` library.
Exit codes: 0 all good; 1 some leads rejected or some cases failed; 2 usage or configuration error.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click

from leadscore import __version__
from leadscore.accounts import account_key
from leadscore.columnar import RENDERED_FORMATS, Rendered, interrupted_statement
from leadscore.errors import LeadscoreError, RulepackErrors, describe_failure
from leadscore.model import Rejection, ScoreCard
from leadscore.plugins import PluginManager
from leadscore.rulepack.schema import CUSTOM_FIELDS
from leadscore.text import printable

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
MAX_REJECTIONS_SHOWN = 20


class UsageFailure(click.ClickException):
    """A configuration or input problem: one line on stderr, exit code 2."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[str] | None = None) -> None:
        # Line by line: a message may hold several (one per rulepack problem), each escaped.
        click.echo("\n".join(printable(line) for line in f"leadscore: {self.format_message()}".split("\n")), err=True)


class OneLineGroup(click.Group):
    """click's group, with every usage error (a bad choice, a missing argument, an unknown option)
    as one line on stderr and exit code 2, like the command's own errors."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:
            sub = err.ctx.command_path.partition(" ")[2] if err.ctx is not None else ""
            message = " ".join(err.format_message().split()).rstrip(".")
            where = f"{sub}: " if sub else ""
            command = f"leadscore {sub}".strip()
            click.echo(f"leadscore: {where}{message}; see '{command} --help'", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort as err:
            if isinstance(err.__context__, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (see _on_sigterm)
                click.echo("leadscore: interrupted", err=True)
                sys.exit(interrupted_exit_code())
            click.echo("leadscore: aborted", err=True)
            sys.exit(1)
        except RuntimeError as err:
            if not interrupted_statement(err):  # Ctrl-C or SIGTERM while a DuckDB statement ran
                raise
            click.echo("leadscore: interrupted", err=True)
            sys.exit(interrupted_exit_code())
        sys.exit(result if isinstance(result, int) else 0)


def _fail(err: LeadscoreError) -> UsageFailure:
    # Each message is escaped before the lines are joined: a value cannot forge a line.
    if isinstance(err, RulepackErrors):
        return UsageFailure("\nleadscore: ".join(printable(e.line()) for e in err.errors))
    return UsageFailure(printable(err.line()))


def say(text: str, err: bool = False) -> None:
    """Print one line for people, its control characters and line breaks escaped."""
    click.echo(printable(text), err=err)


# The scoring time: windows reach back a century (the longest the language allows) and dates
# must stay printable, so a time outside these years is a typo.
AS_OF_YEARS = (1900, 9000)
_terminated = {"signal": 0}


def interrupted_exit_code() -> int:
    """130 after Ctrl-C (SIGINT), 143 after SIGTERM: 128 plus the signal's number."""
    return 128 + (_terminated["signal"] or signal.SIGINT)


def _on_sigterm(signum: int, frame: Any) -> None:
    # Stop like Ctrl-C, so outputs are discarded and the run says how far it got.
    _terminated["signal"] = signum
    raise KeyboardInterrupt


def parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    from leadscore.io.timestamps import parse_timestamp

    try:
        when = parse_timestamp(value, "--as-of", "--as-of")
    except LeadscoreError as err:
        raise UsageFailure(f"--as-of: {value!r} is not a timestamp; write ISO 8601 such as 2026-11-23T00:00:00Z") from err
    if not AS_OF_YEARS[0] <= when.year < AS_OF_YEARS[1]:
        raise UsageFailure(f"--as-of: {value!r} is outside the years {AS_OF_YEARS[0]} to {AS_OF_YEARS[1] - 1}; "
                           f"give the scoring time, such as 2026-11-23")
    return when


class _CountingReader:
    """A binary file that remembers how far it has been read, for the progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.name = getattr(raw, "name", None)
        self.read_bytes = 0

    def readline(self, limit: int = -1) -> bytes:
        line = self.raw.readline(limit)
        self.read_bytes += len(line)
        return line

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.read_bytes += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def close(self) -> None:
        self.raw.close()


def _progress(items: Iterator[Any], enabled: bool, reader: _CountingReader | None = None,
              size: int = 0, label: str = "scored") -> Iterator[Any]:
    """A progress bar on stderr (percent of the input read) when stderr is a terminal; every pass
    over the input shows one (``label`` names the pass)."""
    if not enabled:
        yield from items
        return
    count = 0

    def show(final: bool = False) -> None:
        if reader is not None and size > 0:
            done = min(1.0, reader.read_bytes / size)
            bar = "#" * int(done * 30)
            sys.stderr.write(f"\r[{bar:<30}] {done:4.0%}  {count:,} leads")
        else:
            sys.stderr.write(f"\r{label} {count:,} leads")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    for count, item in enumerate(items, 1):
        if count % 1000 == 0:
            show()
        yield item
    if count >= 1000:
        show(final=True)


class InputOptions:
    """How a command reads leads: --map, --delimiter, --strict and --dedupe, shared by every
    command that reads a leads file."""

    def __init__(self, map_spec: str | None = None, delimiter: str | None = None, strict: bool = False,
                 dedupe: bool = False) -> None:
        from leadscore.io.maps import load_map, parse_delimiter

        try:
            self.column_map = load_map(map_spec) if map_spec else None
            self.delimiter = parse_delimiter(delimiter, "--delimiter") if delimiter else None
        except LeadscoreError as err:
            raise _fail(err) from err
        self.strict = strict
        self.dedupe = dedupe

    def kwargs(self, report: Any) -> dict[str, Any]:
        return {"column_map": self.column_map, "delimiter": self.delimiter, "strict": self.strict, "report": report}


def input_label(path: str) -> str:
    """How messages name an input: its path, or ``<stdin>`` for ``-`` (also once it is copied to a file)."""
    return "<stdin>" if path == "-" else path


def _read(path: str, activities: str | None, fmt: str | None,
          reader: _CountingReader | None = None, options: InputOptions | None = None,
          report: Any = None, activity_reader: Any = None, label: str | None = None) -> Iterator[Any]:
    """Stream leads from a path, or from stdin for ``-`` (JSON Lines unless --input-format says csv),
    each lead id once (later copies rejected, or merged with --dedupe). ``activity_reader``: see read_leads.

    With ``reader`` (an opened JSON Lines input), the progress bar can tell how far it has got.
    ``label``: how messages name the input (default: the path, ``<stdin>`` for ``-``); standard input
    copied to a file (:func:`_spool_stdin`) is still ``<stdin>``.
    """
    from leadscore.io import read_leads
    from leadscore.io.duplicates import duplicate_ids, merge_duplicates, reject_duplicates
    from leadscore.io.readers import ReadReport

    options = options or InputOptions()
    label = label or input_label(path)
    extra = options.kwargs(report if report is not None else ReadReport())
    if activity_reader is not None:
        extra["activity_reader"] = activity_reader
    if path == "-":
        # Bytes, so a bad UTF-8 sequence rejects its line or row, as it does in a file.
        stdin = getattr(sys.stdin, "buffer", sys.stdin)
        leads = read_leads(stdin, activities=activities, fmt=fmt or "jsonl", name=label, **extra)
    elif reader is not None:
        leads = read_leads(reader, activities=activities, fmt=fmt or "jsonl", name=label, **extra)
    else:
        leads = read_leads(path, activities=activities, fmt=fmt, name=label, **extra)
    if options.dedupe and path != "-":
        # The leads' read started first: an activities file is read (and its errors told) before the
        # leads file's, as in a run without --dedupe and on the columnar engine.
        first = next(leads, None)
        leads = itertools.chain(() if first is None else (first,), leads)
        # A first look at the ids finds the duplicated ones; only those are held until merged.
        copies = duplicate_ids(read_leads(path, activities=None, fmt=fmt, name=label, **options.kwargs(ReadReport())))
        return merge_duplicates(leads, copies)
    return reject_duplicates(leads, label)


def input_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--map, --delimiter, --strict and --dedupe for a command that reads leads."""
    fn = click.option("--dedupe", is_flag=True,
                      help="Merge leads that share an id into one (default: score the first, reject the others).")(fn)
    fn = click.option("--strict", is_flag=True,
                      help="Stop on CSV columns that are no lead field (default: keep them as fields.<name>, with a warning).")(fn)
    fn = click.option("--delimiter", metavar="CHAR",
                      help="CSV separator: , ; | or tab (default: detected from the header).")(fn)
    fn = click.option("--map", "map_spec", metavar="hubspot|salesforce|FILE.toml",
                      help="Column map for a CRM export (see docs/maps.md).")(fn)
    return fn


def _report_reading(report: Any, unknown_types: Any = None, known: Any = (), misfits: Any = None) -> None:
    """The read's warnings, the activities it left out, activity types no rulepack knows and custom
    field values that do not fit their declared type: each one line on stderr, so nothing is dropped
    in silence."""
    import difflib

    for line in report.warnings:
        say(f"leadscore: warning: {line}", err=True)
    for rej in report.skipped[:MAX_REJECTIONS_SHOWN]:
        say(f"skipped {rej.where}: {rej.reason}", err=True)
    if report.skipped_count > MAX_REJECTIONS_SHOWN:
        click.echo(f"... and {report.skipped_count - MAX_REJECTIONS_SHOWN} more activities left out", err=True)
    if unknown_types:
        parts = []
        for kind, count in sorted(unknown_types.items(), key=lambda item: (-item[1], item[0])):
            close = difflib.get_close_matches(kind, sorted(known), n=1)
            hint = f", did you mean {close[0]!r}?" if close else ""
            parts.append(f"{kind} ({count}{hint})")
        say(f"leadscore: warning: activity types no rulepack knows, scored nothing: {'; '.join(parts)}; "
            "rename them in a map's [activity_types] (--map) or declare them in a pack's [vocabulary] "
            "activity_types (leadscore activities lists the known ones)", err=True)
    if misfits:
        parts = [f"fields.{name} ({count} not {'an' if kind == 'int' else 'a'} {kind})"
                 for (name, kind), count in sorted(misfits.items(), key=lambda item: (-item[1], item[0]))]
        say(f"leadscore: warning: custom field values that do not fit their declared type, scored nothing: "
            f"{'; '.join(parts)}; fix the values or the type in the pack's [fields] (docs/rulepacks.md, "
            "\"Custom fields\")", err=True)


def _report_shares(summary: list[tuple[str, str, int, int]], whose: str = "this run") -> None:
    """One line: the minimum each "top N%" band got from this run's totals (``whose``: the side of a diff)."""
    from leadscore.scoring.bands import UNREACHABLE

    parts = [f"{name} ({share} of {count:,} leads) from {value} points" if value < UNREACHABLE
             else f"{name} ({share}) unreachable: no lead" for name, share, value, count in summary]
    click.echo(f"leadscore: bands by share {whose}: {'; '.join(parts)}", err=True)


def _watch_types(leads: Iterator[Any], known: Any, counts: Any, declared: Any = None,
                 misfits: Any = None) -> Iterator[Any]:
    """Pass leads through, counting activity types that are not in the run's vocabulary and, when
    packs declare typed ``[fields]``, the values that cannot be read as their type (they give no signal)."""
    from leadscore.explain import count_unscored

    for item in leads:
        if not isinstance(item, Rejection):
            count_unscored(item, known, declared, counts, misfits)
        yield item


def _progress_reader(path: str, fmt: str | None, stack: ExitStack) -> tuple[_CountingReader | None, int]:
    """Open a JSON Lines input ourselves when a progress bar will show, so it can measure its way."""
    if path == "-" or not sys.stderr.isatty() or not os.path.isfile(path):
        return None, 0
    if (fmt or ("csv" if path.lower().endswith((".csv", ".tsv")) else "jsonl")) != "jsonl":
        return None, 0
    reader = _CountingReader(stack.enter_context(open(path, "rb")))
    return reader, os.path.getsize(path)


@contextmanager
def _spool_stdin(fmt: str | None = None) -> Iterator[str]:
    """Copy standard input to a temporary file (named for ``fmt``, by default JSON Lines), so a
    two-pass run can read it twice and the columnar engine can scan it as a file. Messages still
    name it ``<stdin>`` (``label`` of :func:`_read` and :func:`_columnar_scan`)."""
    with tempfile.TemporaryDirectory(prefix="leadscore-") as folder:
        path = os.path.join(folder, f"stdin.{fmt or 'jsonl'}")
        with open(path, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin, out)
        yield path


def _write_accounts(engine: Any, index: Any, path: str) -> Any:
    """Write the account cards to a temporary file; the caller commits it with the other outputs."""
    from leadscore.accounts import account_card_to_dict
    from leadscore.files import AtomicOutput
    from leadscore.io.writers import safe_cell
    from leadscore.next_steps import account_gaps

    def with_gaps(card: Any) -> dict[str, Any]:
        values = index.signals_for(card.account_id)
        next_band, gaps = account_gaps(engine, card, values)
        return {**account_card_to_dict(card), "next_band": next_band, "gaps": gaps}

    fetch = getattr(index, "fetch", None)
    if fetch is not None:  # the account pass made in DuckDB: every account's values in one query
        fetch(index.accounts)
    rows = (with_gaps(card) for card in engine.account_cards(index))
    out = AtomicOutput(path)
    try:
        if path.lower().endswith(".csv"):
            import csv

            columns = ["account_id", "score", "band", "strategy", "contacts", "engaged_contacts",
                       "senior_engaged_contacts", "functions_engaged", "high_intent_30d", "best_lead",
                       "best_lead_score", "committee", "reasons", "next_band", "gaps"]
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                cells = []
                for col in columns:
                    value = row[col]
                    if isinstance(value, list):
                        cells.append(safe_cell(" | ".join(str(v) for v in value)))
                    elif isinstance(value, str):
                        cells.append(safe_cell(value))
                    else:
                        cells.append("" if value is None else str(value))
                writer.writerow(cells)
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    except BaseException:
        out.discard()
        raise
    return out


def refuse_overwriting_inputs(inputs: list[tuple[str, str | None]], outputs: list[tuple[str, str | None]]) -> None:
    """Stop before anything is opened when an output file (option, path) is one of the run's
    inputs (kind, path) or another output. Existing rulepack paths count; pack names do not."""
    from leadscore.files import OutputError
    from leadscore.files import refuse_overwriting_inputs as refuse

    try:
        refuse([(option, path) for option, path in outputs if path],
               [(kind, path) for kind, path in inputs if path and (kind != "rulepack" or os.path.lexists(path))])
    except OutputError as err:
        raise UsageFailure(str(err)) from None


def write_file(path: str, text: str) -> None:
    """Write a whole output file atomically (a temporary file renamed into place); a failure is
    one line, exit 2, and leaves what was at ``path`` as it was."""
    from leadscore.files import AtomicOutput, OutputError

    try:
        with AtomicOutput(path) as out:
            out.write(text)
    except OutputError as err:
        raise UsageFailure(str(err)) from None


def _report_rejections(rejections: list[Rejection], total: int) -> None:
    for rej in rejections[:MAX_REJECTIONS_SHOWN]:
        say(f"rejected {rej.where}: {rej.reason}", err=True)
    if total > MAX_REJECTIONS_SHOWN:
        click.echo(f"... and {total - MAX_REJECTIONS_SHOWN} more rejections (write them all with --rejects FILE)", err=True)


# Below this input size the python engine is the faster one (measured side by side with firr-base on a
# 2-core VM: 0.95x at 20,000 generated leads, 43 MB; 1.32x at 50,000, 108 MB; 1.56x at 100,000;
# bench/README.md "Fewer statements a block").
AUTO_COLUMNAR_BYTES = 64_000_000
# With the account pass (the enterprise plugin's packs, any pack reading account.* or same_account),
# side by side with every installed pack: 1.07x the python engine's time at 20,000 generated leads
# (43 MB), 0.88x at 60,000 (130 MB), 0.61x at 200,000 (434 MB), 0.60x at a million (2.2 GB);
# bench/README.md, ninth round. Where the two are near even the python engine is kept: it uses a
# fifth of the memory.
AUTO_COLUMNAR_ACCOUNTS_BYTES = 200_000_000
# An activities file (CSV or Parquet) the columnar engine keeps in DuckDB (see _file_activities) of
# this many rows or more: side by side with firr-base on a 2-core VM, 10,000 generated leads with
# 198,000 activity rows took 3.84 s against 6.94-7.39 s for the python engine (Parquet), 4.94-5.55 s
# against 6.73-7.64 s (CSV); 5,000 leads with 99,000 rows were level (bench/README.md, twentieth round).
# With every installed pack (the account pass in DuckDB too): 10,000 leads 5.58 s against 8.97 s
# (Parquet), 6.73 s against 9.28 s (CSV); 5,000 level again (twenty-first round).
AUTO_COLUMNAR_ACTIVITY_ROWS = 100_000
# A CSV or Parquet leads file the columnar engine reads itself (see columnar_reads) of this many rows or
# more: side by side on a 2-core VM, generated leads without activities, firr-base: 10,000 leads level
# (CSV 1.99 s against 1.83 s, Parquet 1.83 against 1.85), 20,000 3.24 against 2.51 (CSV), 2.77 against 2.08
# (Parquet); every installed pack (the account pass): 10,000 2.71 against 3.32 (CSV), 20,000 5.22 against
# 4.61 (CSV), 5.35 against 4.71 (Parquet); bench/README.md, twenty-second round.
AUTO_COLUMNAR_LEAD_ROWS = 20_000
# About the bytes of a leads CSV row (generated leads: 184; CRM exports with more columns write more,
# so a larger export is taken for fewer rows than it has, and the python engine kept where near even).
CSV_LEAD_ROW_BYTES = 200
# About the bytes of a CSV activities row (generated activities: 61; a CRM export's are longer, so
# its rows are if anything under-counted).
CSV_ACTIVITY_ROW_BYTES = 60
# What `--engine auto` does, for the help of every command that takes it.
AUTO_HELP = (f"duckdb for a JSON Lines file of {AUTO_COLUMNAR_BYTES // 1_000_000} MB or more "
             f"({AUTO_COLUMNAR_ACCOUNTS_BYTES // 1_000_000} MB when a pack reads account signals), a CSV or "
             f"Parquet file of about {AUTO_COLUMNAR_LEAD_ROWS:,} leads or more, or an "
             f"--activities file of about {AUTO_COLUMNAR_ACTIVITY_ROWS:,} rows or more, when DuckDB is "
             "installed, else python")


def choose_engine(name: str, input_path: str, needs_accounts: bool = False, reads_itself: bool = True,
                  activity_rows: int = 0, input_fmt: str | None = None) -> str:
    """``auto``: the columnar engine for an input file it reads itself (``reads_itself``, see
    :func:`columnar_reads`): JSON Lines of AUTO_COLUMNAR_BYTES or more (with the account pass,
    ``needs_accounts``, AUTO_COLUMNAR_ACCOUNTS_BYTES or more), CSV or Parquet of about
    AUTO_COLUMNAR_LEAD_ROWS rows or more; or for a file of leads read with an activities file it
    keeps in DuckDB of ``activity_rows`` (see :func:`activity_rows`) at least AUTO_COLUMNAR_ACTIVITY_ROWS;
    when DuckDB is installed. The python engine otherwise (smaller files, standard input, leads that
    come through the python reader)."""
    from leadscore.io.readers import input_format

    if name != "auto":
        return name
    if input_path == "-" or not os.path.exists(input_path):
        return "python"
    fmt = input_format(input_path, input_fmt)
    if fmt in ("csv", "parquet"):
        large = file_rows(input_path, CSV_LEAD_ROW_BYTES, fmt) >= AUTO_COLUMNAR_LEAD_ROWS
    else:
        least = AUTO_COLUMNAR_ACCOUNTS_BYTES if needs_accounts else AUTO_COLUMNAR_BYTES
        large = os.path.isfile(input_path) and os.path.getsize(input_path) >= least
    if activity_rows < AUTO_COLUMNAR_ACTIVITY_ROWS and not (reads_itself and large):
        return "python"
    try:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401
        import sqlglot  # noqa: F401
    except ImportError:
        return "python"
    return "duckdb"


def activity_rows(path: str) -> int:
    """About how many rows the activities file at ``path`` has (see :func:`file_rows`)."""
    return file_rows(path, CSV_ACTIVITY_ROW_BYTES)


def file_rows(path: str, csv_row_bytes: int, fmt: str | None = None) -> int:
    """About how many rows the CSV or Parquet file at ``path`` (read as ``fmt``, by default as its
    name says) has: a Parquet file's (or its parts') count from their metadata, a CSV file's bytes over
    ``csv_row_bytes``; 0 for anything else (a file the reader will refuse is refused there)."""
    from leadscore.io.readers import input_format

    fmt = input_format(path, fmt)
    try:
        if fmt == "csv":
            return os.path.getsize(path) // csv_row_bytes
        if fmt == "parquet":
            import pyarrow.parquet as pq

            from leadscore.io.parquet import parts

            return sum(pq.ParquetFile(part).metadata.num_rows for part, _ in parts(Path(path), path))
    except Exception:  # noqa: BLE001 - the reader gives a missing or broken file its own message
        return 0
    return 0


def columnar_reads(input_path: str, input_fmt: str | None) -> bool:
    """Whether the columnar engine reads INPUT itself: a JSON Lines, CSV or Parquet file (or directory
    of Parquet parts). It takes standard input through the python reader and scores it in batches."""
    from leadscore.io.readers import input_format

    if input_path == "-" or not os.path.exists(input_path):
        return False
    fmt = input_format(input_path, input_fmt)
    return fmt == "parquet" or (fmt in ("jsonl", "csv") and os.path.isfile(input_path))


def _output_format(path: str) -> str:
    """The output format a file name asks for: csv or parquet by its suffix, else jsonl."""
    lowered = path.lower()
    return "csv" if lowered.endswith(".csv") else "parquet" if lowered.endswith(".parquet") else "jsonl"


def _columnar_scan(engine: Any, input_path: str, input_fmt: str | None, options: InputOptions, explain: bool, top: int,
                   render: str | None = None, report: Any = None, unknown_types: Any = None, misfits: Any = None,
                   activities: str | None = None, file_acts: Any = None, label: str | None = None) -> Any:
    """The columnar engine reading a leads file itself (see :func:`columnar_reads`; a CSV or Parquet
    one with its ``activities`` file kept in ``file_acts``, see :func:`_file_activities`), or None when
    its plan cannot (the leads are then read the python way). ``label``: how messages name the file
    (default: its path)."""
    from leadscore.columnar.scan import scan_jsonl
    from leadscore.columnar.table import scan_table
    from leadscore.io.readers import input_format

    when = engine._resolve_as_of(None)
    fmt = input_format(input_path, input_fmt)
    label = label or input_path
    if fmt == "jsonl":
        return scan_jsonl(engine, input_path, label, when, explain=explain, top=top, render=render, report=report,
                          unknown_types=unknown_types, misfits=misfits, dedupe=options.dedupe,
                          column_map=options.column_map)
    return scan_table(engine, input_path, label, fmt, when, explain=explain, top=top, render=render, report=report,
                      unknown_types=unknown_types, misfits=misfits, delimiter=options.delimiter, strict=options.strict,
                      activities=activities, file_acts=file_acts, column_map=options.column_map, dedupe=options.dedupe)


def _map_read_by_sql(options: InputOptions, input_path: str, input_fmt: str | None) -> bool:
    """Whether the columnar engine's file scan can read INPUT with the run's --map (none; a JSON Lines
    file's, of which only the activity type renames apply; a CSV or Parquet export's map whose
    constants plain cells write, leadscore.columnar.mapped); else it reads records."""
    if options.column_map is None:
        return True
    from leadscore.columnar.mapped import map_columnar
    from leadscore.io.readers import input_format

    fmt = input_format(input_path, input_fmt)
    return fmt == "jsonl" or (fmt in ("csv", "parquet") and map_columnar(options.column_map))


def _records_scoring(engine: Any, engine_name: str, fmt: str, explain: bool, top: int, accounts: Any,
                     with_next_steps: bool, history_ledger: bool | None,
                     file_acts: Any = None) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """How the leads the python reader made are scored: by ``Engine.score``, or on the columnar
    engine with the plan this run reads (:func:`_columnar_records`): the cards' text is made in SQL
    unless something reads the card itself, an account roll-up (``accounts``, which also reads the
    signal values), ``--next-steps`` (a field added to the card's dict) or the run's store.
    ``history_ledger`` (None without ``--history``): the store reads every card, its top
    ``STORED_REASONS`` reasons and, with ``--history-ledger``, its full ledger."""
    if engine_name != "duckdb":
        return lambda items: engine.score(items, accounts=accounts)
    cards_unread = accounts is None or (_in_sql(accounts) and not accounts.roll_up)
    settings = _columnar_settings(fmt, explain, top, cards_unread, with_next_steps, history_ledger)
    return lambda items: _columnar_records(engine, items, settings, accounts, file_acts)


def _columnar_settings(fmt: str, explain: bool, top: int, cards_unread: bool, with_next_steps: bool,
                       history_ledger: bool | None) -> tuple[bool, int, str | None, bool]:
    """The columnar plan a run of records reads (see :func:`_records_scoring`): whether it makes the
    full ledger, the top lines it keeps, the output format its cards' text is made in (None: cards
    are made), and whether the cards carry the signal values (``cards_unread``: no account roll-up
    reads them)."""
    render = fmt if fmt in RENDERED_FORMATS and cards_unread and not with_next_steps else None
    if history_ledger is not None:
        from leadscore.history.recorder import STORED_REASONS

        # Each card carries its top max(top, STORED_REASONS) lines: the writer's top N are the first of them.
        explain, top, render = explain or history_ledger, max(top, STORED_REASONS), None
    return explain, top, render, not cards_unread


def _in_sql(accounts: Any) -> bool:
    """Whether ``accounts`` is the account pass the columnar engine made in DuckDB (which reads no card
    unless it keeps the contacts for --accounts: its ``roll_up``)."""
    from leadscore.columnar.accounts import SqlAccounts

    return isinstance(accounts, SqlAccounts)


def _columnar_records(engine: Any, leads: Iterable[Any], settings: tuple[bool, int, str | None, bool],
                      accounts: Any, file_acts: Any = None) -> Iterator[Any]:
    """The columnar engine scoring leads the python reader made (CSV, Parquet, ``--activities``, ...)
    in batches, with a plan that makes only what this run reads (``settings``, see :func:`_columnar_settings`):
    the full ledger with ``explain`` only, the cards' text in SQL when ``render`` names the output format.
    Engine.score would make every card with its full ledger. ``file_acts`` (see :func:`_file_activities`):
    the activities file the leads are read with, kept in the scorer's DuckDB."""
    when, scorer = _records_scorer(engine, settings, file_acts)
    if scorer is None:  # some part of the run has no columnar form
        return engine.score(leads, accounts=accounts)
    from leadscore.columnar.run import score_batches

    return score_batches(engine, scorer, leads, when, accounts, file_acts=file_acts)


def _columnar_accounts(engine: Any, leads: Iterable[Any], settings: tuple[bool, int, str | None, bool],
                       file_acts: Any = None, roll_up: bool = False) -> Any:
    """The account pass over ``leads`` in the DuckDB of the scorer that scores them next (the same
    ``settings`` as :func:`_columnar_records`), or None when the run's plan has no columnar form
    (the python engine's account pass then reads ``leads``). ``roll_up``: the scored contacts are
    kept for the account cards (--accounts)."""
    when, scorer = _records_scorer(engine, settings, file_acts)
    if scorer is None:
        return None
    from leadscore.columnar.accounts import account_pass

    return account_pass(engine, scorer, leads, when, file_acts=file_acts, roll_up=roll_up)


def _records_scorer(engine: Any, settings: tuple[bool, int, str | None, bool], file_acts: Any) -> tuple[Any, Any]:
    """The run's time and the scorer ``settings`` make (one per run: the account pass and the scoring
    pass share it, and the activities file kept in its DuckDB), or None for a plan with no columnar form."""
    when = engine._resolve_as_of(None)
    explain, top, render, values = settings
    scorer = engine.columnar_scorer(when, explain=explain, top=top, values=values, render=render)
    if scorer is not None and file_acts is not None:
        file_acts.attach(scorer)
    return when, scorer


def _file_activities(engine: Any, engine_name: str, activities: str | None, plain: bool) -> Any:
    """A leadscore.columnar.activities.SqlActivityTable for an activities file (CSV or Parquet) the
    columnar engine reads into DuckDB, or None when the run reads it the python way: another engine,
    standard input, or ``plain`` False (a run whose other parts read each lead's activities as records:
    --dedupe, the python account pass, bands by share, --next-steps, --history), or a router that reads more
    of a lead than its id and account."""
    from leadscore.io.readers import input_format

    if engine_name != "duckdb" or not activities or not plain or input_format(activities) not in ("csv", "parquet"):
        return None
    if not _routers_read_only_ids(engine):
        return None
    from leadscore.columnar.activities import SqlActivityTable

    return SqlActivityTable()


def _routers_read_only_ids(engine: Any) -> bool:
    """Whether every router of the run reads no more of a lead than its id and account (a lead whose
    activities are kept in DuckDB reaches a router without them)."""
    return all({"id", "account_id"}.issuperset(getattr(fn, "reads_lead", ("*",))) for fn in engine.pm.router_functions())


def _part_directory(output: str | None, engine_name: str, fmt: str | None) -> Any:
    """The part files ``-o`` asks for (a leadscore.spark.PartFiles), or None for one file or stdout.

    A directory is an existing one, a path ending in a slash, or a URL (``hdfs://``, ``s3a://``);
    only the Spark engine writes part files (the others write one file)."""
    if not output or output == "-" or not (output.endswith(("/", os.sep)) or os.path.isdir(output)
                                            or "://" in output):
        return None
    if engine_name != "spark":
        raise UsageFailure(f"-o {output}: is a directory; part files are written by --engine spark; name a file "
                           "(e.g. -o scores.jsonl) for one file")
    if fmt not in (None, "jsonl"):
        raise UsageFailure(f"--engine spark: writes JSON Lines part files, not {fmt}; leave out --format or use "
                           "--format jsonl")
    from leadscore.spark import PartFiles

    return PartFiles(output)


def _spark_scan(engine: Any, input_path: str, explain: bool, top: int, master: str,
                refused: Sequence[tuple[str, bool]], activities: str | None = None, input_fmt: str | None = None,
                options: InputOptions | None = None, report: Any = None, parts: Any = None,
                unknown_types: Any = None, misfits: Any = None) -> Any:
    """Cards and rejections of INPUT (a JSON Lines, CSV or Parquet file, a glob or a directory of
    part files; ``activities`` joined on lead_id) scored on Spark, in input order (see
    leadscore.spark); the read's warnings and left-out activities go to ``report``, and the
    workers' counts of unknown activity types and misfit custom fields into ``unknown_types`` and
    ``misfits`` (as _watch_types counts them for the python engine) once the last card is given.
    With ``parts`` (a PartFiles) the cards are written as part files into its directory and only
    the rejections come back."""
    for option, given in refused:
        if given:
            raise UsageFailure(f"--engine spark: {option} is not supported on Spark; score with --engine python "
                               f"or duckdb, or leave {option} out")
    if input_path == "-":
        raise UsageFailure("--engine spark: reads files, not standard input; name a file, a glob or a directory")
    if engine.needs_shares:
        raise UsageFailure("--engine spark: a band's minimum is a share of leads (\"top N%\"), which Spark does "
                           "not rank yet; use --engine python")
    from leadscore import spark

    # A missing or too big file is one line before Spark starts.
    spark.input_files([input_path])
    if activities is not None:
        spark.activity_parts(activities)
    session = spark.session(master)
    options = options or InputOptions()
    settings = dict(explain=explain, top=top, activities=activities,
                    fmt=input_fmt, delimiter=options.delimiter, strict=options.strict, report=report,
                    unknown_types=unknown_types, misfits=misfits)
    if parts is not None:
        return spark.write_part_files(session, [input_path], engine, parts.directory, written=parts, **settings)
    return spark.score_files(session, [input_path], engine, **settings)


def _engine(pm: PluginManager, rulepacks: tuple[str, ...], engine_name: str, as_of: datetime | None,
            memory_limit: str | None = None) -> Any:
    """The run's engine; ``memory_limit`` (``--memory-limit``) is DuckDB's, so only the columnar
    engine's (when `auto` chose the python engine it is left out)."""
    from leadscore.engine import Engine

    if engine_name == "duckdb":
        _pyarrow_without_pandas()
    return Engine(plugins=pm, rulepacks=list(rulepacks) or None, backend=engine_name, as_of=as_of,
                  memory_limit=memory_limit if engine_name == "duckdb" else None)


class _PandasHidden:
    """An import finder that says pandas is not installed (see :func:`_pyarrow_without_pandas`)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _pyarrow_without_pandas() -> None:
    """Keep pandas out of a columnar run's process where it is installed.

    The columnar engine turns Python lists into Arrow columns (``pa.array``) for every block it
    decodes, and pyarrow imports pandas, when it is installed, the first time it does (to tell a pandas
    object from a list) and the first time it infers a column's type (to know pandas' date types): tens
    of MiB for the whole run, which nothing in it uses (bench/README.md, thirty-eighth round). pyarrow
    keeps both answers, so both questions are asked here once, with pandas hidden. Code that does want
    pandas from pyarrow later in the process (``Table.to_pandas``) makes pyarrow import it then; only
    ``pa.array`` of a pandas object made before that is read as a plain sequence, and the CLI makes none
    (the Spark engine, which does, never comes here). Nothing changes in a process that has imported
    pandas already, or where pyarrow has asked before."""
    if "pandas" in sys.modules:
        return
    try:
        import pyarrow as pa
    except ImportError:
        return
    hidden = _PandasHidden()
    sys.meta_path.insert(0, hidden)
    try:
        pa.array([0])  # both questions (pyarrow 26: its _PandasAPIShim, and the C++ type inference's)
    finally:
        sys.meta_path.remove(hidden)


def _check_memory_limit(memory_limit: str | None, engine_name: str) -> None:
    """``--memory-limit``: a size DuckDB can run in, and a columnar engine to give it to (before any
    input is read)."""
    if memory_limit is None:
        return
    if engine_name not in ("duckdb", "auto"):
        raise UsageFailure(f"--memory-limit: DuckDB's memory limit is for --engine duckdb (or auto), not "
                           f"--engine {engine_name}; leave it out or choose --engine duckdb")
    from leadscore.columnar import memory_limit_bytes

    try:
        memory_limit_bytes(memory_limit, "--memory-limit")
    except LeadscoreError as err:
        raise _fail(err) from err


def build_cli(pm_factory: Callable[[], PluginManager] | PluginManager | None = None) -> click.Group:
    """Build the click group. ``pm_factory`` is a PluginManager or a callable returning one.

    Tests pass a manager holding just the plugins they want; ``main()`` passes the default.
    """
    state: dict[str, PluginManager] = {}

    def get_pm() -> PluginManager:
        if "pm" not in state:
            if isinstance(pm_factory, PluginManager):
                state["pm"] = pm_factory
            else:
                try:
                    state["pm"] = (pm_factory or PluginManager)()
                except LeadscoreError as err:
                    raise _fail(err) from err
            for problem in state["pm"].load_errors:
                say(f"leadscore: warning: {problem}", err=True)
        return state["pm"]

    @click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.version_option(__version__, "--version", prog_name="leadscore")
    def cli() -> None:
        """Score B2B leads with TOML rulepacks and explain every point.

        \b
        Example:
          leadscore score rulepacks/samples/leads.jsonl --as-of 2026-11-23
          leadscore explain rulepacks/samples/leads.jsonl --lead L-1001
        """

    engine_option = click.option(
        "--engine", "engine_name", type=click.Choice(["python", "duckdb", "durable", "auto"]), default="python",
        show_default=True,
        help=f"Scoring engine: python (per lead), duckdb (columnar, per batch), durable; auto: {AUTO_HELP}.")
    rulepack_option = click.option("--rulepack", "-r", "rulepacks", multiple=True, metavar="NAME|PATH",
                                   help="Rulepack to use (repeatable); default: every installed rulepack.")
    as_of_option = click.option("--as-of", "as_of", metavar="TIMESTAMP",
                                help="Scoring time (ISO 8601; default now). Decay and windows count back from it.")
    input_format_option = click.option("--input-format", "input_fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
                                       help="Input format; default: from the suffix (a directory of .parquet "
                                            "part files is parquet), jsonl for stdin.")
    activities_option = click.option("--activities", type=click.Path(), metavar="FILE",
                                     help="Activities CSV or Parquet (lead_id,type,at,...; or a directory of "
                                          ".parquet parts) joined on lead_id.")

    @cli.command()
    @click.argument("input_path", metavar="INPUT")
    @activities_option
    @input_format_option
    @rulepack_option
    @as_of_option
    @click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "csv", "parquet"]),
                  help="Output format; default: table on a terminal, else by --output suffix (.csv, .parquet), "
                       "else jsonl. parquet needs -o FILE.")
    @click.option("--output", "-o", type=click.Path(writable=True),
                  help="Write results to FILE; with --engine spark, a directory (DIR/) gets JSON Lines part files.")
    @click.option(
        "--engine", "engine_name", type=click.Choice(["python", "duckdb", "durable", "auto", "spark"]),
        default="auto", show_default=True,
        help=f"Scoring engine: python (per lead), duckdb (columnar, per batch), durable; auto (the default): "
             f"{AUTO_HELP} (the faster of the two at each size; the cards are the same); spark: on a Spark cluster "
             "(leadscore[spark]; INPUT may be a glob or a directory of JSON Lines, CSV or Parquet part files; "
             "see docs/scale.md).")
    @click.option("--spark-master", default="local[*]", show_default=True, metavar="URL",
                  help="With --engine spark: the Spark master (local[N], spark://HOST:PORT, yarn).")
    @click.option("--memory-limit", metavar="SIZE",
                  help="With the columnar engine (duckdb, or auto's choice): DuckDB's memory limit, e.g. 400MB or "
                       "2GB (default 200MB, least 150MB). Past it DuckDB spills to a temporary directory; a higher "
                       "one is faster on large files with an activities file (docs/backends.md).")
    @click.option("--explain", is_flag=True, help="Include the full ledger for every lead.")
    @click.option("--rejects", type=click.Path(dir_okay=False, writable=True),
                  help="Write rejected leads with their reasons to FILE (.csv or .jsonl).")
    @click.option("--top", default=3, show_default=True, type=click.IntRange(min=0),
                  help="How many top reasons to show per lead.")
    @click.option("--accounts", "accounts_path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
                  help="Also write one row per account (.jsonl or .csv): roll-up score, band, buying committee.")
    @click.option("--history", "history", metavar="TARGET",
                  help="Store the run: a DuckDB file path or a postgresql:// URL (see docs/history.md).")
    @click.option("--history-ledger", is_flag=True, help="With --history: store every card's full ledger too.")
    @click.option("--next-steps", "with_next_steps", is_flag=True,
                  help="Add each lead's next steps to the band above its own (JSON Lines output; slower).")
    @input_options
    def score(input_path: str, activities: str | None, input_fmt: str | None, rulepacks: tuple[str, ...],
              as_of: str | None, fmt: str | None, output: str | None, engine_name: str, explain: bool,
              rejects: str | None, top: int, accounts_path: str | None, history: str | None,
              history_ledger: bool, with_next_steps: bool, map_spec: str | None, delimiter: str | None,
              strict: bool, dedupe: bool, spark_master: str, memory_limit: str | None) -> None:
        """Score the leads in INPUT (JSON Lines, CSV or Parquet, a file or a directory of part files;
        - for stdin).

        Leads of one account may be anywhere in the input. When a rulepack uses account.* signals,
        or with --accounts, the input is read twice: a first pass summarises each account (memory
        grows with the number of accounts, not leads), the second scores; standard input is first
        copied to a temporary file.

        \b
        Examples:
          leadscore score leads.jsonl --as-of 2026-11-23
          leadscore score leads.csv --activities activities.csv -o scores.csv
          leadscore score leads.parquet --activities activities/ -o cards.parquet
          leadscore score hubspot-contacts.csv --map hubspot
          leadscore score leads.jsonl -r firr-base -r my-pack.toml --explain --format jsonl
          leadscore score leads.jsonl --accounts accounts.csv -o scores.jsonl
          leadscore score leads.jsonl --history history.duckdb
        """
        from collections import Counter

        from leadscore.io.readers import ReadReport, input_format
        from leadscore.files import AtomicOutput, OutputError, commit_all
        from leadscore.io.writers import RejectionWriter, open_writer
        from leadscore_cli.history import history_run

        options = InputOptions(map_spec, delimiter, strict, dedupe)
        when = parse_as_of(as_of)
        _check_memory_limit(memory_limit, engine_name)
        refuse_overwriting_inputs(
            [("input", input_path), ("activities file", activities), *(("rulepack", path) for path in rulepacks),
             ("history database", history if history and "://" not in history else None)],
            [("-o", output), ("--rejects", rejects), ("--accounts", accounts_path)])
        label = input_label(input_path)
        if input_path == "-" and engine_name == "duckdb" and input_fmt != "parquet" and not (
                history is not None or with_next_steps or accounts_path):
            # Asked for the columnar engine, standard input is copied to a file that it scans as any
            # other (auto leaves standard input to the python engine, which scores as the lines come).
            input_path = click.get_current_context().with_resource(_spool_stdin(input_fmt))
        # An activities file the columnar engine would keep in DuckDB (see _file_activities).
        # (Read as records with --dedupe, the copies' activities stay in the python reader's own table:
        # merging them dedupes their exact repeats; the file scan merges the copies itself.)
        scan_activities = bool(activities) and activities != "-" and not (history is not None or with_next_steps)
        plain_activities = scan_activities and not dedupe
        # The columnar engine reads a leads file itself (and a CSV or Parquet one's activities file into
        # DuckDB) unless one of these needs the leads as records first; then it scores what the python
        # reader makes of them.
        whole_file = columnar_reads(input_path, input_fmt) and _map_read_by_sql(options, input_path, input_fmt) and not (
            history is not None or with_next_steps or accounts_path
            or (activities and not (scan_activities and input_format(input_path, input_fmt) in ("csv", "parquet"))))
        kept_activities = scan_activities if whole_file else plain_activities  # an activities file DuckDB keeps
        auto = engine_name == "auto"
        engine_name = choose_engine(engine_name, input_path, reads_itself=whole_file,
                                    activity_rows=activity_rows(activities) if auto and kept_activities else 0,
                                    input_fmt=input_fmt)
        try:
            engine = _engine(get_pm(), rulepacks, "python" if engine_name == "spark" else engine_name, when,
                             memory_limit=memory_limit)
            if auto and engine_name == "duckdb" and (engine.needs_accounts or engine.needs_shares or (
                    not whole_file and not _routers_read_only_ids(engine))):
                # Which packs run is known once they are loaded: with the account pass, a larger file
                # (an activities file is kept in DuckDB for both passes, as the same number of rows);
                # with share bands (ranked over the whole input first), the python reader; an activities
                # file is kept in DuckDB only without them and with routers that read no more than ids.
                kept = kept_activities and not engine.needs_shares and _routers_read_only_ids(engine)
                engine_name = choose_engine("auto", input_path, needs_accounts=engine.needs_accounts,
                                            reads_itself=whole_file and not engine.needs_shares,
                                            activity_rows=activity_rows(activities) if kept else 0,
                                            input_fmt=input_fmt)
                if engine_name != "duckdb":
                    engine.close()
                    engine = _engine(get_pm(), rulepacks, engine_name, when, memory_limit=memory_limit)
        except LeadscoreError as err:
            raise _fail(err) from err
        count = {"scored": 0, "rejected": 0}
        try:
            with ExitStack() as stack:
                stack.callback(engine.close)
                run = stack.enter_context(history_run(history, engine, history_ledger, input_path, engine_name))
                # Outputs go to temporary files renamed into place at the end: an interrupted or
                # failed run leaves each file as it was, never half written.
                files: list[AtomicOutput] = []
                parts = _part_directory(output, engine_name, fmt)
                if parts is not None:
                    fmt, out = "jsonl", None
                elif output:
                    fmt = fmt or _output_format(output)
                    out: Any = stack.enter_context(AtomicOutput(output, binary=fmt == "parquet"))
                    files.append(out)
                else:
                    out = sys.stdout
                    fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
                    if fmt == "parquet":
                        raise UsageFailure("--format parquet: a Parquet file is not written to standard output; "
                                           "add -o FILE.parquet")
                if with_next_steps and fmt != "jsonl":
                    raise UsageFailure(f"--next-steps: adds a field to JSON Lines output, not {fmt}; add --format "
                                       f"jsonl")
                categories = engine.categories()
                width = (shutil.get_terminal_size().columns if fmt == "table" and out is sys.stdout and out.isatty()
                         else None)
                writer = (open_writer(fmt, out, explain=explain, categories=categories, top=top, width=width)
                          if out is not None else None)
                if writer is not None:
                    stack.callback(writer.discard)
                reject_writer = None
                if rejects:
                    rej_stream = stack.enter_context(AtomicOutput(rejects))
                    files.append(rej_stream)
                    reject_writer = RejectionWriter(rej_stream, "csv" if rejects.lower().endswith(".csv") else "jsonl")
                shown: list[Rejection] = []
                index = None
                report = ReadReport()
                unknown_types: Counter[str] = Counter()
                misfits: Counter[tuple[str, str]] = Counter()
                known_types = engine.vocabulary.get("activity_types", frozenset())
                try:
                    source = input_path
                    results = None
                    file_acts = None
                    acts_given_back = False
                    if engine_name == "duckdb" and whole_file and not engine.needs_shares:
                        rendered = fmt if fmt in RENDERED_FORMATS else None
                        file_acts = _file_activities(engine, engine_name, activities, plain=True)
                        if file_acts is not None or not activities:
                            results = _columnar_scan(engine, input_path, input_fmt, options, explain, top, render=rendered,
                                                     report=report, unknown_types=unknown_types, misfits=misfits,
                                                     activities=activities, file_acts=file_acts, label=label)
                        if results is None:
                            # The python reader's way below (and its own table for a file of many rows
                            # the SQL does not take, which this one gave back).
                            acts_given_back = file_acts is not None and file_acts.rows > 0
                            file_acts = None
                    if engine_name == "spark":
                        if fmt != "jsonl":
                            raise UsageFailure(f"--engine spark: writes JSON Lines, not {fmt}; add --format jsonl "
                                               "or an -o FILE ending .jsonl")
                        results = _spark_scan(engine, input_path, explain, top, spark_master, [
                            ("--history", bool(history)), ("--next-steps", with_next_steps),
                            ("--accounts", bool(accounts_path)), ("--dedupe", dedupe),
                            ("--map", options.column_map is not None)], activities, input_fmt, options, report,
                            parts, unknown_types, misfits)
                    pending: deque[Any] = deque()  # with --next-steps: the items read whose result is to come
                    if results is None:
                        if input_path == "-" and (engine.needs_accounts or accounts_path or dedupe or engine.needs_shares):
                            source = stack.enter_context(_spool_stdin(input_fmt))
                        # The account pass in DuckDB (with the columnar engine, when nothing reads the
                        # records' account index itself: --next-steps, bands by share).
                        sql_accounts = engine_name == "duckdb" and (engine.needs_accounts or bool(accounts_path)) \
                            and not (with_next_steps or engine.needs_shares)
                        file_acts = _file_activities(engine, engine_name, activities, plain=not (
                            dedupe or engine.needs_shares or with_next_steps or run is not None or acts_given_back
                            or ((engine.needs_accounts or accounts_path) and not sql_accounts)))
                        if engine.needs_accounts or accounts_path:
                            first = _progress(_read(source, activities, input_fmt, options=options,
                                                    activity_reader=None if file_acts is None else file_acts.reader,
                                                    label=label),
                                              sys.stderr.isatty(), label="accounts: read")
                            if sql_accounts:  # in the DuckDB of the scorer _records_scoring's settings make
                                settings = _columnar_settings(fmt, explain, top, not accounts_path, False,
                                                              None if run is None else history_ledger)
                                index = _columnar_accounts(engine, first, settings, file_acts, bool(accounts_path))
                            if index is None:
                                index = engine.build_accounts(first)
                        if engine.needs_shares:
                            ranked = _read(source, activities, input_fmt, options=options, label=label)
                            _report_shares(engine.resolve_shares(_progress(ranked, sys.stderr.isatty(),
                                                                           label="bands: read"), accounts=index))
                        reader, size = _progress_reader(source, input_fmt, stack)
                        leads = _watch_types(_read(source, activities, input_fmt, reader, options, report,
                                                   None if file_acts is None else file_acts.reader, label),
                                             known_types, unknown_types, engine.vocabulary.get(CUSTOM_FIELDS),
                                             misfits)
                        if with_next_steps:
                            leads = _remembering(leads, pending)
                        if engine_name == "duckdb":
                            from leadscore.columnar.scan import read_ahead

                            leads = read_ahead(leads)  # the next batch read while DuckDB scores this one
                        scoring_of = _records_scoring(engine, engine_name, fmt, explain, top, index, with_next_steps,
                                                      None if run is None else history_ledger, file_acts)
                        scoring = scoring_of(leads) if run is None else run.score(leads, scoring_of)
                        results = _progress(scoring, sys.stderr.isatty(), reader, size)
                    for item in results:
                        read = pending.popleft() if with_next_steps else None  # this result's item
                        if writer is None:  # part files: Spark wrote the cards, the rejections come here
                            count["scored"] = parts.cards
                        if isinstance(item, (ScoreCard, Rendered)):
                            if with_next_steps:
                                writer.write(item, {"next_steps": _next_steps_of(engine, read, index)})
                            else:
                                writer.write(item)
                            count["scored"] += 1
                        else:
                            count["rejected"] += 1
                            if reject_writer is not None:
                                reject_writer.write(item)
                            elif len(shown) < MAX_REJECTIONS_SHOWN:
                                shown.append(item)
                    if writer is None:
                        count["scored"] = parts.cards
                    else:
                        writer.close()
                    if file_acts is not None and file_acts.con is not None:
                        file_acts.count_types(known_types, unknown_types)  # the leads' file activities
                        file_acts.drop()
                    if accounts_path and index is not None:
                        files.append(stack.enter_context(_write_accounts(engine, index, accounts_path)))
                    if reject_writer is not None:
                        reject_writer.close()
                    commit_all(files)
                except LeadscoreError as err:
                    raise _fail(err) from err
                except OutputError as err:
                    raise UsageFailure(str(err)) from err
                except OSError as err:
                    # Writing to standard output (a closed pipe, a full disk behind a redirect).
                    raise UsageFailure(f"<stdout>: cannot write: {err.strerror or describe_failure(err)}") from err
                if reject_writer is None:
                    _report_rejections(shown, count["rejected"])
                _report_reading(report, unknown_types, known_types, misfits)
                if engine_name == "duckdb":
                    from leadscore.columnar.run import fallback_note

                    note = fallback_note(engine)
                    if note:
                        say(f"leadscore: note: {printable(note)}", err=True)
                if run is not None:
                    run.commit()
        except OutputError as err:
            raise UsageFailure(str(err)) from err
        except (KeyboardInterrupt, RuntimeError) as err:
            if isinstance(err, RuntimeError) and not interrupted_statement(err):  # see interrupted_statement
                raise
            named = [f"{option} {path}" for option, path in (("-o", output), ("--rejects", rejects),
                                                             ("--accounts", accounts_path)) if path]
            kept = f"; {', '.join(named)} left as they were" if named else ""
            say(f"leadscore: interrupted after {count['scored'] + count['rejected']} leads (scored "
                f"{count['scored']} + rejected {count['rejected']}){kept}", err=True)
            sys.exit(interrupted_exit_code())
        scored, rejected = count["scored"], count["rejected"]
        read = scored + rejected
        where = f" (see {printable(rejects)})" if rejects and rejected else ""
        left_out = (f"; {report.skipped_count} activit{'y' if report.skipped_count == 1 else 'ies'} left out "
                    "(listed above)" if report.skipped_count else "")
        click.echo(f"scored {scored} + rejected {rejected}{where} == read {read}{left_out}", err=True)
        if rejected:
            sys.exit(EXIT_REJECTED)

    @cli.command()
    @click.argument("input_path", metavar="INPUT")
    @click.option("--lead", "lead_id", required=True, help="Id of the lead to explain.")
    @activities_option
    @input_format_option
    @rulepack_option
    @as_of_option
    @engine_option
    @click.option("--json", "as_json", is_flag=True, help="Print the card with its ledger as JSON.")
    @click.option("--to", "to_band", metavar="BAND",
                  help="Also say what would move the lead into BAND: the smallest sets of actions and facts.")
    @input_options
    def explain(input_path: str, lead_id: str, activities: str | None, input_fmt: str | None, rulepacks: tuple[str, ...], as_of: str | None,
                engine_name: str, as_json: bool, to_band: str | None, map_spec: str | None, delimiter: str | None,
                strict: bool, dedupe: bool) -> None:
        """Explain one lead's score line by line: rule, reason, raw points, decay, caps, pack and gates.

        With --to BAND, also the smallest sets of changes that would put the lead in BAND: activities
        it can be asked for and facts sales can confirm, each scored exactly (docs/rulepacks.md).

        \b
        Examples:
          leadscore explain rulepacks/samples/leads.jsonl --lead L-1001 --as-of 2026-11-23
          leadscore explain rulepacks/samples/leads.jsonl --lead L-1004 --to sales_ready --as-of 2026-11-23
        """
        from leadscore.explain import band_observed_conversion, render_explanation, unknown_activity_types
        from leadscore.io.readers import ReadReport
        from leadscore.io.writers import card_to_dict
        from leadscore.next_steps import next_steps, render, to_dict
        from leadscore.rulepack.fairness import reviews
        from leadscore.rulepack.fields import misfit_fields

        options = InputOptions(map_spec, delimiter, strict, dedupe)
        when = parse_as_of(as_of)
        if engine_name == "auto":  # one lead: the columnar engine's start-up would be all its cost
            engine_name = "python"
        try:
            engine = _engine(get_pm(), rulepacks, engine_name, when)
            with engine, ExitStack() as stack:
                source, index = input_path, None
                label = input_label(input_path)
                if input_path == "-" and (engine.needs_accounts or dedupe or engine.needs_shares):
                    source = stack.enter_context(_spool_stdin(input_fmt))
                if engine.needs_accounts:
                    # The lead's account signals come from every lead in the file, as in `score`.
                    index = engine.build_accounts(_read(source, activities, input_fmt, options=options, label=label))
                if engine.needs_shares:
                    # Share bands rank the lead among every lead of the file, as in `score`.
                    _report_shares(engine.resolve_shares(_read(source, activities, input_fmt, options=options,
                                                               label=label), accounts=index))
                report = ReadReport()
                leads = _read(source, activities, input_fmt, options=options, report=report, label=label)
                for item in leads:
                    if isinstance(item, Rejection):
                        if item.lead_id == lead_id:
                            say(f"leadscore: lead {lead_id} was rejected at {item.where}: {item.reason}", err=True)
                            sys.exit(EXIT_REJECTED)
                        continue
                    if item.id != lead_id:
                        continue
                    result = next(engine.score([item], accounts=index))
                    if isinstance(result, Rejection):
                        say(f"leadscore: lead {lead_id} could not be scored: {result.reason}", err=True)
                        sys.exit(EXIT_REJECTED)
                    fired = {line.rule_id for line in result.ledger}
                    reviewed = {rid: text for rid, text in reviews(engine.active_packs()).items() if rid in fired}
                    steps = None
                    if to_band is not None:
                        account = index.signals_for(account_key(item)) if index is not None else None
                        try:
                            steps = next_steps(engine, item, to_band, account=account)
                        except ValueError as err:
                            raise UsageFailure(f"--to: {err}") from err
                    observed = band_observed_conversion(result, engine.active_packs())
                    known = engine.vocabulary.get("activity_types", frozenset())
                    unknown = unknown_activity_types(item, known)
                    misfit = misfit_fields(item.fields, engine.vocabulary.get(CUSTOM_FIELDS) or {})
                    left_out = [rej for rej in report.skipped if rej.lead_id == lead_id]
                    if as_json:
                        shown = card_to_dict(result, explain=True)
                        if observed is not None:
                            shown["band_observed_conversion"] = observed
                        if reviewed:
                            shown["fairness_reviews"] = reviewed
                        if steps is not None:
                            shown["next_steps"] = to_dict(steps)
                        shown["unknown_activity_types"] = unknown
                        shown["fields_not_of_declared_type"] = misfit
                        shown["activities_left_out"] = [{"where": r.where, "reason": r.reason} for r in left_out]
                        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
                    else:
                        click.echo(render_explanation(result, item, reviewed, observed, unknown, left_out, known,
                                                      misfit))
                        if steps is not None:
                            click.echo("\n" + "\n".join(printable(line) for line in render(steps).split("\n")))
                    return
        except LeadscoreError as err:
            raise _fail(err) from err
        raise UsageFailure(f"{input_path}: no lead with id {lead_id!r}; check the id (ids are case-sensitive)")

    @cli.command()
    @click.argument("rulepack_paths", nargs=-1, required=True, metavar="RULEPACK...")
    @click.option("--strict", is_flag=True, help="Treat warnings (such as fairness) as problems: exit 1.")
    def check(rulepack_paths: tuple[str, ...], strict: bool) -> None:
        """Validate rulepack files; print every problem as file:line: message.

        Also warns about rules that read a protected attribute (gender, age, ethnicity, religion,
        nationality, family status, disability) or a proxy for one (postcode, first name, photo),
        unless the rule says fairness = "reviewed: <why>", and about reads of custom fields no pack
        declares in [fields] (see docs/rulepacks.md).

        \b
        Examples:
          leadscore check my-pack.toml
          leadscore check --strict my-pack.toml     # in CI: warnings fail the build
        """
        from leadscore.engine import Engine
        from leadscore.rulepack.fairness import check_fairness
        from leadscore.rulepack.usage import undeclared_fields
        from leadscore.rulepack.composer import rule_overrides

        warnings = []
        try:
            # Arguments of check are files, even one whose name looks like an installed pack's.
            with Engine(plugins=get_pm(), rulepacks=[Path(p) for p in rulepack_paths]) as engine:
                checked = {str(Path(p)) for p in rulepack_paths}
                given = [p for p in engine.packs if p.source in checked]
                warnings = [*check_fairness(given), *undeclared_fields(given, engine.vocabulary)]
                for pack in given:
                    replaces = (f" (in place of the installed {pack.name} from {engine.replaced[pack.name]})"
                                if pack.name in engine.replaced else "")
                    say(f"ok {pack.source}: {pack.name} {pack.version}, {len(pack.rules)} rules, "
                        f"{len(pack.bands)} bands{replaces}")
                for override in rule_overrides(engine.packs):
                    if checked & {override.pack.source, override.replaces.source}:
                        say(f"note {override.pack.source}: {_override_text(engine, override)}")
        except RulepackErrors as err:
            for e in err.errors:
                say(e.line(), err=True)
            click.echo(f"{len(err.errors)} problem{'s' if len(err.errors) != 1 else ''} found", err=True)
            sys.exit(EXIT_REJECTED)
        except LeadscoreError as err:
            raise _fail(err) from err
        for warning in warnings:
            say(warning.line(), err=True)
        if warnings and strict:
            click.echo(f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''} (--strict): failing", err=True)
            sys.exit(EXIT_REJECTED)

    @cli.command("test")
    @click.argument("case_paths", nargs=-1, required=True, metavar="CASES...")
    @click.option("--quiet", "-q", is_flag=True, help="Print failures and the summary only.")
    def test_cmd(case_paths: tuple[str, ...], quiet: bool) -> None:
        """Run rulepack case files: each case gives a lead and the expected band, points, route and reasons.

        \b
        Example:
          leadscore test rulepacks/samples/cases.toml
        """
        from leadscore.cases import load_cases, run_cases

        try:
            cases = [case for path in case_paths for case in load_cases(path)]
            passed = failed = 0
            for result in run_cases(cases, plugins=get_pm()):
                case = result.case
                if result.passed:
                    passed += 1
                    if not quiet:
                        say(f"PASS {case.file}:{case.line} {case.name}")
                else:
                    failed += 1
                    say(f"FAIL {case.file}:{case.line} {case.name}")
                    for problem in result.problems:
                        say(f"     {problem}")
        except LeadscoreError as err:
            raise _fail(err) from err
        click.echo(f"{passed} passed, {failed} failed")
        if failed:
            sys.exit(EXIT_REJECTED)

    @cli.command()
    @click.option("--all", "show_all", is_flag=True, help="Include the core's built-in plugins.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def plugins(show_all: bool, as_json: bool) -> None:
        """List installed plugins with distribution, version and the hooks they implement.

        Hooks marked "per lead only" have no columnar form: with them installed the columnar engine
        scores those leads one at a time (same results, slower).

        \b
        Example:
          leadscore plugins --all --json
        """
        pm = get_pm()
        infos = pm.plugins(include_builtins=show_all)
        if as_json:
            click.echo(json.dumps([{"name": p.name, "distribution": p.distribution, "version": p.version,
                                    "hooks": list(p.hooks), "builtin": p.builtin,
                                    "per_lead_only": list(pm.per_lead_only(p.name))} for p in infos], indent=2))
            return
        if not infos:
            click.echo("no plugins installed (leadscore plugins --all shows the built-ins)")
        for p in infos:
            per_lead = pm.per_lead_only(p.name)
            note = f"  (per lead only, no columnar form: {', '.join(per_lead)})" if per_lead else ""
            say(f"{p.name:<40} {p.distribution} {p.version}  {', '.join(p.hooks)}{note}")

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.option("--rules", "show_rules", is_flag=True, help="List each pack's rules too.")
    def rulepacks(as_json: bool, show_rules: bool) -> None:
        """List available rulepacks: source plugin, version, applies_when and rule count.

        \b
        Example:
          leadscore rulepacks --rules
        """
        from leadscore.engine import Engine
        from leadscore.rulepack.composer import rule_overrides

        try:
            engine = Engine(plugins=get_pm())
        except LeadscoreError as err:
            raise _fail(err) from err
        with engine:
            overrides = rule_overrides(engine.packs)
            rows = [{"name": p.name, "version": p.version, "plugin": engine.pack_origin.get(p.name, p.source),
                     "priority": p.priority, "extends": list(p.extends), "applies_when": p.applies_text,
                     "rules": len(p.rules), "description": p.description,
                     "overrides": [{"rule_id": o.rule_id, "replaces": o.replaces.name} for o in overrides
                                   if o.pack is p],
                     **({"rule_ids": [r.id for r in p.rules]} if show_rules else {})} for p in engine.packs]
            notes = {p.name: [_override_text(engine, o) for o in overrides if o.pack is p] for p in engine.packs}
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            say(f"{row['name']} {row['version']}  from {row['plugin']}  priority {row['priority']}  "
                f"{row['rules']} rules  applies when {row['applies_when']}")
            for note in notes[row["name"]]:
                say(f"    note: {note}")
            if show_rules:
                for rid in row["rule_ids"]:
                    say(f"    {rid}")

    @cli.command("sql")
    @rulepack_option
    @as_of_option
    @click.option("--dialect", default="duckdb", show_default=True, metavar="NAME",
                  help="SQL dialect: duckdb (one query), spark (a script: a table per step, then the query) or postgres (one query, PostgreSQL 14 or later); snowflake, bigquery: not yet, the error says why.")
    @click.option("--leads", "leads_table", default="leads", show_default=True, metavar="TABLE",
                  help="The leads relation (the CSV input's columns, typed; custom fields as JSON in `fields`).")
    @click.option("--activities", "activities_table", default="activities", show_default=True, metavar="TABLE",
                  help="The activities relation (lead_id, type, at, properties as JSON).")
    @click.option("--top", default=3, show_default=True, type=click.IntRange(0, 100), help="Top reasons per card.")
    @click.option("--ledger/--no-ledger", default=True, show_default=True,
                  help="A `ledger` column: every line of the card's ledger as the JSON array `score --explain` writes.")
    @click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write the query to FILE.")
    def sql(rulepacks: tuple[str, ...], as_of: str | None, dialect: str, leads_table: str, activities_table: str,
            top: int, ledger: bool, output: str | None) -> None:
        """Print the scoring query of the composed rulepacks, for a warehouse to run.

        One row per lead: id, total, band, card (the JSON line `score` writes), ledger (every
        ledger line with its evidence, as the JSON array `score --explain` writes; --no-ledger
        leaves it out), exact (false where the lead's text is not plain ASCII or a value sits on a
        rounding tie, or, with account signals, a contact of its account is so: score those with
        `leadscore score`) and rejection. The scoring time is part of the query.

        \b
        Example:
          leadscore sql -r firr-base --as-of 2026-11-23 --leads crm.leads --activities crm.activities
        """
        from datetime import timezone

        from leadscore.columnar.conditions import Unsupported
        from leadscore.columnar.export import warehouse_query

        when = parse_as_of(as_of) or datetime.now(timezone.utc)
        try:
            engine = _engine(get_pm(), rulepacks, "python", when)
        except LeadscoreError as err:
            raise _fail(err) from err
        with engine:
            try:
                text = warehouse_query(engine, when, leads=leads_table, activities=activities_table, dialect=dialect,
                                       top=top, ledger=ledger)
            except Unsupported as err:
                raise UsageFailure(printable(f"sql: {err}")) from None
        if output:
            write_file(output, text)
        else:
            click.echo(text, nl=False)

    @cli.command()
    @rulepack_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def activities(rulepacks: tuple[str, ...], as_json: bool) -> None:
        """List the activity types the run knows, their intent tier, and the packs that read each.

        A type no pack reads scores nothing (score and explain say so for the leads that have one).

        \b
        Example:
          leadscore activities
          leadscore activities -r my-pack.toml --json
        """
        from leadscore.engine import Engine
        from leadscore.rulepack.usage import activity_uses
        from leadscore.taxonomy.activities import tier_table

        try:
            engine = Engine(plugins=get_pm(), rulepacks=list(rulepacks) or None)
        except LeadscoreError as err:
            raise _fail(err) from err
        with engine:
            tiers = tier_table(engine.vocabulary)
            uses = activity_uses(engine.active_packs(), engine.vocabulary)
            rows = [{"type": kind, "tier": tiers.get(kind, "other"), "packs": uses.get(kind, [])}
                    for kind in sorted(engine.vocabulary.get("activity_types", ()))]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            say(f"{row['type']:<28} {row['tier']:<10} {', '.join(row['packs']) or '(no pack reads it)'}")

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def signals(as_json: bool) -> None:
        """List the signals rulepacks can use, with their types and extractors; event.* signals
        describe the one activity a rule with `on` is looking at.

        \b
        Example:
          leadscore signals
        """
        from leadscore.rulepack.schema import EVENT_SIGNALS

        try:
            extractors = get_pm().get_signal_extractors()
        except LeadscoreError as err:
            raise _fail(err) from err
        rows = [{"signal": spec.name, "type": spec.type, "extractor": ex.name, "doc": spec.doc,
                 "values": list(spec.values)}
                for ex in extractors for spec in ex.provides]
        rows += [{"signal": name, "type": kind, "extractor": "event", "doc": doc, "values": []}
                 for name, kind, doc in EVENT_SIGNALS]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            values = f"  [{', '.join(row['values'])}]" if row["values"] else ""
            say(f"{row['signal']:<34} {row['type']:<9} {row['extractor']:<14} {row['doc']}{values}")

    from leadscore_cli import history as history_commands
    from leadscore_cli import scaffold

    history_commands.register(cli, get_pm)
    scaffold.register(cli, get_pm)

    from leadscore_cli import outcomes as outcome_commands

    outcome_commands.register(cli, get_pm)

    get_pm_for_hooks = pm_factory if isinstance(pm_factory, PluginManager) else None
    problems: list[str] = []
    if get_pm_for_hooks is not None:
        problems = get_pm_for_hooks.register_commands(cli)
    elif os.environ.get("LEADSCORE_NO_PLUGIN_COMMANDS") is None:
        try:
            problems = get_pm().register_commands(cli)
        except UsageFailure:
            pass
    for problem in problems:
        say(f"leadscore: warning: {problem}", err=True)
    return cli


def _remembering(items: Iterator[Any], pending: deque[Any]) -> Iterator[Any]:
    """``items``, each added to ``pending`` as it is read: an engine gives one result per item, in
    their order, but may read ahead of the result it gives (the columnar engine reads a batch of
    leads first), so the oldest item in ``pending`` is the one the next result is for."""
    for item in items:
        pending.append(item)
        yield item


def _next_steps_of(engine: Any, lead: Any, index: Any) -> dict[str, Any]:
    from leadscore.next_steps import next_steps, to_dict

    account = index.signals_for(account_key(lead)) if index is not None else None
    return to_dict(next_steps(engine, lead, account=account))


def _override_text(engine: Any, override: Any) -> str:
    def named(pack: Any) -> str:
        origin = engine.pack_origin.get(pack.name)
        where = (pack.source if origin is None else "" if origin.startswith("leadscore.") else f"plugin {origin}")
        return f"{pack.name} ({', '.join(filter(None, (where, f'priority {pack.priority}')))})"

    return (f"rule {override.rule_id!r} of {named(override.pack)} replaces the one in {named(override.replaces)} "
            f"for every lead both packs apply to")


def prefer_system_allocator() -> None:
    """pyarrow's buffers from the C library's malloc (``system``) rather than its default (mimalloc),
    unless ``ARROW_DEFAULT_MEMORY_POOL`` already says which. pyarrow reads the variable once, when it is
    first imported, so this runs before anything imports it.

    The columnar engine reads a Parquet block in one thread and frees it in another once DuckDB has
    copied it; mimalloc kept much of that memory: 200,000 leads with an activities file, every pack,
    peaked at 459 MB against 402 with malloc (bench/README.md, twenty-fifth round), the same cards."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def main() -> None:
    prefer_system_allocator()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        build_cli().main(prog_name="leadscore")
    except KeyboardInterrupt:  # before click runs (plugins loading)
        click.echo("leadscore: interrupted", err=True)
        sys.exit(interrupted_exit_code())
    except BrokenPipeError:
        # The reader of our output went away (| head): nothing more to say to it.
        sys.stderr.close()
        sys.exit(EXIT_REJECTED)
