"""Band-change alerts: edge-triggered on crossings, with hysteresis, a per-lead cooldown and delivery once.

Alerts are computed from a lead's stored cards in time order (so the same history and policy
always give the same alerts) and delivered through a channel; each delivery is recorded under the
alert's key, so asking again sends nothing twice, and a failed delivery is retried next time.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import IO, Any

from attrs import field, frozen

from leadscore.errors import ConfigurationError
from leadscore.history.changes import LineChange, ledger_changes
from leadscore.history.store import AlertRecord, HistoryStore, StoredCard, canonical_json, utcnow
from leadscore.io.timestamps import format_timestamp

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, option: str = "--cooldown") -> timedelta:
    """``7d``, ``12h``, ``30m``, ``90s`` or ``2w`` as a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigurationError(option, f"{text!r} is not a duration", "write a number and a unit, such as 7d, 12h or 30m")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@frozen
class AlertPolicy:
    """Which crossings alert.

    :param to_bands: alert when a lead enters one of these bands (from any other band); empty
        means any upward crossing.
    :param margin: hysteresis in points: after an alert into a band, the lead must fall more than
        ``margin`` points below that band's threshold before entering it alerts again (0: every
        crossing alerts).
    :param cooldown: after an alert, the lead's further crossings within this time do not alert.
    :param include_new: a lead's first stored card counts as entering its band from nowhere.
    """

    to_bands: tuple[str, ...] = ()
    margin: int = 0
    cooldown: timedelta | None = None
    include_new: bool = False


@frozen
class Alert:
    """One crossing to deliver."""

    key: str
    lead_id: str
    run_id: int
    seq: int
    as_of: datetime
    from_band: str | None
    to_band: str
    total: int
    previous_total: int | None
    route_action: str | None
    route_queue: str | None
    reasons: tuple[str, ...]
    card: StoredCard = field(eq=False, repr=False)
    previous: StoredCard | None = field(eq=False, repr=False)
    changes: tuple[LineChange, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {
            "alert": self.key, "lead_id": self.lead_id, "from_band": self.from_band, "to_band": self.to_band,
            "total": self.total, "previous_total": self.previous_total, "as_of": format_timestamp(self.as_of),
            "run_id": self.run_id, "route": {"action": self.route_action, "queue": self.route_queue},
            "reasons": list(self.reasons), "changes": [c.to_dict() for c in self.changes],
        }


Bands = Callable[[int], Mapping[str, tuple[int, int]]]
"""run id -> band name -> (rank, min points), from the bands stored with each run."""


def band_table(store: HistoryStore) -> Bands:
    cache: dict[int, dict[str, tuple[int, int]]] = {}

    def bands(run_id: int) -> Mapping[str, tuple[int, int]]:
        table = cache.get(run_id)
        if table is None:
            run = store.run(run_id)
            table = cache[run_id] = {} if run is None else {
                name: (rank, points) for rank, (name, points) in enumerate(run.bands)}
        return table

    return bands


def alert_key(card: StoredCard) -> str:
    return f"{card.lead_id}@{card.run_id}.{card.seq}:{card.band}"


def crossings(cards: Sequence[StoredCard], policy: AlertPolicy, bands: Bands) -> list[Alert]:
    """The alerts one lead's cards (oldest first) give under ``policy``."""
    out: list[Alert] = []
    disarmed: dict[str, int] = {}  # band -> threshold that must be undercut (by the margin) to re-arm
    last_alert: datetime | None = None
    previous: StoredCard | None = None
    for card in cards:
        table = bands(card.run_id)
        for band, threshold in list(disarmed.items()):
            if card.total < threshold - policy.margin:
                del disarmed[band]
        rank = table.get(card.band, (-1, 0))[0]
        if previous is None:
            crossed = policy.include_new and (rank > 0 or card.band in policy.to_bands)
        elif previous.band == card.band:
            crossed = False
        elif policy.to_bands:
            crossed = True
        else:
            crossed = rank > table.get(previous.band, (-1, 0))[0]
        wanted = crossed and (not policy.to_bands or card.band in policy.to_bands)
        if wanted and card.band not in disarmed and not (
                policy.cooldown is not None and last_alert is not None and card.as_of - last_alert < policy.cooldown):
            out.append(Alert(alert_key(card), card.lead_id, card.run_id, card.seq, card.as_of,
                             None if previous is None else previous.band, card.band, card.total,
                             None if previous is None else previous.total, card.route_action, card.route_queue,
                             card.reasons, card, previous))
            last_alert = card.as_of
            if policy.margin > 0:
                disarmed[card.band] = table.get(card.band, (0, card.total))[1]
        previous = card
    return out


def find_alerts(store: HistoryStore, policy: AlertPolicy, since_run: int | None = None) -> Iterator[Alert]:
    """Every alert in the history (in runs ``since_run`` and later), lead by lead."""
    bands = band_table(store)
    for _, cards in store.lead_histories(min_run=since_run):
        for alert in crossings(cards, policy, bands):
            if since_run is None or alert.run_id >= since_run:
                yield alert


def with_changes(alert: Alert, ledger: Callable[[StoredCard], Any]) -> Alert:
    """``alert`` with the ledger lines that moved the lead (when both ledgers can be had)."""
    new = ledger(alert.card)
    if new is None:
        return alert
    old = ledger(alert.previous) if alert.previous is not None else None
    if alert.previous is not None and old is None:
        return alert
    changes = [c for c in ledger_changes(old, new) if c.delta]
    return Alert(alert.key, alert.lead_id, alert.run_id, alert.seq, alert.as_of, alert.from_band, alert.to_band,
                 alert.total, alert.previous_total, alert.route_action, alert.route_queue, alert.reasons, alert.card,
                 alert.previous, tuple(changes))


# --- delivery ---------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A delivery that failed (its text is recorded and shown)."""


class StreamChannel:
    """Alerts as JSON Lines on a stream (standard output by default)."""

    name = "stdout"

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def send(self, payload: Mapping[str, Any]) -> None:
        self.stream.write(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.stream.flush()


class WebhookChannel:
    """A JSON POST per alert; retried with back-off on a connection error, a timeout or a 5xx/429."""

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("--webhook", f"{url!r} is not an http(s) URL", "give a URL such as https://hooks.example.com/leads")
        self.url = url
        self.name = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep

    def send(self, payload: Mapping[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Idempotency-Key": str(payload.get("alert", ""))})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) only)
                    response.read()
                return
            except urllib.error.HTTPError as err:
                problem = f"HTTP {err.code} {err.reason}"
                if err.code < 500 and err.code != 429:
                    break  # the receiver refuses this alert; retrying now would not help
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                reason = getattr(err, "reason", err)
                problem = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
        raise DeliveryError(f"{self.url}: {problem}")


@frozen
class DeliveryReport:
    sent: int
    failed: int
    already: int
    errors: tuple[str, ...]


def deliver(store: HistoryStore, alerts: Iterable[Alert], channel: Any) -> DeliveryReport:
    """Send every alert not yet delivered, recording each outcome (a failure is retried next time).

    Delivery is at least once: an alert is recorded right after it is sent, each in its own
    transaction.
    """
    sent = failed = already = 0
    errors: list[str] = []
    batch: list[Alert] = []

    def flush() -> None:
        nonlocal sent, failed, already
        records = store.alert_records(a.key for a in batch)
        for alert in batch:
            record = records.get(alert.key)
            if record is not None and record.status == "sent":
                already += 1
                continue
            payload = alert.payload()
            now = utcnow()
            try:
                channel.send(payload)
                status, error, delivered = "sent", None, now
                sent += 1
            except DeliveryError as err:
                status, error, delivered = "failed", str(err), None
                failed += 1
                errors.append(f"alert {alert.key}: {err}")
            with store.transaction():
                store.put_alert(AlertRecord(
                    alert.key, alert.lead_id, alert.run_id, alert.seq, alert.as_of, alert.from_band, alert.to_band,
                    channel.name, status, (record.attempts if record else 0) + 1, error, canonical_json(payload),
                    record.first_tried_at if record else now, delivered))
        batch.clear()

    for alert in alerts:
        batch.append(alert)
        if len(batch) >= 500:
            flush()
    flush()
    return DeliveryReport(sent, failed, already, tuple(errors))
