"""A block of JSON Lines as the rows of the ``leads`` and ``activities`` relations, decoded by the
python reader's own typed shape.

Each line goes through the python reader's typed shape (narrowed to numbers the SQL reads exactly)
and the field helpers of its fast path (:func:`leadscore.io.readers._fast_lead`), so a line taken
here is one that path takes, with the same values; no Lead or Activity record is built. Every other line (one the fast path
leaves to the general reader, a value the SQL would not treat exactly, a time it does not read as
``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``) is numbered for the python reader's line parser, as before.
Activity times stay text here; the SQL checks their form and turns them into microseconds.
Python's cycle collector is paused while a block is decoded (see ``collector_paused``).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import msgspec
import pyarrow as pa
from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.columnar.engine import LEAD_SCHEMA, WHOLE, NotColumnar, _fields as column_fields, _micros, _real, _whole
from leadscore.io import readers as r
from leadscore.io.timestamps import parse_timestamp
from leadscore.model import evidence_place

# The activities of a block before the SQL reads their times: ``at`` as written, ``where`` the evidence's place.
ACTIVITY_COLUMNS = pa.schema([
    ("k", pa.int64()), ("pos", pa.int64()), ("type", pa.string()), ("at", pa.string()), ("props", pa.string()),
    ("where", pa.string()),
])



def _bounded(shape: Any, name: str, types: Mapping[str, Any]) -> Any:
    """The reader's typed shape ``shape`` with the fields in ``types`` narrowed to those types."""
    fields = [(f.name, types.get(f.name, f.type)) if f.required else (f.name, types.get(f.name, f.type), f.default)
              for f in msgspec.structs.fields(shape)]
    return msgspec.defstruct(name, fields, forbid_unknown_fields=True)


# The reader's shapes, with property values narrowed to numbers the SQL reads exactly (whole numbers
# up to 2**53, finite doubles), nested as deep as the reader's. A line the narrower shape refuses
# goes to the python reader; one it takes, the reader's fast path takes with the same values.
_Whole = Annotated[int, msgspec.Meta(ge=-WHOLE, le=WHOLE)]
_Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
_SCALAR: Any = str | bool | _Whole | _Finite | None
_PROPERTY: Any = _SCALAR
for _ in range(4):
    _PROPERTY = _SCALAR | list[_PROPERTY] | dict[str, _PROPERTY]
_ActivityShape = _bounded(r._ActivityShape, "_ColumnarActivity", {"properties": dict[str, _PROPERTY] | None})
_LeadShape = _bounded(r._LeadShape, "_ColumnarLead", {"activities": list[_ActivityShape] | None})
_decode = msgspec.json.Decoder(_LeadShape).decode
_ERRORS = (*r._SHAPE_ERRORS, NotColumnar, KeyError)


class _Odd(Exception):
    """The line is left to the python reader."""


class DecodedBlock:
    """The rows of a block's lines that decoded cleanly, and the numbers of the others."""

    def __init__(self, leads: pa.Table, activities: pa.Table, odd: list[int]) -> None:
        self.leads, self.activities, self.odd = leads, activities, odd


def decode_block(lines: list[bytes], first: int, as_of_us: int, numeric: Mapping[str, str],
                 with_props: bool = True, with_places: bool = True) -> DecodedBlock:
    """``lines`` (without their line ends) numbered from ``first``.

    ``numeric``: custom fields a pack declares as numbers (see Rows). Property values are all ones
    the SQL reads exactly (the line checks below), so rules may compare them. ``with_props``: the
    plan reads the ``props`` column (else it stays NULL). ``with_places``: the evidence's place is read
    into ``where`` (else it stays NULL: only the full ledger, ``--explain``, shows the evidence).
    """
    with collector_paused():
        return _decode_block(lines, first, as_of_us, numeric, with_props, with_places)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a block's objects are made: the decoded values hold no
    cycles and all die with the block, yet with the collector on, its passes over the hundreds of
    thousands of live dicts and lists (and, in a run, over the engine's own objects) cost about as
    much as the decoding itself. The switch is the process's: while a block is decoded ahead in a
    thread (see leadscore.columnar.scan.Ahead), the scoring thread's objects wait for the collector too."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


# Where the decoded columns' buffers are allocated: the C library's malloc rather than pyarrow's
# default (mimalloc). A block is decoded in one thread and freed in another once DuckDB has copied
# it; with mimalloc the process kept more of that memory, block after block (ten million leads, the
# account pass's blocks: at most 441 MiB with the system allocator against 507; bench/README.md,
# fourteenth round). Buffers this size are mapped and unmapped whole by malloc.
POOL = pa.system_memory_pool()

# Lines decoded into Python lists before they become Arrow columns: the lists of a whole 24 MB block
# took about 80 MiB of Python objects at once (see bench/block_memory.py), a few thousand lines' take little.
CHUNK_LINES = 2048


def _decode_block(lines: list[bytes], first: int, as_of_us: int, numeric: Mapping[str, str],
                  with_props: bool, with_places: bool) -> DecodedBlock:
    leads: list[pa.RecordBatch] = []
    activities: list[pa.RecordBatch] = []
    odd: list[int] = []
    for start in range(0, max(len(lines), 1), CHUNK_LINES):
        chunk_leads, chunk_activities = _decode_chunk(lines[start:start + CHUNK_LINES], first + start, as_of_us,
                                                      numeric, with_props, with_places, odd)
        leads.append(chunk_leads)
        activities.append(chunk_activities)
    return DecodedBlock(pa.Table.from_batches(leads, LEAD_SCHEMA), pa.Table.from_batches(activities, ACTIVITY_COLUMNS),
                        odd)


def _decode_chunk(lines: list[bytes], first: int, as_of_us: int, numeric: Mapping[str, str], with_props: bool,
                  with_places: bool, odd: list[int]) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """The ``leads`` and activity rows of ``lines`` (numbered from ``first``); the numbers of the
    lines left to the python reader are added to ``odd``."""
    rows: list[tuple[Any, ...]] = []
    ks: list[int] = []
    positions: list[int] = []
    types: list[str] = []
    times: list[str] = []
    props: list[str | None] = []
    wheres: list[str | None] = []
    decode, lead_row = _decode, _lead_row
    for k, raw in enumerate(lines, first):
        try:
            if len(raw) > r.MAX_LINE_BYTES:
                raise _Odd
            shape = decode(raw)
            row = lead_row(k, shape, as_of_us, numeric)
            acts = shape.activities
            if acts:
                order, kinds, stamps, texts, places = _activity_columns(acts, with_props, with_places)
                ks.extend([k] * len(acts))
                positions.extend(order)
                types.extend(kinds)
                times.extend(stamps)
                props.extend(texts)
                wheres.extend(places)
        except _ERRORS:
            odd.append(k)
            continue
        except _Odd:
            odd.append(k)
            continue
        rows.append(row)
    columns = list(zip(*rows)) if rows else [[] for _ in LEAD_SCHEMA]
    leads = pa.record_batch([pa.array(values, field.type, memory_pool=POOL) for field, values in zip(LEAD_SCHEMA, columns)],
                            schema=LEAD_SCHEMA)
    activities = pa.record_batch([pa.array(values, kind, memory_pool=POOL) for values, kind in (
                                  (ks, pa.int64()), (positions, pa.int64()), (types, pa.string()), (times, pa.string()),
                                  (props, pa.string()), (wheres, pa.string()))], schema=ACTIVITY_COLUMNS)
    return leads, activities


def _lead_row(k: int, shape: Any, as_of_us: int, numeric: Mapping[str, str]) -> tuple[Any, ...]:
    """The lead's row, read as the reader's fast path reads it. msgspec has made every text field
    text or null, so the reader's ``_text`` comes down to ``(v and v.strip()) or None`` (its type
    check cannot fail), written out here because it runs a dozen times a lead."""
    lead_id = shape.id
    lead_id = (lead_id.strip() or None) if type(lead_id) is str else str(lead_id)
    if lead_id is None:
        raise _Odd
    email = shape.email
    created = shape.created_at
    created_us = None if r._missing(created) else _micros(parse_timestamp(created, "", "created_at"), as_of_us)
    fields = r.EMPTY if shape.fields is None else r._fields(shape.fields, "")
    account_id = shape.account_id
    if type(account_id) is int:
        account_id = str(account_id)
    title, source, company = shape.title, shape.source, shape.company
    if company is None:
        return (k, lead_id, (email and email.strip().lower()) or None, (title and title.strip()) or None,
                (source and source.strip()) or None, created_us, (account_id and account_id.strip()) or None,
                None, None, None, None, None, None, None, column_fields(fields, numeric) if fields else None)
    name, domain, industry, country, tier = company.name, company.domain, company.industry, company.country, company.tier
    employees, revenue = company.employees, company.annual_revenue
    return (k, lead_id, (email and email.strip().lower()) or None, (title and title.strip()) or None,
            (source and source.strip()) or None, created_us, (account_id and account_id.strip()) or None,
            (name and name.strip()) or None, (domain and domain.strip().lower()) or None,
            (industry and industry.strip()) or None,
            None if employees is None else _whole(r._whole_number(employees, "", "company.employees")),
            None if revenue is None else _real(r._number(revenue, "", "company.annual_revenue")),
            (country and country.strip()) or None, (tier and tier.strip()) or None,
            column_fields(fields, numeric) if fields else None)


def _activity_columns(acts: list[Any], with_props: bool, with_places: bool) -> tuple[Any, ...]:
    """(time order, types, times, properties as JSON, evidence place) of a lead's activities.

    The checks are the reader's fast path's (clean text types, text ids); the order is the
    reader's (by time, equal times in input order): when every time is written with the same
    number of characters, text order is time order (the SQL refuses any other form).
    """
    kinds = [a.type for a in acts]
    if not r._GOOD_TYPES.issuperset(kinds) and not all(map(r._good_type, kinds)):
        raise _Odd
    ids = [a.id for a in acts]
    if ids.count(None) != len(ids) and not all(i is None or (type(i) is str and i and i == i.strip()) for i in ids):
        raise _Odd
    stamps = [a.at for a in acts]
    if len(set(map(len, stamps))) != 1:
        raise _Odd
    n = len(stamps)
    order: Any = range(n)
    ordered = sorted(stamps)
    if ordered != stamps:
        by_time = sorted(range(n), key=stamps.__getitem__)
        order = [0] * n
        for pos, index in enumerate(by_time):
            order[index] = pos
    if not (with_props or with_places):  # neither the rules nor the ledger read the properties
        return order, kinds, stamps, [None] * n, [None] * n
    props = [a.properties for a in acts]
    if not any(props):
        return order, kinds, stamps, [None] * n, [None] * n
    places: list[Any] = [None] * n
    if with_places:
        # The place activity_evidence names, which must be text.
        places = [evidence_place(p) for p in props]
        if not _TEXT_OR_NONE.issuperset(map(type, places)):
            raise _Odd
    # As text: orjson hands back each result in a 4 KiB allocation, which a block's 200,000 of them
    # kept alive until the block's columns were built (about 0.8 GB for 24 MB of lines).
    texts = [_dumps(p).decode() if p else None for p in props] if with_props else [None] * n
    return order, kinds, stamps, texts, places


_TEXT_OR_NONE = frozenset({str, type(None)})
_dumps = r.orjson.dumps


# Times the SQL reads exactly as the python reader does: UTC, written with a Z, each part in its range
# (DuckDB reads 24:00:00 as the next midnight; Python refuses it).
STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?Z"


def stamp_us(text: exp.Expression) -> exp.Expression:
    """The microseconds of a time written in the form STAMP, NULL where DuckDB does not read it (its
    cast reads the closing Z as UTC itself: trimming it first took half the cost of a block's
    activity rows)."""
    return q.fn("epoch_us", exp.TryCast(this=text, to=exp.DataType.build("TIMESTAMP")))


def evidence_sql(kind: exp.Expression, day: exp.Expression, place: exp.Expression) -> exp.Expression:
    """model.evidence_text in SQL: ``page_view on 2026-11-20 (/pricing)`` (``day``: the day as text,
    ``place``: NULL for none)."""
    return q.concat(kind, q.lit(" on "), day, q.coalesce(q.concat(q.lit(" ("), place, q.lit(")")), q.lit("")))


def activity_sql(as_of_us: int, source: str, *, evidence: bool = True) -> str:
    """A query of the ``activities`` rows from ``source``, a decoded block's activities, each time
    parsed once: ``at`` is NULL where the SQL does not read the time as the reader does (a lead
    with such a time goes to the python reader: see leadscore.columnar.scan).

    A time is read when it has the form above, is a real calendar time, and lies within 2**53
    microseconds of the scoring time (where doubles are exact); every time the reader takes is
    written, so no other ``at`` is NULL. ``evidence``: the ``ev`` column holds each activity's
    evidence text (only the full ledger, ``--explain``, reads it; without it the column is empty
    text: the text was more than half the cost of making the rows).
    """
    text = q.col("at")
    parsed = stamp_us(text)
    relation = q.select(exp.Star(), parsed.as_("us", copy=False)).from_(source, copy=False).subquery("a", copy=False)
    us = q.col("us")
    check = q.and_(q.fn("regexp_full_match", text, q.lit(STAMP)), q.not_null(us),
                   exp.LT(this=q.fn("abs", exp.Sub(this=q.lit(as_of_us), expression=us)), expression=q.lit(WHOLE)))
    # The form checked above is UTC, so the day the evidence names is the text's first ten characters.
    evidence_text = evidence_sql(q.col("type"), q.fn("left", text, q.lit(10)), q.col("where")) if evidence else q.lit("")
    rows = q.select(q.col("k"), q.col("pos"), q.col("type"), q.case([(check, us.copy())], exp.null()).as_("at", copy=False),
                    q.col("props"), evidence_text.as_("ev", copy=False)).from_(relation, copy=False)
    return q.sql(rows)


__all__ = ["ACTIVITY_COLUMNS", "STAMP", "DecodedBlock", "activity_sql", "decode_block", "evidence_sql", "stamp_us"]
