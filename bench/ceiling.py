#!/usr/bin/env python3
"""How fast the columnar engine could score a JSON Lines file here, bounded by what its parts cost.

    uv run python bench/ceiling.py --leads 200000                       # every installed pack
    uv run python bench/ceiling.py --leads 200000 --rulepack firr-base
    uv run python bench/ceiling.py --file g1m.jsonl
    uv run python bench/ceiling.py --file g1m.jsonl -r firr-base --block-mb 32

Two upper bounds on the leads a second of ``leadscore score --engine duckdb``, each from a
measurement on this machine, printed beside the rate the scan reached:

- **decoding**: the block decoder (msgspec and Python, ``leadscore.columnar.lines``) holds Python's
  lock, so it runs on one core however many there are. With the account pass (a pack reading
  ``account.*`` signals or ``same_account``) the file is read twice, but each block is decoded once:
  the scoring pass reads back the first pass's copy (``leadscore.columnar.scan.KeptBlocks``; with
  ``KEEP_BLOCKS`` off, every block is decoded twice). The decoder is timed alone over the file's
  blocks; the bound is ``10**6 / (decodings x microseconds a lead)``.
- **the machine**: the scan's whole CPU time (user and system, every thread: decoding, DuckDB,
  Python between them), spread over every core with none idle: ``cores x 10**6 / (CPU
  microseconds a lead)``.

A run cannot beat the lower of the two; how far it stays under it is the cost of the parts not
overlapping. The scan makes each card's output line but writes nothing (the CLI's writing, a few
percent, is left out). Generated leads: bench/generate.py, seed 7, written to a temporary folder.

``--steps`` scans the file once more with each block decoded in turn (no decoding ahead in a
thread), so the process's CPU clock read around each of the engine's timed steps (those
``LEADSCORE_COLUMNAR_TIMES=1`` prints, and the account pass's) is that step's own, DuckDB's threads
included, and prints the CPU microseconds a lead of each.

``--block-mb`` scans in blocks of that many MB of lines instead of the scan's 16: each block's
statements are planned anew (bench/statements.py), so the block's size sets how many leads share
that cost; its memory is what keeps the blocks at 16 MB (bench/README.md, sixteenth round).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from decode_instructions import generated  # the script beside this one: bench/generate.py's leads, seed 7

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)  # the scoring time the generated leads are written around


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--leads", type=int, default=50_000, help="generated leads to score (default 50,000)")
    source.add_argument("--file", type=Path, help="a JSON Lines file of leads instead")
    parser.add_argument("--rulepack", "-r", action="append", help="a rulepack (repeatable); default: every installed one")
    parser.add_argument("--steps", action="store_true", help="also the CPU time of each step, scanned once more in turn")
    parser.add_argument("--block-mb", type=int, help="blocks of this many MB of lines (default: the scan's, 16)")
    args = parser.parse_args(argv)
    if args.file is None and args.leads < 1:
        parser.error("--leads must be at least 1")
    if args.block_mb is not None and args.block_mb < 1:
        parser.error("--block-mb must be at least 1")
    if args.file is not None and not args.file.is_file():
        parser.error(f"--file {args.file}: no such file")
    return args


def decode_alone(path: Path, scorer: object, block_bytes: int | None = None) -> tuple[int, float]:
    """(leads, seconds of this thread's CPU) decoding every block of ``path`` as the scan does."""
    from leadscore.columnar import sql as q
    from leadscore.columnar.lines import decode_block
    from leadscore.columnar.scan import BLOCK_BYTES, line_blocks

    as_of_us = q.micros(AS_OF)
    leads, spent = 0, 0.0
    for first, lines in line_blocks(str(path), block_bytes or BLOCK_BYTES):
        started = time.thread_time()
        decode_block(lines, first, as_of_us, scorer.numeric_fields, scorer.reads_props, scorer.explain)
        spent += time.thread_time() - started
        leads += len(lines)
    return leads, spent


def scan(engine: object, path: Path, block_bytes: int | None = None) -> tuple[int, float, float]:
    """(cards and rejections, wall seconds, CPU seconds of the process) of the columnar scan of ``path``."""
    from leadscore.columnar.scan import scan_jsonl

    wall, cpu = time.perf_counter(), time.process_time()
    items = scan_jsonl(engine, str(path), path.name, AS_OF, explain=False, top=3, render="jsonl",
                       block_bytes=block_bytes)
    if items is None:
        _not_columnar(engine)
    count = sum(1 for _ in items)
    return count, time.perf_counter() - wall, time.process_time() - cpu


def _not_columnar(engine: object) -> None:
    sys.exit(f"ceiling.py: the columnar engine does not run these rulepacks: {getattr(engine, 'columnar_note', '')}")


def cpu_by_step(engine: object, path: Path, block_bytes: int | None = None) -> tuple[int, Counter[str]]:
    """(cards and rejections, CPU seconds by step) of a scan of ``path`` with each block decoded in
    turn. A step's CPU is its own: a step timed inside another (the decoding inside the wait for the
    next block, the stored signal step inside the account pass's) is taken out of the outer one."""
    from leadscore.columnar import accounts, engine as columnar_engine, scan as columnar_scan

    spent: Counter[str] = Counter()
    inside: list[str] = []

    @contextlib.contextmanager
    def timed(step: str) -> Iterator[None]:
        started = time.process_time()
        inside.append(step)
        try:
            yield
        finally:
            inside.pop()
            took = time.process_time() - started
            spent[step] += took
            if inside:
                spent[inside[-1]] -= took

    def step(name: str, fn: object) -> object:
        def run(*args: object, **kwargs: object) -> object:
            with timed(name):
                return fn(*args, **kwargs)
        return run

    patches = [(columnar_engine, "timed", timed), (columnar_scan, "timed", timed), (columnar_scan, "READ_AHEAD", False),
               (accounts.AccountPass, "add_sql", step("account rows", accounts.AccountPass.add_sql)),
               (accounts.AccountPass, "finish", step("account sums", accounts.AccountPass.finish))]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        started = time.process_time()
        count = scan(engine, path, block_bytes)[0]
        spent["(between the steps)"] = time.process_time() - started - sum(spent.values())
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
    return count, spent


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    from leadscore.engine import Engine
    from leadscore.plugins import PluginManager

    with tempfile.TemporaryDirectory(prefix="leadscore-ceiling-") as tmp:
        path = args.file if args.file is not None else generated(tmp, args.leads)
        with Engine(plugins=PluginManager(), rulepacks=args.rulepack, backend="duckdb") as engine:
            scorer = engine.columnar_scorer(AS_OF, explain=False, top=3, values=False, render="jsonl")
            if scorer is None:
                _not_columnar(engine)
            block_bytes = args.block_mb << 20 if args.block_mb else None
            leads, decoding = decode_alone(path, scorer, block_bytes)
            passes = 2 if engine.needs_accounts else 1
            from leadscore.columnar.scan import KEEP_BLOCKS
            decodings = 1 if KEEP_BLOCKS else passes
            scored, wall, cpu = scan(engine, path, block_bytes)
            steps = cpu_by_step(engine, path, block_bytes) if args.steps else None
    cores = len(os.sched_getaffinity(0))
    decode_us, cpu_us = decoding / leads * 1e6, cpu / scored * 1e6
    by_decoding, by_machine = 1e6 / (decodings * decode_us), cores * 1e6 / cpu_us
    packs = ", ".join(args.rulepack) if args.rulepack else "every installed pack"
    print(f"{scored:,} leads, {packs}, {passes} pass{'es' if passes > 1 else ''} over the file, each block decoded "
          f"{'once' if decodings == 1 else 'twice'}, {cores} cores")
    print(f"decoding alone:  {decode_us:6.1f} us a lead on one core -> at most {by_decoding:8,.0f} leads/s")
    print(f"the whole scan:  {cpu_us:6.1f} us of CPU a lead ({cpu_us - decodings * decode_us:.1f} besides decoding)"
          f" -> at most {by_machine:8,.0f} leads/s on {cores} cores")
    print(f"the scan ran at {scored / wall:,.0f} leads/s ({wall:.1f} s wall, {cpu:.1f} s CPU): "
          f"{scored / wall / min(by_decoding, by_machine):.0%} of the lower bound")
    if steps is not None:
        count, spent = steps
        total = sum(spent.values())
        print(f"CPU by step, each block decoded in turn ({total:.1f} s, {total / count * 1e6:.0f} us a lead):")
        for name, seconds in spent.most_common():
            print(f"  {name:<20} {seconds / count * 1e6:6.1f} us a lead  {seconds / total:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
