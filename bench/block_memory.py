#!/usr/bin/env python3
"""Memory of one block of the columnar engine's JSON Lines decoder: what decoding a block costs
at its peak, against the Arrow columns it leaves.

    uv run python bench/block_memory.py                     # 12,000 generated leads (a 24 MB block)
    uv run python bench/block_memory.py --leads 12000 --props

A child process reads N generated leads (bench/generate.py, seed 7) and calls
``leadscore.columnar.lines.decode_block`` on them once, as the engine decodes one block of the
scan (``leadscore.columnar.scan.BLOCK_BYTES`` of lines, about 12,000 generated leads). It prints
the resident memory before and after, the process's peak and the size of the Arrow columns made,
then (in a second child, as tracemalloc's records take memory of their own) the peak of Python's
own allocations. ``--props``: as for a plan that reads
activity properties (the segment plugins' packs), which are then written as JSON text.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from decode_instructions import AS_OF_US, arguments, generated  # the script beside this one

_CHILD = """
import os, resource, sys, tracemalloc
from leadscore.columnar.lines import decode_block
def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
lines = open(sys.argv[1], "rb").read().split(b"\\n")[:-1]
before = resident()
if sys.argv[3] == "traced":  # tracemalloc's own records cost memory: the resident figures come untraced
    tracemalloc.start()
    decode_block(lines, 1, {as_of}, {{}}, sys.argv[2] == "1")
    print(f"Python's allocations peak {{tracemalloc.get_traced_memory()[1] / 2**20:.0f}} MiB")
    sys.exit()
block = decode_block(lines, 1, {as_of}, {{}}, sys.argv[2] == "1")
arrow = (block.leads.nbytes + block.activities.nbytes) / 2**20
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{{len(lines):,}} lines, {{block.activities.num_rows:,}} activities: resident {{before:.0f}} -> "
      f"{{resident():.0f}} MiB (process peak {{peak:.0f}} MiB), Arrow columns {{arrow:.0f}} MiB")
"""


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, 12000, argv)
    with tempfile.TemporaryDirectory(prefix="leadscore-block-") as tmp:
        leads = generated(tmp, args.leads)
        size = leads.stat().st_size / 2**20
        found = []
        for mode in ("plain", "traced"):
            done = subprocess.run([sys.executable, "-c", _CHILD.format(as_of=AS_OF_US), str(leads),
                                   "1" if args.props else "0", mode], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"block_memory.py: the child failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return 2
            found.append(done.stdout.strip())
    print(f"{size:.1f} MiB of JSON Lines, properties {'written' if args.props else 'not read'}: {'; '.join(found)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
