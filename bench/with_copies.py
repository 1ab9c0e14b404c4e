"""Writes a JSON Lines leads file with copies of some of its leads, for ``--dedupe`` benchmarks.

Each lead is copied with chance ``--share``; a copy has a changed title, the first few of the lead's
activities and one more, and goes anywhere in the file (before or after the lead). Deterministic
for the same input, ``--share`` and ``--seed``. Reads the whole input into memory (about 2.2 KB a
generated lead).

    uv run python bench/with_copies.py g200k.jsonl -o d200k.jsonl          # 200,000 leads + 9,941 copies
"""

from __future__ import annotations

import argparse
import json
import random
import sys

EXTRA = [{"type": "demo_request", "at": "2026-11-20T10:00:00Z"},
         {"type": "pricing_page_visit", "at": "2026-11-21T09:30:00Z"}]


def with_copies(lines: list[str], share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = list(lines)
    for line in lines:
        if rng.random() < share:
            lead = json.loads(line)
            lead["title"] = rng.choice(["CEO", "Student", None, "VP Sales"])
            lead["activities"] = lead.get("activities", [])[: rng.randint(0, 5)] + [rng.choice(EXTRA)]
            out.insert(rng.randint(0, len(out)), json.dumps(lead))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a JSON Lines leads file (bench/generate.py's)")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--share", type=float, default=0.05, help="chance that a lead is copied (default 0.05)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    with open(args.source, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    out = with_copies(lines, args.share, args.seed)
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write("\n".join(out) + "\n")
    print(f"{args.output}: {len(lines)} leads + {len(out) - len(lines)} copies", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
