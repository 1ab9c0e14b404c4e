#!/usr/bin/env python3
"""Score the same generated leads with the python and durable backends, in-process, and compare speed.

    python bench/bench_backends.py                          # 20,000 leads, firr-base
    python bench/bench_backends.py --leads 50000 --repeat 5
    python bench/bench_backends.py --patterns               # firr-base plus three pattern rules

Leads come from bench/generate.py (deterministic for a seed) and are read into memory first, so
only scoring is timed: signal extraction, composition, matching, ledger, band and route, through
``leadscore.Engine`` exactly as ``leadscore score`` runs it. A second figure times the rule
matching step alone (the only step that differs between backends), on signals extracted
beforehand. Each backend is timed ``--repeat`` times, alternating, each run in a fresh
interpreter, and the best run counts (the machine's noise only ever slows a run down). The two
backends' score cards are compared too; a difference is an error.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from leadscore import Engine, PluginManager
from leadscore.io import card_to_dict
from leadscore.io.readers import read_leads
from leadscore.model import Rejection

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)  # generate.py's default --as-of

PATTERN_PACK = """\
[pack]
name = "bench-patterns"
version = "1.0.0"
extends = ["firr-base"]
priority = 10

[[rules]]
id = "intent.pricing-then-demo"
category = "intent"
points = 15
reason = "Asked for a demo within two weeks of looking at pricing"
when = { sequence = ["pricing_page_visit", ["demo_request", "contact_sales"]], within_days = 14 }

[[rules]]
id = "negative.opens-no-clicks"
category = "negative"
points = -5
reason = "Opens emails but never clicks"
when = { all = [
    { absent = "email_click", after = "email_open", within_days = 7 },
    { not = { signal = "email.type", eq = "business" } },
] }

[[rules]]
id = "intent.engaged-reader"
category = "intent"
points = 6
reason = "Opened five or more emails in the last 30 days"
when = { at_least = 5, of = "email_open", within_days = 30 }
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        durable = f"durable-rules {importlib.metadata.version('durable-rules')}"
    except importlib.metadata.PackageNotFoundError:
        durable = "durable-rules not installed"
    return (f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
            f"{platform.python_implementation()} {platform.python_version()}, {durable}")


def generate(count: int, seed: int, path: Path) -> None:
    generator = HERE / "generate.py"
    if not generator.exists():
        sys.exit(f"{generator} is missing: it writes the leads this benchmark scores")
    subprocess.run([sys.executable, str(generator), "--leads", str(count), "--seed", str(seed), "-o", str(path)],
                   check=True)


def load(path: str) -> list:
    return [lead for lead in read_leads(path) if not isinstance(lead, Rejection)]


def score(backend: str, rulepacks: list[str], path: str) -> tuple[float, list]:
    """Seconds to score every lead end to end, and the score cards as dicts."""
    leads = load(path)
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=rulepacks, backend=backend,
                as_of=AS_OF) as engine:
        engine.score_lead(leads[0])  # compose and compile outside the timing
        start = time.perf_counter()
        results = list(engine.score(leads))
        seconds = time.perf_counter() - start
    return seconds, [card_to_dict(c, explain=True) if not isinstance(c, Rejection) else c.reason for c in results]


def match_only(backend: str, rulepacks: list[str], path: str) -> tuple[float, None]:
    """Seconds to run just the backend's matcher over every lead, signals extracted beforehand."""
    leads = load(path)
    with Engine(plugins=PluginManager(entry_points=False), rulepacks=rulepacks, backend=backend,
                as_of=AS_OF) as engine:
        work = []
        for lead in leads:
            values = {name: signal.value for name, signal in engine.signals(lead, AS_OF).items()}
            _, matcher = engine.plan(engine.composer.select(values))
            work.append((matcher, values, lead.activities))
        start = time.perf_counter()
        for matcher, values, events in work:
            matcher.match(values, events, AS_OF)
        return time.perf_counter() - start, None


def fresh(task: tuple) -> tuple[float, list | None]:
    """Run one timing in a new interpreter.

    durable_rules allocates and frees a few hundred KB of C memory per session, so its speed
    depends on the allocator's history in the process (we saw the same matching run take 240 or
    760 µs per lead depending on what ran before it); every timing starts from the same state.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(*task).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=20000, help="leads to generate (default 20000)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per backend; the best counts (default 3)")
    parser.add_argument("--patterns", action="store_true", help="add a pack of sequence/absent/at_least rules")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "leads.jsonl"
        generate(args.leads, args.seed, data)
        leads = load(str(data))
        rulepacks = ["firr-base"]
        if args.patterns:
            pack = Path(tmp) / "bench-patterns.toml"
            pack.write_text(PATTERN_PACK, encoding="utf-8")
            rulepacks = [str(pack)]
        best: dict[str, float] = {}
        matching: dict[str, float] = {}
        cards: dict[str, list] = {}
        for _ in range(args.repeat):
            for backend in ("python", "durable"):
                seconds, cards[backend] = fresh((score, backend, rulepacks, str(data)))
                best[backend] = min(best.get(backend, seconds), seconds)
                seconds, _ = fresh((match_only, backend, rulepacks, str(data)))
                matching[backend] = min(matching.get(backend, seconds), seconds)

    same = cards["python"] == cards["durable"]
    activities = sum(len(lead.activities) for lead in leads) / len(leads)
    print(f"machine:   {machine()}")
    print(f"leads:     {len(leads):,} from bench/generate.py --leads {args.leads} --seed {args.seed} "
          f"({activities:.1f} activities per lead on average)")
    print(f"rulepacks: {', '.join(Path(r).stem for r in rulepacks)}{' (extends firr-base)' if args.patterns else ''}")
    print(f"timing:    best of {args.repeat} runs each, each in a fresh process, through leadscore.Engine")
    print()
    print(f"{'backend':<10}{'leads/s':>10}{'µs/lead':>10}{'matching µs/lead':>20}")
    for backend in ("python", "durable"):
        rate = len(leads) / best[backend]
        print(f"{backend:<10}{rate:>10,.0f}{1e6 / rate:>10,.0f}{1e6 * matching[backend] / len(leads):>20,.0f}")
    print()
    print(f"python is {best['durable'] / best['python']:.2f}x as fast as durable end to end and "
          f"{matching['durable'] / matching['python']:.1f}x as fast at matching; "
          f"identical score cards: {'yes' if same else 'NO'}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
