"""A CRM export read through a column map (``--map``), for the columnar engine's file scan.

The python reader applies a map row by row (:meth:`leadscore.io.maps.HeaderPlan.row`): each cell
that is not one of the map's missing values goes through the map's picklist table and normaliser
(dates parsed, headcounts and amounts read, domains cut from URLs), custom fields are typed, and
constants fill what the row leaves empty. Here the same code runs column by column over a block of
rows, each distinct cell of a picklist column once, and writes each value back as the cell a plain
leads file (leadscore's own column names, no map) would hold for it: a text as it is, a number as
its digits, a time in the form lines.STAMP, a custom field as the text the reader types back to the
same value. The SQL of leadscore.columnar.table then reads those plain cells as it reads any file.

A value written so is checked to read back as itself (a custom field's text typed by
``cell_value`` gives the same value of the same type; a text has nothing to strip around it); a
value that would not (a float where a whole number goes, a text custom field that looks like a
number, a value the map's code refuses) marks its row, and the row is read by the python reader's
own code from its original cells, as are the rows the plain SQL does not take, and the rows with
a date in one of the map's activity columns (``[[activities]]``: a plain leads file has no such
column; a row whose activity columns are all empty is read here). A map with a constant that no
plain cell writes, or a constant custom field that a column also writes (:func:`mapped_header`
returns None): the leads are read as records, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from leadscore.io.maps import CellError, ColumnMap, FieldSpec, HeaderPlan, _typed, cell_value

ODD = object()  # a value no plain cell writes: the row is the python reader's
_CACHED = 4_096  # distinct cells remembered a column (a picklist's; a column of ids gains nothing)


def map_columnar(cmap: ColumnMap) -> bool:
    """Whether the columnar scan reads a file through ``cmap`` (else the leads are read as records)."""
    return all(_constant_text(target, value) is not None for target, value in cmap.constants.items())


class MappedHeader:
    """One header read through a map, as the plain columns the SQL reads: :attr:`plan` is the
    plain header's plan over those columns (lead targets, then custom fields in the order the map's
    reader adds them), :meth:`columns` makes them of a block's rows."""

    def __init__(self, plan: HeaderPlan, cmap: ColumnMap) -> None:
        self.sources: list[tuple[int | None, Callable[[str], Any] | None, str | None]] = []
        lead: list[tuple[int, str]] = []
        unknown: list[tuple[int, str]] = []
        constants = {target: _constant_text(target, value) for target, value in cmap.constants.items()}
        by_target = {target: index for index, target in plan.lead}
        for target in [*(t for _, t in plan.lead), *(t for t in constants if t not in by_target)]:
            if target.startswith("fields."):
                continue
            index, constant = by_target.get(target), constants.get(target)
            cell = None if index is None else _lead_cell(target, cmap)
            if index is not None and cell is None and constant is not None:
                cell = _blank_or_cell  # an empty cell leaves the constant
            lead.append((len(self.sources), target))
            self.sources.append((index, cell, constant))
        # Custom fields in the order the reader adds them: constants, then [fields], then other columns.
        for target, text in constants.items():
            if target.startswith("fields."):
                unknown.append((len(self.sources), target[7:]))
                self.sources.append((None, None, text))
        for index, spec in plan.fields:
            unknown.append((len(self.sources), spec.name))
            self.sources.append((index, _field_cell(spec, cmap), None))
        for index, name in plan.unknown:
            unknown.append((len(self.sources), name))
            self.sources.append((index, _other_cell(cmap), None))
        self.plan = HeaderPlan(lead, [], [], unknown, None, next(j for j, target in lead if target == "id"))
        # The activity columns: a row with a value in one is the python reader's.
        self.dated = [index for index, _ in plan.activities]
        self.missing = cmap.missing

    def columns(self, rows: Sequence[Sequence[str]]) -> tuple[list[list[str]], set[int]]:
        """The plain columns of ``rows`` (each a row's cells as text), and the positions of the rows
        the python reader's code reads: a value no plain cell writes, or a date in an activity column
        (what the columns hold for those rows is not read)."""
        odd: set[int] = set()
        missing = self.missing
        for index in self.dated:
            odd.update(position for position, row in enumerate(rows) if row[index].strip() not in missing)
        made: list[list[str]] = []
        for index, cell, constant in self.sources:
            if index is None:
                made.append([constant or ""] * len(rows))
                continue
            if cell is None:  # the cell as it is (a lead field the map reads as written)
                made.append([row[index] for row in rows])
                continue
            column: list[str] = []
            for position, row in enumerate(rows):
                text = cell(row[index])
                if text is ODD:
                    odd.add(position)
                    text = ""
                elif text == "" and constant is not None:
                    text = constant
                column.append(text)
            made.append(column)
        return made, odd


def mapped_header(plan: HeaderPlan, cmap: ColumnMap) -> MappedHeader | None:
    """The plain columns of a header read through ``cmap``, or None when the columnar scan does not
    read it (see :func:`map_columnar`; or a constant custom field a column also writes)."""
    if not map_columnar(cmap):
        return None
    names = {spec.name for _, spec in plan.fields} | {name for _, name in plan.unknown}
    if any(target.startswith("fields.") and target[7:] in names for target in cmap.constants):
        return None
    return MappedHeader(plan, cmap)


# --- one cell, as the python reader reads it, written as a plain cell -------------------------------


def _remembered(read: Callable[[str], Any]) -> Callable[[str], Any]:
    """``read`` with its first _CACHED cells' results remembered (a picklist's values repeat)."""
    seen: dict[str, Any] = {}

    def cell(text: str) -> Any:
        found = seen.get(text, seen)
        if found is seen:
            found = read(text)
            if len(seen) < _CACHED:
                seen[text] = found
        return found

    return cell


def _lead_cell(target: str, cmap: ColumnMap) -> Callable[[str], Any] | None:
    """A lead field's cell (as HeaderPlan.row reads it) as a plain cell; None when it is the cell."""
    missing, prefix = cmap.missing, cmap.id_prefix if target == "id" else ""
    if (missing == {""} and not prefix and target not in cmap.values and target not in cmap.normalisers
            and target != "created_at"):
        return None  # the plain reader strips it and leaves it out when empty, as the map's does

    def read(text: str) -> Any:
        cell = text.strip()
        if cell in missing:
            return ""
        try:
            value = cmap.value_of(target, cell)
            if target == "created_at" and isinstance(value, str):
                value = cmap.dates.parse(value)
        except CellError:
            return ODD  # the reader rejects the row, with its message
        if prefix:
            value = f"{prefix}{value}"
        if value is None or value == "":
            return ""
        return _lead_text(target, value)

    return _remembered(read) if target != "created_at" else read  # (a time seldom comes twice)


def _blank_or_cell(text: str) -> str:
    return text if text.strip() else ""


def _lead_text(target: str, value: Any) -> Any:
    """A lead field's value as the plain cell that reads as it, or ODD."""
    if target == "created_at":
        if type(value) is not datetime or value.tzinfo is not UTC or not 1000 <= value.year <= 9999:
            return ODD
        fraction = f".{value.microsecond:06d}" if value.microsecond else ""
        return f"{value:%Y-%m-%dT%H:%M:%S}{fraction}Z"
    if type(value) is int and target in ("company.employees", "company.annual_revenue"):
        return str(value)
    if type(value) is not str or value != value.strip():
        return ODD
    return value


def _field_cell(spec: FieldSpec, cmap: ColumnMap) -> Callable[[str], Any]:
    """A custom field's cell of the map's ``[fields]`` (typed by its spec) as a plain cell."""
    missing, target = cmap.missing, f"fields.{spec.name}"

    def read(text: str) -> Any:
        cell = text.strip()
        if cell in missing:
            return ""
        try:
            value = _typed(cmap.value_of(target, cell), spec.type, cmap)
        except CellError:
            return ODD
        return "" if value is None else _field_text(value)

    return _remembered(read)


def _other_cell(cmap: ColumnMap) -> Callable[[str], Any] | None:
    """A column the map does not name (a custom field by its slug): as it is, or empty when missing."""
    missing = cmap.missing
    if missing == {""}:
        return None
    return _remembered(lambda text: "" if text.strip() in missing else text)


def _field_text(value: Any) -> Any:
    """A custom field's value as the cell ``cell_value`` reads as the same value of the same type, or ODD."""
    if type(value) is bool:
        text = "true" if value else "false"
    elif type(value) in (int, float, str):
        text = value if type(value) is str else repr(value)
    else:
        return ODD
    try:
        read = cell_value(text)
    except CellError:
        return ODD
    return text if type(read) is type(value) and read == value and text else ODD


def _constant_text(target: str, value: Any) -> str | None:
    """A map constant as the plain cell that reads as it (None: none does)."""
    if target.startswith("fields."):
        text = _field_text(value)
    elif type(value) is str:
        text = value if value and value == value.strip() else ODD
    else:
        text = _lead_text(target, value) if type(value) is int else ODD
    return None if text is ODD else text


__all__ = ["MappedHeader", "map_columnar", "mapped_header"]
