"""Column maps: how the columns of a CRM export become lead fields, custom fields and activities.

A map is built in (``hubspot``, ``salesforce``) or read from a small TOML file (docs/maps.md).
The CSV reader asks a map for a :class:`HeaderPlan` once per file and turns each row into the
JSON shape of a lead with it; values are normalised on the way (dates, numbers, picklists).
"""

from __future__ import annotations

import difflib
from collections import Counter
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadscore.errors import InputError
from leadscore.files import TomlError, parse_toml, read_text_file
from leadscore.io.timestamps import TIMESTAMP_FIX

LEAD_TARGETS = ("id", "email", "title", "source", "created_at", "account_id", "first_name", "last_name")
COMPANY_TARGETS = ("name", "domain", "industry", "employees", "annual_revenue", "country", "tier")
TARGETS = (*LEAD_TARGETS, *(f"company.{key}" for key in COMPANY_TARGETS))
ACTIVITY_TARGETS = ("lead_id", "type", "at", "id")
FIELD_TYPES = ("text", "number", "yes_no", "bool", "date")
MAP_KEYS = ("map", "lead", "fields", "constants", "values", "missing", "excluded", "dates", "activities",
            "activity_columns", "activity_types", "csv")
BUILT_IN = ("hubspot", "salesforce")
_TARGET_KEYS = {"".join(ch for ch in target if ch.isalnum()): target for target in TARGETS}

_SLUG = re.compile(r"[^a-z0-9]+")
_NUMBER_NOISE = re.compile(r"[\s,$€£¥]")
_RANGE = re.compile(r"^(\d[\d,]*)\s*(?:-|–|to)\s*(\d[\d,]*)$")
_AT_LEAST = re.compile(r"^(\d[\d,]*)\s*\+$")
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


def slug(text: str) -> str:
    """A column name as a custom-field name: ``"Number of Pageviews"`` -> ``number_of_pageviews``."""
    return _SLUG.sub("_", text.strip().lower()).strip("_") or "column"


def _key(text: str) -> str:
    """How picklist values and column names are compared: case, spaces and punctuation aside."""
    return _SLUG.sub("", text.strip().lower())


# --- cell converters ----------------------------------------------------------------------


class CellError(ValueError):
    """A cell that does not fit its target; the message says what would be right."""


def to_number(text: str) -> float | int:
    """``"1,200"``, ``"$250,000"``, ``"1200.0"`` -> a number; ints stay ints."""
    cleaned = _NUMBER_NOISE.sub("", text)
    try:
        number = float(cleaned)
    except ValueError:
        raise CellError(f"{text!r} is not a number; write digits such as 1200") from None
    if not math.isfinite(number):
        raise CellError(f"{text!r} is not a number; write digits such as 1200")
    return int(number) if number.is_integer() and abs(number) < 2**63 else number


def to_headcount(text: str) -> int:
    """Employee counts as CRMs export them: ``"1,200"``, ``"100-500"`` (the lower bound), ``"1000+"``."""
    cleaned = text.strip()
    found = _RANGE.match(cleaned) or _AT_LEAST.match(cleaned)
    if found:
        return int(found.group(1).replace(",", ""))
    number = to_number(cleaned)
    if number < 0 or not float(number).is_integer():
        raise CellError(f"{text!r} is not a number of employees; write a whole number such as 1200")
    return int(number)


def to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CellError(f"{text!r} is not yes or no; write Yes/No, true/false or 1/0")


def to_domain(text: str) -> str:
    """A website as a bare domain: ``"https://www.Acme.io/pricing"`` -> ``acme.io``."""
    host = text.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split("?", 1)[0].split("@")[-1].split(":", 1)[0]
    return host.removeprefix("www.")


@dataclass(frozen=True)
class Dates:
    """How the export writes dates: ISO 8601 always, then each ``strptime`` format in turn (UTC)."""

    formats: tuple[str, ...] = ()

    def parse(self, text: str) -> datetime:
        cleaned = text.strip()
        try:
            parsed = datetime.fromisoformat(cleaned)
        except ValueError:
            parsed = None
        for fmt in self.formats:
            if parsed is not None:
                break
            try:
                parsed = datetime.strptime(cleaned, fmt)
            except ValueError:
                continue
        if parsed is None:
            shown = ", ".join(self.formats)
            also = f" or one of the map's date formats ({shown})" if shown else ""
            raise CellError(f"{text!r} is not a date; {TIMESTAMP_FIX}{also}, or set [dates] formats in the map")
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- the map ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """A custom field (``fields.<name>``) read from one of ``columns`` as ``type``."""

    name: str
    columns: tuple[str, ...]
    type: str = "text"


@dataclass(frozen=True)
class ActivityColumn:
    """A column of the leads file whose date, when present, is one activity of ``type``."""

    column: str
    type: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnMap:
    """Everything needed to read one kind of export. ``lead`` and ``fields`` list candidate column
    names for each target (the first present in the header is read); a built-in map's columns are
    all optional, a file's must be in the header (a typo would silently read nothing)."""

    name: str
    source: str
    lead: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fields: tuple[FieldSpec, ...] = ()
    constants: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    missing: frozenset[str] = frozenset({""})
    excluded: Mapping[str, str] = field(default_factory=dict)
    dates: Dates = Dates()
    activities: tuple[ActivityColumn, ...] = ()
    activity_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    activity_types: Mapping[str, str] = field(default_factory=dict)
    id_prefix: str = ""
    delimiter: str | None = None
    optional_columns: bool = False
    normalisers: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)

    def activity_type(self, kind: str) -> str:
        """An activity type after the map's renames (exact spelling first, then case and spaces aside)."""
        renamed = self.activity_types.get(kind)
        if renamed is not None:
            return renamed
        return self._type_keys.get(_key(kind), kind)

    @property
    def _type_keys(self) -> dict[str, str]:
        cached = self.__dict__.get("_type_keys_cache")
        if cached is None:
            cached = {_key(k): v for k, v in self.activity_types.items()}
            object.__setattr__(self, "_type_keys_cache", cached)
        return cached

    def value_of(self, target: str, cell: str) -> Any:
        """A lead field's cell after the map's picklist table, then its built-in normaliser."""
        table = self.values.get(target)
        if table:
            hit = table.get(cell)
            if hit is None:
                hit = _keyed(table).get(_key(cell))
            if hit is not None:
                return hit
        normaliser = self.normalisers.get(target)
        return normaliser(cell) if normaliser is not None else cell


def _keyed(table: Mapping[str, Any]) -> dict[str, Any]:
    return {_key(k): v for k, v in table.items()}


# --- reading a map file -------------------------------------------------------------------


def load_map(spec: str | Path) -> ColumnMap:
    """A built-in map by name (``hubspot``, ``salesforce``) or a TOML map file by path."""
    text_spec = str(spec)
    if text_spec in BUILT_IN:
        return _BUILT_IN[text_spec]()
    path = Path(spec)
    where = text_spec
    if not path.suffix and not path.exists():
        raise InputError("--map", f"no built-in map named {text_spec!r}",
                         f"use {' or '.join(BUILT_IN)}, or the path of a .toml map file")
    # A regular file of at most MAX_TEXT_FILE_BYTES, in UTF-8 (each problem one line).
    return parse_map(read_text_file(path, "map file", InputError), where)


def parse_map(text: str, where: str) -> ColumnMap:
    """A map from TOML text; every problem is an InputError naming ``where`` and the key."""
    try:
        data = parse_toml(text)
    except TomlError as err:
        raise InputError(f"{where}:{err.line}" if err.line else where, err.what,
                         err.fix or "fix the syntax (strings need quotes)") from None
    for key in data:
        if key not in MAP_KEYS:
            raise InputError(where, f"unknown table [{key}]", f"use: {', '.join(MAP_KEYS)}")
    meta = _table(data, "map", where)
    lead_raw = _table(data, "lead", where)
    id_prefix = lead_raw.pop("id_prefix", "")
    if not isinstance(id_prefix, str):
        raise InputError(where, "[lead] id_prefix must be text", 'e.g. id_prefix = "XE-"')
    lead: dict[str, tuple[str, ...]] = {}
    for target, columns in lead_raw.items():
        if target not in TARGETS:
            if target.startswith("fields."):
                raise InputError(where, f"[lead] {target}: custom fields go in [fields]",
                                 f'write [fields] {target[7:]} = "Column name"')
            close = difflib.get_close_matches(target, TARGETS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(where, f"[lead] unknown lead field {target!r}", f"{hint}use one of: {', '.join(TARGETS)}")
        lead[target] = _columns(columns, where, f"[lead] {target}")
    if "id" not in lead:
        raise InputError(where, "[lead] has no id column", 'name the column that holds the lead id, e.g. id = "Record ID"')
    fields: list[FieldSpec] = []
    for name, spec in _table(data, "fields", where).items():
        if slug(name) != name:
            raise InputError(where, f"[fields] {name!r} is not a field name", f"use lower case and _, e.g. {slug(name)}")
        if isinstance(spec, (str, list)):
            fields.append(FieldSpec(name, _columns(spec, where, f"[fields] {name}")))
            continue
        if not isinstance(spec, dict) or "column" not in spec:
            raise InputError(where, f"[fields] {name} needs a column",
                             f'write {name} = "Column" or {name} = {{ column = "Column", type = "number" }}')
        kind = spec.get("type", "text")
        if kind not in FIELD_TYPES:
            raise InputError(where, f"[fields] {name}: unknown type {kind!r}", f"use one of: {', '.join(FIELD_TYPES)}")
        extra = set(spec) - {"column", "type"}
        if extra:
            raise InputError(where, f"[fields] {name}: unknown key {sorted(extra)[0]!r}", "use column and type")
        fields.append(FieldSpec(name, _columns(spec["column"], where, f"[fields] {name}"), kind))
    constants = _table(data, "constants", where)
    for target in constants:
        if target not in TARGETS and not target.startswith("fields."):
            raise InputError(where, f"[constants] unknown field {target!r}",
                             f"use one of: {', '.join(TARGETS)} or fields.<name>")
    values: dict[str, dict[str, Any]] = {}
    for target, table in _table(data, "values", where).items():
        if target not in TARGETS and not target.startswith("fields."):
            raise InputError(where, f"[values.{target}] names no lead field",
                             f"use one of: {', '.join(TARGETS)} or fields.<name>")
        if not isinstance(table, dict):
            raise InputError(where, f"[values.{target}] must be a table", f'e.g. [values."{target}"] "Web" = "website"')
        values[target] = dict(table)
    missing_raw = _table(data, "missing", where).get("values", [""])
    if not isinstance(missing_raw, list) or not all(isinstance(v, str) for v in missing_raw):
        raise InputError(where, "[missing] values must be a list of text", 'e.g. values = ["", "Select", "N/A"]')
    excluded = _table(data, "excluded", where)
    for column, reason in excluded.items():
        if not isinstance(reason, str):
            raise InputError(where, f"[excluded] {column!r}: the value is why the column is left out",
                             f'e.g. "{column}" = "written by sales after contact"')
    formats = _table(data, "dates", where).get("formats", [])
    if isinstance(formats, str):
        formats = [formats]
    if not isinstance(formats, list) or not all(isinstance(f, str) and "%" in f for f in formats):
        raise InputError(where, "[dates] formats must be strptime formats", 'e.g. formats = ["%d/%m/%Y %H:%M"]')
    activities = _activity_columns(data.get("activities", []), where)
    activity_columns: dict[str, tuple[str, ...]] = {}
    for target, columns in _table(data, "activity_columns", where).items():
        if target not in ACTIVITY_TARGETS and not target.startswith("properties."):
            raise InputError(where, f"[activity_columns] unknown field {target!r}",
                             f"use one of: {', '.join(ACTIVITY_TARGETS)} or properties.<name>")
        activity_columns[target] = _columns(columns, where, f"[activity_columns] {target}")
    renames = _table(data, "activity_types", where)
    for old, new in renames.items():
        if not isinstance(new, str) or not new.strip():
            raise InputError(where, f"[activity_types] {old!r} must name a type", f'e.g. "{old}" = "trial_signup"')
    csv_table = _table(data, "csv", where)
    delimiter = csv_table.get("delimiter")
    if delimiter is not None:
        delimiter = parse_delimiter(delimiter, f"{where}: [csv] delimiter")
    return ColumnMap(
        name=str(meta.get("name") or Path(where).stem), source=where, lead=lead, fields=tuple(fields),
        constants=dict(constants), values=values, missing=frozenset(missing_raw), excluded=dict(excluded),
        dates=Dates(tuple(formats)), activities=activities, activity_columns=activity_columns,
        activity_types=dict(renames), id_prefix=id_prefix, delimiter=delimiter,
        # Headcounts as exports write them ("1,200", "100-500", "1000+"), as docs/maps.md says a map
        # file reads them; other values stay as written (a [values] table maps picklists).
        normalisers={"company.employees": to_headcount},
    )


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(where, f"[{key}] must be a table", f"write [{key}] on its own line, then key = value lines")
    return dict(value)


def _columns(value: Any, where: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (value.strip(),)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise InputError(where, f"{what}: {value!r} is not a column name", 'write the header text, e.g. "Job Title"')


def _activity_columns(raw: Any, where: str) -> tuple[ActivityColumn, ...]:
    if not isinstance(raw, list):
        raise InputError(where, "activities must be [[activities]] tables",
                         'write [[activities]] column = "Demo Requested On" type = "demo_request"')
    found: list[ActivityColumn] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("column"), str) or not isinstance(item.get("type"), str):
            raise InputError(where, "each [[activities]] needs a column and a type",
                             'e.g. column = "Demo Requested On", type = "demo_request"')
        properties = item.get("properties", {})
        if not isinstance(properties, dict):
            raise InputError(where, f"[[activities]] {item['column']!r}: properties must be a table",
                             'e.g. properties = { form = "Contact us" }')
        found.append(ActivityColumn(item["column"], item["type"], dict(properties)))
    return tuple(found)


_DELIMITERS = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}


def parse_delimiter(value: Any, where: str) -> str:
    """``,`` ``;`` ``|`` or ``tab`` (also written ``\\t``) as the one character csv needs."""
    found = _DELIMITERS.get(value) if isinstance(value, str) else None
    if found is None:
        raise InputError(where, f"{value!r} is not a delimiter", "use , ; | or tab")
    return found


# --- a map applied to one header ----------------------------------------------------------


@dataclass
class HeaderPlan:
    """One file's header read through a map: which cell feeds which target, and what is left over."""

    lead: list[tuple[int, str]]
    fields: list[tuple[int, FieldSpec]]
    activities: list[tuple[int, ActivityColumn]]
    unknown: list[tuple[int, str]]
    column_map: ColumnMap | None
    id_index: int

    def row(self, cells: list[str], where: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """(the lead in its JSON shape, problems with single activity cells as (where, reason)).

        A cell that does not fit its lead field raises InputError (the lead is rejected); a bad
        date in an activity column only loses that activity.
        """
        cmap = self.column_map
        missing = cmap.missing if cmap is not None else frozenset({""})
        lead: dict[str, Any] = {}
        company: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        if cmap is not None:
            for target, value in cmap.constants.items():
                _put(target, value, lead, company, custom)
        for index, target in self.lead:
            cell = cells[index].strip()
            if cell in missing:
                continue
            if cmap is not None:
                try:
                    value = cmap.value_of(target, cell)
                    if target == "created_at":
                        value = cmap.dates.parse(value) if isinstance(value, str) else value
                except CellError as err:
                    raise InputError(where, f"{target}: {err}", "") from None
                if target == "id" and cmap.id_prefix:
                    value = f"{cmap.id_prefix}{value}"
            else:
                value = cell
            if value is None or value == "":
                continue
            _put(target, value, lead, company, custom)
        for index, spec in self.fields:
            cell = cells[index].strip()
            if cell in missing:
                continue
            try:
                value = _typed(cmap.value_of(f"fields.{spec.name}", cell) if cmap is not None else cell,
                               spec.type, cmap)
            except CellError as err:
                raise InputError(where, f"fields.{spec.name}: {err}", "") from None
            if value is not None:
                custom[spec.name] = value
        for index, name in self.unknown:
            if cells[index].strip() in missing:
                continue
            try:
                value = cell_value(cells[index])
            except CellError as err:
                raise InputError(where, f"fields.{name}: {err}", "") from None
            if value is not None:
                custom.setdefault(name, value)
        activity_problems: list[tuple[str, str]] = []
        if self.activities:
            acts = lead.setdefault("activities", [])
            for index, column in self.activities:
                cell = cells[index].strip()
                if cell in missing:
                    continue
                try:
                    at = cmap.dates.parse(cell) if cmap is not None else Dates().parse(cell)
                except CellError as err:
                    activity_problems.append((where, f"activity column {column.column!r}: {err}"))
                    continue
                activity: dict[str, Any] = {"type": column.type, "at": at}
                if column.properties:
                    activity["properties"] = dict(column.properties)
                acts.append(activity)
            if not acts:
                del lead["activities"]
        if company:
            lead["company"] = company
        if custom:
            lead["fields"] = custom
        return lead, activity_problems


def _put(target: str, value: Any, lead: dict[str, Any], company: dict[str, Any], custom: dict[str, Any]) -> None:
    if target.startswith("company."):
        company[target[8:]] = value
    elif target.startswith("fields."):
        custom[target[7:]] = value
    else:
        lead[target] = value


def _typed(cell: str, kind: str, cmap: ColumnMap | None) -> Any:
    if not isinstance(cell, str):
        return cell
    if kind == "auto":
        return cell_value(cell)
    if kind == "text":
        return cell
    if kind == "number":
        return to_number(cell)
    if kind in ("yes_no", "bool"):
        return to_bool(cell)
    if kind == "date":
        return (cmap.dates if cmap is not None else Dates()).parse(cell)
    raise CellError(f"unknown type {kind!r}")


def cell_value(text: str) -> Any:
    """A CSV cell of a custom field or activity property as a typed value (None when empty).

    ``true``/``false`` become bools, integers without leading zeros ints, decimals floats;
    anything else stays text. A number beyond what a 64-bit float holds (``1e400``, 400 digits)
    raises CellError, as it does in JSON Lines: the row is rejected, not read as text.
    """
    text = text.strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if _CELL_INT.fullmatch(text):
        # int() has a digit limit; anything that long is out of range anyway.
        if len(text) <= 310 and -_MAX_NUMBER <= (number := int(text)) <= _MAX_NUMBER:
            return number
        raise CellError(_out_of_range(text))
    if _CELL_FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
        raise CellError(_out_of_range(text))
    return text


_MAX_NUMBER = sys.float_info.max


def _out_of_range(text: str) -> str:
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    return (f"{shown} is out of range; a number must lie between -{_MAX_NUMBER:.1e} and {_MAX_NUMBER:.1e} "
            f"(what a 64-bit float holds)")


# ASCII only: re's \d and int() also accept other scripts' digits, which no CRM export means.
# No leading zeros: "02134" is a postcode or an account number, and int() would lose the zero.
_CELL_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)", re.ASCII)
_CELL_FLOAT = re.compile(
    r"[+-]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+|(?:0|[1-9][0-9]*)(?=[eE]))(?:[eE][+-]?[0-9]+)?",
    re.ASCII,
)


def _header_index(header: list[str], where: str) -> tuple[list[str], Callable[[tuple[str, ...]], int | None]]:
    """The header's names, and a finder: the index of the first of some column names present
    (exact spelling first, then case, spaces and punctuation aside). A repeated name is an error."""
    names = [cell.strip() for cell in header]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise InputError(where, f"column {name!r} appears twice", "keep one column per name")
        seen[name] = index
    by_key = {_key(name): index for index, name in enumerate(names)}

    def find(columns: tuple[str, ...]) -> int | None:
        for column in columns:
            index = seen.get(column)
            if index is None:
                index = by_key.get(_key(column))
            if index is not None:
                return index
        return None

    return names, find


def plan_header(header: list[str], where: str, column_map: ColumnMap | None) -> HeaderPlan:
    """Match a leads file's header against a map (or, without one, the dotted column names).

    Columns that are neither mapped nor excluded become custom fields named by their slug; the
    caller decides whether that is a warning or, under ``strict``, an error.
    """
    names, find = _header_index(header, where)
    used: set[int] = set()
    lead: list[tuple[int, str]] = []
    fields: list[tuple[int, FieldSpec]] = []
    activities: list[tuple[int, ActivityColumn]] = []
    absent: list[str] = []

    if column_map is None:
        for index, name in enumerate(names):
            if name in TARGETS:
                lead.append((index, name))
                used.add(index)
            elif name.startswith("fields.") and len(name) > 7:
                fields.append((index, FieldSpec(name[7:], (name,), "auto")))
                used.add(index)
    else:
        for target, columns in column_map.lead.items():
            index = find(columns)
            if index is None:
                if target == "id" or not column_map.optional_columns:
                    absent.append(f"{columns[0]!r} ({target})")
                continue
            lead.append((index, target))
            used.add(index)
        for spec in column_map.fields:
            index = find(spec.columns)
            if index is None:
                if not column_map.optional_columns:
                    absent.append(f"{spec.columns[0]!r} (fields.{spec.name})")
                continue
            fields.append((index, spec))
            used.add(index)
        for column in column_map.activities:
            index = find((column.column,))
            if index is None:
                if not column_map.optional_columns:
                    absent.append(f"{column.column!r} (a {column.type} activity)")
                continue
            activities.append((index, column))
            used.add(index)
        excluded = {_key(c) for c in column_map.excluded}
        used.update(i for i, name in enumerate(names) if _key(name) in excluded)
        if absent:
            raise InputError(where, f"map {column_map.name!r} names columns the file does not have: {', '.join(absent)}",
                             f"check the header spelling or fix the map ({column_map.source})")
    if not any(target == "id" for _, target in lead):
        raise InputError(where, "missing column 'id'", "every lead needs a non-empty id such as L-1001; "
                         "for a CRM export pass --map hubspot, --map salesforce or --map FILE.toml")
    id_index = next(index for index, target in lead if target == "id")
    taken = {spec.name for _, spec in fields}
    unknown: list[tuple[int, str]] = []
    for index, name in enumerate(names):
        if index in used or not name:
            continue
        field_name = slug(name)
        while field_name in taken:
            field_name += "_"
        taken.add(field_name)
        unknown.append((index, field_name))
    return HeaderPlan(lead, fields, activities, unknown, column_map, id_index)


def _typo_of(written: str, known: str) -> bool:
    """A slip of the keyboard: at most two letters in or out (a transposition changes none)."""
    more, fewer = Counter(written), Counter(known)
    return sum(((more - fewer) + (fewer - more)).values()) <= 2


def describe_unknown(plan: HeaderPlan, header: list[str]) -> str:
    """The columns kept as custom fields, as one line: ``'Lead Score' -> fields.lead_score, ...``."""
    parts = []
    for index, name in plan.unknown:
        column = header[index].strip()
        # Compared without case and punctuation, so "Company Size" is not taken for company.tier.
        close = ([c for c in difflib.get_close_matches(_key(column), list(_TARGET_KEYS), n=1, cutoff=0.8)
                  if _typo_of(_key(column), c)] if plan.column_map is None else [])
        hint = f" (did you mean {_TARGET_KEYS[close[0]]!r}?)" if close else ""
        parts.append(f"{column!r} -> fields.{name}{hint}")
    return ", ".join(parts)


# --- the activities file ------------------------------------------------------------------


def plan_activity_header(header: list[str], where: str,
                         column_map: ColumnMap | None) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(index, target) for lead_id/type/at/id/properties.<name>, and unknown columns as property slugs."""
    names, find = _header_index(header, where)
    planned: list[tuple[int, str]] = []
    used: set[int] = set()
    if column_map is not None and column_map.activity_columns:
        for target, columns in column_map.activity_columns.items():
            index = find(columns)
            if index is None:
                if column_map.optional_columns:
                    continue
                raise InputError(where, f"map {column_map.name!r} names activity column {columns[0]!r} ({target}), "
                                 "which the file does not have",
                                 f"check the header spelling or fix the map ({column_map.source})")
            planned.append((index, target))
            used.add(index)
    for index, name in enumerate(names):
        if index in used:
            continue
        if name in ACTIVITY_TARGETS or (name.startswith("properties.") and len(name) > 11):
            if all(target != name for _, target in planned):
                planned.append((index, name))
                used.add(index)
    unknown = [(index, slug(name)) for index, name in enumerate(names) if index not in used and name]
    return planned, unknown


# --- built-in maps ------------------------------------------------------------------------
# Column names are the exports' documented defaults (docs/maps.md cites where each comes from);
# several spellings are listed where the same field is exported under its label by one screen
# and its internal name by another.

# HubSpot's industry property stores codes such as COMPUTER_SOFTWARE; exports show the code or
# its label. Both are matched by their upper-case, underscore form.
HUBSPOT_INDUSTRIES = {
    "COMPUTER_SOFTWARE": "software", "INFORMATION_TECHNOLOGY_AND_SERVICES": "technology",
    "INTERNET": "technology", "COMPUTER_HARDWARE": "technology", "COMPUTER_NETWORKING": "technology",
    "COMPUTER_NETWORK_SECURITY": "technology", "COMPUTER_GAMES": "software", "TELECOMMUNICATIONS": "telecom",
    "WIRELESS": "telecom", "FINANCIAL_SERVICES": "financial_services", "BANKING": "financial_services",
    "INSURANCE": "financial_services", "INVESTMENT_MANAGEMENT": "financial_services",
    "INVESTMENT_BANKING": "financial_services", "VENTURE_CAPITAL_PRIVATE_EQUITY": "financial_services",
    "CAPITAL_MARKETS": "financial_services", "ACCOUNTING": "professional_services",
    "MANAGEMENT_CONSULTING": "professional_services", "LAW_PRACTICE": "professional_services",
    "LEGAL_SERVICES": "professional_services", "STAFFING_AND_RECRUITING": "professional_services",
    "HUMAN_RESOURCES": "professional_services", "MARKETING_AND_ADVERTISING": "marketing_services",
    "PUBLIC_RELATIONS_AND_COMMUNICATIONS": "marketing_services", "MARKET_RESEARCH": "marketing_services",
    "HOSPITAL_HEALTH_CARE": "healthcare", "MEDICAL_DEVICES": "healthcare", "MEDICAL_PRACTICE": "healthcare",
    "PHARMACEUTICALS": "healthcare", "BIOTECHNOLOGY": "healthcare", "HEALTH_WELLNESS_AND_FITNESS": "healthcare",
    "RETAIL": "retail", "CONSUMER_GOODS": "retail", "CONSUMER_ELECTRONICS": "retail", "APPAREL_FASHION": "retail",
    "E_LEARNING": "education", "EDUCATION_MANAGEMENT": "education", "HIGHER_EDUCATION": "education",
    "PRIMARY_SECONDARY_EDUCATION": "education", "GOVERNMENT_ADMINISTRATION": "government",
    "NON_PROFIT_ORGANIZATION_MANAGEMENT": "nonprofit", "AUTOMOTIVE": "manufacturing",
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING": "manufacturing", "INDUSTRIAL_AUTOMATION": "manufacturing",
    "MACHINERY": "manufacturing", "ELECTRICAL_ELECTRONIC_MANUFACTURING": "manufacturing",
    "MEDIA_PRODUCTION": "media", "PUBLISHING": "media", "ENTERTAINMENT": "media", "ONLINE_MEDIA": "media",
    "BROADCAST_MEDIA": "media", "REAL_ESTATE": "real_estate", "COMMERCIAL_REAL_ESTATE": "real_estate",
    "CONSTRUCTION": "construction", "OIL_ENERGY": "energy", "UTILITIES": "energy", "RENEWABLES_ENVIRONMENT": "energy",
    "LOGISTICS_AND_SUPPLY_CHAIN": "logistics", "TRANSPORTATION_TRUCKING_RAILROAD": "logistics",
    "HOSPITALITY": "hospitality", "LEISURE_TRAVEL_TOURISM": "hospitality", "RESTAURANTS": "hospitality",
}

# HubSpot's default lifecycle stages: internal names and labels, as one short value each.
HUBSPOT_LIFECYCLE = {
    "subscriber": "subscriber", "lead": "lead", "marketingqualifiedlead": "mql", "salesqualifiedlead": "sql",
    "opportunity": "opportunity", "customer": "customer", "evangelist": "evangelist", "other": "other",
}

# HubSpot's original traffic source values (codes and labels) as leadscore source names.
HUBSPOT_SOURCES = {
    "organicsearch": "organic_search", "paidsearch": "paid_search", "emailmarketing": "email",
    "socialmedia": "organic_social", "organicsocial": "organic_social", "paidsocial": "paid_social",
    "referrals": "referral", "aireferrals": "referral", "othercampaigns": "other_campaigns",
    "directtraffic": "direct", "offline": "offline", "offlinesources": "offline",
}

# Salesforce's default Lead Source picklist (and common additions) as leadscore source names.
SALESFORCE_SOURCES = {
    "web": "website", "phoneinquiry": "phone_inquiry", "partnerreferral": "partner", "partner": "partner",
    "purchasedlist": "purchased_list", "other": "other", "employeereferral": "referral",
    "externalreferral": "referral", "wordofmouth": "referral", "tradeshow": "trade_show",
    "seminarinternal": "event", "seminarpartner": "partner", "advertisement": "advertisement",
    "publicrelations": "public_relations",
}


def _hubspot_industry(cell: str) -> str:
    code = re.sub(r"[^A-Z0-9]+", "_", cell.strip().upper().replace("&", " ")).strip("_")
    return HUBSPOT_INDUSTRIES.get(code, cell)


def _lookup(table: Mapping[str, str], default: Callable[[str], str]) -> Callable[[str], str]:
    def normalise(cell: str) -> str:
        return table.get(_key(cell), default(cell))

    return normalise


def hubspot() -> ColumnMap:
    return ColumnMap(
        name="hubspot", source="built-in map hubspot", optional_columns=True,
        lead={
            "id": ("Record ID", "Contact ID", "hs_object_id", "vid"),
            "email": ("Email", "Email Address", "email"),
            "first_name": ("First Name", "firstname"),
            "last_name": ("Last Name", "lastname"),
            "title": ("Job Title", "jobtitle"),
            "source": ("Original Source", "Original Traffic Source", "hs_analytics_source"),
            "created_at": ("Create Date", "createdate"),
            "account_id": ("Associated Company ID", "Primary Associated Company ID", "associatedcompanyid"),
            "company.name": ("Company Name", "Associated Company", "company"),
            "company.domain": ("Company Domain Name", "Website URL", "website"),
            "company.industry": ("Industry", "industry"),
            "company.employees": ("Number of Employees", "numemployees"),
            "company.annual_revenue": ("Annual Revenue", "annualrevenue"),
            "company.country": ("Country/Region", "Country", "country"),
        },
        fields=(
            FieldSpec("lifecycle_stage", ("Lifecycle Stage", "lifecyclestage")),
            FieldSpec("lead_status", ("Lead Status", "hs_lead_status")),
            FieldSpec("hubspot_score", ("HubSpot Score", "hubspotscore"), "number"),
            FieldSpec("state", ("State/Region", "state")),
            FieldSpec("city", ("City", "city")),
        ),
        excluded={"Phone Number": "contact details are not scored", "Mobile Phone Number": "contact details are not scored",
                  "Contact owner": "ownership is not scored", "Marketing contact status": "not a lead attribute"},
        dates=Dates(("%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y")),
        normalisers={
            "company.industry": _hubspot_industry,
            "company.employees": to_headcount,
            "company.annual_revenue": to_number,
            "company.domain": to_domain,
            "source": _lookup(HUBSPOT_SOURCES, slug),
            "fields.lifecycle_stage": _lookup(HUBSPOT_LIFECYCLE, slug),
            "fields.lead_status": slug,
        },
    )


def salesforce() -> ColumnMap:
    return ColumnMap(
        name="salesforce", source="built-in map salesforce", optional_columns=True,
        lead={
            "id": ("Lead ID", "Id", "ID"),
            "email": ("Email",),
            "first_name": ("First Name", "FirstName"),
            "last_name": ("Last Name", "LastName"),
            "title": ("Title",),
            "source": ("Lead Source", "LeadSource"),
            "created_at": ("Created Date", "Create Date", "CreatedDate"),
            "account_id": ("Converted Account ID", "ConvertedAccountId"),
            "company.name": ("Company / Account", "Company", "Company Name"),
            "company.domain": ("Website",),
            "company.industry": ("Industry",),
            "company.employees": ("No. of Employees", "Employees", "NumberOfEmployees"),
            "company.annual_revenue": ("Annual Revenue", "AnnualRevenue"),
            "company.country": ("Country",),
        },
        fields=(
            FieldSpec("lead_status", ("Lead Status", "Status")),
            FieldSpec("rating", ("Rating",)),
            FieldSpec("state", ("State/Province", "State")),
            FieldSpec("city", ("City",)),
        ),
        excluded={"Phone": "contact details are not scored", "Mobile Phone": "contact details are not scored",
                  "Lead Owner": "ownership is not scored", "Salutation": "not a lead attribute"},
        # Report exports write dates in the user's locale; these are the US defaults. Other
        # locales: copy the map to a file and set [dates] formats.
        dates=Dates(("%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")),
        normalisers={
            "company.employees": to_headcount,
            "company.annual_revenue": to_number,
            "company.domain": to_domain,
            "source": _lookup(SALESFORCE_SOURCES, slug),
            "fields.lead_status": slug,
        },
    )


_BUILT_IN: dict[str, Callable[[], ColumnMap]] = {"hubspot": hubspot, "salesforce": salesforce}


__all__ = [
    "BUILT_IN",
    "ColumnMap",
    "Dates",
    "FieldSpec",
    "HeaderPlan",
    "load_map",
    "parse_delimiter",
    "parse_map",
    "plan_activity_header",
    "plan_header",
    "slug",
]
