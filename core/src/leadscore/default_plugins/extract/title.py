"""Title signals: seniority and job function from a documented keyword table a rulepack can extend.

Signals: ``title.seniority`` (c_level, vp, director, manager, individual, student),
``title.function`` (marketing, sales, engineering, it, finance, hr, operations, other),
``title.is_decision_maker`` (c_level, vp or director) and ``title.text`` (the title, lower case).

Keywords match whole words (``cto`` matches "CTO & co-founder", not "director"). Seniority is
checked from the top (student first, so "Marketing Intern" is a student), function in table order.
A rulepack extends the tables with ``[vocabulary.title_seniority]`` / ``[vocabulary.title_function]``,
e.g. ``vp = ["svp", "evp"]``; its keywords are tried before the built-in ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from leadscore.caching import BoundedCache, per_vocabulary
from leadscore.default_plugins.extract.lazy import columnar
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import ExtractContext, Lead, Signal, SignalExtractor, SignalSpec

SENIORITY: dict[str, tuple[str, ...]] = {
    "student": ("student", "intern", "internship", "trainee", "undergraduate", "graduate student", "phd candidate",
                "phd student", "apprentice", "werkstudent"),
    "c_level": ("chief", "ceo", "cfo", "cto", "cmo", "coo", "cio", "ciso", "cro", "cpo", "founder", "co-founder",
                "cofounder", "owner", "president", "managing director", "managing partner", "general manager"),
    "vp": ("vp", "vice president", "svp", "evp", "avp", "head of"),
    "director": ("director", "head", "principal"),
    "manager": ("manager", "lead", "team lead", "supervisor", "mgr"),
}
SENIORITY_ORDER = ("student", "c_level", "vp", "director", "manager")

FUNCTION: dict[str, tuple[str, ...]] = {
    "marketing": ("marketing", "cmo", "demand generation", "demand gen", "growth", "brand", "content", "seo",
                  "campaign", "campaigns", "communications", "product marketing", "marketing operations"),
    "sales": ("sales", "cro", "account executive", "account manager", "business development", "bdr", "sdr",
              "revenue", "revops", "partnerships", "channel"),
    "engineering": ("engineering", "engineer", "developer", "software", "cto", "devops", "architect", "data",
                    "platform", "product"),
    "it": ("it", "information technology", "cio", "ciso", "security", "infrastructure", "systems", "sysadmin",
           "network", "helpdesk"),
    "finance": ("finance", "financial", "cfo", "accounting", "accountant", "controller", "treasury", "procurement",
                "purchasing", "fp&a"),
    "hr": ("hr", "human resources", "people", "talent", "recruiting", "recruiter", "chro"),
    "operations": ("operations", "ops", "coo", "supply chain", "logistics", "facilities"),
}

PROVIDES = (
    SignalSpec("title.seniority", "str", "seniority level", ("c_level", "vp", "director", "manager", "individual", "student")),
    SignalSpec("title.function", "str", "job function",
               ("marketing", "sales", "engineering", "it", "finance", "hr", "operations", "other")),
    SignalSpec("title.is_decision_maker", "bool", "c_level, vp or director"),
    SignalSpec("title.text", "str", "the job title in lower case, for `matches` rules"),
)

_WORDS = re.compile(r"[a-z0-9&+]+(?:-[a-z0-9]+)*")


def _pattern(keywords: Sequence[str]) -> re.Pattern[str]:
    alternatives = sorted({re.escape(k.lower()) for k in keywords}, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9&-])(?:" + "|".join(alternatives) + r")(?![a-z0-9&-])")


@lru_cache(maxsize=64)
def _tables(extra_seniority: tuple, extra_function: tuple) -> tuple[list, list]:
    """Compile the keyword tables once per vocabulary (extensions first, then the built-ins)."""
    ext_s = dict(extra_seniority)
    ext_f = dict(extra_function)
    seniority = [(level, _pattern(tuple(ext_s.get(level, ())) + SENIORITY[level])) for level in SENIORITY_ORDER]
    functions = [(fn, _pattern(kw)) for fn, kw in ext_f.items() if kw]
    functions += [(fn, _pattern(kw)) for fn, kw in FUNCTION.items()]
    return seniority, functions


def _freeze(table: Mapping | None) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in (table or {}).items()))


# Titles repeat a lot in CRM data: per vocabulary, remember each title's (seniority, function)
# and its immutable Signal records (four records a title keep the second table smaller).
_NO_VOCABULARY: Mapping = {}


def _build_entry(vocabulary: Mapping) -> tuple[tuple, BoundedCache[str, tuple[str, str]],
                                               BoundedCache[str, tuple[Signal, ...]]]:
    tables = _tables(_freeze(vocabulary.get("title_seniority")), _freeze(vocabulary.get("title_function")))
    return tables, BoundedCache(20_000), BoundedCache(4096)  # the second about 3 MiB at most


_entry = per_vocabulary(_build_entry)


def classify(title: str, vocabulary: Mapping | None = None) -> tuple[str, str]:
    """Return (seniority, function) for a job title."""
    tables, results, _ = _entry(vocabulary if vocabulary is not None else _NO_VOCABULARY)
    hit = results.get(title)
    if hit is None:
        hit = results.put(title, _classify(title, *tables))
    return hit


def _classify(title: str, seniority_table: list, function_table: list) -> tuple[str, str]:
    text = title.lower()
    seniority = next((level for level, pat in seniority_table if pat.search(text)), "individual")
    function = next((fn for fn, pat in function_table if pat.search(text)), "other")
    return seniority, function


@reads_signals()
def extract(lead: Lead, ctx: ExtractContext) -> tuple[Signal, ...]:
    title = lead.title
    if not title:
        return ()
    cache = _entry(ctx.vocabulary)[2]
    found = cache.get(title)
    if found is None:
        seniority, function = classify(title, ctx.vocabulary)
        found = cache.put(title, (
            Signal("title.seniority", seniority, None, title),
            Signal("title.function", function, None, title),
            Signal("title.is_decision_maker", seniority in ("c_level", "vp", "director"), None, title),
            Signal("title.text", title.lower(), None, title),
        ))
    return found


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("title", extract, PROVIDES, __doc__ or "", columnar("title_columnar"))]
