"""A longer fuzz campaign: the suite's fuzz tests with many more examples, then mutated files
through the installed `leadscore` command.

    uv run python bench/fuzz.py --examples 5000 --cli-runs 300 --seed 12

Part 1 runs core/tests/test_fuzz.py with ``--examples`` examples per test (FUZZ_EXAMPLES; the
suite runs 60). Part 2 writes ``--cli-runs`` mutated
JSON Lines, CSV and rulepack files and runs `leadscore score` (and `check` for packs) on each,
requiring for every run: no traceback, an exit code of 0, 1 or 2, every stderr line a single
line, and `scored N + rejected M == read N+M` where N is the number of rows written. Each finding
is printed with the file that caused it (kept under --out-dir). Results and figures go to
bench/README.md by hand.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "rulepacks" / "samples"
LEADSCORE = str(Path(sys.executable).parent / "leadscore")
SUMMARY = re.compile(r"^scored (\d+) \+ rejected (\d+)(?: \(see .*\))? == read (\d+)$")
TOKENS = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"\n", b"\r", b"\x00", b"\xff", b"\xe4", b"\\ud800",
          b"1e400", b"-0", b"NaN", b"9" * 400, b"[" * 60, b'{"a":' * 50, b"\x1b[2J", b'""', b"\t", b"=", b"nan",
          b"inf", b"(a+)+$", b"\\1", b"(?=", b"99999999999999999999", b"\xef\xbb\xbf"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            out.extend(rng.choice(TOKENS))
            continue
        at = rng.randrange(len(out))
        kind = rng.choice(("delete", "insert", "insert", "repeat", "replace", "swap_lines"))
        if kind == "delete":
            del out[at:at + rng.randint(1, 60)]
        elif kind == "insert":
            out[at:at] = rng.choice(TOKENS) if rng.random() < 0.7 else bytes(rng.randrange(256) for _ in range(4))
        elif kind == "repeat":
            out[at:at] = out[at:at + rng.randint(1, 80)] * rng.randint(1, 3)
        elif kind == "replace":
            out[at] = rng.randrange(256)
        else:
            lines = bytes(out).split(b"\n")
            rng.shuffle(lines)
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def run_suite(examples: int, seed: int) -> tuple[int, float, str]:
    env = {**os.environ, "FUZZ_EXAMPLES": str(examples)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "core" / "tests" / "test_fuzz.py"), "-q",
                           "-p", "no:cacheprovider", "-W", "ignore", f"--hypothesis-seed={seed}", "--hypothesis-show-statistics"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    return done.returncode, time.perf_counter() - started, done.stdout + done.stderr


def check_run(args: list[str], out_file: Path | None) -> str | None:
    """None when the run kept every promise, else what it broke."""
    try:
        done = subprocess.run([LEADSCORE, *args], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "no answer within 120 s (a hang)"
    if "Traceback" in done.stderr:
        return "traceback: " + done.stderr.strip().splitlines()[-1]
    if done.returncode not in (0, 1, 2):
        return f"exit code {done.returncode}"
    if any("\x1b" in line or "\r" in line for line in done.stderr.splitlines()):
        return "a control character reached stderr"
    if args[0] != "score" or done.returncode == 2:
        return None
    lines = done.stderr.splitlines()
    found = SUMMARY.match(lines[-1]) if lines else None
    if found is None:
        return f"no summary line: {lines[-1] if lines else '(nothing)'}"
    scored, rejected, read = map(int, found.groups())
    if scored + rejected != read:
        return f"summary does not add up: {lines[-1]}"
    written = len(out_file.read_bytes().splitlines()) if out_file is not None and out_file.exists() else 0
    if written != scored:
        return f"{written} rows written for {scored} scored"
    return None


def run_cli(runs: int, seed: int, out_dir: Path) -> tuple[list[str], float, dict[str, int]]:
    rng = random.Random(seed)
    sources = {"jsonl": (SAMPLES / "leads.jsonl").read_bytes(), "csv": (SAMPLES / "leads.csv").read_bytes(),
               "toml": (ROOT / "core/src/leadscore/rulepacks/firr-base.toml").read_bytes()}
    findings: list[str] = []
    codes: dict[str, int] = {}
    started = time.perf_counter()
    for number in range(runs):
        kind = rng.choice(("jsonl", "jsonl", "csv", "toml"))
        case = out_dir / f"case-{number}.{kind}"
        case.write_bytes(mutate(sources[kind], rng))
        out = out_dir / "out.jsonl"
        out.unlink(missing_ok=True)
        if kind == "toml":
            # The mutated base pack replaces the shipped one, as a team's own copy would.
            text = case.read_bytes().replace(b'name = "firr-base"', b'name = "fuzzed"')
            case.write_bytes(text)
            args = ["score", str(SAMPLES / "leads.jsonl"), "-r", str(case), "--as-of", "2026-11-23", "-o", str(out)]
            problem = check_run(["check", str(case)], None) or check_run(args, out)
        else:
            args = ["score", str(case), "--as-of", "2026-11-23", "-o", str(out), "--format", "jsonl"]
            if rng.random() < 0.3 and importlib.util.find_spec("durable_rules_engine") is not None:
                args += ["--engine", "durable"]
            problem = check_run(args, out)
        codes[kind] = codes.get(kind, 0) + 1
        if problem is None:
            case.unlink()
        else:
            findings.append(f"{case}: {problem}")
            print(f"finding: {case}: {problem}", file=sys.stderr)
    return findings, time.perf_counter() - started, codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis examples per fuzz test")
    parser.add_argument("--cli-runs", type=int, default=300, help="mutated files run through the command")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--out-dir", type=Path, help="where failing inputs are kept (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="leadscore-fuzz-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    code, suite_seconds, report = run_suite(args.examples, args.seed)
    events = [line.strip() for line in report.splitlines() if "%," in line or line.strip().startswith("- ")]
    print(f"fuzz tests, {args.examples} examples each, seed {args.seed}: "
          f"{'passed' if code == 0 else 'FAILED'} in {suite_seconds:.0f} s")
    if code != 0:
        print(report)
    findings, cli_seconds, kinds = run_cli(args.cli_runs, args.seed, out_dir)
    print(f"command runs on mutated files: {args.cli_runs} ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) "
          f"in {cli_seconds:.0f} s, {len(findings)} findings (inputs kept in {out_dir})")
    for finding in findings:
        print(f"  {finding}")
    if args.json:
        args.json.write_text(json.dumps({"examples": args.examples, "seed": args.seed, "suite_passed": code == 0,
                                         "suite_seconds": round(suite_seconds), "cli_runs": args.cli_runs,
                                         "cli_seconds": round(cli_seconds), "findings": findings,
                                         "events": events}, indent=2))
    sys.exit(0 if code == 0 and not findings else 1)


if __name__ == "__main__":
    main()
