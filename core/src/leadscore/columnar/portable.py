"""SQL alone for what the columnar plan otherwise asks Python: the forms an exported plan uses.

Each builder equals its Python counterpart on *plain* text (printable ASCII, where SQL's
``lower``/``upper``/``trim`` are Python's) and on numbers away from rounding ties; the export marks
every other lead as inexact (see :func:`leadscore.columnar.export.exact_column`) instead of pretending.
Only standard functions are used (``lower``, ``replace``, ``regexp_replace``, ``substr``, ``floor``,
``round``, ``concat``, ``CASE``), so sqlglot can write them for each dialect.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from leadscore.columnar import sql as q
from leadscore.taxonomy import email as email_mod

PLAIN = "^[ -~]*$"  # printable ASCII: the text the forms here treat exactly as Python does


def plain(e: exp.Expression) -> exp.Expression:
    """True when ``e`` is NULL or printable ASCII."""
    return q.or_(q.is_null(e), exp.RegexpLike(this=e, expression=q.lit(PLAIN)))


def words(e: exp.Expression, joiner: str = " ") -> exp.Expression:
    """``joiner.join(e.split())`` on plain text (its only white space is the space)."""
    return exp.RegexpReplace(this=exp.Trim(this=e), expression=q.lit(" +"), replacement=q.lit(joiner),
                             modifiers=q.lit("g"))


def lookup(key: exp.Expression, table: Mapping[str, str], default: exp.Expression) -> exp.Expression:
    """``table.get(key, default)`` as one CASE (tables here have at most a few hundred keys)."""
    if not table:
        return default
    # The simple CASE names ``key`` once (a nested lookup does not repeat its key per entry).
    return exp.Case(this=key, ifs=[exp.If(this=q.lit(k), true=q.lit(v)) for k, v in sorted(table.items())],
                    default=default)


def keyword_pattern(keywords: list[str] | tuple[str, ...]) -> str:
    """A regex that finds any of ``keywords`` as whole words in ``' ' + text + ' '`` (lower case):
    the title extractor's lookarounds become the padding's neighbours, which every dialect's
    regular expressions can read. Characters other than letters, digits and spaces go in brackets."""
    def escaped(word: str) -> str:
        return "".join(c if c.isalnum() or c == " " else f"[{c}]" for c in word.lower())

    alternatives = sorted({escaped(k) for k in keywords}, key=len, reverse=True)
    return "[^a-z0-9&-](" + "|".join(alternatives) + ")[^a-z0-9&-]"


def domain_kind(domain: exp.Expression, free: frozenset[str]) -> exp.Expression:
    """email._domain_kind in SQL: the domain pattern, the disposable and free lists, academic suffixes."""
    return q.case([
        (q.not_(exp.RegexpLike(this=domain, expression=q.lit(f"^(?:{email_mod._DOMAIN.pattern})$"))), q.lit("invalid")),
        (q.in_(domain, sorted(email_mod.DISPOSABLE_DOMAINS)), q.lit("disposable")),
        (q.in_(domain, sorted(free)), q.lit("personal")),
        (exp.RegexpLike(this=domain, expression=q.lit(email_mod._EDU.pattern)), q.lit("education")),
    ], q.lit("business"))


def business_domain(email: exp.Expression) -> exp.Expression:
    """The domain of a business address by the built-in lists, else NULL: ``classify_address`` (whose
    strip() is a trim of spaces on printable ASCII, the only text the exported query trusts)."""
    e = q.fn("lower", exp.Trim(this=email))
    has_at = exp.GT(this=q.fn("strpos", e, q.lit("@")), expression=q.lit(0))
    domain = q.fn("regexp_extract", e, q.lit("@([^@]*)$"), q.lit(1))
    local = q.fn("regexp_extract", e, q.lit("(?s)^(.*)@[^@]*$"), q.lit(1))
    valid = q.and_(has_at, q.fn("regexp_full_match", local, q.lit(email_mod._LOCAL.pattern)))
    return q.case([(q.and_(valid, domain_kind(domain, email_mod.FREE_EMAIL_DOMAINS).eq(q.lit("business"))), domain)])


def padded(e: exp.Expression) -> exp.Expression:
    return q.concat(q.lit(" "), exp.Lower(this=e), q.lit(" "))


def round3(e: exp.Expression) -> exp.Expression:
    """``round(x, 3)`` away from ties: the nearest double to round(x * 1000) / 1000, as Python's."""
    return exp.Div(this=exp.Round(this=exp.Mul(this=q.paren(e), expression=q.lit(1000.0))), expression=q.lit(1000.0))


def near_tie3(e: exp.Expression) -> exp.Expression:
    """Whether ``x * 1000`` lies within a millionth of a half (where SQL and Python may round apart)."""
    return near_tie(e, 1000.0)


def near_tie(e: exp.Expression, scale: float) -> exp.Expression:
    """Whether ``x * scale`` lies within a millionth of a half."""
    scaled = exp.Mul(this=q.paren(e), expression=q.lit(scale))
    frac = exp.Sub(this=scaled, expression=exp.Floor(this=scaled))
    return exp.LT(this=exp.Abs(this=exp.Sub(this=frac, expression=q.lit(0.5))), expression=q.lit(1e-6))


# A decay factor's text is exact below this (its ten-thousandths are a whole BIGINT well inside 2**53).
FACTOR_LIMIT = 1e11


def factor_text(e: exp.Expression) -> exp.Expression:
    """``round(x, 4)`` as Python writes the float (``0.0435``, ``1.0``) for 0 <= x < FACTOR_LIMIT away from
    ties: the ten-thousandths as a whole number, then written with at least one decimal."""
    n = q.cast(exp.Round(this=exp.Mul(this=q.paren(e), expression=q.lit(10000.0))), "BIGINT")
    whole = q.cast(exp.IntDiv(this=n, expression=q.lit(10000)), "VARCHAR")
    digits = q.fn("lpad", q.cast(exp.Mod(this=n, expression=q.lit(10000)), "VARCHAR"), q.lit(4), q.lit("0"))
    frac = exp.RegexpReplace(this=digits, expression=q.lit("0+$"), replacement=q.lit(""))
    return q.concat(whole, q.lit("."), q.case([(frac.eq(q.lit("")), q.lit("0"))], frac))


def exact_factor(e: exp.Expression) -> exp.Expression:
    """Whether :func:`factor_text` writes ``e`` as Python would."""
    return q.or_(q.is_null(e), q.and_(exp.GTE(this=e, expression=q.lit(0.0)),
                                      exp.LT(this=e, expression=q.lit(FACTOR_LIMIT)), q.not_(near_tie(e, 10000.0))))


_DAY_US = 86_400_000_000
# Times whose text is a four-digit year in every dialect (years 1000 to 9999).
STAMP_MIN, STAMP_MAX = -30_610_224_000_000_000, 253_402_300_800_000_000


def stamp_text(us: exp.Expression) -> exp.Expression:
    """``2026-11-20T10:00:00Z``: a time in microseconds since 1970 as the python writer prints it (UTC,
    whole seconds, the fraction dropped), whatever the session's time zone."""
    of_day = exp.Mod(this=q.paren(exp.Add(this=exp.Mod(this=q.paren(us), expression=q.lit(_DAY_US)),
                                          expression=q.lit(_DAY_US))), expression=q.lit(_DAY_US))
    seconds = exp.IntDiv(this=q.paren(of_day), expression=q.lit(1_000_000))

    def two(value: exp.Expression) -> exp.Expression:
        return q.fn("lpad", q.cast(value, "VARCHAR"), q.lit(2), q.lit("0"))

    hours = exp.IntDiv(this=q.paren(seconds), expression=q.lit(3600))
    minutes = exp.Mod(this=q.paren(exp.IntDiv(this=q.paren(seconds), expression=q.lit(60))), expression=q.lit(60))
    secs = exp.Mod(this=q.paren(seconds), expression=q.lit(60))
    return q.concat(q.utc_day_text(us), q.lit("T"), two(hours), q.lit(":"), two(minutes), q.lit(":"), two(secs),
                    q.lit("Z"))


def exact_stamp(us: exp.Expression) -> exp.Expression:
    """Whether :func:`stamp_text` writes ``us`` as Python would (a four-digit year)."""
    return q.or_(q.is_null(us), q.and_(exp.GTE(this=us, expression=q.lit(STAMP_MIN)),
                                       exp.LT(this=us, expression=q.lit(STAMP_MAX))))


def whole_text(v: exp.Expression) -> exp.Expression:
    """``f"{v:,.0f}"`` for |v| < 2**53: ties to even, thousands separated by commas."""
    a = exp.Abs(this=v)
    fl = exp.Floor(this=a)
    diff = exp.Sub(this=a, expression=fl)
    even = exp.Sub(this=fl, expression=exp.Mul(this=q.lit(2.0), expression=exp.Floor(
        this=exp.Div(this=fl, expression=q.lit(2.0))))).eq(q.lit(0.0))
    plus_one = exp.Add(this=fl, expression=q.lit(1.0))
    rounded = q.case([(exp.GT(this=diff, expression=q.lit(0.5)), plus_one), (exp.LT(this=diff, expression=q.lit(0.5)), fl),
                      (even, fl)], plus_one)
    digits = q.cast(q.cast(rounded, "BIGINT"), "VARCHAR")
    size = exp.Length(this=digits)
    # The first group has 1-3 digits, every later one 3: at most five more for 16 digits.
    first = exp.Add(this=exp.Mod(this=q.paren(exp.Sub(this=size, expression=q.lit(1))), expression=q.lit(3)),
                    expression=q.lit(1))
    parts: list[exp.Expression] = [exp.Substring(this=digits, start=q.lit(1), length=first)]
    for group in range(5):
        start = exp.Add(this=first, expression=q.lit(1 + 3 * group))
        parts.append(q.case([(exp.GTE(this=size, expression=start),
                              q.concat(q.lit(","), exp.Substring(this=digits, start=start, length=q.lit(3))))], q.lit("")))
    sign = q.case([(exp.LT(this=v, expression=q.lit(0.0)), q.lit("-"))], q.lit(""))
    return q.concat(sign, *parts)


def exact_whole_text(v: exp.Expression) -> exp.Expression:
    """Where :func:`whole_text` is Python's: below 2**53 and not negative zero."""
    return q.or_(q.is_null(v), q.and_(exp.LT(this=exp.Abs(this=v), expression=q.lit(float(2**53))),
                                      q.not_(q.and_(v.eq(q.lit(0.0)), exp.Like(this=q.cast(v, "VARCHAR"), expression=q.lit("-%"))))))


def json_string(e: exp.Expression) -> exp.Expression:
    """``e`` as a JSON string as orjson writes it, for text without control characters."""
    escaped = exp.Replace(this=exp.Replace(this=e, expression=q.lit("\\"), replacement=q.lit("\\\\")),
                          expression=q.lit('"'), replacement=q.lit('\\"'))
    return q.case([(q.is_null(e), q.lit("null"))], q.concat(q.lit('"'), escaped, q.lit('"')))


def no_control(e: exp.Expression) -> exp.Expression:
    """True when ``e`` is NULL or has no character below U+0020 (JSON would escape it)."""
    return q.or_(q.is_null(e), q.not_(exp.RegexpLike(this=e, expression=q.lit("[\x01-\x1f]"))),)


__all__ = ["PLAIN", "exact_whole_text", "json_string", "keyword_pattern", "lookup", "near_tie3", "no_control", "padded",
           "plain", "round3", "whole_text", "words"]
