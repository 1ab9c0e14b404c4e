#!/usr/bin/env python3
"""End-to-end benchmark of ``leadscore score``: wall time, throughput and peak memory per input size.

    uv run python bench/bench_score.py --sizes 10000,100000
    uv run python bench/bench_score.py --sizes 10000,100000,1000000 --engine python --repeat 3
    uv run python bench/bench_score.py --sizes 20000 --engines 'spark:local[1],spark:local[2]' --rulepack firr-base

For each size it generates the leads once with bench/generate.py (cached in bench/out/, which git
ignores; the cache key includes a hash of the generator, so editing it invalidates the cache), then
runs the command exactly as a user would, in its own process:

    leadscore score <leads> --as-of 2026-11-23T00:00:00Z --format jsonl -o <scores> [--engine E]

The ``leadscore`` executable is the one next to this interpreter (the same virtual environment).
Time is wall-clock from spawn to exit, start-up and plugin loading included; the best of
``--repeat`` runs is reported. Peak RSS is the child's own high-water mark, from the rusage
``os.wait4`` returns for that child (so runs never mix), the highest over the repeats. Each run must
exit 0 and write one output line per input lead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "generate.py"
DEFAULT_OUT = HERE / "out"
AS_OF = "2026-11-23T00:00:00Z"
# Targets per engine (issue 3 for python, issue 15 for the columnar engine with firr-base).
TARGETS = {"python": 10_000, "duckdb": 40_000}


@dataclass
class Run:
    seconds: float
    max_rss_kib: int


@dataclass
class Result:
    leads: int
    engine: str
    runs: list[Run]
    rejected: int
    digest: str = ""

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def peak_mib(self) -> float:
        return max(r.max_rss_kib for r in self.runs) / 1024

    @property
    def rate(self) -> float:
        return self.leads / self.best if self.best else float("inf")


# --- the machine ----------------------------------------------------------------------------------



def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it (shorter), else as given."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)

def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cpu": cpu,
        "cores": f"{cores} logical ({usable} usable)",
        "memory": memory,
        "leadscore": _leadscore_version(),
        "commit": _git_commit(),
    }


def _leadscore_version() -> str:
    try:
        done = subprocess.run([str(leadscore_executable()), "--version"], capture_output=True, text=True,
                              timeout=60, env=_child_env())
        return done.stdout.strip() or done.stderr.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" if head else "unknown"


# --- inputs -----------------------------------------------------------------------------------------


def generator_hash() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:10]


def leads_file(n: int, seed: int, out_dir: Path) -> Path:
    """The cached input for ``n`` leads, generated (atomically) if missing."""
    path = out_dir / f"leads-{n}-seed{seed}-{generator_hash()}.jsonl"
    if path.exists():
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("leads-*-seed*-*.jsonl"):  # made by an older generator: never reused
        if not stale.name.endswith(f"-{generator_hash()}.jsonl"):
            stale.unlink()
    print(f"generating {n:,} leads -> {_shown(path)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        subprocess.run([sys.executable, str(GENERATOR), "--leads", str(n), "--seed", str(seed), "-o", tmp],
                       check=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a cache is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"  generated in {time.perf_counter() - start:.1f} s ({path.stat().st_size / 2**20:,.0f} MiB)",
          file=sys.stderr, flush=True)
    return path


def part_files(path: Path, parts: int) -> Path:
    """``path`` cut at line ends into ``parts`` files of about equal size, in a directory next to it
    (cached like the file): the lakehouse layout the Spark engine reads, a task per file."""
    folder = path.with_name(f"{path.stem}-{parts}parts")
    if folder.is_dir() and len(list(folder.glob("part-*.jsonl"))) == parts:
        return folder
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=folder.name, suffix=".tmp"))
    size = path.stat().st_size
    with open(path, "rb") as source:
        for i in range(parts):
            end = size * (i + 1) // parts
            with open(tmp / f"part-{i:05d}.jsonl", "wb") as out:
                while source.tell() < end:
                    out.write(source.readline())
    if folder.exists():
        for stale in folder.iterdir():
            stale.unlink()
        folder.rmdir()
    tmp.rename(folder)
    return folder


# --- one run ------------------------------------------------------------------------------------------


def leadscore_executable() -> Path:
    bindir = Path(sys.executable).parent
    for name in ("leadscore", "leadscore.exe"):
        if (bindir / name).exists():
            return bindir / name
    sys.exit(f"bench_score: no leadscore executable next to {sys.executable}; run `uv sync` and use `uv run`")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


RULEPACKS: tuple[str, ...] = ()


SAMPLE = HERE.parent / "rulepacks" / "samples" / "leads.jsonl"


def run_once(input_path: Path, output_path: Path, engine: str) -> tuple[Run, str]:
    """Run ``leadscore score`` once; return its wall time, peak RSS and stderr."""
    # "spark:local[2]": the Spark engine on that master (peak RSS is then the driver's alone: the
    # JVM and the Python workers are further processes).
    name, _, master = engine.partition(":")
    cmd = [str(leadscore_executable()), "score", str(input_path), "--as-of", AS_OF, "--format", "jsonl",
           "-o", str(output_path), "--engine", name, *(["--spark-master", master] if master else [])]
    for pack in RULEPACKS:
        cmd += ["--rulepack", pack]
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                env=_child_env())
        # wait4 gives this child's own rusage: no mixing with earlier children or the generator.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        sys.exit(f"bench_score: {' '.join(cmd)}\n  exited with {proc.returncode}:\n{tail}")
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    max_rss_kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return Run(seconds, max_rss_kib), stderr


def count_lines(path: Path) -> int:
    lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def bench_size(n: int, engine: str, repeat: int, seed: int, out_dir: Path, keep: bool,
               input_path: Path | None = None, parts: int = 0) -> Result:
    input_path = input_path or leads_file(n, seed, out_dir)
    if parts and engine.startswith("spark:"):
        input_path = part_files(input_path, parts)
    output_path = out_dir / f"scores-{n}-{engine}.jsonl"
    runs = []
    rejected = 0
    for i in range(repeat):
        run, stderr = run_once(input_path, output_path, engine)
        lines = count_lines(output_path)
        match = re.search(r"scored (\d+) \+ rejected (\d+)", stderr)
        rejected = int(match.group(2)) if match else 0
        assert lines == n, (f"{n:,} leads in, {lines:,} rows out ({rejected} rejected): every input lead must "
                            f"yield one output row\n{stderr}")
        print(f"  {n:>9,} leads  run {i + 1}/{repeat}: {run.seconds:7.2f} s  {n / run.seconds:9,.0f} leads/s  "
              f"{run.max_rss_kib / 1024:7.1f} MiB", file=sys.stderr, flush=True)
        runs.append(run)
    digest = _digest(output_path)
    if not keep:
        output_path.unlink(missing_ok=True)
    return Result(n, engine, runs, rejected, digest)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --- report -------------------------------------------------------------------------------------------


def report(results: list[Result], info: dict[str, str], args: argparse.Namespace,
           startups: dict[str, Result]) -> str:
    packs = "".join(f" --rulepack {p}" for p in RULEPACKS) or " (every installed rulepack)"
    lines = [f"leadscore score --engine E{packs} --as-of {AS_OF} --format jsonl "
             f"(best of {args.repeat}; seed {args.seed}; engines {', '.join(args.engines)})", ""]
    header = f"| {'engine':>7} | {'leads':>10} | {'seconds':>8} | {'leads/s':>9} | {'peak RSS MiB':>12} |"
    lines += [header, "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"]
    for r in results:
        lines.append(f"| {r.engine:>7} | {r.leads:>10,} | {r.best:>8.2f} | {r.rate:>9,.0f} | {r.peak_mib:>12.1f} |")
    lines.append("")
    for engine, startup in startups.items():
        lines.append(f"start-up, {engine} ({_shown(SAMPLE)}, {startup.leads} leads): {startup.best:.2f} s, "
                     f"{startup.peak_mib:.1f} MiB peak RSS")
    for engine in args.engines:
        mine = [r for r in results if r.engine == engine]
        if len(mine) >= 2:
            big, small = mine[-1], mine[0]
            marginal = (big.leads - small.leads) / (big.best - small.best) if big.best > small.best else float("inf")
            lines.append(f"{engine}: marginal rate {small.leads:,} -> {big.leads:,}: {marginal:,.0f} leads/s; "
                         f"peak RSS grows {big.peak_mib / small.peak_mib:.2f}x ({big.peak_mib - small.peak_mib:+.1f} MiB)")
    if len(args.engines) >= 2:
        base = args.engines[0]
        for n in sorted({r.leads for r in results}):
            by = {r.engine: r for r in results if r.leads == n}
            for engine in args.engines[1:]:
                if base in by and engine in by:
                    same = "identical output" if by[engine].digest == by[base].digest else "OUTPUT DIFFERS"
                    lines.append(f"{n:,} leads: {engine} is {by[engine].rate / by[base].rate:.2f}x {base} "
                                 f"({by[engine].rate:,.0f} vs {by[base].rate:,.0f} leads/s); {same}")
    if results:
        for engine in args.engines:
            mine = [r.rate for r in results if r.engine == engine]
            target = TARGETS.get(engine)
            if mine and target:
                worst = min(mine)
                verdict = "meets" if worst >= target else "misses"
                lines.append(f"{engine}: target >= {target:,} leads/s end to end: {verdict} (slowest size {worst:,.0f} leads/s)")
    lines += ["", "machine:"] + [f"  {k:<9} {v}" for k, v in info.items()]
    return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write sizes as numbers separated by commas, e.g. 10000,100000")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be 1 or more")
    return sorted(set(sizes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: uv run python bench/bench_score.py --sizes 10000,100000")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("10000,100000"),
                        help="comma-separated numbers of leads (default 10000,100000)")
    parser.add_argument("--engines", type=lambda t: [e.strip() for e in t.split(",") if e.strip()],
                        default=["python"], metavar="E[,E...]",
                        help="engines to run side by side, passed to leadscore score --engine: python, durable, "
                             "duckdb, spark:MASTER such as spark:local[2] (default python); the first is the base "
                             "of the ratios")
    parser.add_argument("--engine", dest="engines", type=lambda t: [t], help=argparse.SUPPRESS)
    parser.add_argument("--rulepack", action="append", default=[], metavar="NAME|PATH",
                        help="passed to leadscore score (repeatable); default: every installed rulepack")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the best time is reported (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT,
                        help="cache and scratch directory (default bench/out)")
    parser.add_argument("--no-startup", action="store_true", help="skip measuring the 1-lead start-up cost")
    parser.add_argument("--keep-output", action="store_true", help="keep the scores files in --out-dir")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--parts", type=int, default=0, metavar="N",
                        help="give spark engines the leads as a directory of N part files (a JSON Lines file is "
                             "one task on Spark, and one over 2 GiB is refused)")
    args = parser.parse_args(argv)
    global RULEPACKS
    RULEPACKS = tuple(args.rulepack)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if not hasattr(os, "wait4"):
        parser.error("this benchmark needs os.wait4 (Linux or macOS)")

    info = machine()
    print(f"leadscore: {leadscore_executable()} ({info['leadscore']})", file=sys.stderr, flush=True)
    for n in args.sizes:  # generate everything first, so generation never overlaps a timed run
        leads_file(n, args.seed, args.out_dir)
    for engine in args.engines:
        if engine not in ("python", "durable", "duckdb") and not engine.startswith("spark:"):
            parser.error(f"--engines: unknown engine {engine!r}; use python, durable, duckdb or spark:MASTER")
    startups: dict[str, Result] = {}
    if not args.no_startup:
        sample = count_lines(SAMPLE)
        for engine in args.engines:
            startups[engine] = bench_size(sample, engine, args.repeat, args.seed, args.out_dir, keep=False,
                                          input_path=SAMPLE)
    # Engines alternate within a size, so a drift in the machine's speed hits both alike.
    results = [bench_size(n, engine, args.repeat, args.seed, args.out_dir, args.keep_output, parts=args.parts)
               for n in args.sizes for engine in args.engines]
    print(report(results, info, args, startups))
    if args.json:
        payload = {
            "command": f"leadscore score LEADS --as-of {AS_OF} --format jsonl -o SCORES --engine E",
            "engines": args.engines, "repeat": args.repeat, "seed": args.seed, "parts": args.parts, "machine": info,
            "startup": {e: {"seconds": r.best, "peak_rss_mib": r.peak_mib} for e, r in startups.items()},
            "results": [{"leads": r.leads, "engine": r.engine, "best_seconds": r.best, "leads_per_s": r.rate,
                         "peak_rss_mib": r.peak_mib, "runs": [asdict(run) for run in r.runs]} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
