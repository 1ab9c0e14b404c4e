"""Fuzz tests: random and mutated rulepacks, JSON Lines and CSV files.

Whatever the input, only the project's own errors escape (InputError for a whole unusable file,
RulepackErrors for a pack), every lead read yields one Lead or Rejection, scoring them gives
exactly one card or rejection each (scored + rejected == read), and what the loader accepts
always scores and writes. Each test runs in a few seconds; ``bench/fuzz.py`` runs the same
tests with many more examples (FUZZ_EXAMPLES per test).
"""

from __future__ import annotations

import io
import json
import os
import string
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from leadscore import Engine, PluginManager
from leadscore.errors import InputError, LeadscoreError, RulepackErrors
from leadscore.io import card_to_dict, read_leads
from leadscore.io.writers import open_writer
from leadscore.model import Lead, Rejection, ScoreCard
from leadscore.rulepack.loader import parse_rulepacks

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "rulepacks" / "samples"
JSONL_LINES = (SAMPLES / "leads.jsonl").read_bytes().splitlines()
CSV_TEXT = (SAMPLES / "leads.csv").read_text(encoding="utf-8")
ACTIVITIES_TEXT = (SAMPLES / "activities.csv").read_text(encoding="utf-8")

# 60 examples a test in the suite (a few seconds each); bench/fuzz.py sets FUZZ_EXAMPLES for a campaign.
FAST = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def engine():
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"],
                as_of=__import__("datetime").datetime(2026, 11, 23, tzinfo=__import__("datetime").timezone.utc)) as e:
        yield e


# --- mutations ------------------------------------------------------------------------------------

STRUCTURE = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\n", b"\r", b"\x00", b"\xff", b"\xe4", b"\\ud800",
             b"1e400", b"-0", b"NaN", b"9" * 400, b"[" * 50, b"{\"a\":" * 40, b"\x1b[2J", b"\"\"", b";", b"\t"]


@st.composite
def mutated(draw: Any, base: bytes) -> bytes:
    """``base`` with a few random edits: bytes deleted, inserted, repeated or replaced."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            data.extend(draw(st.binary(max_size=20)))
            continue
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "insert", "repeat", "replace", "replace", "truncate"]))
        if kind == "delete":
            del data[at:at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(STRUCTURE) | st.binary(min_size=1, max_size=8))
        elif kind == "repeat":
            end = min(len(data), at + draw(st.integers(1, 60)))
            data[at:at] = data[at:end] * draw(st.integers(1, 3))
        elif kind == "replace":
            data[at] = draw(st.integers(0, 255))
        else:
            del data[at:]
    return bytes(data)


JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=20)
LEAD_KEYS = ["id", "email", "title", "source", "created_at", "account_id", "company", "fields", "activities",
             "first_name", "last_name", "extra"]


@st.composite
def json_leads(draw: Any) -> bytes:
    """A JSON object whose keys are mostly a lead's, with values of any JSON kind."""
    lead: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(LEAD_KEYS), max_size=6, unique=True)):
        if key == "activities":
            lead[key] = draw(st.lists(st.fixed_dictionaries(
                {}, optional={"type": st.text(max_size=10) | JSON_VALUES,
                              "at": st.sampled_from(["2026-11-20T10:00:00Z", "2026-11-20", "x", "2026-02-30"])
                              | JSON_VALUES,
                              "properties": JSON_VALUES, "id": JSON_VALUES}), max_size=3))
        else:
            lead[key] = draw(JSON_VALUES)
    return json.dumps(lead).encode()


def _sample(lines: list[bytes]) -> st.SearchStrategy[bytes]:
    # By index: the lines themselves would fill every failure report.
    return st.integers(0, len(lines) - 1).map(lines.__getitem__)


def _jsonl_lines() -> st.SearchStrategy[bytes]:
    return _sample(JSONL_LINES).flatmap(mutated) | json_leads() | st.binary(max_size=80) | _sample(JSONL_LINES)


def _expected_jsonl_items(lines: list[bytes]) -> int:
    """How many items the reader owes for these lines: one per line that is not blank."""
    count = 0
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            count += 1
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        count += bool(text.strip())
    return count


def _read_all(source: Any, **kwargs: Any) -> list[Lead | Rejection] | None:
    """Every item read, or None when the file as a whole is refused with InputError."""
    try:
        items = list(read_leads(source, **kwargs))
    except InputError as err:
        assert "\n" not in str(err)
        return None
    assert all(isinstance(item, (Lead, Rejection)) for item in items)
    for item in items:
        if isinstance(item, Rejection):
            assert "\n" not in item.reason and item.reason
    return items


def _score_all(engine: Engine, items: list[Lead | Rejection]) -> None:
    """scored + rejected == read, and every card writes in each output format."""
    out = list(engine.score(items))
    assert len(out) == len(items)
    event(f"scored {min(sum(isinstance(item, ScoreCard) for item in out), 3)}+ leads")
    cards = [item for item in out if isinstance(item, ScoreCard)]
    assert sum(isinstance(item, Rejection) for item in out) + len(cards) == len(items)
    for fmt in ("jsonl", "csv", "table"):
        writer = open_writer(fmt, io.StringIO(), explain=True)
        for card in cards:
            writer.write(card)
        writer.close()
    for card in cards:
        assert sum(line.points for line in card.ledger) == card.total
        orjson.dumps(card_to_dict(card, explain=True))


# --- JSON Lines -----------------------------------------------------------------------------------

@FAST
@given(lines=st.lists(_jsonl_lines(), min_size=1, max_size=8))
def test_fuzz_jsonl_reader(engine, lines):
    # A line may not hold a line break of its own: each item is one line of the file.
    lines = [line.replace(b"\n", b" ") for line in lines]
    items = _read_all(io.BytesIO(b"\n".join(lines) + b"\n"), fmt="jsonl")
    expected = _expected_jsonl_items(lines)
    if items is None:
        assert expected == 0
        return
    assert len(items) == expected
    _score_all(engine, items)


# --- CSV ------------------------------------------------------------------------------------------

CSV_CELLS = st.lists(st.sampled_from([*string.ascii_letters, *string.digits, *" .-@:_/é", "1e400", "9" * 400,
                                     "\x1b", "\x00", "true", "-", "=cmd", "2026-11-20T10:00:00Z", "\udcff"]),
                     max_size=4).map("".join)
CSV_COLUMNS = ["id", "email", "title", "company.employees", "company.annual_revenue", "created_at", "fields.x",
               "fields.score", "account_id"]


@st.composite
def quote_free_csv(draw: Any) -> tuple[str, int]:
    """A leads CSV without quotes: every non-blank row after the header is one lead."""
    columns = ["id", *draw(st.lists(st.sampled_from(CSV_COLUMNS[1:]), max_size=5, unique=True))]
    rows = draw(st.lists(st.lists(CSV_CELLS.map(lambda c: c.replace(",", " ").replace("\n", " ").replace("\r", " ")),
                                  min_size=1, max_size=len(columns) + 1), max_size=8))
    lines = [",".join(columns), *(",".join(row) for row in rows)]
    data_rows = sum(1 for row in rows if any(cell.strip() for cell in row))
    return "\n".join(lines) + "\n", data_rows


@FAST
@given(case=quote_free_csv())
def test_fuzz_csv_reader_one_item_per_row(engine, case):
    text, rows = case
    items = _read_all(io.BytesIO(text.encode("utf-8", "surrogateescape")), fmt="csv")  # \udcff: a bad byte
    if items is None:
        assert rows == 0
        return
    assert len(items) == rows
    _score_all(engine, items)


@FAST
@given(leads=st.just(CSV_TEXT.encode()).flatmap(mutated),
       activities=st.just(ACTIVITIES_TEXT.encode()).flatmap(mutated) | st.none())
# A UTF-16 file cut in the middle of a character, its last byte below 0x80 (surrogateescape refuses it).
@example(leads=b"\xfe\xff" + b"\x00" * 11, activities=None)
@example(leads=CSV_TEXT.encode("utf-16") + b"\x41", activities=ACTIVITIES_TEXT.encode("utf-16") + b"\x00")
def test_fuzz_csv_reader_mutated_files(engine, tmp_path_factory, leads, activities):
    folder = tmp_path_factory.mktemp("csv")
    (folder / "leads.csv").write_bytes(leads)
    kwargs: dict[str, Any] = {}
    if activities is not None:
        (folder / "activities.csv").write_bytes(activities)
        kwargs["activities"] = folder / "activities.csv"
    items = _read_all(folder / "leads.csv", **kwargs)
    if items is not None:
        _score_all(engine, items)


# --- rulepacks ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def registry():
    pm = PluginManager(entry_points=False)
    return pm, [s for e in pm.get_signal_extractors() for s in e.provides], pm.get_decay_policies()


@pytest.fixture(scope="module")
def sample_leads() -> list[Lead]:
    return [item for item in read_leads(SAMPLES / "leads.jsonl") if isinstance(item, Lead)][:12]


def _accepts_and_scores(registry: Any, sample_leads: list[Lead], text: str, folder: Path,
                        standalone: bool = False) -> None:
    """The loader either refuses the pack with RulepackErrors, or the pack scores every sample lead.

    ``standalone``: the pack replaces firr-base (a mutated copy of it) rather than extending it.
    """
    pm, specs, policies = registry
    if standalone:
        pm = PluginManager(entry_points=False, disabled=["leadscore.default_plugins.compose.rulepacks"])
    base = [] if standalone else [BASE]
    try:
        parse_rulepacks([*base, ("fuzzed.toml", text)], specs, policies)
    except RulepackErrors as err:
        assert all("\n" not in e.line() for e in err.errors)
        event("pack refused by the loader")
        return
    path = folder / "fuzzed.toml"
    path.write_text(text, encoding="utf-8")
    try:
        engine = Engine(plugins=pm, rulepacks=[path])
    except LeadscoreError as err:  # composition conflicts are found at start-up, as one line each
        assert all(line.strip() for line in str(err).splitlines())
        event("pack refused at engine start-up")
        return
    event("pack accepted and scored")
    with engine:
        from datetime import datetime, timezone

        out = list(engine.score(sample_leads, as_of=datetime(2026, 11, 23, tzinfo=timezone.utc)))
        assert len(out) == len(sample_leads)
        for item in out:
            if isinstance(item, ScoreCard):
                orjson.dumps(card_to_dict(item, explain=True))
                assert sum(line.points for line in item.ledger) == item.total


BASE_PACK = (ROOT / "core/src/leadscore/rulepacks/firr-base.toml").read_text(encoding="utf-8")
BASE = ("firr-base.toml", BASE_PACK)
EXTENSION = ('[pack]\nname = "fuzz"\nversion = "1.0.0"\nextends = ["firr-base"]\npriority = 10\n\n'
             '[[rules]]\nid = "fit.title.vp"\ncategory = "fit"\npoints = 25\nreason = "VP"\n'
             'when = { all = [{ signal = "title.seniority", eq = "vp" }, { signal = "title.text", matches = ".*vp.*" }] }\n'
             '\n[[rules]]\nid = "intent.docs"\ncategory = "intent"\npoints = 3\non = "page_view"\ncount = "each"\n'
             'max_count = 5\nreason = "Docs"\nwhen = { signal = "event.url", matches = "/docs/.*" }\n'
             'decay = { kind = "half_life", half_life_days = 14 }\n')


@FAST
@given(text=st.just(BASE_PACK.encode()).flatmap(mutated))
def test_fuzz_rulepack_loader_mutated_base_pack(registry, sample_leads, tmp_path_factory, text):
    # A mutated copy of the shipped pack, standing in for it: what check accepts must score.
    _accepts_and_scores(registry, sample_leads, text.decode("utf-8", "replace"), tmp_path_factory.mktemp("pack"),
                        standalone=True)


@FAST
@given(text=st.just(EXTENSION.encode()).flatmap(mutated))
def test_fuzz_rulepack_loader_mutated(registry, sample_leads, tmp_path_factory, text):
    _accepts_and_scores(registry, sample_leads, text.decode("utf-8", "replace"), tmp_path_factory.mktemp("pack"))


# Mostly what a pack author writes, sometimes anything: a pack refused on its first line tests little.
SIGNALS = ["title.seniority", "title.text", "company.employees", "email.type", "fields.x", "event.url", "nope",
           "company.annual_revenue", "lead.age_days", "title.text", "company.employees", "fields.x"]
OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "between", "exists", "matches", "bogus",
       "eq", "gte", "in", "matches", "exists"]
TOML_SCALARS = (st.integers(-1000, 1000) | st.sampled_from(["vp", "c_level", "business", "x", ".*vp.*"])
                | st.integers() | st.floats() | st.text(max_size=12) | st.booleans()
                | st.sampled_from(["(a+)+$", "(a)\\1", "(?=x)", ".*", "vp", "[", "\x1b"]))
TOML_VALUES = TOML_SCALARS | st.lists(TOML_SCALARS, max_size=3)


def _conditions() -> st.SearchStrategy[Any]:
    # Well-typed leaves mostly, so whole conditions get through to the engine; anything otherwise.
    typed = st.one_of(
        st.sampled_from(["vp", "c_level", "director"]).map(lambda v: {"signal": "title.seniority", "eq": v}),
        st.sampled_from([".*vp.*", "(a+)+$", "[a-z ]+", ".*"]).map(lambda v: {"signal": "title.text", "matches": v}),
        st.integers(-10, 10**6).map(lambda v: {"signal": "company.employees", "gte": v}),
        st.lists(st.integers(0, 5000), min_size=2, max_size=2).map(
            lambda v: {"signal": "company.employees", "between": sorted(v)}),
        st.booleans().map(lambda v: {"signal": "fields.x", "exists": v}),
        st.text(max_size=5).map(lambda v: {"signal": "fields.x", "eq": v}))
    anything = st.fixed_dictionaries({"signal": st.sampled_from(SIGNALS)}).flatmap(
        lambda d: st.sampled_from(OPS).flatmap(lambda op: TOML_VALUES.map(lambda v: {**d, op: v})))
    leaf = _mostly(typed, anything)
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c})), max_leaves=6)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten: a pack with one bad field in ten keys is still often accepted."""
    return st.integers(0, 9).flatmap(lambda pick: good if pick else bad)


@st.composite
def generated_packs(draw: Any) -> str:
    rules = []
    for index in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {
            "id": f"fit.r{index}",
            "category": draw(_mostly(st.sampled_from(["fit", "intent", "negative"]), st.just("x"))),
            "points": draw(_mostly(st.integers(-100, 100), st.integers() | st.floats())),
            "reason": draw(_mostly(st.text(min_size=1, max_size=10).filter(str.strip), st.text(max_size=3)))}
        if draw(st.booleans()):
            rule["when"] = draw(_conditions())
        if "when" not in rule or draw(st.booleans()):
            rule["on"] = draw(_mostly(st.sampled_from(["page_view", "pricing_page_visit"]), st.just("bogus")))
            rule["count"] = draw(st.sampled_from(["once", "each"]))
        for key in ("max_points", "min_points", "max_count"):
            if draw(st.integers(0, 3)) == 0:
                rule[key] = draw(_mostly(st.integers(1, 50), st.integers() | st.floats()))
        if draw(st.integers(0, 2)) == 0:
            kind, days = draw(_mostly(st.sampled_from([("window", "days"), ("linear", "lifespan_days"),
                                                       ("half_life", "half_life_days")]), st.just(("bogus", "days"))))
            rule["decay"] = {"kind": kind, days: draw(_mostly(st.integers(1, 400), st.floats() | st.integers()))}
        rules.append(rule)
    pack: dict[str, Any] = {"pack": {"name": "fuzz", "version": "1.0.0", "extends": ["firr-base"], "priority": 10},
                            "rules": rules}
    if draw(st.integers(0, 3)) == 0:
        pack["total"] = {"min": draw(_mostly(st.integers(-500, 0), st.integers())),
                         "max": draw(_mostly(st.integers(0, 500), st.integers()))}
    if draw(st.integers(0, 3)) == 0:
        pack["categories"] = {"fit": {"min": draw(_mostly(st.integers(-50, 0), st.integers())),
                                      "max": draw(_mostly(st.integers(0, 100), st.integers()))}}
    return tomli_w.dumps(pack)


@FAST
@given(text=generated_packs())
def test_fuzz_rulepack_loader_generated(registry, sample_leads, tmp_path_factory, text):
    _accepts_and_scores(registry, sample_leads, text, tmp_path_factory.mktemp("pack"))
