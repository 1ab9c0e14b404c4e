#!/usr/bin/env python3
"""Per-event latency and throughput of ``leadscore ingest`` on a history of many leads.

    uv run python bench/bench_ingest.py --leads 100000 --events 5000
    uv run python bench/bench_ingest.py --leads 100000 --events 300 --batch 1     # one event per commit
    uv run python bench/bench_ingest.py --history postgresql://... --leads 100000   # a server you run

Builds the history once (``leadscore score --history`` over generated leads, timed; ``--reuse``
skips this when the target already holds those leads), then applies generated events through
:class:`leadscore.history.ingest.Ingestor` in batches, as the command does. It prints, per
event, the time to apply it (read the lead from the working set, change it, rescore it and its
account when account signals it reads move, decide alerts) and the time until it is acknowledged
(from reading its batch to the batch's commit: what a producer waits for before the event is
durable), as p50 / p95 / p99 / max, the apply time's CPU time (the work without the waits for a
core) and the apply time by the size of the event's account; per batch, the time to read what
the batch touches (prepare) and to commit it; and the end-to-end throughput, everything included.

``--count`` also counts the work of each event, which does not depend on the machine's load: the
cards scored (the touched lead's and each contact's scored again) and the account entries made
(what a lead adds to its account at one time, :meth:`Engine.account_entry`), as total, mean and
p50 / p95 / p99 / max per event. (The counters add a call per card and entry: time without them.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = "2026-11-23T00:00:00Z"
TYPES = ("page_view", "email_open", "email_click", "pricing_page_visit", "content_download", "demo_request",
         "webinar_attendance", "case_study_view", "contact_sales", "comparison_page_visit")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(ms: list[float]) -> str:
    return (f"p50 {percentile(ms, 0.50):.2f} ms, p95 {percentile(ms, 0.95):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
            f"max {max(ms):.2f} ms, mean {statistics.fmean(ms):.2f} ms")


SIZE_GROUPS = ("1", "2-3", "4-5", "6+")


def _size_group(size: int) -> str:
    return "1" if size == 1 else "2-3" if size <= 3 else "4-5" if size <= 5 else "6+"


def make_events(lead_ids: list[str], count: int, seed: int) -> list[str]:
    """Activities on known leads (most), field changes and new leads, a few out of order."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    lines = []
    for i in range(count):
        at = start + timedelta(minutes=i) - timedelta(hours=rng.choice((0, 0, 0, 0, 30)))
        roll = rng.random()
        if roll < 0.85:
            lines.append(json.dumps({"event": "activity", "id": f"b{seed}-{i}", "lead_id": rng.choice(lead_ids),
                                     "activity": {"type": rng.choice(TYPES), "at": at.isoformat()}}))
        elif roll < 0.97:
            lines.append(json.dumps({"event": "update", "id": f"b{seed}-{i}", "lead_id": rng.choice(lead_ids),
                                     "at": at.isoformat(), "set": {"title": rng.choice(("VP Sales", "CMO", "Analyst"))}}))
        else:
            lines.append(json.dumps({"event": "lead", "id": f"b{seed}-{i}", "at": at.isoformat(),
                                     "lead": {"id": f"N-{i}", "email": f"new{i}@example-{i % 50}.com", "title": "Director"}}))
    return lines


def main() -> None:
    # The generated leads (and the history, unless --history names one) go in a folder removed at the end.
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        run(folder)


def run(folder: str) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events-seed", type=int, help="seed of the events (default: --seed); another one "
                        "sends new events to a --reuse'd history")
    parser.add_argument("--history", help="existing target to build in (default: a DuckDB file in a temp dir)")
    parser.add_argument("--reuse", action="store_true",
                        help="the --history target already holds these leads (same --leads and --seed): do not build")
    parser.add_argument("--count", action="store_true",
                        help="also count the cards scored and the account entries made per event")
    args = parser.parse_args()

    from leadscore import Engine
    from leadscore.history import open_store
    from leadscore.history.alerts import AlertPolicy
    from leadscore.history.ingest import Ingestor, parse_event

    target = args.history or os.path.join(folder, "history.duckdb")
    leads_path = os.path.join(folder, "leads.jsonl")
    subprocess.run([sys.executable, str(HERE / "generate.py"), "--leads", str(args.leads), "--seed", str(args.seed),
                    "-o", leads_path], check=True)
    if args.reuse and args.history:
        print(f"history: {args.leads:,} leads stored before (--reuse)")
    else:
        started = time.perf_counter()
        subprocess.run(["leadscore", "score", leads_path, "--as-of", AS_OF, "--history", target, "-o", os.devnull],
                       check=True, stderr=subprocess.DEVNULL)
        build = time.perf_counter() - started
        print(f"history: {args.leads:,} leads scored and stored in {build:.1f} s ({args.leads / build:,.0f} leads/s)")

    with open(leads_path) as handle:
        lead_ids = [json.loads(line)["id"] for line in handle]
    events = make_events(lead_ids, args.events, args.seed if args.events_seed is None else args.events_seed)
    apply_times: list[float] = []
    # CPU time of this thread per event: the work itself, without the waits for a core that a
    # shared machine adds to the wall-clock times.
    apply_cpu: list[float] = []
    ack_times: list[float] = []
    prepare_times: list[float] = []
    commit_times: list[float] = []
    by_size: dict[str, list[float]] = {}  # apply times by the size of the event's account
    alerts = 0
    with open_store(target) as store, Engine() as engine:
        cards_before = store.count("cards")
        ingestor = Ingestor(store, engine, source="bench", policy=AlertPolicy())
        work: dict[str, int] = {"cards": 0, "entries": 0}
        per_event: dict[str, list[int]] = {"cards": [], "entries": []}
        if args.count:
            count_calls(engine, "account_entry", work, "entries")
            count_calls(ingestor, "_card", work, "cards")
        # (An older checkout's Ingestor lacks it: this script also measures one, without the breakdown.)
        sizes = getattr(ingestor, "account_size", None)
        started = time.perf_counter()
        for start in range(0, len(events), args.batch):
            read = time.perf_counter()
            chunk = [parse_event(line, f"events:{start + i + 1}", start + i + 1)
                     for i, line in enumerate(events[start:start + args.batch])]
            t0 = time.perf_counter()
            ingestor.prepare(chunk)
            prepare_times.append(time.perf_counter() - t0)
            for event in chunk:
                c0 = time.thread_time()
                t0 = time.perf_counter()
                ingestor.apply(event)
                apply_times.append(time.perf_counter() - t0)
                apply_cpu.append(time.thread_time() - c0)
                for name in work:
                    per_event[name].append(work[name])
                    work[name] = 0
                if sizes is not None:
                    by_size.setdefault(_size_group(sizes(event.lead_id)), []).append(apply_times[-1])
            t0 = time.perf_counter()
            alerts += len(ingestor.commit())
            done = time.perf_counter()
            commit_times.append(done - t0)
            ack_times.extend([done - read] * len(chunk))
        total = time.perf_counter() - started
        cards = store.count("cards") - cards_before
    print(f"events: {len(events):,} (applied {ingestor.applied:,}, duplicate {ingestor.duplicates}, rejected "
          f"{ingestor.rejected}); {cards:,} new cards; {alerts} alerts; load average {os.getloadavg()[0]:.1f}")
    print("apply per event: " + spread([t * 1000 for t in apply_times]))
    print("apply per event, CPU time: " + spread([t * 1000 for t in apply_cpu]))
    for group in SIZE_GROUPS:
        if group in by_size:
            ms = [t * 1000 for t in by_size[group]]
            print(f"  apply, account of {group} lead{'' if group == '1' else 's'} ({len(ms):,} events): "
                  f"p50 {percentile(ms, 0.50):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms")
    print(f"acknowledged per event (batch read to commit, batches of {args.batch}): "
          + spread([t * 1000 for t in ack_times]))
    print(f"per batch of {args.batch}: prepare p50 {percentile(prepare_times, 0.5) * 1000:.1f} ms, commit p50 "
          f"{percentile(commit_times, 0.5) * 1000:.1f} ms (per event: "
          f"{(sum(prepare_times) + sum(commit_times)) / len(events) * 1000:.2f} ms)")
    print(f"throughput: {len(events) / total:,.0f} events/s end to end ({total:.1f} s)")
    if args.count:
        for name, what in (("cards", "cards scored"), ("entries", "account entries made")):
            counts = per_event[name]
            print(f"{what}: {sum(counts):,} ({statistics.fmean(counts):.2f} per event); per event p50 "
                  f"{percentile(counts, 0.5)}, p95 {percentile(counts, 0.95)}, p99 {percentile(counts, 0.99)}, "
                  f"max {max(counts)}")


def count_calls(owner: object, method: str, work: dict[str, int], name: str) -> None:
    """Count the calls of ``owner.method`` in ``work[name]`` (wrapped on the instance)."""
    real = getattr(owner, method)

    def counted(*args: object, **kwargs: object) -> object:
        work[name] += 1
        return real(*args, **kwargs)

    setattr(owner, method, counted)


if __name__ == "__main__":
    main()
