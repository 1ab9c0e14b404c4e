"""Files read by DuckDB itself: JSON Lines into the ``leads`` and ``activities`` relations.

DuckDB parses every line; a line whose shape the SQL takes exactly as the python reader would
(an object of known keys with text, whole numbers and UTC ``...Z`` timestamps, no duplicate keys,
no surrounding spaces) becomes rows directly. Every other line, including ones DuckDB would take
and Python would refuse (``NaN``, trailing commas), is handed to the python reader's own line
parser, so both engines accept and reject the same lines with the same messages. When DuckDB
cannot read the file at all (bad UTF-8, a byte-order mark, blank lines) the python reader reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.io.readers import ACTIVITY_KEYS, COMPANY_KEYS, LEAD_KEYS

# Python's str.strip() removes these; text starting or ending with one goes to the python reader.
_WS = r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_EDGES = f"^{_WS}|{_WS}$"
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z"
# Conservative: JSON that DuckDB takes and Python does not (NaN, Infinity, trailing commas), and
# activities that are not a list (the shape below would read them as none at all). Numbers
# too long to be exact as doubles are caught where they are read (whole numbers of 15 digits at most).
_SUSPECT = r',[ \t\n\r]*[\]}]|"activities"[ \t\n\r]*:[ \t\n\r]*[^\[n \t\n\r]'
WHOLE = 2**53
_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n")



def plain_file(path: Path) -> bool:
    """Whether DuckDB numbers this file's lines as the python reader does: no blank line, no BOM."""
    with open(path, "rb") as handle:
        carry = b"\n"  # the start of the file counts as the start of a line
        while True:
            block = handle.read(1 << 24)
            if not block:
                # A last line of spaces only (no newline after it) is blank too.
                return not (carry.rpartition(b"\n")[2].strip() == b"" and carry.rpartition(b"\n")[2] != b"")
            data = carry + block
            if data.startswith(b"\n\xef\xbb\xbf") or _BLANK_LINE.search(data):
                return False
            carry = data[-256:]


def _keys_ok(keys: exp.Expression, allowed: tuple[str, ...]) -> exp.Expression:
    """Known and distinct keys (Python keeps the last of a repeated key, DuckDB the first)."""
    return q.and_(q.fn("len", keys).eq(q.fn("len", q.fn("list_distinct", keys))),
                  q.fn("list_has_all", exp.Array(expressions=[q.lit(k) for k in allowed]), keys))


# A JSON fragment (the text of one value) is read by its first character: no second parse.
def _is_string(frag: exp.Expression) -> exp.Expression:
    return q.fn("starts_with", frag, q.lit('"'))


def _is_absent(frag: exp.Expression) -> exp.Expression:
    """Missing or JSON null (json_transform gives SQL NULL for both)."""
    return q.or_(q.is_null(frag), frag.eq(q.lit("null")))


def _decoded(frag: exp.Expression) -> exp.Expression:
    """A JSON string fragment's text: cut from the quotes when it has no escapes, else decoded by DuckDB."""
    cut = q.fn("substr", frag, q.lit(2), exp.Sub(this=q.fn("strlen", frag), expression=q.lit(2)))
    return q.case([(q.not_(q.fn("contains", frag, q.lit("\\"))), cut)],
                  q.call("json_extract_string", q.cast(frag, "JSON"), q.lit("$")))


def _plain_text(text: exp.Expression) -> exp.Expression:
    """Text Python's strip() leaves as it is: checked cheaply for printable ASCII ends, by regex otherwise."""
    first, last = q.fn("ascii", text), q.fn("ascii", q.fn("right", text, q.lit(1)))
    cheap = q.and_(exp.Between(this=first, low=q.lit(33), high=q.lit(126)),
                   exp.Between(this=last, low=q.lit(33), high=q.lit(126)))
    return q.or_(cheap, q.and_(text.neq(q.lit("")), q.not_(q.fn("regexp_matches", text, q.lit(_EDGES)))))


def _text_ok(frag: exp.Expression) -> exp.Expression:
    """Absent, or a string the reader keeps as it is (empty counts as absent, as in the reader)."""
    text = _decoded(frag)
    return q.or_(_is_absent(frag), q.and_(_is_string(frag), q.or_(text.eq(q.lit("")), _plain_text(text))))


def _string(frag: exp.Expression) -> exp.Expression:
    """The text of a string fragment; NULL when absent or empty (the reader's "missing")."""
    return q.case([(q.and_(q.not_null(frag), _is_string(frag)), q.fn("nullif", _decoded(frag), q.lit("")))])


def _stamp_ok(frag: exp.Expression, as_of_us: int, required: bool = False) -> exp.Expression:
    text = _decoded(frag)
    us = _stamp_us(text)
    good = q.and_(q.not_null(frag), _is_string(frag), q.fn("regexp_full_match", text, q.lit(_STAMP)), q.not_null(us),
                  exp.LT(this=q.fn("abs", exp.Sub(this=q.lit(as_of_us), expression=us)), expression=q.lit(WHOLE)))
    return good if required else q.or_(_is_absent(frag), good)


def _stamp_us(text: exp.Expression) -> exp.Expression:
    return q.fn("epoch_us", exp.TryCast(this=q.fn("rtrim", text, q.lit("Z")), to=exp.DataType.build("TIMESTAMP")))


def _whole_ok(frag: exp.Expression) -> exp.Expression:
    """Absent or a whole number the python reader keeps as it is (15 digits at most: exact as a double)."""
    return q.or_(_is_absent(frag), q.fn("regexp_full_match", frag, q.lit("[0-9]{1,15}")))


def _number_ok(frag: exp.Expression) -> exp.Expression:
    return q.or_(_is_absent(frag), q.fn("regexp_full_match", frag, q.lit(r"-?[0-9]{1,15}(\.[0-9]+)?([eE][+-]?[0-9]+)?")))


_LEAD_SHAPE = ('{"id":"JSON","email":"JSON","title":"JSON","source":"JSON","created_at":"JSON","account_id":"JSON",'
               '"first_name":"JSON","last_name":"JSON","company":"JSON","fields":"JSON","activities":["JSON"]}')
_ACTIVITY_SHAPE = '{"type":"JSON","at":"JSON","properties":"JSON","id":"JSON"}'
_COMPANY_SHAPE = ('{"name":"JSON","domain":"JSON","industry":"JSON","employees":"JSON","annual_revenue":"JSON",'
                  '"country":"JSON","tier":"JSON"}')
_PROPS_SHAPE = '{"url":"JSON","asset":"JSON","title":"JSON"}'


def _stage(select: exp.Select, alias: str) -> exp.Expression:
    return select.subquery(alias, copy=False)


def ingest_statements(path: str, as_of_us: int, exact_properties: bool = False,
                      first_line: int = 1) -> list[tuple[str, exp.Expression]]:
    """(table, select) pairs that read ``path`` into ``raw`` (every line, numbered), ``leads`` and
    ``activities`` (the clean lines) and ``unclean`` (line numbers for the python reader).

    Each line is parsed once into a struct of JSON fragments (the text of each value); the checks
    read the fragments' first characters, and objects (company, each activity, its properties)
    are parsed once more, small. ``exact_properties``: rules compare activity properties, so
    properties with numbers longer than 15 digits go to the python reader too.
    """
    # Every line as text, numbered (a file with blank lines or a byte-order mark never gets here); a line
    # that is not JSON at all is left for the python reader, which words the message.
    options = (("header", exp.false()), ("delim", q.lit("\x1f")), ("quote", q.lit("")), ("escape", q.lit("")),
               ("auto_detect", exp.false()), ("new_line", q.lit("\\n")))
    lines = q.call("read_csv", q.lit(path),
                   exp.PropertyEQ(this=q.ident("columns"), expression=q.struct(text=q.lit("VARCHAR"))),
                   *[exp.PropertyEQ(this=q.ident(key), expression=value) for key, value in options])
    text = q.col("text")
    number = exp.Add(this=exp.Window(this=exp.RowNumber()), expression=q.lit(first_line - 1))
    raw = q.select(number.as_("line", copy=False),
                   q.case([(q.fn("json_valid", text), q.cast(text, "JSON"))]).as_("json", copy=False)).from_(lines, copy=False)
    j = q.col("json")
    is_object = q.fn("starts_with", q.cast(j, "VARCHAR"), q.lit("{"))
    stage1 = q.select(q.col("line"), is_object.as_("obj", copy=False),
                      q.case([(is_object, q.fn("json_keys", j))]).as_("keys", copy=False),
                      q.case([(is_object, q.not_(q.or_(
                          q.fn("contains", q.cast(j, "VARCHAR"), q.lit("NaN")),
                          q.fn("contains", q.cast(j, "VARCHAR"), q.lit("Infinity")),
                          q.fn("regexp_matches", q.cast(j, "VARCHAR"), q.lit(_SUSPECT)))))]).as_("plain", copy=False),
                      q.case([(is_object, q.call("json_transform", j, q.lit(_LEAD_SHAPE)))]).as_("s", copy=False)).from_("raw", copy=False)
    f = lambda key: q.cast(q.field(q.col("s"), key), "VARCHAR")  # noqa: E731
    company = q.field(q.col("s"), "company")
    stage2 = q.select(
        q.col("line"), q.col("obj"), q.col("keys"), q.col("plain"), q.col("s"),
        q.case([(q.fn("starts_with", q.cast(company, "VARCHAR"), q.lit("{")), q.fn("json_keys", company))]).as_("ckeys", copy=False),
        q.case([(q.fn("starts_with", q.cast(company, "VARCHAR"), q.lit("{")),
                 q.call("json_transform", company, q.lit(_COMPANY_SHAPE)))]).as_("c", copy=False),
    ).from_(_stage(stage1, "s1"), copy=False)
    c = lambda key: q.cast(q.field(q.col("c"), key), "VARCHAR")  # noqa: E731
    company_text = q.cast(company, "VARCHAR")
    lead_ok = q.and_(
        q.col("obj"), q.col("plain"), _keys_ok(q.col("keys"), LEAD_KEYS),
        q.not_null(f("id")), _is_string(f("id")), _text_ok(f("id")), q.not_null(_string(f("id"))),
        *[_text_ok(f(key)) for key in ("email", "title", "source", "first_name", "last_name", "account_id")],
        q.or_(q.is_null(_string(f("email"))), q.fn("strlen", _string(f("email"))).eq(q.fn("length", _string(f("email"))))),
        _stamp_ok(f("created_at"), as_of_us),
        q.or_(_is_absent(company_text),
              q.and_(q.not_null(q.col("ckeys")), _keys_ok(q.col("ckeys"), COMPANY_KEYS),
                     *[_text_ok(c(key)) for key in ("name", "domain", "industry", "country", "tier")],
                     q.or_(q.is_null(_string(c("domain"))),
                           q.fn("strlen", _string(c("domain"))).eq(q.fn("length", _string(c("domain"))))),
                     _whole_ok(c("employees")), _number_ok(c("annual_revenue")))),
        _fields_ok(q.field(q.col("s"), "fields")),
    )
    leads_checked = q.select(q.col("line"), q.coalesce(lead_ok, exp.false()).as_("ok", copy=False), q.col("s"), q.col("c"), copy=False).from_(
        _stage(stage2, "s2"), copy=False)
    # One row per activity, checked on its own fragment.
    acts = q.field(q.col("s"), "activities")
    unnested = (q.select(q.col("line"), q.fn("unnest", acts).as_("a", copy=False), q.fn("generate_subscripts", acts, q.lit(1)).as_("i", copy=False))
                .from_("leads_checked", copy=False).where(q.and_(q.col("ok"), q.not_null(acts)), copy=False))
    a = q.col("a")
    a_obj = q.fn("starts_with", q.cast(a, "VARCHAR"), q.lit("{"))
    act1 = q.select(q.col("line"), q.col("i"), a_obj.as_("obj", copy=False), q.case([(a_obj, q.fn("json_keys", a))]).as_("keys", copy=False),
                    q.case([(a_obj, q.call("json_transform", a, q.lit(_ACTIVITY_SHAPE)))]).as_("x", copy=False)).from_(
        _stage(unnested, "u"), copy=False)
    af = lambda key: q.cast(q.field(q.col("x"), key), "VARCHAR")  # noqa: E731
    props = af("properties")
    p_obj = q.fn("starts_with", props, q.lit("{"))
    act2 = q.select(q.col("line"), q.col("i"), q.col("obj"), q.col("keys"), q.col("x"),
                    q.case([(p_obj, q.fn("json_keys", q.cast(props, "JSON")))]).as_("pkeys", copy=False),
                    q.case([(p_obj, q.call("json_transform", q.cast(props, "JSON"), q.lit(_PROPS_SHAPE)))]).as_("pu", copy=False),
                    _stamp_us(_string(af("at"))).as_("at", copy=False)).from_(_stage(act1, "a1"), copy=False)
    pu = lambda key: q.cast(q.field(q.col("pu"), key), "VARCHAR")  # noqa: E731
    pk = q.col("pkeys")
    act_ok = q.and_(
        q.col("obj"), _keys_ok(q.col("keys"), ACTIVITY_KEYS),
        q.not_null(af("type")), _is_string(af("type")), _text_ok(af("type")), q.not_null(_string(af("type"))),
        _stamp_ok(af("at"), as_of_us, required=True),
        q.or_(_is_absent(af("id")), q.and_(_is_string(af("id")), _text_ok(af("id")), q.not_null(_string(af("id"))))),
        q.or_(_is_absent(props),
              q.and_(q.not_null(pk), q.fn("len", pk).eq(q.fn("len", q.fn("list_distinct", pk))),
                     *[q.or_(_is_absent(pu(key)), _is_string(pu(key))) for key in ("url", "asset", "title")],
                     q.not_(q.fn("regexp_matches", props, q.lit("[0-9]{16}"))) if exact_properties else exp.true())),
    )
    acts_checked = q.select(q.col("line"), q.col("i"), q.coalesce(act_ok, exp.false()).as_("ok", copy=False), q.col("x"), q.col("pu"),
                            q.col("at"), copy=False).from_(_stage(act2, "a2"), copy=False)
    bad_lines = q.select(q.col("line"), copy=False).from_("acts_checked", copy=False).where(q.not_(q.col("ok")), copy=False).distinct(copy=False)
    clean = q.and_(q.col("ok", "p"), q.is_null(q.col("line", "b")))
    checked = (q.select(q.col("line", "p").as_("line", copy=False), clean.as_("clean", copy=False), copy=False)
               .from_(q.table("leads_checked", "p"), copy=False)
               .join(bad_lines.subquery("b", copy=False), on=q.col("line", "p").eq(q.col("line", "b")), join_type="left", copy=False))
    leads = (q.select(
        q.col("line", "p").as_("k", copy=False), _string(f("id")).as_("id", copy=False), q.fn("lower", _string(f("email"))).as_("email", copy=False),
        _string(f("title")).as_("title", copy=False), _string(f("source")).as_("source", copy=False),
        _stamp_us(_string(f("created_at"))).as_("created_at", copy=False), _string(f("account_id")).as_("account_id", copy=False),
        _string(c("name")).as_("c_name", copy=False), q.fn("lower", _string(c("domain"))).as_("c_domain", copy=False),
        _string(c("industry")).as_("c_industry", copy=False), q.cast(q.fn("nullif", c("employees"), q.lit("null")), "BIGINT").as_("c_employees", copy=False),
        q.cast(q.fn("nullif", c("annual_revenue"), q.lit("null")), "DOUBLE").as_("c_revenue", copy=False),
        _string(c("country")).as_("c_country", copy=False), _string(c("tier")).as_("c_tier", copy=False),
        _fields_json(q.field(q.col("s"), "fields")).as_("fields", copy=False))
        .from_(q.table("leads_checked", "p"), copy=False)
        .join(q.table("checked", "ck"), on=q.col("line", "ck").eq(q.col("line", "p")), copy=False)
        .where(q.col("clean", "ck"), copy=False))
    where = q.coalesce(*[q.fn("nullif", _string(pu(key)), q.lit("")) for key in ("url", "asset", "title")])
    kind = _string(af("type"))
    at = q.col("at", "t")
    evidence = q.concat(kind, q.lit(" on "), q.fn("strftime", q.call("make_timestamp", at), q.lit("%Y-%m-%d")),
                        q.coalesce(q.concat(q.lit(" ("), where, q.lit(")")), q.lit("")))
    props_text = q.case([(q.and_(p_obj, props.neq(q.lit("{}"))), props)])
    # Oldest first, equal times in input order.
    pos = exp.Sub(this=exp.Window(this=exp.RowNumber(), partition_by=[q.col("line", "t")],
                                  order=exp.Order(expressions=[exp.Ordered(this=at), exp.Ordered(this=q.col("i", "t"))])),
                  expression=q.lit(1))
    activities = (q.select(q.col("line", "t").as_("k", copy=False), pos.as_("pos", copy=False), kind.as_("type", copy=False), at.as_("at", copy=False),
                           props_text.as_("props", copy=False), evidence.as_("ev", copy=False))
                  .from_(q.table("acts_checked", "t"), copy=False)
                  .join(q.table("checked", "ck"), on=q.col("line", "ck").eq(q.col("line", "t")), copy=False)
                  .where(q.col("clean", "ck"), copy=False))
    unclean = q.select(q.col("line"), copy=False).from_("checked", copy=False).where(q.not_(q.col("clean")), copy=False)
    return [("raw", raw), ("leads_checked", leads_checked), ("acts_checked", acts_checked), ("checked", checked),
            ("leads", leads), ("activities", activities), ("unclean", unclean)]


def _fields_ok(fields: exp.Expression) -> exp.Expression:
    """Custom fields of text (not blank), true/false or whole numbers: what the SQL prints as Python does."""
    value = exp.column("v")
    text = q.cast(fields, "VARCHAR")
    keys = q.fn("json_keys", fields)
    values = q.call("json_extract", fields, q.lit("$.*"))
    good = exp.Lambda(this=q.or_(
        q.in_(q.cast(value, "VARCHAR"), ("null", "true", "false")),
        q.fn("regexp_full_match", q.cast(value, "VARCHAR"), q.lit("-?[0-9]{1,15}")),
        q.and_(_is_string(q.cast(value, "VARCHAR")), q.cast(value, "VARCHAR").neq(q.lit('""')),
               q.not_(q.fn("regexp_full_match", _decoded(q.cast(value, "VARCHAR")), q.lit(_WS + "*"))))),
        expressions=[exp.to_identifier("v")])
    return q.or_(_is_absent(text),
                 q.and_(q.fn("starts_with", text, q.lit("{")),
                        q.fn("len", keys).eq(q.fn("len", q.fn("list_distinct", keys))),
                        q.coalesce(q.fn("list_bool_and", q.fn("list_transform", values, good)), exp.true())))


def _fields_json(fields: exp.Expression) -> exp.Expression:
    """The fields object as JSON text, NULL when absent."""
    text = q.cast(fields, "VARCHAR")
    return q.case([(q.fn("starts_with", text, q.lit("{")), text)])


def unclean_lines(path: str, lines: list[int]) -> Iterator[tuple[int, bytes]]:
    """The raw bytes of the given line numbers (1-based, ascending), read in one pass."""
    wanted = iter(lines)
    target = next(wanted, None)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if target is None:
                return
            if number == target:
                yield number, raw
                target = next(wanted, None)


__all__ = ["ingest_statements", "plain_file", "unclean_lines"]
