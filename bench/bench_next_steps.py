#!/usr/bin/env python3
"""Cost of next steps (``explain --to``, ``score --next-steps``) per lead, beside plain scoring.

    uv run python bench/bench_next_steps.py --leads 500 --rulepack firr-base

Generates leads with bench/generate.py (seed 7), scores each as of 2026-11-23, then works out its
next steps to the band above its own, in-process. Prints milliseconds per lead for both, the ratio,
how many engine scorings a lead's next steps took on average, and the share of leads that got at
least one suggestion. Wall time: run it on a quiet machine and compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=500)
    parser.add_argument("--rulepack", "-r", action="append", help="rulepack(s) to use (default: every installed one)")
    args = parser.parse_args()

    from leadscore import Engine
    from leadscore.io import read_leads
    from leadscore.model import Lead
    from leadscore.next_steps import next_steps

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "leads.jsonl"
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--leads", str(args.leads), "--seed", "7",
                        "-o", str(path)], check=True)
        leads = [lead for lead in read_leads(path) if isinstance(lead, Lead)]
    as_of = datetime(2026, 11, 23, tzinfo=timezone.utc)
    with Engine(rulepacks=args.rulepack, as_of=as_of) as engine:
        calls = 0
        scoring = engine._score

        def counted(*a, **k):
            nonlocal calls
            calls += 1
            return scoring(*a, **k)

        started = time.perf_counter()
        for lead in leads:
            engine.score_lead(lead)
        score_ms = (time.perf_counter() - started) / len(leads) * 1000
        engine._score = counted
        started = time.perf_counter()
        helped = 0
        for lead in leads:
            steps = next_steps(engine, lead)
            helped += bool(steps.options)
        steps_ms = (time.perf_counter() - started) / len(leads) * 1000
    print(f"{len(leads)} leads, rulepacks {', '.join(args.rulepack or ['(installed)'])}, "
          f"CPython {platform.python_version()}, {platform.machine()}")
    print(f"score: {score_ms:.2f} ms/lead; next steps to the band above: {steps_ms:.2f} ms/lead "
          f"({steps_ms / score_ms:.0f}x), {calls / len(leads):.1f} scorings/lead, "
          f"{helped / len(leads):.0%} of leads got a suggestion")


if __name__ == "__main__":
    main()
