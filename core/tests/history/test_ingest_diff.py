"""Incremental ingest (held equal to scoring from scratch), ledger changes and pack diffs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import Engine
from leadscore.errors import ConfigurationError, PluginError
from leadscore.history import open_store
from leadscore.history.alerts import AlertPolicy
from leadscore.history.changes import ledger_changes
from leadscore.history.diff import compare, parse_gate, score_both
from leadscore.history.ingest import Ingestor, parse_event
from leadscore.history.packs import engine_for_packs
from leadscore.history.recorder import RunRecorder
from leadscore.history.rescore import lead_from_snapshot
from leadscore.io import read_leads
from leadscore.hookspecs import declared_reads
from leadscore.model import Activity, Signal, evolve
from leadscore.plugin import Route, SignalExtractor, SignalSpec, hookimpl, reads_signals
from leadscore.plugins import PluginManager

SAMPLES = Path(__file__).resolve().parents[3] / "rulepacks" / "samples" / "leads.jsonl"
FIRR = Path(__file__).resolve().parents[2] / "src" / "leadscore" / "rulepacks" / "firr-base.toml"
AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def seed(target: str, engine: Engine) -> None:
    with open_store(target) as store:
        leads = list(read_leads(SAMPLES))
        recorder = RunRecorder(store, engine, source="samples")
        recorder.start(AS_OF)
        index = engine.build_accounts(leads, as_of=AS_OF)
        for _ in recorder.score(leads, lambda items: engine.score(items, as_of=AS_OF, accounts=index)):
            pass
        recorder.commit()


def ingest(target: str, engine: Engine, lines: list[str], policy: AlertPolicy | None = None) -> Ingestor:
    with open_store(target) as store:
        ingestor = Ingestor(store, engine, source="test", policy=policy)
        events = [parse_event(line, f"events:{i}", i) for i, line in enumerate(lines, 1)]
        ingestor.prepare(events)
        ingestor.outcomes = [ingestor.apply(e) for e in events]  # type: ignore[attr-defined]
        ingestor.sent = ingestor.commit()  # type: ignore[attr-defined]
        return ingestor


def plain_scores(target: str, engine: Engine, lead_ids: list[str] | None = None) -> dict[str, tuple[int, str, str | None]]:
    """Every current lead scored from scratch at its stored time, with an account pass over all of them."""
    with open_store(target) as store:
        states = store.lead_states(lead_ids or [lead.id for lead in read_leads(SAMPLES)] + ["L-NEW"])
        texts = store.snapshots(s.snapshot for s in states.values())
    leads = {i: lead_from_snapshot(texts[s.snapshot], i) for i, s in states.items()}
    out = {}
    for as_of in sorted({s.as_of for s in states.values()}):
        index = engine.build_accounts(leads.values(), as_of=as_of)
        for lead_id, state in states.items():
            if state.as_of == as_of:
                card = next(engine.score([leads[lead_id]], as_of=as_of, accounts=index))
                out[lead_id] = (card.total, card.band, None if card.route is None else card.route.action)
    return out


def test_events_update_only_the_touched_leads_and_reject_unknown_ones(history_target: str) -> None:
    with Engine(as_of=AS_OF) as engine:
        seed(history_target, engine)
        done = ingest(history_target, engine, [
            '{"event":"activity","id":"e1","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}',
            '{"event":"activity","id":"e1","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}',
            '{"event":"update","lead_id":"L-1014","at":"2026-11-24T10:00:00Z","set":{"email":"kim@acme-robotics.com"}}',
            '{"event":"update","lead_id":"L-1014","at":"2026-11-20T10:00:00Z","set":{"title":"Intern"}}',
            '{"event":"activity","lead_id":"L-404","activity":{"type":"page_view","at":"2026-11-24T09:00:00Z"}}',
            '{"event":"lead","at":"2026-11-24T11:00:00Z","lead":{"id":"L-NEW","email":"a@b-corp.com","title":"CFO"}}',
            '{"event":"update","lead_id":"L-1014","at":"2026-11-25T10:00:00Z","set":{"company.employees":"many"}}',
        ], AlertPolicy(to_bands=("target_account",)))
        statuses = [(o.status, o.detail) for o in done.outcomes]  # type: ignore[attr-defined]
        assert [s for s, _ in statuses] == ["applied", "duplicate", "applied", "duplicate", "rejected", "applied",
                                            "rejected"]
        assert statuses[1][1] == "event e1 was applied before"
        assert statuses[3][1] == "every field in it was changed later already"
        assert statuses[4][1] == ("events:5: lead 'L-404' is not in the history; send a {\"event\": \"lead\", ...} "
                                  "event for it first, or score it with --history")
        assert statuses[6][1].startswith("events:7: ") and "employees" in statuses[6][1]
        assert [(a.lead_id, a.to_band) for a in done.sent] == [("L-1002", "target_account"), ("L-1014", "target_account")]  # type: ignore[attr-defined]
        with open_store(history_target) as store:
            assert store.count("events") == 7
            state = store.lead_states(["L-1014"])["L-1014"]
            lead = lead_from_snapshot(store.snapshots([state.snapshot])[state.snapshot], "x")
            assert lead.email == "kim@acme-robotics.com" and lead.title != "Intern"
            # Ingest again: the duplicate event id is recognised from the store.
        again = ingest(history_target, engine, [
            '{"event":"activity","id":"e1","lead_id":"L-1002","activity":{"type":"demo_request","at":"2026-11-24T09:00:00Z"}}'])
        assert again.outcomes[0].status == "duplicate"  # type: ignore[attr-defined]
        assert plain_scores(history_target, engine)["L-1002"][1] == "target_account"


EVENT_TYPES = ["page_view", "pricing_page_visit", "demo_request", "email_open", "content_download", "contact_sales",
               "webinar_attendance", "unsubscribe"]
LEAD_IDS = [lead.id for lead in read_leads(SAMPLES)]
NEW_IDS = ["L-N1", "L-N2", "L-N3"]
ACCOUNTS = ["quillstone-analytics.com", "larkspurhealth.com", "brackenridge-freight.com", "kilnworth.io"]
TITLES = ["VP Sales", "Marketing Intern", "Chief Financial Officer", "Director of IT", "Software Developer"]
# Addresses of sample leads in those accounts (as another lead's email, the two leads become one
# person of the account), written the way the same person writes them again, and a new one.
EMAILS = ["Priya.Raman+demo@quillstone-analytics.com", "tomasz.wiecek@quillstone-analytics.com",
          "marcus.oyelaran@larkspurhealth.com", "jonas.kettler+q4@brackenridge-freight.com",
          "rosa.villanueva@kilnworth.io", "someone.new@kilnworth.io"]
HOURS = st.integers(-30 * 24, 10 * 24)
# Changes that move a lead in or out of a pack's applies_when (the enterprise pack's company size,
# the syndication pack's channel): the packs a contact's card reads change with them.
FIRM = [("company.employees", 40), ("company.employees", 650), ("company.employees", 2400),
        ("source", "content_syndication"), ("source", "event")]
# Activities (on known and not-yet-known leads), title changes, moves between accounts (or out of
# every account: without account_id a lead falls back to its email domain), email changes that
# make two leads one person (or part them), changes of the packs that apply, and new leads joining.
EVENTS = st.one_of(
    st.tuples(st.just("firm"), st.sampled_from(LEAD_IDS), st.sampled_from(FIRM), HOURS),
    st.tuples(st.just("activity"), st.sampled_from(LEAD_IDS + NEW_IDS), st.sampled_from(EVENT_TYPES), HOURS),
    st.tuples(st.just("title"), st.sampled_from(LEAD_IDS), st.sampled_from(TITLES), HOURS),
    st.tuples(st.just("account"), st.sampled_from(LEAD_IDS), st.sampled_from([*ACCOUNTS, None]), HOURS),
    st.tuples(st.just("email"), st.sampled_from(LEAD_IDS), st.sampled_from(EMAILS), HOURS),
    st.tuples(st.just("lead"), st.sampled_from(NEW_IDS), st.sampled_from(ACCOUNTS), HOURS),
)


def event_line(kind: str, lead: str, value: Any, hours: int) -> str:
    at = (AS_OF + timedelta(hours=hours)).isoformat()
    if kind == "activity":
        return json.dumps({"event": "activity", "lead_id": lead, "activity": {"type": value, "at": at}})
    if kind == "title":
        return json.dumps({"event": "update", "lead_id": lead, "at": at, "set": {"title": value}})
    if kind == "account":
        return json.dumps({"event": "update", "lead_id": lead, "at": at, "set": {"account_id": value}})
    if kind == "email":
        return json.dumps({"event": "update", "lead_id": lead, "at": at, "set": {"email": value}})
    if kind == "firm":
        return json.dumps({"event": "update", "lead_id": lead, "at": at, "set": dict([value])})
    return json.dumps({"event": "lead", "at": at, "lead": {
        "id": lead, "email": f"new.{lead.lower()}@{value}", "account_id": value, "title": "VP Marketing",
        "activities": [{"type": "demo_request", "at": at}]}})


# A pack whose only account rule reads account.contacts: an activity moves the account's engaged
# and high-intent counts, which nothing reads, so the account's other contacts stay as they are.
CONTACTS_PACK = """
[pack]
name = "contacts-only"
version = "1"
extends = ["firr-base"]

[categories.people]
label = "People at the account"
max = 30

[[rules]]
id = "contacts-only.two-people"
category = "people"
points = 10
reason = "Two or more people at the account"
when = { signal = "account.contacts", gte = 2 }

[[rules]]
id = "contacts-only.three-people"
category = "people"
points = 10
reason = "Three or more people at the account"
when = { signal = "account.contacts", gte = 3 }

[[rules]]
id = "contacts-only.four-people"
category = "people"
points = 10
reason = "Four or more people at the account"
when = { signal = "account.contacts", gte = 4 }
"""


# A pack comparing account signals in every way a condition can (eq, in, between, not/lt, a
# rule with `on`, same_account, a gate) at thresholds the sample accounts cross both ways, each
# comparison flipping at counts where no other does: ingest rescores a contact only when one of
# them changes its truth, so each kind must be tested on the moved values.
THRESHOLDS_PACK = """
[pack]
name = "thresholds"
version = "1"
extends = ["firr-base"]
priority = 20

[categories.people]
label = "People at the account"
max = 80

[[rules]]
id = "thresholds.one-engaged"
category = "people"
points = 17
reason = "Exactly one engaged contact at the account"
when = { signal = "account.engaged_contacts", eq = 1 }

[[rules]]
id = "thresholds.functions"
category = "people"
points = 15
reason = "One or three functions engaged at the account"
when = { signal = "account.functions_engaged", in = [1, 3] }

[[rules]]
id = "thresholds.surge"
category = "people"
points = 19
reason = "Two to five high-intent actions at the account in 30 days"
when = { signal = "account.high_intent_30d", between = [2, 5] }

[[rules]]
id = "thresholds.senior"
category = "people"
points = 14
reason = "A senior contact at the account is engaged"
when = { not = { signal = "account.senior_engaged_contacts", lt = 1 } }

[[rules]]
id = "thresholds.demo-at-a-busy-account"
category = "people"
points = 16
on = "demo_request"
reason = "Asked for a demo at an account of three or more people"
when = { signal = "account.contacts", gte = 3 }

[[rules]]
id = "thresholds.pricing-pair"
category = "people"
points = 18
reason = "Two or more people at the account looked at pricing in 30 days"
when = { same_account = 2, where = { at_least = 1, of = "pricing_page_visit", within_days = 30 } }

[[bands]]
name = "early"
min = 0

[[bands]]
name = "engaged"
min = 30
requires = { not = { signal = "account.engaged_contacts", eq = 2 } }

[[bands]]
name = "mql"
min = 60
requires = { signal = "account.engaged_contacts", gte = 3 }

[[bands]]
name = "sales_ready"
min = 80

[[bands]]
name = "target_account"
min = 100
"""

# The same pack for the leads of small accounts and large companies only: a lead's packs then
# depend on its account (Engine.packs_for cannot tell them apart from the lead alone).
CHOSEN_PACK = THRESHOLDS_PACK.replace(
    "priority = 20\n", 'priority = 20\napplies_when = { any = [{ signal = "account.contacts", lt = 4 }, '
    '{ signal = "company.employees", gte = 1000 }] }\n')


class BusyAccountRouter:
    """A plugin router whose route depends on the account's people count only through "five or
    more", as it declares (its reason shows the count); no rule compares the count with 5."""

    @hookimpl
    @reads_signals("account.contacts", compares={"account.contacts": {"gte": 5}})
    def leadscore_route_lead(self, card, lead, ctx):
        people = ctx["signals"].get("account.contacts", 0)
        return Route("busy_account", "busy-desk", reason=f"{people} people at the account") if people >= 5 else None


class SurgeRouter:
    """A plugin router that reads an account signal no rule reads, and does not declare it."""

    @hookimpl
    def leadscore_route_lead(self, card, lead, ctx):
        surge = ctx["signals"].get("account.high_intent_30d", 0)
        return Route(f"account_surge_{surge}", "surge-desk") if surge else None


# The account signals LargeSurgeRouter reads: those of the committee (which titles and activities
# move often) and the high-intent count, none of which the large pack's rules read.
SURGE_READS = ("account.engaged_contacts", "account.senior_engaged_contacts", "account.functions_engaged",
               "account.high_intent_30d")


class LargeSurgeRouter:
    """A plugin router that reads account signals no rule reads, for the large pack's leads only."""

    @hookimpl
    @reads_signals(*SURGE_READS, packs="large")
    def leadscore_route_lead(self, card, lead, ctx):
        if "large" not in ctx["packs"]:
            return None
        counts = [ctx["signals"].get(name, 0) for name in SURGE_READS]
        return Route("large_account_surge_" + "_".join(map(str, counts)), "surge-desk") if any(counts) else None


# The pack sets the property runs under: the installed packs (rules and the enterprise router read
# committee signals), a pack reading account.contacts only, firr-base (no account pass), the
# installed packs with an undeclared plugin router (every contact rescored when any signal moves),
# a router declaring what it reads for one pack's leads only, which no rule reads (so a wrong
# scope leaves a stale route), a pack comparing account signals in every way a condition can
# with a router declaring the one comparison it reads the people count through, and that pack
# chosen by an account signal.
PACK_SETS = ("installed", "contacts-only", "firr-base", "undeclared-router", "scoped-router", "thresholds",
             "chosen-by-account")
# The installed packs run with the quick tests; each other set adds some 15 s.
PACK_PARAMS = [pytest.param(p, marks=() if p == "installed" else pytest.mark.slow) for p in PACK_SETS]


def pack_engine(packs: str, folder: Path) -> Engine:
    if packs == "installed":
        return Engine(as_of=AS_OF)
    if packs == "contacts-only":
        path = folder / "contacts-only.toml"
        path.write_text(CONTACTS_PACK, encoding="utf-8")
        return Engine(rulepacks=[path], as_of=AS_OF)
    if packs == "firr-base":
        return Engine(rulepacks=["firr-base"], as_of=AS_OF)
    if packs in ("thresholds", "chosen-by-account"):
        path = folder / f"{packs}.toml"
        path.write_text(THRESHOLDS_PACK if packs == "thresholds" else CHOSEN_PACK, encoding="utf-8")
        pm = PluginManager()
        pm.register(BusyAccountRouter(), "busy-account")
        return Engine(rulepacks=["firr-base", path], plugins=pm, as_of=AS_OF)
    if packs == "scoped-router":
        path = folder / "large.toml"
        path.write_text(LARGE_PACK, encoding="utf-8")
        pm = PluginManager()
        pm.register(LargeSurgeRouter(), "large-surge")
        return Engine(rulepacks=["firr-base", path], plugins=pm, as_of=AS_OF)
    pm = PluginManager()
    pm.register(SurgeRouter(), "surge-router")
    return Engine(plugins=pm, as_of=AS_OF)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """The sample leads stored once per pack set; each example works on a copy."""
    made: dict[str, tuple[Path, Path]] = {}

    def get(packs: str) -> tuple[Path, Path]:
        if packs not in made:
            folder = tmp_path_factory.mktemp(f"seeded-{packs}")
            with pack_engine(packs, folder) as engine:
                seed(str(folder / "h.duckdb"), engine)
            made[packs] = (folder, folder / "h.duckdb")
        return made[packs]

    return get


def test_the_engine_knows_which_account_signals_a_card_can_depend_on(tmp_path: Path) -> None:
    with pack_engine("installed", tmp_path) as engine:
        # The rules' committee signals, and what the enterprise router declares it reads.
        assert engine.account_reads == {
            "account.engaged_contacts", "account.functions_engaged", "account.senior_engaged_contacts",
            "account.id", *(spec.signal for spec in engine.same_account)}
        assert engine.undeclared_readers == []
        # Nothing every card reads whatever its packs: the enterprise router reads the senior count
        # and the account id for the enterprise pack's leads only, as its rules read the committee.
        assert engine.account_reads_everywhere == set()
        assert engine.account_reads_for(frozenset({"firr-base", "syndication"})) == {"account.engaged_contacts"}
        enterprise = engine.account_reads_for(frozenset({"firr-base", "enterprise"}))
        assert {n for n in enterprise if not n.startswith("account.same_account.")} == {
            "account.senior_engaged_contacts", "account.id", "account.functions_engaged"}
    with pack_engine("contacts-only", tmp_path) as engine:
        assert engine.needs_accounts and engine.account_reads == {"account.contacts", "account.senior_engaged_contacts",
                                                                  "account.id"}
    with pack_engine("undeclared-router", tmp_path) as engine:
        assert engine.account_reads is None
        assert engine.account_reads_everywhere is None and engine.account_reads_for(frozenset({"firr-base"})) is None
        assert engine.undeclared_readers == ["router of 'surge-router'"]


def test_reads_signals_takes_signal_names() -> None:
    with pytest.raises(TypeError, match="reads_signals: 3 is not a signal name"):
        reads_signals("account.contacts", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"reads_signals: packs=\(\) is not a pack name or a list of them; "
                                        r"give names such as packs=\('enterprise',\)"):
        reads_signals("account.contacts", packs=())
    with pytest.raises(TypeError, match=r"reads_signals: compares\['account.contacts'\] = \{'atleast': 2\} is not a "
                                        r"table of comparisons; give operators and values such as \{'gte': 2\} "
                                        r"\(operators: eq, ne, lt, lte, gt, gte, in, not_in, between\)"):
        reads_signals("account.contacts", compares={"account.contacts": {"atleast": 2}})
    with pytest.raises(TypeError, match=r"reads_signals: compares\['account.contacts'\]\['between'\] = 2 is not a "
                                        r"list; give \[low, high\]"):
        reads_signals("account.contacts", compares={"account.contacts": {"between": 2}})
    with pytest.raises(TypeError, match="reads_signals: compares names 'account.id', which it does not read; "
                                        "list it among the signal names too"):
        reads_signals("account.contacts", compares={"account.id": {"eq": "x"}})


def test_reads_through_declared_comparisons_are_tested_on_the_moved_values(tmp_path: Path) -> None:
    @reads_signals("account.contacts", "account.engaged_contacts", compares={"account.contacts": {"gte": 5, "in": [1, 2]}})
    def route(card, lead, ctx):
        return None

    reads = declared_reads(route)
    assert reads is not None and reads.comparisons("account.contacts") == (("gte", 5), ("in", (1, 2)))
    assert reads.comparisons("account.engaged_contacts") is None
    with pack_engine("thresholds", tmp_path) as engine:
        tests = engine.account_tests_for(frozenset({"firr-base", "thresholds"}))
        assert tests is not None and "account.contacts" not in tests.opaque
        # The router's "five or more", beside the pack's own comparisons of the count.
        assert not tests.differ({"account.contacts": 3}, {"account.contacts": 4})
        assert tests.differ({"account.contacts": 4}, {"account.contacts": 5})
        assert tests.differ({"account.contacts": 2}, {"account.contacts": 3})
    with pack_engine("installed", tmp_path) as engine:
        tests = engine.account_tests_for(frozenset({"firr-base", "enterprise"}))
        # The enterprise router reads the account id whole, the senior count through "two or more".
        assert tests is not None and tests.opaque == {"account.id"}
        assert {name for name, _ in tests.comparisons} >= {"account.senior_engaged_contacts",
                                                           "account.functions_engaged"}
        assert not tests.differ({"account.senior_engaged_contacts": 3}, {"account.senior_engaged_contacts": 4})
        assert tests.differ({"account.senior_engaged_contacts": 1}, {"account.senior_engaged_contacts": 2})


def test_reads_declared_for_some_packs_count_only_for_their_leads() -> None:
    @reads_signals("account.id")
    @reads_signals("account.contacts", "account.high_intent_30d", packs=("large", "enterprise"))
    @reads_signals("account.engaged_contacts", packs="syndication")
    def route(card, lead, ctx):
        return None

    reads = declared_reads(route)
    assert reads is not None and reads.all() == {"account.id", "account.contacts", "account.high_intent_30d",
                                                 "account.engaged_contacts"}
    assert reads.for_packs({"firr-base"}) == {"account.id"}
    assert reads.for_packs({"firr-base", "enterprise"}) == {"account.id", "account.contacts", "account.high_intent_30d"}
    assert reads.for_packs({"syndication", "large"}) == reads.all()


def test_an_extractor_cannot_declare_reads_for_some_packs(tmp_path: Path) -> None:
    @reads_signals("account.contacts", packs="enterprise")
    def extract(lead, ctx):
        return []

    class Extractor:
        @hookimpl
        def leadscore_signal_extractors(self):
            return [SignalExtractor("by-pack", extract, (SignalSpec("by_pack.flag", "bool"),))]

    pm = PluginManager()
    pm.register(Extractor(), "by-pack-plugin")
    with pytest.raises(PluginError) as caught:
        Engine(rulepacks=["firr-base"], plugins=pm, as_of=AS_OF)
    assert str(caught.value) == (
        "signal extractor 'by-pack' (by-pack-plugin): declares signals it reads for the leads of some packs only "
        "(reads_signals(..., packs=...)), but an extractor runs before a lead's packs are chosen; declare the "
        "extractor's reads without packs=")


def test_a_moved_account_signal_that_nothing_reads_leaves_the_other_contacts_alone(seeded) -> None:
    """An activity moves its account's high-intent count: with the contacts-only pack no card of the
    account's other contacts can change, so none is scored again (each keeps its stored time); an
    undeclared router may read that count, so there every contact is scored again."""
    line = ('{"event":"activity","lead_id":"L-1002","activity":{"type":"demo_request",'
            '"at":"2026-11-24T09:00:00Z"}}')
    moved = {}
    for packs in ("contacts-only", "undeclared-router"):
        folder, path = seeded(packs)
        target = folder / "moved.duckdb"
        shutil.copy(path, target)
        with pack_engine(packs, folder) as engine:
            with open_store(str(target)) as store:
                key = store.lead_states(["L-1002"])["L-1002"].account_key
                others = [i for i, s in store.lead_states_for_accounts([key]).items() if i != "L-1002"]
            assert others  # L-1002 shares its account
            done = ingest(str(target), engine, [line])
            assert done.outcomes[0].status == "applied"  # type: ignore[attr-defined]
            with open_store(str(target)) as store:
                moved[packs] = sorted(i for i, s in store.lead_states(others).items() if s.as_of > AS_OF)
            assert {i: v for i, v in plain_scores(str(target), engine, [*others, "L-1002"]).items()} == {
                i: (s.total, s.band, s.route_action) for i, s in open_store(str(target)).lead_states(
                    [*others, "L-1002"]).items()}
    assert moved["contacts-only"] == []
    assert moved["undeclared-router"] == sorted(others)


def test_a_contact_is_scored_again_only_when_a_moved_count_changes_what_its_packs_see(tmp_path: Path) -> None:
    """Under the syndication pack only its leads read account.engaged_contacts, in a rule and a
    gate asking for two or more: a syndicated contact is scored again when its account's count
    goes from 1 to 2, not from 0 to 1 nor from 2 to 3 (no comparison changes, nor its card), and a
    colleague outside the pack never is."""
    target = str(tmp_path / "h.duckdb")

    def joins(lead_id: str, hour: int, source: str, engaged: bool) -> str:
        at = f"2026-11-24T{hour:02d}:00:00Z"
        return json.dumps({"event": "lead", "at": at, "lead": {
            "id": lead_id, "email": f"{lead_id.lower()}@fernbrook.io", "account_id": "fernbrook.io",
            "title": "Analyst", "source": source,
            "activities": [{"type": "webinar_attendance" if engaged else "email_open", "at": at}]}})

    steps = [joins("L-N1", 9, "content_syndication", False), joins("L-N2", 10, "event", True),
             joins("L-N3", 11, "event", True), joins("L-N4", 12, "event", True)]
    with Engine(rulepacks=["syndication"], as_of=AS_OF) as engine:
        seed(target, engine)
        assert engine.account_reads_for(frozenset({"firr-base"})) == set()
        times, counts = [], []
        for step in steps:
            done = ingest(target, engine, [step])
            assert [o.status for o in done.outcomes] == ["applied"]  # type: ignore[attr-defined]
            with open_store(target) as store:
                states = store.lead_states(["L-N1", "L-N2"])
            times.append(tuple(states[i].as_of.hour if i in states else None for i in ("L-N1", "L-N2")))
            counts.append(account_signals(target, engine, "fernbrook.io", AS_OF + timedelta(days=1, hours=12))[
                "account.engaged_contacts"])
        assert counts == [0, 1, 2, 3]
        # L-N1 (syndicated) moves to 11:00 with the count reaching 2 only; L-N2 keeps its own time.
        assert times == [(9, None), (9, 10), (11, 10), (11, 10)]
        ids = ["L-N1", "L-N2", "L-N3", "L-N4"]
        with open_store(target) as store:
            states = store.lead_states(ids)
        assert plain_scores(target, engine, ids) == {i: (s.total, s.band, s.route_action) for i, s in states.items()}


def test_a_contact_held_at_an_earlier_time_is_scored_again_for_a_change_at_that_time(tmp_path: Path) -> None:
    """A colleague engaged by a September webinar becomes the CEO on 10 December: at the event's
    time the webinar is more than 90 days old, so the account's senior count does not move then (0
    both ways), but at 24 November, where the contact L-N1 is held, it goes from 0 to 1, which its
    pack's rule "not fewer than 1" reads (and nothing else: a CEO's function counts for none): L-N1
    is scored again, or it would keep a card that scoring it from scratch at its time no longer
    gives."""
    path = tmp_path / "thresholds.toml"
    path.write_text(THRESHOLDS_PACK, encoding="utf-8")
    target = str(tmp_path / "h.duckdb")
    key = "fernbrook.io"
    colleague = json.dumps({"event": "lead", "at": "2026-11-24T09:00:00Z", "lead": {
        "id": "L-N2", "email": "l-n2@fernbrook.io", "account_id": key, "title": "Analyst",
        "activities": [{"type": "webinar_attendance", "at": "2026-09-01T10:00:00Z"}]}})
    contact = json.dumps({"event": "lead", "at": "2026-11-24T09:00:00Z", "lead": {
        "id": "L-N1", "email": "l-n1@fernbrook.io", "account_id": key, "title": "Analyst"}})
    promoted = '{"event":"update","lead_id":"L-N2","at":"2026-12-10T10:00:00Z","set":{"title":"CEO"}}'
    held, late = datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2026, 12, 10, 10, tzinfo=UTC)
    with Engine(rulepacks=["firr-base", path], as_of=AS_OF) as engine:
        seed(target, engine)
        ingest(target, engine, [colleague, contact])
        with open_store(target) as store:
            assert store.lead_states(["L-N1"])["L-N1"].as_of == held

        def seniors() -> dict[datetime, int]:
            return {at: account_signals(target, engine, key, at)["account.senior_engaged_contacts"] for at in (held, late)}

        before = seniors()
        ingest(target, engine, [promoted])
        after = seniors()
        assert (before, after) == ({held: 0, late: 0}, {held: 1, late: 0})
        with open_store(target) as store:
            states = store.lead_states(["L-N1", "L-N2"])
        assert states["L-N1"].as_of == late
        assert plain_scores(target, engine, ["L-N1", "L-N2"]) == {
            i: (s.total, s.band, s.route_action) for i, s in states.items()}


def test_an_activity_after_a_held_contacts_time_is_not_worked_out_at_that_time(tmp_path: Path) -> None:
    """L-N1 and L-N2 of one account are held at 24 November. An email open for L-N2 on 10 March
    2027 cannot change the account as it stood at 24 November, so no account entry is made for that
    time (the lead's part then leaves later activities out). A demo request dated 24 November
    09:00 itself, sent afterwards, does count then (and no longer on 10 March, 106 days later):
    the engaged count at 24 November goes from 0 to 1, which the thresholds pack's "exactly one
    engaged" reads, so L-N1 is scored again."""
    path = tmp_path / "thresholds.toml"
    path.write_text(THRESHOLDS_PACK, encoding="utf-8")
    target = str(tmp_path / "h.duckdb")
    key = "fernbrook.io"
    people = [json.dumps({"event": "lead", "at": "2026-11-24T09:00:00Z", "lead": {
        "id": lead_id, "email": f"{lead_id.lower()}@fernbrook.io", "account_id": key, "title": "Analyst"}})
        for lead_id in ("L-N2", "L-N1")]
    held, late = datetime(2026, 11, 24, 9, tzinfo=UTC), datetime(2027, 3, 10, 10, tzinfo=UTC)
    opened = json.dumps({"event": "activity", "lead_id": "L-N2",
                         "activity": {"type": "email_open", "at": late.isoformat()}})
    demo = json.dumps({"event": "activity", "lead_id": "L-N2", "activity": {"type": "demo_request",
                                                                             "at": held.isoformat()}})
    with Engine(rulepacks=["firr-base", path], as_of=AS_OF) as engine:
        seed(target, engine)
        ingest(target, engine, people)
        times: list[datetime | None] = []
        entry = engine.account_entry

        def counted(lead: Any, as_of: datetime | None = None) -> Any:
            times.append(as_of)
            return entry(lead, as_of)

        engine.account_entry = counted  # type: ignore[method-assign]
        ingest(target, engine, [opened])
        assert held not in times and late in times
        with open_store(target) as store:
            assert store.lead_states(["L-N1"])["L-N1"].as_of == held
        before = account_signals(target, engine, key, held)["account.engaged_contacts"]
        times.clear()
        ingest(target, engine, [demo])
        # L-N2's part of the account at 24 November before and after the event, and L-N1's.
        assert times.count(held) == 3
        assert (before, account_signals(target, engine, key, held)["account.engaged_contacts"]) == (0, 1)
        with open_store(target) as store:
            states = store.lead_states(["L-N1", "L-N2"])
        assert states["L-N1"].as_of == late
        assert plain_scores(target, engine, ["L-N1", "L-N2"]) == {
            i: (s.total, s.band, s.route_action) for i, s in states.items()}


class LaterActivityExtractor:
    """A careless plugin extractor: it counts every activity as high intent, even those after the
    scoring time (it declares nothing, so the account pass runs it)."""

    @hookimpl
    def leadscore_signal_extractors(self):
        def extract(lead, ctx):
            yield Signal("intent.high.count_30d", len(lead.activities), None, "every activity")
        return [SignalExtractor("careless", extract)]


@pytest.mark.parametrize("careless", [False, True], ids=["installed", "careless-extractor"])
@settings(max_examples=40, deadline=None)
@given(lead_index=st.integers(0, len(LEAD_IDS) - 1), hours=HOURS, later=st.integers(1, 120 * 24),
       kind=st.sampled_from(EVENT_TYPES))
def test_a_leads_part_of_its_account_leaves_out_later_activities(careless, lead_index, hours, later, kind) -> None:
    """What a lead adds to its account at a time is the same with an activity after that time:
    ingest then skips working out the lead's part of the account at a contact's earlier time. It
    holds by construction (Engine.account_entry reads the lead as it stood then), even for an
    extractor that looks at every activity."""
    pm = PluginManager()
    if careless:
        pm.register(LaterActivityExtractor(), "careless")
    lead = list(read_leads(SAMPLES))[lead_index]
    at = AS_OF + timedelta(hours=hours)
    added = Activity(kind, at + timedelta(hours=later))
    with Engine(plugins=pm, as_of=AS_OF) as engine:
        was = engine.account_entry(lead, at)
        now = engine.account_entry(evolve(lead, activities=lead.activities.inserted(added)), at)
        until = engine.account_entry(evolve(lead, activities=lead.activities.until(at)), at)
    assert was == now == until  # (entries compare on everything an account summary reads)


def test_a_gate_on_a_moved_count_rescores_the_contacts_it_holds_back(tmp_path: Path) -> None:
    """Under the thresholds pack the engaged band asks for an engaged count other than 2, the mql
    band for 3 or more, and a rule for exactly 1: when a third colleague becomes engaged (and a
    fourth person joins), only the gates' comparisons change their truth, and the contact they held in the early band (its points
    are an mql's) is scored again into the mql band."""
    path = tmp_path / "thresholds.toml"
    path.write_text(THRESHOLDS_PACK, encoding="utf-8")
    target = str(tmp_path / "h.duckdb")

    def joins(lead_id: str, hour: int, title: str, kind: str) -> str:
        at = f"2026-11-24T{hour:02d}:00:00Z"
        return json.dumps({"event": "lead", "at": at, "lead": {
            "id": lead_id, "email": f"{lead_id.lower()}@fernbrook.io", "account_id": "fernbrook.io", "title": title,
            "company": {"employees": 300, "industry": "software"},
            "activities": [{"type": kind, "at": at}]}})

    with Engine(rulepacks=["firr-base", path], as_of=AS_OF) as engine:
        seed(target, engine)
        # Three people (the rule "three or more people" reads the count) of whom two are engaged.
        ingest(target, engine, [joins("L-N0", 9, "Analyst", "email_open"),
                                joins("L-N1", 9, "Marketing Manager", "webinar_attendance"),
                                joins("L-N2", 10, "Analyst", "webinar_attendance")])
        with open_store(target) as store:
            held = store.lead_states(["L-N1"])["L-N1"]
        assert held.band == "early" and held.total >= 60  # the gates hold it back: 2 engaged
        ingest(target, engine, [joins("L-N3", 11, "Analyst", "webinar_attendance")])
        with open_store(target) as store:
            states = store.lead_states(["L-N1", "L-N2", "L-N3"])
        assert states["L-N1"].as_of == datetime(2026, 11, 24, 11, tzinfo=UTC) and states["L-N1"].band == "mql"
        assert plain_scores(target, engine, list(states)) == {
            i: (s.total, s.band, s.route_action) for i, s in states.items()}


def account_signals(target: str, engine: Engine, key: str, as_of: datetime) -> dict[str, Any]:
    """The account's signals at ``as_of`` from its contacts' current snapshots."""
    with open_store(target) as store:
        states = store.lead_states_for_accounts([key])
        texts = store.snapshots(s.snapshot for s in states.values())
    leads = [lead_from_snapshot(texts[s.snapshot], i) for i, s in states.items()]
    return dict(engine.build_accounts(leads, as_of=as_of).signals_for(key))


def test_a_moved_senior_count_rescores_the_enterprise_contacts_only(tmp_path: Path) -> None:
    """The enterprise router reads the senior count for the enterprise pack's leads only: when a
    contact of a 2,400-person account becomes a VP, its enterprise colleagues are scored again,
    and a colleague whose record says 40 people (so firr-base alone, reading no account signal)
    keeps its card and time."""
    target = str(tmp_path / "h.duckdb")
    key, at = "quillstone-analytics.com", datetime(2026, 11, 24, 10, tzinfo=UTC)
    joins = json.dumps({"event": "lead", "at": "2026-11-24T09:00:00Z", "lead": {
        "id": "L-N1", "email": "dana.new@quillstone-analytics.com", "account_id": key,
        "title": "Analyst", "company": {"employees": 40},
        "activities": [{"type": "webinar_attendance", "at": "2026-11-24T09:00:00Z"}]}})
    promoted = '{"event":"update","lead_id":"L-1003","at":"2026-11-24T10:00:00Z","set":{"title":"VP Data Engineering"}}'
    enterprise = ["L-1001", "L-1002", "L-1004"]  # L-1003's colleagues at the account
    with Engine(as_of=AS_OF) as engine:
        seed(target, engine)
        ingest(target, engine, [joins])
        with open_store(target) as store:
            joined = store.lead_states(["L-N1"])["L-N1"]
            lead = lead_from_snapshot(store.snapshots([joined.snapshot])[joined.snapshot], "L-N1")
        assert joined.account_key == key and engine.packs_for(lead, joined.as_of) == {"firr-base"}
        before = account_signals(target, engine, key, at)
        done = ingest(target, engine, [promoted])
        assert [o.status for o in done.outcomes] == ["applied"]  # type: ignore[attr-defined]
        moved = {n for n, v in account_signals(target, engine, key, at).items() if before[n] != v}
        assert moved == {"account.senior_engaged_contacts"}
        with open_store(target) as store:
            after = store.lead_states([*enterprise, "L-N1", "L-1003"])
        assert {i for i in enterprise if after[i].as_of == at} == set(enterprise)
        assert after["L-N1"].as_of == joined.as_of == datetime(2026, 11, 24, 9, tzinfo=UTC)
        assert plain_scores(target, engine, [*enterprise, "L-N1", "L-1003"]) == {
            i: (s.total, s.band, s.route_action) for i, s in after.items()}


def test_a_router_scoped_to_a_pack_rescores_that_packs_contacts(tmp_path: Path) -> None:
    """A router reads the account's high-intent count for the large pack's leads only, and no
    rule reads it: when a colleague asks for a demo, the contact the large pack scores is scored
    again (its route follows the count), the other keeps its card and time."""
    target = str(tmp_path / "h.duckdb")
    with pack_engine("scoped-router", tmp_path) as engine:
        seed(target, engine)
        done = ingest(target, engine, [
            '{"event":"update","lead_id":"L-1009","at":"2026-11-24T10:00:00Z","set":{"company.employees":2400}}',
            '{"event":"activity","lead_id":"L-1010","activity":{"type":"demo_request","at":"2026-11-24T11:00:00Z"}}'])
        assert [o.status for o in done.outcomes] == ["applied"] * 2  # type: ignore[attr-defined]
        ids = ["L-1009", "L-1010", "L-1011"]  # brackenridge-freight.com; L-1009 grows into the large pack
        with open_store(target) as store:
            states = store.lead_states(ids)
        assert states["L-1009"].as_of == datetime(2026, 11, 24, 11, tzinfo=UTC)
        assert (states["L-1009"].route_action or "").startswith("large_account_surge_")
        assert states["L-1011"].as_of == AS_OF
        assert plain_scores(target, engine, ids) == {i: (s.total, s.band, s.route_action) for i, s in states.items()}


# A pack for large companies only, reading an account signal nothing else reads.
LARGE_PACK = """
[pack]
name = "large"
version = "1"
extends = ["firr-base"]
priority = 20
applies_when = { signal = "company.employees", gte = 1000 }

[categories.people]
label = "People at the account"
max = 10

[[rules]]
id = "large.five-people"
category = "people"
points = 10
reason = "Five or more people at the account"
when = { signal = "account.contacts", gte = 5 }
"""


def test_a_contact_that_changes_packs_reads_what_its_new_packs_read(tmp_path: Path) -> None:
    """A lead of a 650-person company grows past 1,000 people: the large pack now applies to it,
    so when a fifth person joins its account, its card (which now reads the people count) is
    scored again; its colleagues, still without the pack, keep theirs."""
    path = tmp_path / "large.toml"
    path.write_text(LARGE_PACK, encoding="utf-8")
    target = str(tmp_path / "h.duckdb")

    def joins(lead_id: str, hour: int) -> str:
        return json.dumps({"event": "lead", "at": f"2026-11-24T{hour:02d}:00:00Z", "lead": {
            "id": lead_id, "email": f"{lead_id.lower()}@brackenridge-freight.com",
            "account_id": "brackenridge-freight.com", "title": "Analyst"}})

    with Engine(rulepacks=["firr-base", path], as_of=AS_OF) as engine:
        seed(target, engine)
        done = ingest(target, engine, [
            joins("L-N1", 9),  # a fourth person: nothing the three contacts' packs read moves
            '{"event":"update","lead_id":"L-1009","at":"2026-11-24T10:00:00Z","set":{"company.employees":2400}}',
            joins("L-N2", 11)])  # a fifth: L-1009 now reads the count
        assert [o.status for o in done.outcomes] == ["applied"] * 3  # type: ignore[attr-defined]
        ids = ["L-1009", "L-1010", "L-1011", "L-N1", "L-N2"]
        with open_store(target) as store:
            states = store.lead_states(ids)
            latest = store.cards_for_leads(["L-1009"])["L-1009"][-1]
        assert states["L-1009"].as_of == datetime(2026, 11, 24, 11, tzinfo=UTC)
        assert "large.five-people" in {line["rule_id"] for line in latest.ledger or ()}
        assert {i for i in ("L-1010", "L-1011") if states[i].as_of > AS_OF} == set()
        assert plain_scores(target, engine, ids) == {i: (s.total, s.band, s.route_action) for i, s in states.items()}


def test_the_packs_of_a_lead_are_known_without_scoring_it(tmp_path: Path) -> None:
    with pack_engine("installed", tmp_path) as engine:
        for lead in read_leads(SAMPLES):
            card = next(engine.score([lead], as_of=AS_OF))
            assert engine.packs_for(lead, AS_OF) == {name for name, _ in card.packs}, lead.id


def card_in(engine: Engine, account: dict[str, Any], lead_id: str, as_of: datetime) -> tuple[Any, ...]:
    """The lead's card (total, band, route) scored from scratch with ``account`` (its leads by id)."""
    index = engine.build_accounts(account.values(), as_of=as_of)
    card = next(engine.score([account[lead_id]], as_of=as_of, accounts=index))
    return (card.total, card.band, None if card.route is None else card.route.action) if hasattr(card, "band") \
        else card.reason


def held_contacts_keep_their_card(engine: Engine, ingestor: Ingestor, lead_id: str,
                                  was: dict[str, tuple[Any, Any]]) -> None:
    """Every contact of the event's account(s) that the event left alone (its state untouched) has
    the same card at the event's scoring time with the account before the event as after it: the
    event would not have changed its card, so not scoring it again loses nothing."""
    now = {i: (e.lead, e.state) for i, e in ingestor.cache.items()}
    as_of = now[lead_id][1].as_of
    for key in {states[lead_id][1].account_key for states in (was, now) if lead_id in states} - {None}:
        before = {i: lead for i, (lead, s) in was.items() if s.account_key == key}
        after = {i: lead for i, (lead, s) in now.items() if s.account_key == key}
        for contact in sorted(before.keys() & after.keys() - {lead_id}):
            if was[contact][1] is now[contact][1]:
                assert card_in(engine, before, contact, as_of) == card_in(engine, after, contact, as_of), (
                    f"{contact} at {as_of}, after an event on {lead_id}")


@pytest.mark.parametrize("packs", PACK_PARAMS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, min_size=1, max_size=25), batch=st.integers(1, 25))
def test_ingest_gives_the_cards_that_scoring_from_scratch_gives(tmp_path_factory, seeded, packs, events,
                                                                batch) -> None:
    """The incremental path (only the touched lead, and its accounts' contacts whose card the event
    can change) leaves every stored lead, touched or not, with the card (total, band, route) that
    scoring all current leads from scratch gives at its stored time, whatever the kind, order,
    timing and batching of the events, under packs that read account signals (in every kind of
    comparison), packs that read few or none, and an undeclared plugin router. And a contact it
    leaves alone would have had the same card at the event's time had it been scored again."""
    folder, path = seeded(packs)
    target = tmp_path_factory.mktemp("ingest") / "h.duckdb"
    shutil.copy(path, target)
    lines = [event_line(*event) for event in events]
    with pack_engine(packs, folder) as engine, open_store(str(target)) as store:
        ingestor = Ingestor(store, engine, source="test", policy=AlertPolicy())
        parsed = [parse_event(line, f"events:{i}", i) for i, line in enumerate(lines, 1)]
        for start in range(0, len(parsed), batch):
            chunk = parsed[start:start + batch]
            ingestor.prepare(chunk)
            for event in chunk:
                was = {i: (e.lead, e.state) for i, e in ingestor.cache.items()}
                if ingestor.apply(event).status == "applied" and engine.needs_accounts:
                    held_contacts_keep_their_card(engine, ingestor, event.lead_id, was)
            ingestor.commit()
        current = {i: (s.total, s.band, s.route_action) for i, s in store.lead_states(LEAD_IDS + NEW_IDS).items()}
    with pack_engine(packs, folder) as engine:
        assert current == plain_scores(str(target), engine, LEAD_IDS + NEW_IDS)


def test_ledger_changes_name_what_appeared_disappeared_and_decayed() -> None:
    old = [{"rule_id": "a", "kind": "rule", "points": 10, "raw_points": 10, "reason": "A"},
           {"rule_id": "b", "kind": "rule", "points": 8, "raw_points": 10, "reason": "B"},
           {"rule_id": "c", "kind": "rule", "points": 5, "raw_points": 5, "reason": "C"}]
    new = [{"rule_id": "a", "kind": "rule", "points": 10, "raw_points": 10, "reason": "A"},
           {"rule_id": "b", "kind": "rule", "points": 4, "raw_points": 10, "reason": "B"},
           {"rule_id": "d", "kind": "rule", "points": 20, "raw_points": 20, "reason": "D"}]
    changes = ledger_changes(old, new)
    assert [(c.rule_id, c.what, c.delta) for c in changes] == [("d", "appeared", 20), ("c", "disappeared", -5),
                                                              ("b", "decayed", -4)]
    assert changes[2].text() == "-4 b: B (decayed 8 -> 4)"


def test_diff_of_two_revisions_of_one_pack(tmp_path: Path) -> None:
    candidate = tmp_path / "new"
    candidate.mkdir()
    (candidate / "firr-base.toml").write_text(FIRR.read_text().replace("min = 80\n", "min = 70\n", 1))
    pm = PluginManager(entry_points=False)
    with engine_for_packs(pm, [], "-r", as_of=AS_OF) as old, \
            engine_for_packs(pm, [str(candidate)], "--to", as_of=AS_OF) as new:
        report = compare(score_both(lambda: read_leads(SAMPLES), old, new, AS_OF),
                         ["early", "engaged", "mql", "sales_ready", "target_account"])
    assert report.leads == 46 and report.rejected == 0
    moved = [(c.lead_id, c.old_band, c.new_band, c.lines) for c in report.changed if c.old_band != c.new_band]
    assert moved and all(a == "mql" and b == "sales_ready" and lines == () for _, a, b, lines in moved)
    old_count, new_count = report.volume("sales_ready")
    assert new_count - old_count == len(moved)
    gate = parse_gate("sales_ready>+10%", report.bands)
    assert gate.failed(report)
    assert not parse_gate(f"sales_ready>+{len(moved)}", report.bands).failed(report)
    assert parse_gate("changed>1%").failed(report)


def test_diff_gates_are_checked_for_form_and_band() -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_gate("sales_ready up a lot")
    assert str(err.value) == ("--fail-if: 'sales_ready up a lot' is not a gate; write BAND>+10%, BAND<-5%, "
                              "BAND>+25 (a count) or changed>5%")
    with pytest.raises(ConfigurationError) as err:
        parse_gate("sales-ready>+1%", ["mql", "sales_ready"])
    assert str(err.value) == "--fail-if: 'sales-ready>+1%' names no band of these packs; use one of: mql, sales_ready, or changed"


@pytest.mark.parametrize(("line", "why"), [
    ('{"event": "activity", "lead_id": "L-1", "activity": {"properties": {"p": ' + '[' * 40 + ']' * 40 + '}}}',
     "nested more than 32 levels deep"),
    ('{"event": "activity", "lead_id": "L-1", "x": 1e400}', "a number beyond what a 64-bit float holds"),
])
def test_an_event_line_follows_the_readers_json_rules(line: str, why: str) -> None:
    from leadscore.errors import InputError

    with pytest.raises(InputError) as info:
        parse_event(line.encode(), "events.jsonl:3", 3)
    assert str(info.value).startswith(f"events.jsonl:3: not valid JSON ({why}")
