"""Every backend (python, durable, duckdb) must produce identical score cards, ledger lines included.

Three sources of rulepacks: every pack the installed plugins ship, alone and composed; and
hypothesis-generated packs (random leaves, all/any/not trees, patterns, per-activity rules with
``event.*`` conditions; alone and under a generated conditional segment) over real signal names,
scored on generated leads whose values include the awkward cases: mixed kinds, NaN and
infinities, integers beyond 2**53, unicode and quotes, ties and activities after ``as_of``.
"""

from __future__ import annotations

import math
import random
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.io import card_to_dict
from leadscore.io.readers import read_leads
from leadscore.model import Activity, Company, Lead, Rejection


def _available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# The python engine is the reference; every other installed backend is held to it.
OTHERS = [name for name, module in (("durable", "durable_rules_engine"), ("duckdb", "duckdb")) if _available(module)]
if not OTHERS:
    pytest.skip("no backend besides python is installed", allow_module_level=True)

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
SAMPLES = Path(__file__).resolve().parents[2] / "rulepacks" / "samples" / "leads.jsonl"


def cards(engine: Engine, leads: list[Lead]) -> list[Any]:
    # With the account pass whenever a pack uses account signals or same_account, as the CLI runs it.
    index = engine.build_accounts(leads) if engine.needs_accounts else None
    # And the pass that sets "top N%" band minimums, when a band has one.
    shares = engine.resolve_shares(leads, accounts=index) if engine.needs_shares else []
    return [shares, *(card_to_dict(r, explain=True) if not isinstance(r, Rejection) else ("rejected", r.reason)
                      for r in engine.score(leads, accounts=index))]


def assert_same(leads: list[Lead], backends: list[str] | None = None, **engine_args: Any) -> list[Any]:
    with Engine(backend="python", as_of=AS_OF, **engine_args) as py:
        expected = cards(py, leads)
    for backend in OTHERS if backends is None else backends:
        with Engine(backend=backend, as_of=AS_OF, **engine_args) as other:
            got = cards(other, leads)
            if backend == "duckdb":
                _columnar_ran(other, leads)
        assert got[0] == expected[0], f"{backend}'s share band minimums differ from python's"
        assert len(got) == len(expected)
        for lead, want, have in zip(leads, expected[1:], got[1:]):
            assert have == want, f"lead {lead.id}: {backend} differs from python"
    return expected[1:]


def _columnar_ran(engine: Engine, leads: list[Lead]) -> None:
    """The duckdb engine scored in SQL (a test that only exercised its python fallback proves nothing)."""
    scorer = engine.columnar_scorer(AS_OF)
    assert scorer is not None, f"the columnar plan was not compiled: {getattr(engine, 'columnar_note', '')}"
    assert scorer.stats["sql"] + scorer.stats["python"] >= 1 or not leads


# --- leads --------------------------------------------------------------------------------------

TYPES = ("pricing_page_visit", "demo_request", "email_open", "email_click", "page_view", "webinar_registration",
         "content_download", "unsubscribe", "roi_calculator_use")
ODD_TEXT = ("Ünïcödé \"quoted\" \\ back", "a" * 300, "é", "", "ABC", "abc\u0000nul", "😀", "10", "true")
URLS = ("/pricing", "/pricing/enterprise", "/blog/mql", "", "/PRICING", "é\"\\")
BIG = (2**53, 2**53 + 1, -(2**53) - 3, 10**30)
FLOATS = (0.0, -0.0, 0.5, 2.5, 1e16, 1e-7, 5e-324, math.inf, -math.inf, math.nan)
DAYS = (0, 0.5, 1, 2, 3, 7, 13.999, 14, 20, 30, 31, 45, 90, 200, -1, -0.25)


def _at(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


any_value = st.one_of(
    st.sampled_from(("pro", "free", "enterprise", *ODD_TEXT)),
    st.sampled_from((0, 1, 2, 7, 100, -5, *BIG)),
    st.sampled_from(FLOATS),
    st.booleans(),
    st.sampled_from((AS_OF, _at(1), _at(30))),
    st.sampled_from((None, [1, 2], {"a": 1})),
)

activities = st.lists(st.builds(
    lambda t, d, url, n: Activity(t, _at(d), {k: v for k, v in (("url", url), ("n", n)) if v is not None}),
    st.sampled_from(TYPES), st.sampled_from(DAYS), st.one_of(st.none(), st.sampled_from(URLS)),
    st.one_of(st.none(), any_value),
), max_size=9)

leads = st.builds(
    lambda i, email, title, source, created, employees, revenue, industry, country, tier, fields, acts: Lead(
        f"L-{i}", email=email, title=title, source=source, created_at=created,
        company=Company(name="Acme", domain="acme.io", industry=industry, employees=employees,
                        annual_revenue=revenue, country=country, tier=tier),
        fields=fields, activities=tuple(acts)),
    st.integers(0, 10**6),
    st.sampled_from(("dana@acme.io", "bob@gmail.com", "x@mailinator.com", "info@acme.io", "s@mit.edu",
                     "bad-email", None)),
    st.sampled_from(("VP Marketing", "Chief Executive Officer", "Director of Sales", "Marketing Manager",
                     "Engineer", "Student", ODD_TEXT[0], None)),
    st.sampled_from(("linkedin_ads", "google", "webinar", None)),
    st.sampled_from((None, _at(3), _at(400))),
    st.sampled_from((None, 0, 5, 99, 100, 5000, -3, *BIG)),
    st.sampled_from((None, 0.0, 1e7, 5e7, 2.5e8, 1e16, 1.5, math.inf, math.nan)),
    st.sampled_from(("software", "Technology", "retail", ODD_TEXT[0], None)),
    st.sampled_from(("US", "DE", "CU", "United States", None)),
    st.sampled_from(("strategic", "target", None)),
    st.dictionaries(st.sampled_from(("plan", "score", "flag")), any_value, max_size=3),
    activities,
)


def plain_leads(n: int, seed: int) -> list[Lead]:
    """Ordinary leads (the bulk of real traffic) from a seeded generator."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        acts = tuple(sorted((Activity(rnd.choice(TYPES), _at(rnd.choice(DAYS)), {"url": rnd.choice(URLS)})
                             for _ in range(rnd.randint(0, 12))), key=lambda a: a.at))
        domain = rnd.choice(("acme.io", "globex.com", "gmail.com"))
        out.append(Lead(
            f"P-{seed}-{i}", email=f"{rnd.choice(string.ascii_lowercase)}@{domain}",
            title=rnd.choice(("VP Sales", "CEO", "Head of Marketing", "Analyst", "Student", None)),
            source=rnd.choice(("linkedin_ads", "webinar", "organic")),
            company=Company(domain="acme.io", industry=rnd.choice(("software", "retail", "banking")),
                            employees=rnd.choice((3, 50, 250, 1200, 8000, None)),
                            annual_revenue=rnd.choice((2e6, 3e7, 1.2e8, 9e8, None)),
                            country=rnd.choice(("US", "DE", "FR", "IR"))),
            fields=rnd.choice(({}, {"budget_confirmed": True}, {"competitor": False})),
            activities=acts,
        ))
    return out


# --- shipped rulepacks ----------------------------------------------------------------------------


def shipped_packs() -> list[str]:
    return sorted(PluginManager().get_rulepack_sources())


@pytest.mark.parametrize("pack", shipped_packs())
def test_each_shipped_rulepack_scores_identically(pack: str) -> None:
    assert_same(plain_leads(400, seed=len(pack)), plugins=PluginManager(), rulepacks=[pack])


def test_all_shipped_rulepacks_composed_score_identically() -> None:
    results = assert_same(plain_leads(400, seed=99), plugins=PluginManager())
    assert any(r["total"] != 0 for r in results if isinstance(r, dict))


@pytest.mark.skipif(not SAMPLES.exists(), reason="rulepacks/samples/leads.jsonl is not there")
def test_sample_leads_score_identically() -> None:
    sample = [lead for lead in read_leads(str(SAMPLES)) if not isinstance(lead, Rejection)]
    assert_same(sample, plugins=PluginManager())


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(leads, min_size=1, max_size=8))
def test_firr_base_on_generated_leads(batch: list[Lead]) -> None:
    assert_same(batch, plugins=PluginManager(entry_points=False), rulepacks=["firr-base"])


# --- declared custom fields ------------------------------------------------------------------------

TYPED_PACK = """
[pack]
name = "typed"
version = "1"

[categories.fit]

[fields]
seats = "number"
rank = "int"
paid = "bool"
plan = { type = "str", values = ["free", "pro", "2026"] }

[[rules]]
id = "fit.seats"
category = "fit"
points = 7
reason = "seats"
when = { signal = "fields.seats", gte = 40 }

[[rules]]
id = "fit.rank"
category = "fit"
points = 3
reason = "rank"
when = { signal = "fields.rank", between = [2, 4] }

[[rules]]
id = "fit.paid"
category = "fit"
points = 5
reason = "paid"
when = { any = [{ signal = "fields.paid", eq = true }, { signal = "fields.plan", in = ["pro", "2026"] }] }

[[rules]]
id = "fit.no-seats"
category = "fit"
points = -2
reason = "no seats"
when = { signal = "fields.seats", exists = false }

[[rules]]
id = "fit.visits"
category = "fit"
points = 1
reason = "visits"
on = "page_view"
when = { signal = "fields.paid", ne = true }
count = "daily"

[[bands]]
name = "low"
min = 0
"""
RAW_VALUES = ("40", " 41.5 ", 39, 40.0, "lots", True, "yes", "No", "1", "0", 3, "3", 3.5, "pro", 2026, "", None,
              math.inf, "2e1", 2**63, 1e16, -0.0, 40.25, 1e20, 5e-324)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.builds(
    lambda i, seats, rank, paid, plan, days: Lead(
        f"T-{i}", fields={k: v for k, v in (("seats", seats), ("rank", rank), ("paid", paid), ("plan", plan))
                          if v is not None},
        activities=[Activity("page_view", _at(d)) for d in sorted(days, reverse=True)]),
    st.integers(0, 999), st.sampled_from(RAW_VALUES), st.sampled_from(RAW_VALUES), st.sampled_from(RAW_VALUES),
    st.sampled_from(RAW_VALUES), st.lists(st.sampled_from(DAYS), max_size=6)), min_size=1, max_size=6))
def test_declared_custom_fields_and_daily_score_identically(tmp_path_factory: pytest.TempPathFactory,
                                                            batch: list[Lead]) -> None:
    path = tmp_path_factory.mktemp("typed") / "typed.toml"
    path.write_text(TYPED_PACK, encoding="utf-8")
    assert_same(batch, plugins=PluginManager(entry_points=False), rulepacks=[path])


# --- generated rulepacks ---------------------------------------------------------------------------

ENUMS = {
    "title.seniority": ("c_level", "vp", "director", "manager", "individual", "student"),
    "email.type": ("business", "personal", "disposable", "education", "invalid"),
    "company.region": ("north_america", "europe", "unknown"),
}
TEXTS = {
    "company.industry": ("software", "technology", "retail", "ünïcödé_\"quoted\"_\\_back", "zzz"),
    "company.country": ("US", "DE", "CU", "UNITED STATES"),
    "title.text": ("vp marketing", "engineer", ""),
}
NUMBERS = {
    "company.employees": (0, 5, 10, 99, 100, 100.5, 5000, 2**53, 2**53 + 2, 10**20),
    "company.annual_revenue": (0, 1.5, 1e7, 5e7, 2.5e8, 1e16, math.inf),
    "lead.age_days": (0, 3, 3.5, 400),
    "activity.email_open.count_30d": (0, 1, 2, 3),
    "intent.beyond_email.count_90d": (0, 1, 4),
}
WHOLE = ("company.employees", "activity.email_open.count_30d", "intent.beyond_email.count_90d")
BOOLS = ("email.is_business", "email.matches_company", "email.is_role", "title.is_decision_maker")
TIMES = ("activity.pricing_page_visit.last_at", "intent.any.first_at")
ANYS = ("fields.plan", "fields.score", "fields.flag")
ANY_COMPARANDS = ("pro", "free", "10", ODD_TEXT[0], "é", 0, 1, 7, 2.5, -5, 2**53 + 1, 10**30, True, False,
                  _at(1), _at(30), math.inf)
REGEXES = (".*vp.*", "(software|technology)", "u.*", ".*\"quoted\".*", "é", "[A-Z]+", "")


def _datetimes() -> st.SearchStrategy[datetime]:
    return st.sampled_from(DAYS).map(_at)


def _compare(signal: str, pool: st.SearchStrategy[Any], ordered: bool, regex: bool) -> st.SearchStrategy[dict]:
    ops = ["eq", "ne", "in", "not_in", "exists"] + (["lt", "lte", "gt", "gte", "between"] if ordered else []) \
        + (["matches"] if regex else [])

    def leaf(op: str, values: list[Any], flag: bool, pattern: str) -> dict:
        if op == "exists":
            return {"signal": signal, "exists": flag}
        if op == "matches":
            return {"signal": signal, "matches": pattern}
        if signal in WHOLE and op in ("in", "not_in", "between"):
            values = [int(v) for v in values]  # lists and ranges of a whole-number signal are whole
        if op in ("in", "not_in"):
            return {"signal": signal, op: values}
        if op == "between":
            lo, hi = sorted(values[:2], key=_order_key)
            return {"signal": signal, "between": [lo, hi]}
        return {"signal": signal, op: values[0]}

    return st.builds(leaf, st.sampled_from(ops), st.lists(pool, min_size=2, max_size=4), st.booleans(),
                     st.sampled_from(REGEXES))


def _order_key(value: Any) -> Any:
    return value.timestamp() if isinstance(value, datetime) else value


def _any_leaf(signal: str) -> st.SearchStrategy[dict]:
    # Ordered comparisons on an `any` signal need comparands of one kind (and no NaN).
    kinds = [
        ("text", [v for v in ANY_COMPARANDS if isinstance(v, str)]),
        ("number", [v for v in ANY_COMPARANDS if isinstance(v, (int, float)) and not isinstance(v, bool)]),
        ("bool", [True, False]),
        ("time", [v for v in ANY_COMPARANDS if isinstance(v, datetime)]),
    ]
    mixed = _compare(signal, st.sampled_from(ANY_COMPARANDS), ordered=False, regex=True)
    return st.one_of(mixed, *(_compare(signal, st.sampled_from(pool), ordered=True, regex=False)
                              for _, pool in kinds))


def lead_leaf() -> st.SearchStrategy[dict]:
    options = [_compare(s, st.sampled_from(v), ordered=False, regex=True) for s, v in ENUMS.items()]
    options += [_compare(s, st.sampled_from(v), ordered=False, regex=True) for s, v in TEXTS.items()]
    options += [_compare(s, st.sampled_from(v), ordered=True, regex=False) for s, v in NUMBERS.items()]
    options += [_compare(s, st.booleans(), ordered=False, regex=False) for s in BOOLS]
    options += [_compare(s, _datetimes(), ordered=True, regex=False) for s in TIMES]
    options += [_any_leaf(s) for s in ANYS]
    return st.one_of(options)


def event_leaf() -> st.SearchStrategy[dict]:
    return st.one_of(
        _compare("event.type", st.sampled_from(TYPES), ordered=False, regex=True),
        _compare("event.age_days", st.sampled_from((0, 1, 2.5, 7, 14, 30)), ordered=True, regex=False),
        _compare("event.at", _datetimes(), ordered=True, regex=False),
        _compare("event.url", st.sampled_from(URLS[:-1] + ("/pricing/x",)), ordered=False, regex=True),
        _any_leaf("event.n"),
    )


type_choice = st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))
window = st.sampled_from((0.5, 1, 2, 7, 14, 30, 13.999))
pattern = st.one_of(
    st.builds(lambda steps, w: {"sequence": steps, "within_days": w},
              st.lists(type_choice, min_size=2, max_size=4), window),
    st.builds(lambda a, b, w: {"absent": a, "after": b, "within_days": w}, type_choice, type_choice, window),
    st.builds(lambda n, of, w: {"at_least": n, "of": of, "within_days": w}, st.integers(1, 4), type_choice, window),
)


def tree(leaf: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=4)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=4)),
        st.builds(lambda c: {"not": c}, inner),
    ), max_leaves=10)


lead_rule = st.builds(lambda when, points: {"category": "fit", "points": points, "when": when},
                      tree(st.one_of(lead_leaf(), lead_leaf(), pattern)), st.integers(-20, 30))
FREQUENCIES = ({}, {"count": "each", "max_count": 2}, {"count": "each"}, {"count": "daily"},
               {"count": "daily", "max_count": 2})
activity_rule = st.builds(
    lambda on, when, points, count: {"category": "intent", "points": points, "on": on,
                                     **({"when": when} if when is not None else {}), **count},
    type_choice, st.one_of(st.none(), tree(lead_leaf()), tree(st.one_of(event_leaf(), event_leaf(), lead_leaf()))),
    st.integers(-5, 25), st.sampled_from(FREQUENCIES))
packs = st.lists(st.one_of(lead_rule, activity_rule), min_size=1, max_size=7)


DECAYS = ("web", None, "steps", "recent")


def pack_toml(rules: list[dict], shares: bool = False) -> str:
    body = {
        "pack": {"name": "generated", "version": "1"},
        "categories": {"fit": {"max": 60}, "intent": {}},
        # Three kinds of decay, so that a plan holds several distinct factors (and rules without one).
        "decay": {"web": {"kind": "half_life", "half_life_days": 10},
                  "steps": {"kind": "step", "steps": [[20, 0.5], [60, 0.25], [120, 0.0]]},
                  "recent": {"kind": "window", "days": 30}},
        "rules": [{"id": f"r.{i}", "reason": f"rule {i}", **({"decay": DECAYS[i % 4]} if DECAYS[i % 4] else {}), **r}
                  for i, r in enumerate(rules)],
        "bands": [{"name": "low", "min": 0}, {"name": "high", "min": 25,
                                                "requires": {"signal": "email.type", "eq": "business"}}],
    }
    if shares:
        body["bands"] = [{"name": "low", "min": 0}, {"name": "mid", "min": "top 40%"},
                         {"name": "high", "min": "top 10%", "requires": {"signal": "email.type", "eq": "business"}}]
    return tomli_w.dumps(body)


def _score_generated(tmp_path_factory: pytest.TempPathFactory, rules: list[dict], batch: list[Lead],
                     backends: list[str], shares: bool = False) -> None:
    path = tmp_path_factory.mktemp("pack") / "generated.toml"
    path.write_text(pack_toml(rules, shares), encoding="utf-8")
    assert_same(batch, backends, plugins=PluginManager(entry_points=False), rulepacks=[path])


# The columnar engine compiles a plan per pack (about a second): fewer generated packs for it.
PER_LEAD = [b for b in OTHERS if b != "duckdb"]
COLUMNAR = [b for b in OTHERS if b == "duckdb"]


@pytest.mark.slow
@pytest.mark.skipif(not PER_LEAD, reason="durable-rules is not installed")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packs, st.lists(leads, min_size=1, max_size=6))
def test_generated_rulepacks_score_identically(tmp_path_factory: pytest.TempPathFactory, rules: list[dict],
                                               batch: list[Lead]) -> None:
    _score_generated(tmp_path_factory, rules, batch, PER_LEAD)


@pytest.mark.slow
@pytest.mark.skipif(not COLUMNAR, reason="duckdb is not installed")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packs, st.lists(leads, min_size=1, max_size=8))
def test_generated_rulepacks_score_identically_in_sql(tmp_path_factory: pytest.TempPathFactory, rules: list[dict],
                                                      batch: list[Lead]) -> None:
    _score_generated(tmp_path_factory, rules, batch, COLUMNAR)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packs, st.lists(leads, min_size=1, max_size=12))
def test_generated_rulepacks_with_share_bands_score_identically(tmp_path_factory: pytest.TempPathFactory,
                                                                rules: list[dict], batch: list[Lead]) -> None:
    _score_generated(tmp_path_factory, rules, batch, OTHERS, shares=True)


# A conditional segment pack over a generated pack: some of the base's rules again (the same, with
# other points, or under a new id at a new position), its own "web" decay, and a band gate the base
# shares, so that the columnar plan's per-combination tables (rule lines, gates) meet every case.
SEGMENT_CHANGES = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(("same", "points", "new id"))),
                          min_size=1, max_size=5)
# A rule every business lead meets, changed each way, on leads of both combinations.
BUSINESS_RULE = {"category": "fit", "points": 10, "when": {"signal": "email.type", "eq": "business"}}
SENIOR_RULE = {"category": "fit", "points": 12, "when": {"signal": "title.seniority", "in": ["vp", "c_level"]}}


def segment_toml(rules: list[dict], changes: list[tuple[int, str]]) -> str:
    picked: dict[str, dict] = {}
    for n, (i, change) in enumerate(changes):
        index = i % len(rules)
        rule = {"id": f"r.{index}", "reason": f"segment rule {index}",
                **({"decay": DECAYS[index % 4]} if DECAYS[index % 4] else {}), **rules[index]}
        if change == "points":
            rule["points"] += 7
        elif change == "new id":
            rule["id"] = f"s.{n}"
        picked.setdefault(rule["id"], rule)  # a pack defines each id once
    body = {
        "pack": {"name": "segment", "version": "1", "priority": 20, "extends": ["generated"],
                 "applies_when": {"signal": "email.type", "eq": "business"}},
        "categories": {"fit": {"max": 60}, "intent": {}},
        "decay": {"web": {"kind": "half_life", "half_life_days": 4}},
        "rules": list(picked.values()),
        "bands": [{"name": "low", "min": 0},
                  {"name": "high", "min": 25, "requires": {"signal": "email.type", "eq": "business"}},
                  {"name": "top", "min": 40, "requires": {"signal": "title.seniority", "in": ["vp", "c_level"]}}],
    }
    return tomli_w.dumps(body)


@pytest.mark.slow
@pytest.mark.skipif(not COLUMNAR, reason="duckdb is not installed")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packs, SEGMENT_CHANGES, st.lists(leads, min_size=1, max_size=10))
@example([BUSINESS_RULE, SENIOR_RULE], [(0, "new id"), (1, "points"), (0, "same")],
         [Lead("E-1", email="dana@acme.io", title="VP Marketing"), Lead("E-2", email="bob@gmail.com", title="VP Sales")])
def test_generated_composed_rulepacks_score_identically_in_sql(tmp_path_factory: pytest.TempPathFactory,
                                                              rules: list[dict], changes: list[tuple[int, str]],
                                                              batch: list[Lead]) -> None:
    """A generated pack and a conditional segment over it, composed per lead: the columnar engine
    (each distinct rule line and gate written once, placed per combination by a table) scores as
    the python engine does."""
    folder = tmp_path_factory.mktemp("packs")
    (folder / "generated.toml").write_text(pack_toml(rules), encoding="utf-8")
    (folder / "segment.toml").write_text(segment_toml(rules, changes), encoding="utf-8")
    assert_same(batch, COLUMNAR, plugins=PluginManager(entry_points=False),
                rulepacks=[folder / "generated.toml", folder / "segment.toml"])


# Few types, close and tied times, many activities: where sequence/absent/at_least get subtle.
FEW = TYPES[:3]
busy_leads = st.builds(
    lambda i, acts: Lead(f"B-{i}", email="dana@acme.io", activities=tuple(acts)),
    st.integers(0, 10**6),
    st.lists(st.builds(lambda t, d: Activity(t, _at(d)), st.sampled_from(FEW),
                       st.sampled_from((0, 0.25, 0.5, 1, 1, 2, 7, 7.5, 14, 15, -1))), max_size=14),
)
few_types = st.one_of(st.sampled_from(FEW), st.lists(st.sampled_from(FEW), min_size=1, max_size=2, unique=True))
busy_pattern = st.one_of(
    st.builds(lambda steps, w: {"sequence": steps, "within_days": w},
              st.lists(few_types, min_size=2, max_size=5), st.sampled_from((0.25, 0.5, 1, 7, 14))),
    st.builds(lambda a, b, w: {"absent": a, "after": b, "within_days": w}, few_types, few_types,
              st.sampled_from((0.25, 0.5, 1, 7, 14))),
    st.builds(lambda n, of, w: {"at_least": n, "of": of, "within_days": w}, st.integers(1, 6), few_types,
              st.sampled_from((0.5, 1, 7, 14))),
)
pattern_rule = st.builds(lambda when, points: {"category": "fit", "points": points, "when": when},
                         tree(st.one_of(busy_pattern, busy_pattern, lead_leaf())), st.integers(1, 9))


@pytest.mark.slow
@pytest.mark.skipif(not PER_LEAD, reason="durable-rules is not installed")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pattern_rule, min_size=1, max_size=5), st.lists(busy_leads, min_size=1, max_size=6))
def test_generated_patterns_score_identically(tmp_path_factory: pytest.TempPathFactory, rules: list[dict],
                                              batch: list[Lead]) -> None:
    _score_generated(tmp_path_factory, rules, batch, PER_LEAD)


@pytest.mark.slow
@pytest.mark.skipif(not COLUMNAR, reason="duckdb is not installed")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pattern_rule, min_size=1, max_size=5), st.lists(busy_leads, min_size=1, max_size=8))
def test_generated_patterns_score_identically_in_sql(tmp_path_factory: pytest.TempPathFactory, rules: list[dict],
                                                     batch: list[Lead]) -> None:
    _score_generated(tmp_path_factory, rules, batch, COLUMNAR)


ACCOUNT_PACK = {
    "pack": {"name": "accounts", "version": "1"},
    "categories": {"fit": {"max": 80}, "account": {}},
    "rules": [
        {"id": "a.committee", "category": "account", "points": 15, "reason": "two senior people at the account",
         "when": {"same_account": 2, "where": {"signal": "title.seniority", "in": ["vp", "c_level", "director"]}}},
        {"id": "a.pricing", "category": "account", "points": 10, "reason": "colleagues looked at pricing",
         "when": {"same_account": 2, "where": {"at_least": 1, "of": "pricing_page_visit", "within_days": 30}}},
        {"id": "a.engaged", "category": "account", "points": 5, "reason": "an engaged account",
         "when": {"signal": "account.engaged_contacts", "gte": 2}},
        {"id": "a.title", "category": "fit", "points": 20, "reason": "VP", "when": {"signal": "title.seniority", "eq": "vp"}},
    ],
    "bands": [{"name": "low", "min": 0},
              {"name": "high", "min": 20, "requires": {"same_account": 3, "where": {"signal": "email.type",
                                                                                     "eq": "business"}}}],
    "accounts": {"rollup": "sum_capped", "cap": 100},
}


@pytest.mark.parametrize("seed", [1, 2])
def test_account_patterns_score_identically(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(tomli_w.dumps(ACCOUNT_PACK), encoding="utf-8")
    results = assert_same(plain_leads(300, seed=seed), plugins=PluginManager(entry_points=False), rulepacks=[path])
    assert any(line["rule_id"] == "a.committee" for r in results if isinstance(r, dict) for line in r["ledger"])
