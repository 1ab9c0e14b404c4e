"""The durable backend under load and under failure: flat memory, no leaked threads, rulesets or sessions.

durable-rules keeps every session and ruleset in C memory until told to delete it, caps a ruleset
at 1,024 live sessions, and crashes when a session no action ran for is deleted; these tests hold
the adapter to cleaning up after every lead, every close and every error.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from leadscore import Engine, PluginManager
from leadscore.backends import get_backend
from leadscore.model import Activity, Company, Lead, ScoreCard

pytest.importorskip("durable_rules_engine", reason="the durable backend needs durable-rules (Python <= 3.12)")

from leadscore.backends import durable  # noqa: E402

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
STATUS = Path("/proc/self/status")
needs_proc = pytest.mark.skipif(not STATUS.exists(), reason="reads VmRSS from /proc/self/status (Linux)")


def rss_mib() -> float:
    gc.collect()
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def small_leads(count: int, start: int = 0) -> Iterator[Lead]:
    """Small, varied leads made one at a time (holding 100,000 of them would hide a leak)."""
    titles = ("VP Sales", "CEO", "Analyst", None)
    types = ("email_open", "pricing_page_visit", "demo_request", "page_view")
    for i in range(start, start + count):
        events = tuple(Activity(types[(i + k) % 4], AS_OF - timedelta(days=(i * 7 + k) % 50)) for k in range(i % 3))
        yield Lead(f"L-{i}", email="dana@acme.io" if i % 2 else "bob@gmail.com", title=titles[i % 4],
                   company=Company(domain="acme.io", employees=(i * 37) % 6000, country="US"), activities=events)


def durable_engine() -> Engine:
    return Engine(plugins=PluginManager(entry_points=False), rulepacks=["firr-base"], as_of=AS_OF, backend="durable")


def composed_and_matcher(engine: Engine) -> tuple[object, durable.DurableMatcher]:
    """firr-base has no applies_when, so every lead gets the one combination of always-on packs."""
    return engine.plan(engine.composer.always)


@pytest.mark.slow
@needs_proc
def test_100k_leads_in_one_process_keep_memory_flat():
    with durable_engine() as engine:
        scored = sum(isinstance(c, ScoreCard) for c in engine.score(small_leads(10_000)))
        after_10k = rss_mib()
        scored += sum(isinstance(c, ScoreCard) for c in engine.score(small_leads(90_000, start=10_000)))
        after_100k = rss_mib()
        assert composed_and_matcher(engine)[1].live_sessions == 0
    assert scored == 100_000
    assert after_100k - after_10k < 30, f"RSS grew from {after_10k:.1f} to {after_100k:.1f} MiB"


@pytest.mark.slow
@needs_proc
def test_backends_and_engines_created_and_closed_1000_times_leak_nothing():
    with durable_engine() as engine:
        composed, matcher = composed_and_matcher(engine)
        lead = next(small_leads(1, start=5))
        values = {name: s.value for name, s in engine.signals(lead).items()}
        expected = matcher.match(values, lead.activities, AS_OF)
    assert expected
    gc.collect()
    threads, rulesets, rss = threading.active_count(), durable.live_rulesets(), rss_mib()
    for _ in range(1000):
        backend = get_backend("durable")
        matcher = backend.compile(composed.rules, composed.key)
        assert matcher.match(values, lead.activities, AS_OF) == expected
        backend.close()
        assert matcher.closed
    for _ in range(50):
        with durable_engine() as engine:
            engine.score_lead(lead)
    gc.collect()
    assert threading.active_count() == threads
    assert durable.live_rulesets() == rulesets
    assert rss_mib() - rss < 30


class Injected(Exception):
    pass


def test_a_failure_while_reading_results_leaves_no_session(monkeypatch):
    with durable_engine() as engine:
        leads = list(small_leads(20))
        expected = [engine.score_lead(lead) for lead in leads]
        matcher = composed_and_matcher(engine)[1]

        def broken(*args, **kwargs):
            raise Injected("decoding failed")

        monkeypatch.setattr(durable.DurableMatcher, "_collect", broken)
        # More failures than the 1,024 sessions a ruleset can hold: each one must have been deleted.
        for lead in itertools.islice(itertools.cycle(leads), 1100):
            with pytest.raises(Injected):
                engine.score_lead(lead)
            assert matcher.live_sessions == 0
        monkeypatch.undo()
        assert [engine.score_lead(lead) for lead in leads] == expected


class FailingEngine:
    """The C module, except that one call raises after (or instead of) doing its work."""

    def __init__(self, real, name: str, after: bool) -> None:
        self.real, self.name, self.after = real, name, after

    def __getattr__(self, attr):
        function = getattr(self.real, attr)
        if attr != self.name:
            return function

        def call(*args):
            if self.after:
                function(*args)
            raise Injected(f"{attr} failed")

        return call


@pytest.mark.parametrize(("call", "after"), [
    ("assert_facts", True),             # the session exists but no action ever ran (the crash case)
    ("assert_facts", False),            # the session was never created
    ("start_action_for_state", False),
    ("complete_and_start_action", True),
])
def test_a_failing_engine_call_leaves_no_session(call, after):
    with durable_engine() as engine:
        leads = list(small_leads(10))
        expected = [engine.score_lead(lead) for lead in leads]
        matcher = composed_and_matcher(engine)[1]
        real = matcher.engine
        matcher.engine = FailingEngine(real, call, after)
        failures = 0
        for lead in itertools.islice(itertools.cycle(leads), 1100):
            try:
                engine.score_lead(lead)
            except Injected:
                failures += 1
            assert matcher.live_sessions == 0
        matcher.engine = real
        assert failures > 0
        assert [engine.score_lead(lead) for lead in leads] == expected
