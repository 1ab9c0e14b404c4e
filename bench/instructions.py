#!/usr/bin/env python3
"""Instructions per lead for ``leadscore score``, counted by valgrind: a noise-free A/B measure.

    uv run python bench/instructions.py                      # 2,000 leads, firr-base
    uv run python bench/instructions.py --leads 5000 --rulepack firr-base

Wall-clock figures on a shared virtual machine drift by 15-30% from one minute to the next, which
hides a change worth 5%. The number of machine instructions the interpreter executes does not
drift: the same code and input give the same count to within about 0.2% (hash randomisation).
This script runs the real command, in-process under ``valgrind --tool=cachegrind``,

    leadscore score <leads> --as-of 2026-11-23T00:00:00Z --format jsonl -o /dev/null --engine python [--rulepack R]

once on the first lead of a generated file and once on all N of them, and prints
``(count(N) - count(1)) / (N - 1)``: start-up, imports and rulepack loading cancel out, reading,
scoring and writing remain. Lower is faster; compare two commits by running it in each checkout.
It needs valgrind on PATH (``apt install valgrind``); it is a developer tool, not a test. The leads
come from bench/generate.py (same seed, same leads as bench_score.py).
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import generate  # bench/generate.py: a script imports the scripts beside it

AS_OF = "2026-11-23T00:00:00Z"
# Runs the installed command's entry point in this interpreter (argv after -c is the command's).
_CHILD = "import sys; from leadscore_cli.main import main; sys.argv[0] = 'leadscore'; sys.exit(main())"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(leads: Path, rulepack: str | None) -> int:
    """Instructions valgrind counts for one ``leadscore score`` run over ``leads``."""
    # The python engine's count, whatever the file's size (`auto`, the default, takes the columnar
    # engine for large files).
    args = ["-c", _CHILD, "score", str(leads), "--as-of", AS_OF, "--format", "jsonl", "-o", "/dev/null",
            "--engine", "python"]
    if rulepack:
        args += ["--rulepack", rulepack]
    return valgrind_count(args, f"instructions.py: the run on {leads}")


def valgrind_count(args: list[str], run: str) -> int:
    """Instructions valgrind counts for this interpreter run with ``args``; ``run`` names it in an error."""
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.strip().splitlines()[-3:]
        raise SystemExit(f"{run} failed (exit {done.returncode}): {' | '.join(tail)}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=2000, help="leads to score (default 2000; at least 2)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7, as bench_score.py)")
    parser.add_argument("--rulepack", default="firr-base",
                        help="installed rulepack name or path (default firr-base; '' for every installed pack)")
    args = parser.parse_args(argv)
    if args.leads < 2:
        parser.error("--leads must be at least 2")
    if shutil.which("valgrind") is None:
        print("instructions.py: valgrind is not on PATH; install it (apt install valgrind) or use "
              "bench_score.py for wall-clock figures", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="leadscore-instr-") as tmp:
        many, one = Path(tmp) / "leads.jsonl", Path(tmp) / "first.jsonl"
        with many.open("w", encoding="utf-8") as out:
            generate.write_leads(args.leads, args.seed, out)
        with many.open(encoding="utf-8") as src:
            one.write_text(src.readline(), encoding="utf-8")
        small, large = count(one, args.rulepack), count(many, args.rulepack)
    per_lead = (large - small) / (args.leads - 1)
    print(f"{per_lead:,.0f} instructions per lead  ({args.leads:,} leads, rulepack {args.rulepack or 'all installed'}, "
          f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
