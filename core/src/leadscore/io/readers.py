"""Streaming lead readers: JSON Lines or CSV files (plus an optional activities CSV) in, Leads out.

A bad row becomes a Rejection that names its file and line, so every input lead yields one output;
only problems with a whole file (missing, empty, unknown column) raise InputError.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import itertools
import json
import math
import operator
import os
import pickle
import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Annotated, Any

import attrs
import msgspec
import orjson

from leadscore.errors import InputError
from leadscore.io.maps import CellError, ColumnMap, HeaderPlan, cell_value, describe_unknown, plan_activity_header, plan_header
from leadscore.io.parquet import FREE as PARQUET_FREE
from leadscore.io.parquet import ParquetPart, is_parquet
from leadscore.io.parquet import parts as parquet_parts
from leadscore.io.timestamps import TIMESTAMP_FIX, parse_timestamp
from leadscore.model import EMPTY, NO_ACTIVITIES, Activities, Activity, Company, Lead, Rejection, evolve

try:  # a large activities file waits on disk in SQLite; a Python built without it reads small ones only
    import sqlite3
except ImportError:  # pragma: no cover - CPython's usual builds have it
    sqlite3 = None  # type: ignore[assignment]

# A single JSON line past this size is a broken export, not a lead; it is skipped without being
# held in memory. For text streams the limit counts characters rather than bytes.
MAX_LINE_BYTES = 16 * 1024 * 1024
_DRAIN_CHUNK = 1024 * 1024
# A lead is four levels deep (lead, activities, activity, properties); the rest of the limit is
# for property values that are lists or objects. Deeper lines are rejected before anything
# recursive (a decoder, repr, a writer) can run out of stack on them.
MAX_JSON_DEPTH = 32
# Numbers in a lead are what a 64-bit float holds: 1e400 or a 400-digit integer rejects its line.
MAX_NUMBER = sys.float_info.max

# The input shape is the records' shape (leadscore.model): the keys a JSON lead may have, the CSV
# columns and the typed decoder's structs below are all derived from Lead, Company and Activity.
LEAD_KEYS = tuple(f.name for f in attrs.fields(Lead))
COMPANY_KEYS = tuple(f.name for f in attrs.fields(Company))
ACTIVITY_KEYS = tuple(f.name for f in attrs.fields(Activity))

_LEAD_KEY_SET = frozenset(LEAD_KEYS)
_COMPANY_KEY_SET = frozenset(COMPANY_KEYS)
_ACTIVITY_KEY_SET = frozenset(ACTIVITY_KEYS)

_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
_CSV_SUFFIXES = frozenset({".csv", ".tsv"})
FORMATS = ("jsonl", "csv", "parquet")

# ASCII only: re's \d and int() also accept other scripts' digits, which no CRM export means.
_WHOLE = re.compile(r"[0-9]+(?:\.0*)?", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)

_NO_COMPANY = Company()
_ID_FIX = "every lead needs a non-empty id such as L-1001"
_TEXT_FIX = "write it as text in double quotes"
_OBJECT_LINE_FIX = "each line must be one JSON object"
_CELLS_FIX = "quote cells that contain commas"
_RANGE_FIX = f"a number must lie between -{MAX_NUMBER:.1e} and {MAX_NUMBER:.1e} (what a 64-bit float holds)"



# --- one lead from its JSON shape ---------------------------------------------------------


def lead_from_dict(d: Mapping[str, Any], where: str, skipped: list[Rejection] | None = None) -> Lead:
    """Build a Lead (with its Company and Activities) from the JSON shape in docs/architecture.md.

    Empty strings count as missing, strings are stripped, the email is lower-cased and the
    activities are ordered by time (ties keep their input order). Raises InputError at
    ``where`` naming the offending key for anything that does not fit. With ``skipped`` (a
    list), an activity that does not fit is left out and reported there instead: one bad
    activity costs that activity, not the lead (docs/maps.md, "What a bad value costs").
    """
    if not _LEAD_KEY_SET.issuperset(d):
        key = _first_unknown(d, _LEAD_KEY_SET)
        raise InputError(where, f"unknown key {key!r}", f"use one of: {', '.join(LEAD_KEYS)}")
    lead_id = _identifier(d.get("id"), where, "id")
    if lead_id is None:
        raise InputError(where, "id is missing", _ID_FIX)
    email = _text(d.get("email"), where, "email")
    created_at = d.get("created_at")
    return Lead(
        id=lead_id,
        email=email.lower() if email is not None else None,
        title=_text(d.get("title"), where, "title"),
        source=_text(d.get("source"), where, "source"),
        created_at=None if _missing(created_at) else parse_timestamp(created_at, where, "created_at"),
        # Numeric account ids are common in CRM exports; they join as text.
        account_id=_identifier(d.get("account_id"), where, "account_id"),
        company=_company(d.get("company"), where),
        fields=_fields(d.get("fields"), where),
        activities=_activities(d.get("activities"), where, skipped, lead_id),
        first_name=_text(d.get("first_name"), where, "first_name"),
        last_name=_text(d.get("last_name"), where, "last_name"),
    )


def lead_from_json(raw: bytes, where: str) -> Lead:
    """The Lead in one JSON object (a stored snapshot): the typed fast path when the text has the
    common shape, else :func:`lead_from_dict`, which words any error."""
    lead = _fast_lead(raw, where)
    if lead is not None:
        return lead
    try:
        data = parse_json_line(raw)
    except NotJson as err:
        raise InputError(where, f"malformed JSON: {err}", _OBJECT_LINE_FIX) from None
    if not isinstance(data, dict):
        raise InputError(where, f"a lead must be a JSON object, not {_json_kind(data)}", _OBJECT_LINE_FIX)
    if _has_wide_float(data):
        # orjson reads a whole number outside [-2**63, 2**64) as a float; a snapshot stores such a
        # number exactly (history.store.canonical_json), so it is read back exactly.
        data = json.loads(raw)
    return lead_from_dict(data, where)


def _has_wide_float(value: Any) -> bool:
    """Whether ``value`` holds a float of magnitude 2**63 or more (where orjson may have read a
    whole number as a float)."""
    if isinstance(value, float):
        return abs(value) >= 2.0**63
    if isinstance(value, dict):
        return any(_has_wide_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_wide_float(v) for v in value)
    return False


def _company(value: Any, where: str) -> Company:
    if value is None:
        return _NO_COMPANY
    if not isinstance(value, Mapping):
        raise InputError(
            where, f"company: {_show(value)} is not an object", 'write an object such as {"name": "Acme"}'
        )
    if not value:
        return _NO_COMPANY
    if not _COMPANY_KEY_SET.issuperset(value):
        key = _first_unknown(value, _COMPANY_KEY_SET)
        raise InputError(where, f"company: unknown key {key!r}", f"use one of: {', '.join(COMPANY_KEYS)}")
    domain = _text(value.get("domain"), where, "company.domain")
    employees = value.get("employees")
    revenue = value.get("annual_revenue")
    return Company(
        name=_text(value.get("name"), where, "company.name"),
        # Domains are case-insensitive; one spelling lets accounts group by domain.
        domain=domain.lower() if domain is not None else None,
        industry=_text(value.get("industry"), where, "company.industry"),
        employees=None if _missing(employees) else _whole_number(employees, where, "company.employees"),
        annual_revenue=None if _missing(revenue) else _number(revenue, where, "company.annual_revenue"),
        country=_text(value.get("country"), where, "company.country"),
        tier=_text(value.get("tier"), where, "company.tier"),
    )


def _fields(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return EMPTY
    if not isinstance(value, Mapping):
        raise InputError(
            where,
            f"fields: {_show(value)} is not an object",
            'write an object such as {"budget_confirmed": true}',
        )
    fields: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise InputError(where, f"fields: key {key!r} is not text", _TEXT_FIX)
        # Blank values are dropped so a JSON lead and the same lead from CSV come out equal.
        if _missing(item):
            continue
        if not isinstance(item, (str, int, float)):
            raise InputError(
                where,
                f"fields.{key}: {_show(item)} is not a single value",
                "a custom field holds text, a number, true or false",
            )
        if isinstance(item, (int, float)) and not -MAX_NUMBER <= item <= MAX_NUMBER:
            raise InputError(where, f"fields.{key}: {_show(item)} is out of range", _RANGE_FIX)
        fields[key] = item
    return fields or EMPTY


def _activities(value: Any, where: str, skipped: list[Rejection] | None = None,
                lead_id: str | None = None) -> Activities:
    if value is None:
        return NO_ACTIVITIES
    if not isinstance(value, (list, tuple)):
        raise InputError(
            where,
            f"activities: {_show(value)} is not a list",
            'write a list such as [{"type": "page_view", "at": "2026-11-20T10:00:00Z"}]',
        )
    # Fast path: well-formed activities go straight into columns, a few list comprehensions
    # for the whole list instead of a record each. Anything unusual takes the checked path.
    if not value:
        return NO_ACTIVITIES
    try:
        # A non-object item fails here (TypeError) or at the subscripts below, and goes the checked way.
        if all(map(_ACTIVITY_KEY_SET.issuperset, value)):
            props = [item.get("properties") for item in value]
            if {type(p) for p in props} <= _PROPERTY_TYPES:
                made = _columns_or_none([item["type"] for item in value],
                                        [_fromisoformat(item["at"]) for item in value],
                                        # Copies: the caller's dicts stay theirs.
                                        [dict(p) if p else EMPTY for p in props] if any(props) else None,
                                        [item.get("id") for item in value])
                if made is not None:
                    return made
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    # Something needs the checked path (and its message naming the activity).
    if skipped is None:
        activities = [_activity(item, where, f"activities[{index}]") for index, item in enumerate(value)]
        return _by_time(activities)
    activities = []
    for index, item in enumerate(value):
        try:
            activities.append(_activity(item, where, f"activities[{index}]"))
        except InputError as err:
            skipped.append(Rejection(err.where, _reason(err), lead_id))
    return _by_time(activities)


_fromisoformat = datetime.fromisoformat
_UTC = timezone.utc
_ONLY_UTC = {_UTC}
_PROPERTY_TYPES = {type(None), dict}
# Activity types already seen to be clean text, so each is checked once per run, not per activity.
_GOOD_TYPES: set[str] = set()


def _columns_or_none(types: list[Any], times: list[datetime], props: list[Mapping[str, Any]] | None,
                     ids: list[Any]) -> Activities | None:
    """Activities from columns when every value is already clean (text types without stray spaces,
    UTC times, text ids), oldest first; None when one needs the checked path."""
    has_ids = ids.count(None) != len(ids)
    if ((_GOOD_TYPES.issuperset(types) or all(map(_good_type, types)))
            and {t.tzinfo for t in times} == _ONLY_UTC
            and (not has_ids or all(i is None or (type(i) is str and i and i == i.strip()) for i in ids))):
        return Activities(types, times, props, ids if has_ids else None).by_time()
    return None


def _good_type(kind: Any) -> bool:
    if type(kind) is str and kind and kind == kind.strip():
        if len(_GOOD_TYPES) < 10_000:
            _GOOD_TYPES.add(kind)
        return True
    return False


# --- typed fast path for JSON Lines -------------------------------------------------------
# msgspec decodes a line straight into these shapes in C, checking key names and types on the
# way. A line it refuses, or whose values need more than the checks below, takes the general
# path (orjson + lead_from_dict), which accepts the same documents and words every message;
# the fast path only ever returns a Lead that lead_from_dict would build from the same line.


# Values of custom fields are single values; property values may nest, but the typed decoder only
# takes a few levels (each level multiplies the size of msgspec's type), so deeper ones, and
# integers beyond 64 bits, go the general way, which checks the whole line.
_WireInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_FIELD_VALUE: Any = str | bool | _WireInt | float | None
_PROPERTY_VALUE: Any = _FIELD_VALUE
for _ in range(4):
    _PROPERTY_VALUE = _FIELD_VALUE | list[_PROPERTY_VALUE] | dict[str, _PROPERTY_VALUE]


def _wire_type(record: type, field: attrs.Attribute) -> Any:
    """The JSON type the typed decoder accepts for a record field (anything else goes the general way).

    Times arrive as text, numbers of a float field as any JSON number, ids of a lead or its
    account also as whole numbers (CRM exports often have numeric ids; they join as text),
    nested records as their own shapes, and every field but the required ones may be null.
    """
    is_union = isinstance(field.type, types.UnionType) or typing.get_origin(field.type) is typing.Union
    kinds = set(typing.get_args(field.type)) if is_union else {field.type}
    kinds.discard(type(None))
    wire: set[Any] = set()
    for kind in kinds:
        if kind is datetime:
            wire.add(str)
        elif kind is float:
            wire |= {int, float}
        elif kind is Company:
            wire.add(_CompanyShape)
        elif kind is Activities:
            wire.add(list[_ActivityShape])
        elif typing.get_origin(kind) in (Mapping, dict):
            wire.add(dict[str, _FIELD_VALUE if field.name == "fields" else _PROPERTY_VALUE])
        elif kind is int:
            wire.add(_WireInt)
        else:
            wire.add(kind)
    # Whole numbers within 64 bits only: orjson, the general path's parser, reads longer ones as
    # floats (and the general path refuses "1.8e+19" as an id), so beyond it the fast path agrees by
    # leaving the line to it.
    if record is Lead and field.name in ("id", "account_id"):
        wire.add(_WireInt)
    union = functools.reduce(operator.or_, sorted(wire, key=str))
    return union if field.default is attrs.NOTHING else union | None


def _shape(record: type, name: str) -> type[msgspec.Struct]:
    """A msgspec struct with the record's fields in their JSON types; unknown keys are refused."""
    attrs.resolve_types(record)
    fields = [(f.name, _wire_type(record, f)) if f.default is attrs.NOTHING else (f.name, _wire_type(record, f), None)
              for f in attrs.fields(record)]
    return msgspec.defstruct(name, fields, forbid_unknown_fields=True)


_ActivityShape = _shape(Activity, "_ActivityShape")
_CompanyShape = _shape(Company, "_CompanyShape")
_LeadShape = _shape(Lead, "_LeadShape")
_decode_shape = msgspec.json.Decoder(_LeadShape).decode
_SHAPE_ERRORS = (msgspec.DecodeError, InputError, ValueError, TypeError, OverflowError, RecursionError)


def _fast_lead(raw: bytes, where: str) -> Lead | None:
    """The Lead on ``raw`` when it has the common, clean shape; None sends it the general way.

    The field helpers are lead_from_dict's own; one that raises sends the line the general way,
    which raises the same error with its message.
    """
    try:
        shape = _decode_shape(raw)
        lead_id = _identifier(shape.id, where, "id")
        if lead_id is None:
            return None
        acts = shape.activities
        activities = _fast_activities(acts) if acts else NO_ACTIVITIES
        if activities is None:
            return None
        email = _text(shape.email, where, "email")
        company, fields, created_at = shape.company, shape.fields, shape.created_at
        return Lead(
            lead_id,
            email.lower() if email is not None else None,
            _text(shape.title, where, "title"),
            _text(shape.source, where, "source"),
            None if _missing(created_at) else parse_timestamp(created_at, where, "created_at"),
            _identifier(shape.account_id, where, "account_id"),
            _NO_COMPANY if company is None else _fast_company(company, where),
            EMPTY if fields is None else _fields(fields, where),
            activities,
            _text(shape.first_name, where, "first_name"),
            _text(shape.last_name, where, "last_name"),
        )
    except _SHAPE_ERRORS:
        return None


def _fast_company(shape: _CompanyShape, where: str) -> Company:
    employees, revenue, domain = shape.employees, shape.annual_revenue, _text(shape.domain, where, "company.domain")
    return Company(
        _text(shape.name, where, "company.name"),
        domain.lower() if domain is not None else None,
        _text(shape.industry, where, "company.industry"),
        None if employees is None else _whole_number(employees, where, "company.employees"),
        None if revenue is None else _number(revenue, where, "company.annual_revenue"),
        _text(shape.country, where, "company.country"),
        _text(shape.tier, where, "company.tier"),
    )


def _fast_activities(acts: list[_ActivityShape]) -> Activities | None:
    # msgspec already made every properties value an object or null, and every id text or null.
    props = [a.properties for a in acts]
    return _columns_or_none([a.type for a in acts], [_fromisoformat(a.at) for a in acts],
                            [p or EMPTY for p in props] if any(props) else None, [a.id for a in acts])


def _activity(value: Any, where: str, prefix: str) -> Activity:
    """One activity; ``prefix`` names it in messages (``activities[2]``, or "" for a CSV row)."""
    # Fast path for the common, well-formed shape: a plain type, a UTC timestamp, an object of
    # properties and an optional string id. Anything else takes the checked path below.
    if type(value) is dict and _ACTIVITY_KEY_SET.issuperset(value):
        kind, at = value.get("type"), value.get("at")
        properties = value.get("properties")
        ident = value.get("id")
        if (type(kind) is str and kind and type(at) is str and (properties is None or type(properties) is dict)
                and (ident is None or (type(ident) is str and ident)) and kind == kind.strip()):
            try:
                parsed = _fromisoformat(at)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is _UTC:
                return Activity(kind, parsed, dict(properties) if properties else EMPTY, ident)
    label = f"{prefix}: " if prefix else ""
    if not isinstance(value, Mapping):
        raise InputError(
            where,
            f"{label}{_show(value)} is not an object",
            'write an object such as {"type": "page_view", "at": "2026-11-20T10:00:00Z"}',
        )
    if not _ACTIVITY_KEY_SET.issuperset(value):
        key = _first_unknown(value, _ACTIVITY_KEY_SET)
        raise InputError(where, f"{label}unknown key {key!r}", f"use one of: {', '.join(ACTIVITY_KEYS)}")
    kind = _text(value.get("type"), where, _join(prefix, "type"))
    if kind is None:
        raise InputError(
            where, f"{_join(prefix, 'type')} is missing", "every activity needs a type such as page_view"
        )
    at = value.get("at")
    if _missing(at):
        raise InputError(where, f"{_join(prefix, 'at')} is missing", TIMESTAMP_FIX)
    properties = value.get("properties")
    if properties is None:
        properties = EMPTY
    elif isinstance(properties, Mapping):
        properties = dict(properties) if properties else EMPTY
    else:
        raise InputError(
            where,
            f"{_join(prefix, 'properties')}: {_show(properties)} is not an object",
            'write an object such as {"url": "/pricing"}',
        )
    return Activity(
        type=kind,
        at=parse_timestamp(at, where, _join(prefix, "at")),
        properties=properties,
        id=_identifier(value.get("id"), where, _join(prefix, "id")),
    )


def _by_time(activities: list[Activity]) -> Activities:
    # sort() is stable, so equal instants keep their input order: (at, original index).
    activities.sort(key=_activity_time)
    return Activities.of(activities)


def _activity_time(activity: Activity) -> Any:
    return activity.at


def _first_unknown(mapping: Mapping[str, Any], allowed: frozenset[str]) -> Any:
    # The first in input order, so the message points where the reader would look first.
    return next(key for key in mapping if key not in allowed)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any, where: str, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    raise InputError(where, f"{field}: {_show(value)} is not text", _TEXT_FIX)


def _identifier(value: Any, where: str, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(
        where, f"{field}: {_show(value)} is not an id", "write text such as L-1001 or a whole number"
    )


def _whole_number(value: Any, where: str, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
    elif isinstance(value, float):
        if value.is_integer() and value >= 0:
            return int(value)
    elif isinstance(value, str):
        text = value.strip()
        # "1200.0" is what spreadsheets and pandas write for a whole number. The length bound
        # keeps int() under its digit limit, which would raise ValueError instead of a message.
        if len(text) < 100 and _WHOLE.fullmatch(text):
            return int(text.partition(".")[0])
    raise InputError(where, f"{field}: {_show(value)} is not a whole number", "write digits such as 1200")


def _number(value: Any, where: str, field: str) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = None
    elif isinstance(value, str):
        text = value.strip()
        if _DECIMAL.fullmatch(text):
            number = float(text)
    if number is None or not math.isfinite(number):
        raise InputError(where, f"{field}: {_show(value)} is not a number", "write digits such as 250000000")
    return number


def _show(value: Any) -> str:
    """``repr(value)``, shortened: a message is one line even when the bad value is huge."""
    try:
        text = repr(value)
    except RecursionError:
        return "a deeply nested value"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _reason(error: InputError) -> str:
    return f"{error.what}; {error.fix}" if error.fix else error.what


def _peek_id(d: Any) -> str | None:
    """The lead id of a row that failed, when one can be read, so the rejection names its lead."""
    if not isinstance(d, Mapping):
        return None
    value = d.get("id")
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None




# --- reading files ------------------------------------------------------------------------


def read_leads(
    source: str | os.PathLike[str] | IO[str] | IO[bytes],
    *,
    activities: str | os.PathLike[str] | IO[str] | None = None,
    fmt: str | None = None,
    name: str | None = None,
    column_map: ColumnMap | None = None,
    delimiter: str | None = None,
    strict: bool = False,
    report: ReadReport | None = None,
    activity_reader: Any = None,
) -> Iterator[Lead | Rejection]:
    """Stream the leads in ``source`` (a path or an open stream), one Lead or Rejection per lead.

    ``fmt`` is ``jsonl`` or ``csv``; when None it comes from the suffix of the path (or of
    ``name`` for a stream). ``name`` is how messages refer to the source (default: the path,
    or ``<stdin>`` for a stream without a name). ``activities`` is an activities CSV joined on
    ``lead_id``: it is read whole before the first lead, so memory grows with the activities
    file, never with the leads file. Its activity rows for leads that never appear are
    reported as Rejections after the last lead.

    ``column_map`` (:func:`leadscore.io.maps.load_map`) says how a CRM export's columns become
    lead fields, and renames activity types in any input. ``delimiter`` is the CSV separator;
    by default it is detected from the header (``,``, ``;``, tab or ``|``), and an Excel
    "Unicode text" export (UTF-16) is read as such. CSV columns that are neither lead fields nor
    mapped are kept as custom fields (``fields.<slug>``) with a warning in ``report``, or stop
    the read under ``strict``. ``report`` (a :class:`ReadReport`) also receives the activities
    left out because they did not fit, each with its place and reason. ``activity_reader`` (path,
    label, read context) reads an activities file (CSV or Parquet) into a table of its own in the
    place of the reader's, or returns None to leave it to the reader (the columnar engine's,
    leadscore.columnar.activities, keeps it in DuckDB).

    The format, the file's existence and the activities path are checked at the call; the
    rest (header, empty file) raises InputError when iteration reaches it.
    """
    path, stream, label = _source(source, name, "<stdin>")
    fmt = _format(fmt, path, label)
    table_source = activities_source(activities) if activities is not None else None
    ctx = _ReadContext(column_map, delimiter, strict, report if report is not None else ReadReport())
    ctx.activity_reader = activity_reader
    return _read(path, stream, label, fmt, table_source, ctx)


def activities_source(activities: str | os.PathLike[str] | IO[str]) -> tuple[Path | None, Any, str]:
    """(path, stream, label) of an activities file, checked: a CSV or Parquet file, or a directory
    of .parquet part files (the Spark engine checks its ``--activities`` here too).

    :raises InputError: when the file is missing, is JSON Lines, or is a directory without parts.
    """
    act_path, act_stream, act_label = _source(activities, None, "<activities>")
    if act_path is not None and act_path.suffix.lower() in _JSONL_SUFFIXES:
        raise InputError(
            act_label,
            "an activities file must be CSV or Parquet",
            "write the header lead_id,type,at, or nest activities inside each JSON lead",
        )
    if act_path is not None and act_path.is_dir() and not is_parquet(act_path):
        raise InputError(act_label, "is a directory with no .parquet files",
                         "pass an activities CSV or Parquet file, or a directory of .parquet part files")
    return act_path, act_stream, act_label


def _source(source: Any, name: str | None, default: str) -> tuple[Path | None, Any, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or os.fspath(source)
        _check_file(path, label)
        return path, None, label
    stream_name = getattr(source, "name", None)
    label = name or (stream_name if isinstance(stream_name, str) else default)
    return None, source, label


def _check_file(path: Path, label: str) -> None:
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError:
        exists, is_dir = False, False
    if not exists:
        raise InputError(label, "file not found", "check the path")
    if is_dir and not is_parquet(path):
        raise InputError(label, "is a directory", "pass the path of a file, or a directory of .parquet part files")


def input_format(path: str | os.PathLike[str], fmt: str | None = None) -> str | None:
    """The format :func:`read_leads` reads the file or directory at ``path`` in (``jsonl``, ``csv``
    or ``parquet``; ``fmt`` as given to it), or None where it would refuse the name."""
    try:
        return _format(fmt, Path(path), os.fspath(path))
    except InputError:
        return None


def _format(fmt: str | None, path: Path | None, label: str) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(label, f"unknown format {fmt!r}", "use jsonl, csv or parquet")
        if fmt == "parquet" and path is None:
            raise InputError(label, "Parquet is read from a file, not a stream", "name the .parquet file or directory")
        if fmt != "parquet" and path is not None and path.is_dir():
            raise InputError(label, "is a directory", f"pass the path of a {fmt} file")
        return fmt
    if path is not None and is_parquet(path):
        return "parquet"
    suffix = (path if path is not None else Path(label)).suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix:
        what = f"cannot tell the format from the suffix {suffix!r}"
    else:
        what = "cannot tell the format: the name has no suffix"
    raise InputError(label, what, "pass fmt='jsonl', 'csv' or 'parquet' (.jsonl, .ndjson, .json, .csv, .tsv and "
                     ".parquet are known)")


def _read(
    path: Path | None,
    stream: Any,
    label: str,
    fmt: str,
    table_source: tuple[Path | None, Any, str] | None,
    ctx: _ReadContext,
) -> Iterator[Lead | Rejection]:
    if table_source is None:
        yield from _read_leads(path, stream, label, fmt, ctx)
        return
    ctx.table = _read_activities(*table_source, ctx)
    try:
        yield from _read_leads(path, stream, label, fmt, ctx)
        yield from ctx.table.unmatched()
    finally:
        ctx.table.close()  # its database file goes with it, however the reading ends


def _read_leads(path: Path | None, stream: Any, label: str, fmt: str, ctx: _ReadContext) -> Iterator[Lead | Rejection]:
    reader = _read_jsonl if fmt == "jsonl" else _read_csv
    if fmt == "parquet":
        assert path is not None  # _format refuses a stream
        yield from _read_parquet(path, label, ctx)
    elif path is not None:
        # JSON Lines is read as bytes so a bad UTF-8 sequence rejects one line, not the file.
        mode = ({"mode": "rb"} if fmt == "jsonl"
                else {"mode": "r", "encoding": _csv_encoding(path, label), **_CSV_TEXT})
        with _open(path, label, **mode) as handle:
            yield from reader(handle, label, ctx)
    elif fmt == "csv" and isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        wrapper = io.TextIOWrapper(stream, encoding=_stream_encoding(stream), **_CSV_TEXT)
        try:
            yield from reader(wrapper, label, ctx)
        finally:
            # The caller owns the stream: detaching stops the wrapper from closing it.
            wrapper.detach()
    else:
        yield from reader(stream, label, ctx)


class ReadReport:
    """What a read noticed without rejecting a lead: one-line warnings, and the activities it left
    out because they did not fit (each a Rejection naming its place, reason and lead)."""

    KEEP = 1000

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.skipped: list[Rejection] = []
        self.skipped_count = 0

    def skip(self, rejection: Rejection) -> None:
        self.skipped_count += 1
        # The count is exact; the records are kept for the first ones only, so a file of a
        # million bad rows does not hold a million messages.
        if len(self.skipped) < self.KEEP:
            self.skipped.append(rejection)

    def warn(self, line: str) -> None:
        if line not in self.warnings:
            self.warnings.append(line)


class _ReadContext:
    """One read's settings and its shared state (the activities table, the report)."""

    def __init__(self, column_map: ColumnMap | None, delimiter: str | None, strict: bool,
                 report: ReadReport) -> None:
        self.column_map = column_map
        self.delimiter = delimiter if delimiter is not None else (column_map.delimiter if column_map else None)
        self.strict = strict
        self.report = report
        self.table: _ActivityTable | None = None
        self.activity_reader: Any = None  # see read_leads
        self.renames = bool(column_map is not None and column_map.activity_types)

    def lead(self, lead: Lead) -> Lead:
        """The lead with the map's activity type renames applied."""
        if not self.renames or not lead.activities:
            return lead
        acts = lead.activities
        assert self.column_map is not None
        renamed = [self.column_map.activity_type(kind) for kind in acts.types]
        if renamed == acts.types:
            return lead
        return evolve(lead, activities=Activities(renamed, list(acts.times), acts.props, acts.ids))


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _csv_encoding(path: Path, label: str) -> str:
    """utf-16 for Excel's "Unicode text" export (it starts with a UTF-16 byte-order mark), else UTF-8."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(2)
    except OSError:
        return "utf-8-sig"  # _open reports the problem in its own words
    return "utf-16" if start in _UTF16_BOMS else "utf-8-sig"


def _stream_encoding(stream: Any) -> str:
    peek = getattr(stream, "peek", None)
    start = peek(2)[:2] if peek is not None else b""
    return "utf-16" if start in _UTF16_BOMS else "utf-8-sig"


_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(header_line: str) -> str:
    """The separator a header line uses: the candidate found most often outside quotes (``,`` on a tie)."""
    counts = dict.fromkeys(_CANDIDATE_DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_CANDIDATE_DELIMITERS, key=lambda c: (counts[c], c == ","))
    return best if counts[best] else ","


def _csv_lines(stream: Any, ctx: _ReadContext) -> tuple[Any, str]:
    """``stream``'s lines and the read's delimiter, detected from the first line if unset."""
    if ctx.delimiter is not None:
        return stream, ctx.delimiter
    first = stream.readline()
    return itertools.chain([first], stream), sniff_delimiter(first)


def _open(path: Path, label: str, **kwargs: Any) -> IO[Any]:
    """``open(path)``, with the OS errors a user can fix turned into InputError."""
    try:
        return open(path, **kwargs)
    except FileNotFoundError:
        raise InputError(label, "file not found", "check the path") from None
    except IsADirectoryError:
        raise InputError(label, "is a directory", "pass the path of a file") from None
    except PermissionError:
        raise InputError(label, "permission denied", "check that the file is readable") from None
    except OSError as err:
        raise InputError(label, f"cannot open the file: {err.strerror}", "check the path") from None


def _escape_any_byte(err: UnicodeError) -> tuple[str, int]:
    """surrogateescape for every byte: Python's own refuses bytes below 0x80, which a UTF-16 file
    cut in the middle of a character ends with (``fe ff 00 41 00``)."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    return "".join(chr(0xDC00 + byte) for byte in err.object[err.start:err.end]), err.end


codecs.register_error("leadscore-escape", _escape_any_byte)

# CSV text keeps undecodable bytes as lone surrogates, so the row holding one is rejected with its
# line instead of the whole file stopping at it (the same as surrogateescape where that can escape).
_CSV_TEXT = {"errors": "leadscore-escape", "newline": ""}


class _Unreadable:
    """A CSV row that could not be read, and why (the whole reason of its rejection)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _not_utf8(label: str) -> InputError:
    return InputError(label, "the file is not valid UTF-8", "save it as UTF-8 text")


class _NonFiniteNumber(ValueError):
    pass


class NotJson(ValueError):
    """Why a line is not JSON leadscore takes, in words for a rejection."""


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which are not JSON and would break ordering.
    raise _NonFiniteNumber(name)


# One decoder for the whole run: json.loads with an option builds a new one per call.
_strict_json = json.JSONDecoder(parse_constant=_refuse_constant).decode
_ORJSON_WHERE = re.compile(r":? line \d+ column (\d+) \(char \d+\)$")
_ORJSON_WORDS = (
    ("number is infinity", f"a number beyond what a 64-bit float holds (over {MAX_NUMBER:.1e})"),
    ("depth limit exceeded", f"nested more than {MAX_JSON_DEPTH} levels deep"),
    ("surrogate", "a \\u escape is half of a surrogate pair"),
)


def parse_json_line(text: str | bytes) -> Any:
    """The JSON value on one line; NotJson says why when the line is not one.

    orjson decides what is JSON (finite numbers, whole surrogate pairs, bounded depth); the
    standard library only words the message when it refuses the line too, as its messages name
    what was expected.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJson("the line is not valid UTF-8") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise NotJson(_why_not_json(text, err)) from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise NotJson(f"nested more than {MAX_JSON_DEPTH} levels deep")
    return value


def _why_not_json(text: str, err: orjson.JSONDecodeError) -> str:
    try:
        _strict_json(text)
    except json.JSONDecodeError as std:
        return f"{std.msg} at column {std.colno}"
    except _NonFiniteNumber as std:
        return f"{std} is not a JSON value"
    except (ValueError, RecursionError):
        # Integers past the standard library's digit limit, or nesting past the stack.
        pass
    message = _ORJSON_WHERE.sub("", err.msg if hasattr(err, "msg") else str(err))
    for needle, words in _ORJSON_WORDS:
        if needle in message:
            message = words
            break
    # Where orjson gave up on depth is no place a person would look; the rest is.
    column = None if message.startswith("nested") else _ORJSON_WHERE.search(str(err))
    return f"{message} at column {column.group(1)}" if column else message


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    todo = [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level <= MAX_JSON_DEPTH:
            todo.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _read_jsonl(stream: Any, label: str, ctx: _ReadContext) -> Iterator[Lead | Rejection]:
    seen = False
    for lineno, raw in _lines(stream, label):
        item = parse_jsonl_line(raw, f"{label}:{lineno}", lineno == 1, ctx)
        if item is None:
            continue
        seen = True
        yield item
    if not seen:
        raise InputError(
            label, "no leads in this file", 'write one JSON object per line, such as {"id": "L-1001"}'
        )


def parse_jsonl_line(raw: str | bytes | None, where: str, first: bool = False,
                     ctx: _ReadContext | None = None) -> Lead | Rejection | None:
    """One JSON Lines line as a Lead or a Rejection naming ``where``; None for a blank line.

    ``raw`` None stands for a line longer than MAX_LINE_BYTES. ``first``: the file's first line,
    which may start with a byte-order mark. ``ctx``: the read's settings and shared state (the
    activities table the lead is joined with, the map's activity type renames, the report of left-out
    activities); by default none of them. (The columnar engine reads clean lines itself and hands
    every other line here, so both engines take and refuse the same lines.)
    """
    if ctx is None:
        ctx = _ReadContext(None, None, False, ReadReport())
    if raw is None:
        return Rejection(where, f"line is longer than 16 MiB; {_OBJECT_LINE_FIX}")
    if isinstance(raw, bytes):
        lead = _fast_lead(raw, where)
        if lead is not None:
            lead = ctx.lead(lead)
            return lead if ctx.table is None else ctx.table.join(lead)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(where, "line is not valid UTF-8; save the file as UTF-8 text")
    else:
        text = raw
    if first and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None
    try:
        # Without its line end, so a message's column is on this line.
        obj = parse_json_line(text.rstrip("\r\n"))
    except NotJson as err:
        return Rejection(where, f"malformed JSON: {err}; {_OBJECT_LINE_FIX}")
    if not isinstance(obj, dict):
        return Rejection(where, f"line is {_json_kind(obj)}, not an object; {_OBJECT_LINE_FIX}")
    return _lead_or_rejection(obj, where, ctx)


def line_context(report: ReadReport | None = None, column_map: ColumnMap | None = None) -> _ReadContext:
    """The settings parse_jsonl_line reads a line of a JSON Lines file with (no activities file; a
    map's activity type renames, the only part of a map a JSON Lines lead reads); activities left
    out go to ``report``."""
    return _ReadContext(column_map, None, False, report if report is not None else ReadReport())


def _lines(stream: Any, label: str) -> Iterator[tuple[int, str | bytes | None]]:
    """(line number, line) pairs; the line is None when it is longer than MAX_LINE_BYTES."""
    limit = MAX_LINE_BYTES
    lineno = 0
    try:
        while True:
            line = stream.readline(limit + 1)
            if not line:
                return
            lineno += 1
            newline = b"\n" if isinstance(line, bytes) else "\n"
            if len(line) > limit and not line.endswith(newline):
                while True:
                    rest = stream.readline(_DRAIN_CHUNK)
                    if not rest or rest.endswith(newline):
                        break
                yield lineno, None
                continue
            yield lineno, line
    except UnicodeDecodeError:
        # Only a text stream decodes while reading; files are read as bytes and decoded per line.
        raise _not_utf8(label) from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a number"


def _lead_or_rejection(d: Mapping[str, Any], where: str, ctx: _ReadContext) -> Lead | Rejection:
    table = ctx.table
    skipped: list[Rejection] = []
    try:
        lead = lead_from_dict(d, where, skipped)
    except InputError as err:
        lead_id = _peek_id(d)
        if table is not None and lead_id is not None:
            table.match(lead_id)
        return Rejection(err.where, _reason(err), lead_id)
    for rejection in skipped:
        ctx.report.skip(rejection)
    lead = ctx.lead(lead)
    return table.join(lead) if table is not None else lead


def _read_csv(stream: Any, label: str, ctx: _ReadContext) -> Iterator[Lead | Rejection]:
    for _, _, item in csv_lead_rows(stream, label, ctx):
        yield item


def csv_lead_rows(stream: Any, label: str, ctx: _ReadContext, header_out: list[list[str]] | None = None
                  ) -> Iterator[tuple[int, list[str] | None, Lead | Rejection]]:
    """A leads CSV as (line where the row starts, its cells, the Lead or Rejection), the cells None
    for a row that could not be read. With ``header_out``, the header's cells are appended to it
    before the first row is given (the Spark engine builds each lead again from its cells there).

    :raises InputError: for the whole file (no header, an unreadable header, no rows, unknown
        columns under ``strict``), when iteration reaches it.
    """
    plan, header, rows = csv_lead_header(stream, label, ctx)
    if header_out is not None:
        header_out.append(header)
    seen = False
    for lineno, row in rows:
        seen = True
        yield lineno, None if isinstance(row, _Unreadable) else row, csv_row_item(plan, len(header), lineno, row, label, ctx)
    if not seen:
        raise InputError(label, "no leads in this file", "write one row per lead under the header")


def csv_lead_header(stream: Any, label: str, ctx: _ReadContext
                    ) -> tuple[HeaderPlan, list[str], Iterator[tuple[int, list[str] | _Unreadable]]]:
    """(the header's plan, its cells, the rows after it as (line where the row starts, its cells or
    _Unreadable)) of a leads CSV; unknown columns warned of in ``ctx.report`` (or refused under strict).

    :raises InputError: no header, an unreadable header, unknown columns under ``strict``.
    """
    rows = _csv_rows(stream, ctx, label)
    header_line, header = next(rows, (0, None))
    if header is None:
        raise InputError(label, "no leads in this file", "write a header row, then one row per lead")
    where_header = f"{label}:{header_line}"
    if isinstance(header, _Unreadable):
        raise InputError(where_header, f"unreadable header row: {header.reason}")
    plan = plan_header(header, where_header, ctx.column_map)
    _unknown_columns(plan, header, where_header, ctx)
    return plan, header, rows


def csv_row_item(plan: HeaderPlan, width: int, lineno: int, row: list[str] | _Unreadable, label: str,
                 ctx: _ReadContext) -> Lead | Rejection:
    """The Lead or Rejection of one row of a leads CSV (its line, its cells or _Unreadable; ``width``:
    the header's cells)."""
    where = f"{label}:{lineno}"
    if isinstance(row, _Unreadable):
        return Rejection(where, row.reason)
    if len(row) != width:
        # The id is usually the first column, so it can still name the lead.
        id_index = plan.id_index
        lead_id = (row[id_index].strip() or None) if id_index < len(row) else None
        if ctx.table is not None and lead_id is not None:
            ctx.table.match(lead_id)
        return Rejection(where, f"row has {len(row)} cells but the header has {width}; {_CELLS_FIX}", lead_id)
    return _row_lead(plan, row, where, ctx)


def _row_lead(plan: HeaderPlan, row: Sequence[str], where: str, ctx: _ReadContext) -> Lead | Rejection:
    """One row of text cells (a CSV row, or a Parquet row as text) as a Lead or a Rejection at ``where``."""
    try:
        shape, problems = plan.row(row, where)
    except InputError as err:
        lead_id = row[plan.id_index].strip() or None
        if ctx.table is not None and lead_id is not None:
            ctx.table.match(lead_id)
        return Rejection(err.where, _reason(err), lead_id)
    for at, reason in problems:
        ctx.report.skip(Rejection(at, reason, _peek_id(shape)))
    return _lead_or_rejection(shape, where, ctx)


def _read_parquet(path: Path, label: str, ctx: _ReadContext) -> Iterator[Lead | Rejection]:
    """Leads from a Parquet file or a directory of part files, batch by batch; a row is at ``file:row N``."""
    seen = False
    for part_path, part_label in parquet_parts(path, label):
        with ParquetPart(part_path, part_label) as part:
            plan = parquet_lead_plan(part, label, ctx)
            for number, row in part.rows():
                seen = True
                yield _row_lead(plan, row, f"{part_label}:row {number}", ctx)
    if not seen:
        raise InputError(label, "no leads in this file", "write one row per lead")


def parquet_lead_plan(part: ParquetPart, label: str, ctx: _ReadContext) -> HeaderPlan:
    """The plan of one part of a Parquet leads input (``label``: the input's), its column types checked;
    unknown columns warned of in ``ctx.report`` (or refused under strict)."""
    plan = plan_header(part.columns, part.label, ctx.column_map)
    part.check(_lead_targets(plan))
    # Named by the input, not the part: a directory of parts with one schema warns once.
    _unknown_columns(plan, part.columns, label, ctx)
    return plan


def _lead_targets(plan: HeaderPlan) -> Iterator[tuple[int, str]]:
    """(column index, the lead field it feeds) for the Parquet type check; custom fields take any value."""
    yield from plan.lead
    yield from ((index, PARQUET_FREE) for index, _ in plan.fields)
    yield from ((index, "at") for index, _ in plan.activities)
    yield from ((index, PARQUET_FREE) for index, _ in plan.unknown)


def _unknown_columns(plan: HeaderPlan, header: list[str], where: str, ctx: _ReadContext) -> None:
    """Columns that are no lead field: one warning naming them all, or under strict one error."""
    if not plan.unknown:
        return
    listed = describe_unknown(plan, header)
    count = len(plan.unknown)
    if ctx.strict:
        raise InputError(where, f"{count} unknown column{'s' if count != 1 else ''}: {listed}",
                         "map them with --map FILE.toml (or list them under [excluded]), or drop --strict "
                         "to keep them as custom fields")
    ctx.report.warn(f"{where}: {count} column{'s' if count != 1 else ''} kept as custom field"
                    f"{'s' if count != 1 else ''}: {listed}; map them with --map, or --strict to stop on them")


class _LineFeed:
    """Lines for csv.reader, counted, and kept for the row being read so that a row whose quote
    never closes (and so swallowed the rest of the input) can be read again from its next line."""

    def __init__(self, stream: Any) -> None:
        self.lines = iter(stream)
        self.again: list[str] = []
        self.row: list[str] = []
        self.line_num = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else next(self.lines)
        self.row.append(line)
        self.line_num += 1
        return line

    def unread_row_after_first_line(self) -> None:
        rest = self.row[1:]
        self.again.extend(reversed(rest))
        self.line_num -= len(rest)


def _text_kind(stream: Any) -> str:
    """The encoding a CSV text stream decodes, in a rejection's words: UTF-16 after Excel's
    byte-order mark (see _csv_encoding), else UTF-8."""
    return "UTF-16" if str(getattr(stream, "encoding", "")).lower().startswith("utf-16") else "UTF-8"


def _csv_rows(stream: Any, ctx: _ReadContext, label: str) -> Iterator[tuple[int, list[str] | _Unreadable]]:
    """(first physical line, cells) for each non-blank row of a CSV text stream; a row that cannot be
    read is _Unreadable (one with bytes the text could not decode names the encoding it was read as)."""
    encoding = _text_kind(stream)
    lines, delimiter = _csv_lines(stream, ctx)
    feed = _LineFeed(lines)
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    end = 0
    while True:
        feed.row = []
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            start = end + 1
            if len(feed.row) > 1 or "unexpected end of data" in str(err):
                # A quote that does not close where it should swallowed the lines after it: they
                # are rows of their own, read again after this one is rejected.
                yield start, _Unreadable("a quoted cell opened on this line is never closed; end it with a double "
                                         'quote (a quote inside a cell is written twice: "")')
                feed.unread_row_after_first_line()
                reader = csv.reader(feed, delimiter=delimiter, strict=True)
            else:
                yield start, _Unreadable(f"unreadable CSV row: {err}; check the quoting on this line")
            end = feed.line_num
            continue
        except UnicodeDecodeError:
            # Only a text stream the caller opened strictly can raise here.
            raise _not_utf8(label) from None
        # A quoted cell may span lines; the row is reported at the line where it starts.
        start, end = end + 1, feed.line_num
        # Spreadsheets leave rows of empty cells at the end of a sheet: they are not leads.
        if not row or not any(cell.strip() for cell in row):
            continue
        try:
            "".join(row).encode("utf-8")
        except UnicodeEncodeError:
            yield start, _Unreadable(f"row is not valid {encoding}; save the file as UTF-8 text")
            continue
        yield start, row


# --- the activities file ------------------------------------------------------------------


class _ActivityTable:
    """Activities from an activities file, by lead id, and the rows that could not be used.

    Rows are numbered in reading order (a CSV's line numbers; a count across Parquet parts), so
    the rejections given after the last lead come in the order of the file. The whole file is read
    before the first lead (a lead may come before its activities' rows).

    Held as Python objects for the first SPILL_ROWS rows (about 540 bytes an activity: 60,000
    generated leads with 1.2 million activities held 640 MB); past that, in a temporary SQLite
    database on disk, so a file of any size is read in bounded memory at some cost in speed.
    """

    SPILL_ROWS = 100_000

    def __init__(self, label: str = "activities") -> None:
        """``label``: the activities file, as a message about the table names it."""
        self._label = label
        self._store: _HeldActivities | _SpilledActivities = _HeldActivities()
        self._count = 0

    def row(self, lead_id: str, order: int, where: str) -> None:
        """A row of the file names ``lead_id``: its first such row is where a rejection points."""
        self._counted()
        self._store.row(lead_id, order, where)

    def add(self, lead_id: str, order: int, activity: Activity) -> None:
        """The activity of the row just named by :meth:`row`, when it is usable."""
        self._store.add(lead_id, order, activity)

    def orphan(self, order: int, rejection: Rejection) -> None:
        """A row that names no lead (or could not be read): rejected in its place after the leads."""
        self._counted()
        self._store.orphan(order, rejection)

    def _counted(self) -> None:
        """One more row of the file: past SPILL_ROWS rows the table moves to disk (a file of rows
        that are all left out or rejected is bounded too)."""
        self._count += 1
        if self._count > self.SPILL_ROWS and isinstance(self._store, _HeldActivities):
            self._store = _SpilledActivities.of(self._store, self._label)

    def match(self, lead_id: str) -> None:
        """A lead (scored or rejected) has this id: its activity rows are not rejected as unknown."""
        self._store.match(lead_id)

    def activities_of(self, lead_id: str) -> list[Activity]:
        """The usable activities of ``lead_id``, in the file's order."""
        return self._store.activities_of(lead_id)

    def join(self, lead: Lead) -> Lead:
        self.match(lead.id)
        return join_activities(lead, self.activities_of(lead.id))

    def unmatched(self) -> Iterator[Rejection]:
        for _, rejection in self.placed():
            yield rejection

    def placed(self) -> Iterator[tuple[int, Rejection]]:
        """(row order, rejection) of each unusable row and of the first row of each lead id no lead
        matched, in row order. (The Spark engine calls it before any lead is matched, and keeps a
        lead id's rejection for when no lead of the input has that id.)"""
        for order, where, lead_id, reason in self._store.placed():
            if lead_id is None:
                yield order, Rejection(where, reason)
            else:
                yield order, Rejection(where, f"activity for unknown lead {lead_id!r}; "
                                       "every activity's lead_id must match an id in the leads file", lead_id)

    def close(self) -> None:
        self._store.close()


class _HeldActivities:
    """An activities table as Python objects."""

    def __init__(self) -> None:
        self.by_lead: dict[str, list[tuple[int, Activity]]] = {}
        self.first_row: dict[str, tuple[int, str]] = {}
        self.orphans: list[tuple[int, str, str]] = []
        self.matched: set[str] = set()

    def row(self, lead_id: str, order: int, where: str) -> None:
        self.first_row.setdefault(lead_id, (order, where))

    def add(self, lead_id: str, order: int, activity: Activity) -> None:
        self.by_lead.setdefault(lead_id, []).append((order, activity))

    def orphan(self, order: int, rejection: Rejection) -> None:
        self.orphans.append((order, rejection.where, rejection.reason))

    def match(self, lead_id: str) -> None:
        self.matched.add(lead_id)

    def activities_of(self, lead_id: str) -> list[Activity]:
        return [activity for _, activity in self.by_lead.get(lead_id, ())]

    def placed(self) -> list[tuple[int, str, str | None, str | None]]:
        """(row order, place, lead id, reason) of each unmatched lead id's first row (no reason) and
        of each orphan row (no lead id), in row order."""
        found: list[tuple[int, str, str | None, str | None]] = [
            (order, where, lead_id, None) for lead_id, (order, where) in self.first_row.items()
            if lead_id not in self.matched]
        found.extend((order, where, None, reason) for order, where, reason in self.orphans)
        found.sort(key=operator.itemgetter(0))
        return found

    def close(self) -> None:
        pass


class _SpilledActivities:
    """An activities table in a private temporary SQLite database: SQLite holds a few MB of pages in
    memory and the rest on disk (in TMPDIR). Rows are written in batches; a look-up writes what is
    pending first."""

    BATCH = 10_000

    def __init__(self, label: str) -> None:
        self._label = label
        if sqlite3 is None:
            raise InputError(label, f"past {_ActivityTable.SPILL_ROWS:,} rows an activities file waits for its leads "
                             "in a temporary SQLite database, and this Python has no sqlite3 module",
                             "use a Python built with sqlite3 (python.org's, the distributions' and uv's are)")
        # "": a database on disk that SQLite deletes when the connection closes. The reader that
        # fills it may be handed to another thread (one at a time).
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.executescript("""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE activity (lead_id TEXT NOT NULL, ord INTEGER NOT NULL, record BLOB NOT NULL);
            CREATE TABLE first_row (lead_id TEXT PRIMARY KEY, ord INTEGER NOT NULL, place TEXT NOT NULL);
            CREATE TABLE orphan (ord INTEGER NOT NULL, place TEXT NOT NULL, reason TEXT NOT NULL);
            CREATE TABLE matched (lead_id TEXT NOT NULL);
        """)
        self._activities: list[tuple[Any, ...]] = []
        self._pending = 0  # activities in self._activities
        self._firsts: list[tuple[str, int, str]] = []
        self._orphans: list[tuple[int, str, str]] = []
        self._matched: list[str] = []
        self._last_lead: str | None = None
        self._run: list[Activity] = []
        self._run_lead, self._run_order = "", 0
        self._indexed = False

    @classmethod
    def of(cls, held: _HeldActivities, label: str) -> _SpilledActivities:
        """A spilled table holding what ``held`` holds."""
        spilled = cls(label)
        for lead_id, (order, where) in held.first_row.items():
            spilled.row(lead_id, order, where)
        for lead_id, activities in held.by_lead.items():
            for order, activity in activities:
                spilled.add(lead_id, order, activity)
        spilled._orphans.extend(held.orphans)
        for lead_id in held.matched:
            spilled.match(lead_id)
        spilled._end_run()
        spilled._flush()
        spilled._flush_matched()
        return spilled

    def row(self, lead_id: str, order: int, where: str) -> None:
        if lead_id != self._last_lead:  # an export usually keeps a lead's rows together
            self._last_lead = lead_id
            self._firsts.append((lead_id, order, where))
            if len(self._firsts) >= self.BATCH:
                self._flush()

    def add(self, lead_id: str, order: int, activity: Activity) -> None:
        # A run of one lead's rows is stored as one record (of at most BATCH activities, so a file of
        # one lead is bounded too): an export that keeps a lead's rows together costs one database
        # row and one look-up row a lead.
        if lead_id != self._run_lead or len(self._run) >= self.BATCH:
            self._end_run()
            self._run_lead, self._run_order = lead_id, order
        self._run.append(activity)

    def _end_run(self) -> None:
        if self._run:
            self._activities.append((self._run_lead, self._run_order, _stored(self._run)))
            self._pending += len(self._run)
            self._run = []
            if self._pending >= self.BATCH:  # activities, not records: memory holds about two batches
                self._flush()

    def orphan(self, order: int, rejection: Rejection) -> None:
        self._orphans.append((order, rejection.where, rejection.reason))
        if len(self._orphans) >= self.BATCH:
            self._flush()

    def match(self, lead_id: str) -> None:
        self._matched.append(lead_id)
        if len(self._matched) >= self.BATCH:
            self._flush_matched()

    def _flush(self) -> None:
        """The file's pending rows written."""
        if self._activities or self._firsts or self._orphans:
            with self._writing():
                self._db.executemany("INSERT INTO activity VALUES (?, ?, ?)", self._activities)
                # The first row of each lead id wins: rows come in order.
                self._db.executemany("INSERT OR IGNORE INTO first_row VALUES (?, ?, ?)", self._firsts)
                self._db.executemany("INSERT INTO orphan VALUES (?, ?, ?)", self._orphans)
            self._activities, self._firsts, self._orphans, self._pending = [], [], [], 0

    def _flush_matched(self) -> None:
        if self._matched:
            with self._writing():
                self._db.executemany("INSERT INTO matched VALUES (?)", [(i,) for i in self._matched])
            self._matched = []

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction; a full disk (or any failed write) as one line naming the file and the fix."""
        try:
            with self._db:
                yield
        except sqlite3.OperationalError as err:
            raise InputError(self._label, f"could not keep its activities in a temporary file until their leads "
                             f"are read ({err})", "free space in the temporary directory, or point TMPDIR at a "
                             "disk with room") from None

    def _ready(self) -> None:
        """The file's pending rows written, and the look-up index built once it is read (faster than
        keeping it while rows are added)."""
        self._end_run()
        self._flush()
        if not self._indexed:
            with self._writing():
                self._db.execute("CREATE INDEX activity_by_lead ON activity (lead_id, ord)")
            self._indexed = True

    def activities_of(self, lead_id: str) -> list[Activity]:
        self._ready()
        found = self._db.execute("SELECT record FROM activity WHERE lead_id = ? ORDER BY ord", (lead_id,)).fetchall()
        if len(found) == 1:
            return _loaded(found[0][0])
        return [activity for (record,) in found for activity in _loaded(record)]

    def placed(self) -> Iterator[tuple[int, str, str | None, str | None]]:
        self._ready()
        self._flush_matched()
        yield from self._db.execute(
            "SELECT ord, place, lead_id, NULL FROM first_row WHERE lead_id NOT IN (SELECT lead_id FROM matched) "
            "UNION ALL SELECT ord, place, NULL, reason FROM orphan ORDER BY 1")

    def close(self) -> None:
        self._db.close()


def _stored(activities: list[Activity]) -> bytes:
    """Activities as one record: JSON when every time is UTC and every property a JSON value (as
    cells are read: text, numbers, true/false; orjson writes a float's shortest round-trip text),
    else a pickle."""
    try:
        return orjson.dumps([(a.type, _utc_micros(a.at), None if a.properties is EMPTY else a.properties, a.id)
                             for a in activities])
    except (TypeError, orjson.JSONEncodeError):  # a whole number past 64 bits, say
        return pickle.dumps([(a.type, a.at, None if a.properties is EMPTY else dict(a.properties), a.id)
                             for a in activities], pickle.HIGHEST_PROTOCOL)


def _utc_micros(at: datetime) -> int:
    if at.tzinfo is not _UTC:
        raise TypeError("a time not in UTC")
    return (at - _EPOCH) // _MICROSECOND


def _loaded(record: bytes) -> list[Activity]:
    """The activities of a record :func:`_stored` made (a pickle starts with 0x80, JSON with '[')."""
    if record[0] == 0x80:
        return [Activity(kind, at, EMPTY if properties is None else properties, ident)
                for kind, at, properties, ident in pickle.loads(record)]
    return [Activity(kind, _EPOCH + timedelta(microseconds=micros), EMPTY if properties is None else properties, ident)
            for kind, micros, properties, ident in orjson.loads(record)]


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def join_activities(lead: Lead, extra: list[Activity]) -> Lead:
    """``lead`` with ``extra`` activities (its rows of an activities file) among its own, by time
    (activities at one instant keep their order: the lead's own first, then the file's)."""
    if not extra:
        return lead
    return evolve(lead, activities=_by_time([*lead.activities, *extra]))


def _read_activities(path: Path | None, stream: Any, label: str, ctx: _ReadContext) -> _ActivityTable:
    if path is not None and ctx.activity_reader is not None:
        table = ctx.activity_reader(path, label, ctx)
        if table is not None:
            return table
    if path is not None and is_parquet(path):
        return _parquet_activity_table(parquet_parts(path, label), label, ctx)
    if path is not None:
        with open_activity_csv(path, label) as handle:
            return _activity_table(handle, label, ctx)
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        wrapper = io.TextIOWrapper(stream, encoding=_stream_encoding(stream), **_CSV_TEXT)
        try:
            return _activity_table(wrapper, label, ctx)
        finally:
            wrapper.detach()
    return _activity_table(stream, label, ctx)


def open_activity_csv(path: Path, label: str) -> IO[str]:
    """An activities CSV file opened as the reader reads it (its encoding found, newlines kept for the csv module)."""
    return _open(path, label, mode="r", encoding=_csv_encoding(path, label), **_CSV_TEXT)


def activity_csv(stream: Any, label: str, ctx: _ReadContext) -> tuple[_ActivityPlan, int, Iterator[tuple[int, Any]]]:
    """An activities CSV's header plan, the header's width, and its rows: (line number, the cells, or
    an unreadable row) for :func:`activity_csv_row`."""
    rows = _csv_rows(stream, ctx, label)
    header_line, header = next(rows, (0, None))
    if header is None:
        raise InputError(label, "the activities file is empty", "write the header lead_id,type,at first")
    where_header = f"{label}:{header_line}"
    if isinstance(header, _Unreadable):
        raise InputError(where_header, f"unreadable header row: {header.reason}")
    return _ActivityPlan(header, where_header, where_header, ctx), len(header), rows


def activity_csv_row(plan: _ActivityPlan, width: int, label: str, lineno: int, row: Any, table: Any, ctx: _ReadContext) -> None:
    """One row of an activities CSV into ``table``: its activity, or the row left out or rejected as unusable."""
    where = f"{label}:{lineno}"
    if isinstance(row, _Unreadable):
        table.orphan(lineno, Rejection(where, row.reason))
        return
    lead_id = plan.lead_id(row, lineno, where, table)
    if lead_id is None:
        return
    if len(row) != width:
        ctx.report.skip(Rejection(
            where, f"activity left out: row has {len(row)} cells but the header has {width}; {_CELLS_FIX}", lead_id))
        return
    plan.add(row, lead_id, lineno, where, table)


def _activity_table(stream: Any, label: str, ctx: _ReadContext) -> _ActivityTable:
    """Every usable row of an activities CSV by lead id. A row that does not fit (a bad time, a
    missing type, the wrong number of cells) is left out and reported; its lead is still scored."""
    plan, width, rows = activity_csv(stream, label, ctx)
    table = _ActivityTable(label)
    for lineno, row in rows:
        activity_csv_row(plan, width, label, lineno, row, table, ctx)
    return table


def _parquet_activity_table(parts: Sequence[tuple[Any, str]], label: str, ctx: _ReadContext) -> _ActivityTable:
    """Every usable row of an activities Parquet file or of its part files ((path or open binary
    file, label) in name order) by lead id, read as an activities CSV is; a row is at ``file:row N``
    (``label`` names the whole input in warnings)."""
    table = _ActivityTable(label)
    order = 0
    for part_path, part_label in parts:
        with ParquetPart(part_path, part_label) as part:
            plan = _ActivityPlan(part.columns, part_label, label, ctx)
            part.check(plan.targets())
            for number, row in part.rows():
                order += 1
                where = f"{part_label}:row {number}"
                lead_id = plan.lead_id(row, order, where, table)
                if lead_id is not None:
                    plan.add(row, lead_id, order, where, table)
    return table


class _ActivityPlan:
    """How an activities file's columns become activities (header checked once, used per row)."""

    def __init__(self, header: Sequence[str], where_header: str, warn_where: str, ctx: _ReadContext) -> None:
        header = list(header)
        columns, unknown = plan_activity_header(header, where_header, ctx.column_map)
        keys = [key for _, key in columns]
        for required in ("lead_id", "type", "at"):
            if required not in keys:
                others = ", ".join(repr(header[i].strip()) for i, _ in unknown)
                raise InputError(
                    where_header,
                    f"missing column {required!r}" + (f" (the header has {others})" if others else ""),
                    "an activities file needs the columns lead_id, type and at (or a map's [activity_columns])",
                )
        if unknown:
            listed = ", ".join(f"{header[i].strip()!r} -> properties.{name}" for i, name in unknown)
            if ctx.strict:
                raise InputError(where_header, f"{len(unknown)} unknown activity column{'s' if len(unknown) != 1 else ''}: "
                                 f"{listed}", "map them in the map's [activity_columns], or drop --strict to keep "
                                 "them as properties")
            ctx.report.warn(f"{warn_where}: {len(unknown)} column{'s' if len(unknown) != 1 else ''} kept as activity "
                            f"propert{'ies' if len(unknown) != 1 else 'y'}: {listed}; map them with --map, or --strict "
                            "to stop on them")
        self.columns, self.unknown = columns, unknown
        self.lead_index = columns[keys.index("lead_id")][0]
        self.ctx = ctx
        self.cmap = ctx.column_map
        self.dates = self.cmap.dates if self.cmap is not None else None
        self.missing = self.cmap.missing if self.cmap is not None else frozenset({""})

    def targets(self) -> Iterator[tuple[int, str]]:
        """(column index, what it feeds) for the Parquet type check; properties take any value."""
        for index, key in self.columns:
            yield index, PARQUET_FREE if key.startswith("properties.") else key
        for index, _ in self.unknown:
            yield index, PARQUET_FREE

    def lead_id(self, row: Sequence[str], order: int, where: str, table: _ActivityTable) -> str | None:
        """The row's lead id (with the map's prefix), noted in ``table``; None (and an orphan) when missing."""
        lead_id = row[self.lead_index].strip() if self.lead_index < len(row) else ""
        if not lead_id:
            table.orphan(order, Rejection(where, "lead_id is missing; every activity needs the id of its lead"))
            return None
        if self.cmap is not None and self.cmap.id_prefix:
            lead_id = f"{self.cmap.id_prefix}{lead_id}"
        table.row(lead_id, order, where)
        return lead_id

    def add(self, row: Sequence[str], lead_id: str, order: int, where: str, table: _ActivityTable) -> None:
        """The row's activity into ``table``, or, when it does not fit, into the report as left out."""
        cmap, report = self.cmap, self.ctx.report
        try:
            shape = _activity_row(self.columns, self.unknown, row, self.missing)
            if self.dates is not None and "at" in shape and isinstance(shape["at"], str) and shape["at"].strip():
                try:
                    shape["at"] = self.dates.parse(shape["at"])
                except ValueError:
                    pass  # _activity words the message
            activity = _activity(shape, where, "")
        except CellError as err:
            report.skip(Rejection(where, f"activity left out: {err}", lead_id))
            return
        except InputError as err:
            report.skip(Rejection(err.where, f"activity left out: {_reason(err)}", lead_id))
            return
        if cmap is not None and cmap.activity_types:
            activity = evolve(activity, type=cmap.activity_type(activity.type))
        table.add(lead_id, order, activity)


def _activity_row(columns: list[tuple[int, str]], unknown: list[tuple[int, str]], row: Sequence[str],
                  missing: frozenset[str]) -> dict[str, Any]:
    activity: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for index, key in columns:
        cell = row[index]
        if key.startswith("properties."):
            value = cell_value(cell) if cell.strip() not in missing else None
            if value is not None:
                properties[key[11:]] = value
        elif key != "lead_id":
            activity[key] = cell
    for index, name in unknown:
        value = cell_value(row[index]) if row[index].strip() not in missing else None
        if value is not None:
            properties.setdefault(name, value)
    if properties:
        activity["properties"] = properties
    return activity


__all__ = [
    "ACTIVITY_KEYS",
    "ReadReport",
    "COMPANY_KEYS",
    "FORMATS",
    "LEAD_KEYS",
    "MAX_LINE_BYTES",
    "NotJson",
    "activities_source",
    "cell_value",
    "csv_lead_rows",
    "lead_from_dict",
    "line_context",
    "parse_json_line",
    "parse_jsonl_line",
    "read_leads",
    "sniff_delimiter",
]
