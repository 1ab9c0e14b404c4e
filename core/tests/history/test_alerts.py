"""Band-change alerts: crossings with hysteresis and cooldown, delivered once, webhooks retried."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from leadscore.errors import ConfigurationError
from leadscore.history import open_store
from leadscore.history.alerts import (
    AlertPolicy,
    StreamChannel,
    WebhookChannel,
    crossings,
    deliver,
    find_alerts,
    parse_duration,
)
from leadscore.history.store import StoredCard, StoredPack, utcnow

BANDS = [("early", 0), ("engaged", 30), ("mql", 60), ("sales_ready", 80)]
TABLE = {name: (rank, points) for rank, (name, points) in enumerate(BANDS)}
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def band_of(total: int) -> str:
    return [name for name, points in BANDS if total >= points][-1]


def cards(*totals: int, days: float = 1.0, lead: str = "L-1") -> list[StoredCard]:
    return [StoredCard(i + 1, lead, 0, None, T0 + timedelta(days=i * days), total, band_of(total), band_of(total),
                       None, None, {}, (f"+{total} reason",), None, "snap") for i, total in enumerate(totals)]


def fired(totals: tuple[int, ...], policy: AlertPolicy, days: float = 1.0) -> list[tuple[int, str | None, str]]:
    return [(a.run_id, a.from_band, a.to_band) for a in crossings(cards(*totals, days=days), policy, lambda _: TABLE)]


def test_upward_crossings_alert_once_each_and_downward_ones_do_not() -> None:
    assert fired((10, 40, 40, 85, 50, 65), AlertPolicy()) == [
        (2, "early", "engaged"), (4, "engaged", "sales_ready"), (6, "engaged", "mql")]


def test_named_bands_alert_on_entering_them_from_any_side() -> None:
    assert fired((10, 85, 65, 85), AlertPolicy(to_bands=("sales_ready",))) == [
        (2, "early", "sales_ready"), (4, "mql", "sales_ready")]
    assert fired((85, 65), AlertPolicy(to_bands=("mql",))) == [(2, "sales_ready", "mql")]


def test_hysteresis_a_dip_within_the_margin_does_not_re_alert() -> None:
    policy = AlertPolicy(to_bands=("sales_ready",), margin=10)
    # 85 alerts; 75 is a dip of 5 below 80 (within 10): returning to 82 is no new crossing.
    assert fired((65, 85, 75, 82), policy) == [(2, "mql", "sales_ready")]
    # 65 falls 15 below the threshold: the band re-arms and 90 alerts again.
    assert fired((65, 85, 65, 90), policy) == [(2, "mql", "sales_ready"), (4, "mql", "sales_ready")]
    # Without a margin every entry alerts.
    assert len(fired((65, 85, 75, 82), AlertPolicy(to_bands=("sales_ready",)))) == 2


def test_cooldown_holds_back_a_lead_for_its_duration() -> None:
    policy = AlertPolicy(cooldown=timedelta(days=7))
    # Cards a day apart: engaged on day 1, mql on day 2 (cooldown), sales_ready on day 8 (7 days later).
    assert fired((10, 40, 65, 65, 65, 65, 65, 65, 85), policy) == [(2, "early", "engaged"), (9, "mql", "sales_ready")]


def test_a_first_card_alerts_only_when_asked() -> None:
    assert fired((85,), AlertPolicy()) == []
    assert fired((85,), AlertPolicy(include_new=True)) == [(1, None, "sales_ready")]
    assert fired((10,), AlertPolicy(include_new=True)) == []


def test_durations() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1.5w") == timedelta(weeks=1.5)
    with pytest.raises(ConfigurationError) as err:
        parse_duration("a week")
    assert str(err.value) == "--cooldown: 'a week' is not a duration; write a number and a unit, such as 7d, 12h or 30m"


def _store_cards(target: str, totals_by_lead: dict[str, tuple[int, ...]]) -> None:
    """One run per position, each lead with the total at that position."""
    runs = max(len(t) for t in totals_by_lead.values())
    with open_store(target) as store:
        for i in range(runs):
            with store.transaction():
                run_id = store.new_run(kind="score", started_at=utcnow(), as_of=T0 + timedelta(days=i), engine="python",
                                       source="test", leadscore_version="0", with_ledger=False, bands=BANDS,
                                       packs=[StoredPack("p", "1", "h", "file p.toml", True, "[pack]")])
                rows = [c for lead, totals in totals_by_lead.items() if i < len(totals)
                        for c in [cards(*totals, lead=lead)[i]]]
                store.add_cards([StoredCard(run_id, c.lead_id, 0, None, c.as_of, c.total, c.band, c.points_band, None,
                                            None, {}, c.reasons, None, "snap") for c in rows])
                store.finish_run(run_id, scored=len(rows), rejected=0, finished_at=utcnow())


def test_delivery_is_recorded_so_asking_twice_sends_nothing_twice(history_target: str) -> None:
    _store_cards(history_target, {"L-1": (10, 85), "L-2": (40, 65, 90), "L-3": (50, 50)})
    with open_store(history_target) as store:
        out = io.StringIO()
        first = deliver(store, find_alerts(store, AlertPolicy()), StreamChannel(out))
        sent = [json.loads(line) for line in out.getvalue().splitlines()]
        assert (first.sent, first.failed, first.already) == (3, 0, 0)
        assert [(a["lead_id"], a["from_band"], a["to_band"], a["run_id"]) for a in sent] == [
            ("L-1", "early", "sales_ready", 2), ("L-2", "engaged", "mql", 2), ("L-2", "mql", "sales_ready", 3)]
        again = io.StringIO()
        second = deliver(store, find_alerts(store, AlertPolicy()), StreamChannel(again))
        assert (second.sent, second.already, again.getvalue()) == (0, 3, "")
        # --since restricts to crossings in that run and later.
        assert [a.run_id for a in find_alerts(store, AlertPolicy(), since_run=3)] == [3]
        records = store.alert_records()
        assert {r.status for r in records.values()} == {"sent"} and len(records) == 3


class _Hook(BaseHTTPRequestHandler):
    fail_next = 0
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).fail_next > 0:
            type(self).fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook():
    _Hook.fail_next = 0
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Hook
    server.shutdown()
    server.server_close()


def test_webhook_retries_then_delivers(history_target: str, webhook) -> None:
    url, hook = webhook
    _store_cards(history_target, {"L-1": (10, 85)})
    hook.fail_next = 2  # two 503s, then the third try succeeds
    with open_store(history_target) as store:
        report = deliver(store, find_alerts(store, AlertPolicy()), WebhookChannel(url, retries=3, sleep=lambda s: None))
        assert (report.sent, report.failed) == (1, 0)
        assert [a["to_band"] for a in hook.received] == ["sales_ready"]
        assert store.alert_records()["L-1@2.0:sales_ready"].channel == url


def test_a_failed_webhook_is_recorded_and_retried_on_the_next_call(history_target: str, webhook) -> None:
    url, hook = webhook
    _store_cards(history_target, {"L-1": (10, 85), "L-2": (10, 40)})
    hook.fail_next = 100
    with open_store(history_target) as store:
        channel = WebhookChannel(url, retries=1, sleep=lambda s: None)
        report = deliver(store, find_alerts(store, AlertPolicy()), channel)
        assert (report.sent, report.failed) == (0, 2)
        assert report.errors[0].endswith(f"{url}: HTTP 503 Service Unavailable")
        records = store.alert_records()
        assert {(r.status, r.attempts) for r in records.values()} == {("failed", 1)}
        hook.fail_next = 0
        report = deliver(store, find_alerts(store, AlertPolicy()), channel)
        assert (report.sent, report.failed, report.already) == (2, 0, 0)
        assert {(r.status, r.attempts) for r in store.alert_records().values()} == {("sent", 2)}
        assert sorted(a["lead_id"] for a in hook.received) == ["L-1", "L-2"]


def test_a_webhook_that_does_not_answer_times_out(history_target: str) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow"
    _store_cards(history_target, {"L-1": (10, 85)})
    try:
        with open_store(history_target) as store:
            report = deliver(store, find_alerts(store, AlertPolicy()), WebhookChannel(url, timeout=0.3, retries=0))
            assert report.failed == 1 and "timed out" in report.errors[0]
    finally:
        listener.close()


def test_a_webhook_must_be_http() -> None:
    with pytest.raises(ConfigurationError) as err:
        WebhookChannel("ftp://example.com/x")
    assert str(err.value) == "--webhook: 'ftp://example.com/x' is not an http(s) URL; give a URL such as https://hooks.example.com/leads"
