#!/usr/bin/env python3
"""Instructions per lead of the columnar engine's JSON Lines block decoder, counted by valgrind.

    uv run python bench/decode_instructions.py                  # 2,000 generated leads
    uv run python bench/decode_instructions.py --leads 5000 --props

Wall-clock figures of one step on this shared VM drift more than the changes worth making to it
(see instructions.py). This script runs, under ``valgrind --tool=cachegrind``, a child that reads
N generated leads (bench/generate.py, seed 7) and calls
``leadscore.columnar.lines.decode_block`` on them twice, and a child that only reads them; it
prints ``(count(decode) - count(read)) / (2 N)``. ``--props``: as for a plan that reads activity
properties (they are then written as JSON). Compare two commits by running it in each checkout.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import generate  # bench/generate.py: a script imports the scripts beside it
from instructions import valgrind_count

# 2026-11-23T00:00:00Z in microseconds: the scoring time the generated leads are written around.
AS_OF_US = 1_795_392_000_000_000
_CHILD = """
import sys
from leadscore.columnar.lines import decode_block
lines = open(sys.argv[1], "rb").read().split(b"\\n")[:-1]
if sys.argv[2] == "decode":
    for _ in range(2):
        decode_block(lines, 1, {as_of}, {{}}, sys.argv[3] == "1")
"""


def count(leads: Path, mode: str, props: bool) -> int:
    args = ["-c", _CHILD.format(as_of=AS_OF_US), str(leads), mode, "1" if props else "0"]
    return valgrind_count(args, f"decode_instructions.py: the {mode} run")


def arguments(doc: str, default: int, argv: list[str] | None) -> argparse.Namespace:
    """``--leads N`` and ``--props``, the options of this script and of block_memory.py."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=default, help=f"leads to decode (default {default})")
    parser.add_argument("--props", action="store_true", help="write activity properties as JSON too")
    args = parser.parse_args(argv)
    if args.leads < 1:
        parser.error("--leads must be at least 1")
    return args


def generated(folder: str, leads: int) -> Path:
    """``leads`` generated leads (bench/generate.py, seed 7) as a JSON Lines file in ``folder``."""
    path = Path(folder) / "leads.jsonl"
    with path.open("w", encoding="utf-8") as out:
        generate.write_leads(leads, 7, out)
    return path


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, 2000, argv)
    if shutil.which("valgrind") is None:
        print("decode_instructions.py: valgrind is not on PATH; install it (apt install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="leadscore-decode-") as tmp:
        leads = generated(tmp, args.leads)
        per_lead = (count(leads, "decode", args.props) - count(leads, "read", args.props)) / (2 * args.leads)
    print(f"{per_lead:,.0f} instructions per lead in decode_block  ({args.leads:,} leads, properties "
          f"{'written' if args.props else 'not read'}, {platform.python_implementation()} {platform.python_version()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
