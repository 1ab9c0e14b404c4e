"""Writers for score cards and rejections: JSON Lines, CSV and Parquet for machines, a table for people.

Output is deterministic (fixed key and column order, UTC timestamps to the second) so the same run
gives byte-identical files.
"""

from __future__ import annotations

import abc
import csv
import functools
import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from leadscore.errors import ConfigurationError
from leadscore.io.timestamps import format_timestamp
from leadscore.model import Activities, Contribution, Lead, Rejection, ScoreCard
from leadscore.text import printable

OUTPUT_FORMATS = ("jsonl", "csv", "parquet", "table")
_COMPANY_KEYS = ("name", "domain", "industry", "employees", "annual_revenue", "country", "tier")
REJECTION_FORMATS = ("jsonl", "csv")

# Rows held before the table is printed: column widths fit each batch and memory stays bounded.
TABLE_BATCH = 200

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# --- records as plain dicts ---------------------------------------------------------------


# Texts that repeat from card to card (the packs, the scoring time), formatted once.
@functools.lru_cache(maxsize=256)
def _packs_text(packs: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(f"{name}@{version}" for name, version in packs)


_as_of_text = functools.lru_cache(maxsize=256)(format_timestamp)


def card_to_dict(card: ScoreCard, explain: bool = False, top: int = 3) -> dict[str, Any]:
    """``card`` as a JSON-ready dict with a fixed key order.

    ``points_band`` and ``gate_notes`` appear only when a gate held the lead below the band its
    points reached; ``ledger`` only with ``explain``.
    """
    route = card.route
    data: dict[str, Any] = {
        "id": card.lead_id,
        "total": card.total,
        "band": card.band,
        "subscores": dict(card.subscores),
        "route": (
            None
            if route is None
            else {"action": route.action, "queue": route.queue, "sla_hours": _plain_number(route.sla_hours)}
        ),
        "reasons": card.top_reasons(top),
        "packs": list(_packs_text(card.packs)),
        "as_of": _as_of_text(card.as_of),
    }
    if card.points_band != card.band:
        data["points_band"] = card.points_band
        data["gate_notes"] = list(card.gate_notes)
    if explain:
        data["ledger"] = [contribution_to_dict(line) for line in card.ledger]
    return data


def contribution_to_dict(line: Contribution) -> dict[str, Any]:
    """One ledger line as a JSON-ready dict."""
    return {
        "rule_id": line.rule_id,
        "kind": line.kind,
        "category": line.category,
        "points": line.points,
        "raw_points": line.raw_points,
        "decay": line.decay,
        "decay_factor": round(line.decay_factor, 4),
        "signal": line.signal,
        "observed_at": None if line.observed_at is None else format_timestamp(line.observed_at),
        "reason": line.reason,
        "pack": line.pack,
        "evidence": line.evidence,
    }


def lead_to_dict(lead: Lead) -> dict[str, Any]:
    """``lead`` in the JSON input shape (DESIGN.md §4): ``lead_from_dict`` reads it back equal.

    Unlike score output, timestamps keep their full precision (ISO 8601 with the UTC offset), and
    empty parts are left out, so the same lead always gives the same dict (history stores leads
    this way and names each snapshot by a hash of it).
    """
    data: dict[str, Any] = {"id": lead.id}
    for key in ("email", "title", "source", "account_id", "first_name", "last_name"):
        value = getattr(lead, key)
        if value is not None:
            data[key] = value
    if lead.created_at is not None:
        data["created_at"] = lead.created_at.isoformat()
    company = {key: getattr(lead.company, key) for key in _COMPANY_KEYS if getattr(lead.company, key) is not None}
    if company:
        data["company"] = company
    if lead.fields:
        data["fields"] = dict(lead.fields)
    if len(lead.activities):
        data["activities"] = _activities_to_dicts(lead.activities)
    return data


def _activities_to_dicts(acts: Activities) -> list[dict[str, Any]]:
    # Read from the columns: building an Activity record per activity costs more than the dict.
    props, ids = acts.props, acts.ids
    out = []
    for i, (kind, at) in enumerate(zip(acts.types, acts.times)):
        data: dict[str, Any] = {"type": kind, "at": at.isoformat()}
        if props and props[i]:
            data["properties"] = dict(props[i])
        if ids and ids[i] is not None:
            data["id"] = ids[i]
        out.append(data)
    return out


def rejection_to_dict(rejection: Rejection) -> dict[str, Any]:
    """``rejection`` as ``{"where", "lead_id", "reason"}``."""
    return {"where": rejection.where, "lead_id": rejection.lead_id, "reason": rejection.reason}


def _plain_number(value: float | int | None) -> float | int | None:
    # 4.0 hours reads as 4 in JSON and CSV alike.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _json_line(data: dict[str, Any]) -> str:
    return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE).decode()


def safe_cell(text: str) -> str:
    """``text`` with a leading quote when a spreadsheet would run it as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _number_cell(value: float | int | None) -> str:
    value = _plain_number(value)
    return "" if value is None else str(value)


# --- score card writers -------------------------------------------------------------------


class Writer(abc.ABC):
    """Writes score cards to a stream it does not own: ``close()`` flushes, never closes it."""

    def __init__(self, stream: IO[str], *, explain: bool = False, top: int = 3) -> None:
        self.stream = stream
        self.explain = explain
        self.top = top

    @abc.abstractmethod
    def write(self, card: ScoreCard) -> None:
        """Write one card."""

    def close(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def discard(self) -> None:
        """Stop without finishing, when the run failed and its output is thrown away; after
        ``close()`` it does nothing. Only a writer holding more than the stream (Parquet's) acts."""

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonLinesWriter(Writer):
    """One compact JSON object per card and line; ``extra`` adds keys after the card's (next steps)."""

    def write(self, card: ScoreCard, extra: Mapping[str, Any] | None = None) -> None:
        line = getattr(card, "line", None)
        if line is not None and not extra:  # already rendered by the columnar engine (leadscore.columnar.render)
            self.stream.write(line)
            return
        data = card_to_dict(card, explain=self.explain, top=self.top)
        if extra:
            data.update(extra)
        self.stream.write(_json_line(data))


class CsvWriter(Writer):
    """One row per card, safe to open in a spreadsheet.

    Columns: id, total, band, route_action, route_queue, sla_hours, ``score_<category>`` per
    category, reasons, packs (and ledger with explain). Without ``categories`` the first card's
    categories are used; a category a card has no sub-score for is an empty cell.
    """

    def __init__(
        self, stream: IO[str], *, explain: bool = False, categories: Sequence[str] | None = None, top: int = 3
    ) -> None:
        super().__init__(stream, explain=explain, top=top)
        self._csv = csv.writer(stream, lineterminator="\n")
        self.categories: tuple[str, ...] | None = None
        if categories is not None:
            self._start(tuple(categories))

    def _start(self, categories: tuple[str, ...]) -> None:
        self.categories = categories
        header = ["id", "total", "band", "route_action", "route_queue", "sla_hours"]
        header += [f"score_{category}" for category in categories]
        header += ["reasons", "packs"]
        if self.explain:
            header.append("ledger")
        self._csv.writerow(header)

    def write(self, card: ScoreCard) -> None:
        line = getattr(card, "line", None)
        if line is not None and self.categories is not None:
            self.stream.write(line)  # already rendered by the columnar engine (leadscore.columnar.render)
            return
        if self.categories is None:
            self._start(tuple(category for category, _ in card.subscores))
        categories = self.categories or ()
        route = card.route
        subscores = card.subscore_map
        row = [
            safe_cell(card.lead_id),
            str(card.total),
            safe_cell(card.band),
            safe_cell(route.action) if route is not None else "",
            safe_cell(route.queue or "") if route is not None else "",
            _number_cell(route.sla_hours) if route is not None else "",
        ]
        row += [_number_cell(subscores.get(category)) for category in categories]
        row.append(safe_cell(" | ".join(card.top_reasons(self.top))))
        row.append(safe_cell(";".join(f"{name}@{version}" for name, version in card.packs)))
        if self.explain:
            ledger = [contribution_to_dict(line) for line in card.ledger]
            row.append(safe_cell(json.dumps(ledger, ensure_ascii=False, separators=(",", ":"))))
        self._csv.writerow(row)

    def close(self) -> None:
        # A run that scored nothing still leaves a valid CSV file: the header alone.
        if self.categories is None:
            self._start(())
        super().close()


# Cards held before they are written as one Parquet row group: memory stays bounded at any size.
PARQUET_ROW_GROUP = 10_000
# With --explain each card carries its ledger's JSON (about 4.4 KB a generated lead with every installed
# pack), so fewer a group: 10,000 of them were about 44 MB held and as much again while written
# (a 200,000-lead run with an activities file peaked at 693 MB, 567 MB with 2,048; bench/README.md).
PARQUET_EXPLAIN_ROW_GROUP = 2_048


class ParquetWriter(Writer):
    """One row per card in a Parquet file, with typed columns: the CSV's content, plus what JSON Lines has.

    Columns: id, total (int64), band, points_band and gate_notes (null unless a gate held the lead
    below its points band), route_action, route_queue, sla_hours (double), ``score_<category>``
    (int64, null when the card has no sub-score for it), reasons and packs (lists of text),
    as_of (timestamp, UTC, whole seconds), and with explain ledger (the ledger as JSON text, as in the
    CSV). ``stream`` takes bytes. Cards are written in row groups of PARQUET_ROW_GROUP (with explain, of
    at most PARQUET_EXPLAIN_ROW_GROUP); the file
    is complete only after ``close()``. The columnar engine may hand over rows it made in SQL
    (:class:`leadscore.columnar.RenderedRow`, given ``categories``) among the cards: they take their
    place in input order, and the file's bytes are those the cards would have made.
    """

    def __init__(self, stream: IO[bytes], *, explain: bool = False, categories: Sequence[str] | None = None,
                 top: int = 3) -> None:
        super().__init__(stream, explain=explain, top=top)  # type: ignore[arg-type]
        self.categories: tuple[str, ...] | None = None
        self._writer: Any = None
        self._rows: dict[str, list[Any]] = {}
        # The next row group in input order: tables already made, then a run of rows of one table
        # made in SQL (leadscore.columnar.RenderedRow) or the cards in self._rows.
        self._parts: list[Any] = []
        self._run: tuple[Any, int, int] | None = None  # (table, first row, row after the last)
        self._count = 0
        if categories is not None:
            self._start(tuple(categories))

    def _start(self, categories: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.categories = categories
        text, texts = pa.string(), pa.list_(pa.string())
        fields = [("id", text), ("total", pa.int64()), ("band", text), ("points_band", text), ("gate_notes", texts),
                  ("route_action", text), ("route_queue", text), ("sla_hours", pa.float64()),
                  *((f"score_{category}", pa.int64()) for category in categories),
                  ("reasons", texts), ("packs", texts), ("as_of", pa.timestamp("ms", tz="UTC"))]
        if self.explain:
            fields.append(("ledger", text))
        self._schema = pa.schema(fields)
        # A page checksum lets a reader tell a damaged page from data (pyarrow checks it on request).
        self._writer = pq.ParquetWriter(self.stream, self._schema, compression="zstd", write_page_checksum=True)
        self._rows = {name: [] for name in self._schema.names}

    def write(self, card: ScoreCard) -> None:
        batch = getattr(card, "batch", None)
        if batch is not None and self.categories is not None:
            self._take(batch, card.index)  # type: ignore[attr-defined]
            return
        if self.categories is None:
            self._start(tuple(category for category, _ in card.subscores))
        self._end_run()
        rows, route, subscores = self._rows, card.route, card.subscore_map
        held = card.points_band != card.band
        rows["id"].append(card.lead_id)
        rows["total"].append(card.total)
        rows["band"].append(card.band)
        rows["points_band"].append(card.points_band if held else None)
        rows["gate_notes"].append(list(card.gate_notes) if held else None)
        rows["route_action"].append(route.action if route is not None else None)
        rows["route_queue"].append(route.queue if route is not None else None)
        rows["sla_hours"].append(route.sla_hours if route is not None else None)
        for category in self.categories or ():
            rows[f"score_{category}"].append(subscores.get(category))
        rows["reasons"].append(card.top_reasons(self.top))
        rows["packs"].append(list(_packs_text(card.packs)))
        rows["as_of"].append(card.as_of.replace(microsecond=0))
        if self.explain:
            ledger = [contribution_to_dict(line) for line in card.ledger]
            rows["ledger"].append(json.dumps(ledger, ensure_ascii=False, separators=(",", ":")))
        self._counted()

    def _take(self, batch: Any, index: int) -> None:
        """Row ``index`` of ``batch``, a table of this writer's columns made in SQL, is the next row."""
        if self._rows["id"]:
            self._parts.append(self._cards_table())
        run = self._run
        if run is not None and run[0] is batch and run[2] == index:
            self._run = (batch, run[1], index + 1)
        else:
            self._end_run()
            self._run = (batch, index, index + 1)
        self._counted()

    def _end_run(self) -> None:
        if self._run is not None:
            batch, first, end = self._run
            self._parts.append(batch.slice(first, end - first).select(self._schema.names).cast(self._schema))
            self._run = None

    def _cards_table(self) -> Any:
        import pyarrow as pa

        table = pa.Table.from_pydict(self._rows, schema=self._schema)
        for column in self._rows.values():
            column.clear()
        return table

    def _counted(self) -> None:
        self._count += 1
        if self._count >= (min(PARQUET_ROW_GROUP, PARQUET_EXPLAIN_ROW_GROUP) if self.explain else PARQUET_ROW_GROUP):
            self._flush_rows()

    def _flush_rows(self) -> None:
        import pyarrow as pa

        self._end_run()
        if self._rows["id"]:
            self._parts.append(self._cards_table())
        if not self._parts:
            return
        # One chunk, as a group of cards alone is: the file's bytes do not depend on where its rows were made.
        parts, self._parts, self._count = self._parts, [], 0
        self._writer.write_table(pa.concat_tables(parts).combine_chunks())

    def discard(self) -> None:
        # pyarrow's writer would otherwise write its footer when collected, into a file already gone.
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        # A run that scored nothing still leaves a valid Parquet file: the columns and no rows.
        if self.categories is None:
            self._start(())
        if self._writer is not None:
            self._flush_rows()
            self._writer.close()
            self._writer = None
        super().close()


class TableWriter(Writer):
    """A table for a terminal: id, total, each sub-score, band, action, why a gate held the lead
    back, and the top reason.

    Rows are printed in batches of TABLE_BATCH, each under its own header, with widths that fit
    that batch. With ``width`` (the terminal's columns) each line is cut to fit rather than
    wrapped. With explain, each card's ledger lines follow its row, indented.
    """

    def __init__(self, stream: IO[str], *, explain: bool = False, top: int = 3,
                 categories: Sequence[str] | None = None, width: int | None = None) -> None:
        super().__init__(stream, explain=explain, top=top)
        self.categories = tuple(categories or ())
        self.HEADER = ("id", "total", *self.categories, "band", "action", "held", "top reason")
        self.width = width
        self._rows: list[tuple[tuple[str, ...], list[str]]] = []
        self._batches = 0

    def write(self, card: ScoreCard) -> None:
        reasons = card.top_reasons(1)
        subscores = dict(card.subscores)
        cells = (
            printable(card.lead_id),
            str(card.total),
            *(str(subscores.get(name, 0)) for name in self.categories),
            printable(card.band),
            printable(card.route.action) if card.route is not None else "-",
            printable(held_text(card)),
            printable(reasons[0]) if reasons else "",
        )
        details = [_ledger_line(line) for line in card.ledger] if self.explain else []
        self._rows.append((cells, details))
        if len(self._rows) >= TABLE_BATCH:
            self._flush_rows()

    def _flush_rows(self) -> None:
        if not self._rows:
            return
        widths = [len(name) for name in self.HEADER]
        for cells, _ in self._rows:
            for index, cell in enumerate(cells):
                widths[index] = max(widths[index], len(cell))
        out: list[str] = []
        if self._batches:
            out.append("")
        out.append(self._line(self.HEADER, widths))
        out.append(self._line(tuple("-" * width for width in widths), widths))
        for cells, details in self._rows:
            out.append(self._line(cells, widths))
            out.extend(details)
        if self.width:
            out = [line if len(line) <= self.width else line[: self.width - 1] + "…" for line in out]
        self.stream.write("\n".join(out) + "\n")
        self._rows.clear()
        self._batches += 1

    def _line(self, cells: Sequence[str], widths: Sequence[int]) -> str:
        numbers = range(1, 2 + len(self.categories))
        parts = [
            cell.rjust(width) if index in numbers else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        ]
        # No padding after the last column: trailing spaces only get in the way of copy-paste.
        return "  ".join(parts).rstrip()

    def close(self) -> None:
        self._flush_rows()
        super().close()


HELD_WIDTH = 60


def held_text(card: ScoreCard) -> str:
    """Why a gate kept the lead below its points band, short: ``mql; sales_ready needs a business email``."""
    if not card.gate_notes:
        return ""
    note = card.gate_notes[0]
    band, _, rest = note.partition(" not reached")
    _, found, needs = rest.partition(": requires ")
    text = f"held at {card.band}: {band} needs {needs}" if found else f"held at {card.band}"
    # The whole reason is in --explain and the JSON output; a table cell stays readable.
    return text if len(text) <= HELD_WIDTH else text[: HELD_WIDTH - 1] + "…"


def _ledger_line(line: Contribution) -> str:
    text = f"    {line.points:+d} {line.category} {line.rule_id}: {line.reason}"
    if line.kind != "rule":
        text += f" [{line.kind}]"
    if line.decay_factor != 1.0:
        text += f" [decay {line.decay} x{line.decay_factor:.2f}]"
    return printable(text)


def open_writer(
    fmt: str,
    stream: IO[str],
    *,
    explain: bool = False,
    categories: Sequence[str] | None = None,
    top: int = 3,
    width: int | None = None,
) -> Writer:
    """A Writer for ``fmt`` (``jsonl``, ``csv``, ``parquet`` or ``table``) writing to ``stream``
    (for ``parquet`` a stream that takes bytes).

    ``categories`` fixes the CSV's and Parquet's ``score_<category>`` columns and the table's
    sub-score columns, and their order; JSON Lines ignores it. ``width`` cuts table lines to a terminal's width.
    Call ``close()`` (or use a with-block) to flush.
    """
    if fmt == "jsonl":
        return JsonLinesWriter(stream, explain=explain, top=top)
    if fmt == "csv":
        return CsvWriter(stream, explain=explain, categories=categories, top=top)
    if fmt == "parquet":
        return ParquetWriter(stream, explain=explain, categories=categories, top=top)  # type: ignore[arg-type]
    if fmt == "table":
        return TableWriter(stream, explain=explain, top=top, categories=categories, width=width)
    raise ConfigurationError("", f"unknown output format {fmt!r}", f"use one of: {', '.join(OUTPUT_FORMATS)}")


# --- rejections ---------------------------------------------------------------------------


class RejectionWriter:
    """Writes rejections as JSON Lines or CSV (columns where, lead_id, reason)."""

    def __init__(self, stream: IO[str], fmt: str = "jsonl") -> None:
        if fmt not in REJECTION_FORMATS:
            raise ConfigurationError(
                "", f"unknown rejection format {fmt!r}", f"use one of: {', '.join(REJECTION_FORMATS)}"
            )
        self.stream = stream
        self.fmt = fmt
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        self._started = False

    def _start(self) -> None:
        if self._csv is not None and not self._started:
            self._csv.writerow(["where", "lead_id", "reason"])
        self._started = True

    def write(self, rejection: Rejection) -> None:
        self._start()
        if self._csv is None:
            self.stream.write(_json_line(rejection_to_dict(rejection)))
        else:
            self._csv.writerow(
                [safe_cell(rejection.where), safe_cell(rejection.lead_id or ""), safe_cell(rejection.reason)]
            )

    def close(self) -> None:
        self._start()
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()

    def __enter__(self) -> RejectionWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = [
    "OUTPUT_FORMATS",
    "REJECTION_FORMATS",
    "TABLE_BATCH",
    "CsvWriter",
    "JsonLinesWriter",
    "RejectionWriter",
    "TableWriter",
    "Writer",
    "card_to_dict",
    "contribution_to_dict",
    "lead_to_dict",
    "open_writer",
    "rejection_to_dict",
    "safe_cell",
]
