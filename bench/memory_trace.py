#!/usr/bin/env python3
"""Run ``leadscore`` in this process and write, every ``--every`` seconds, what holds its memory:
the resident size and its peak so far (the kernel's high-water mark: a rise between two samples
shows as a step in it), Arrow's allocated bytes, Python's allocated blocks and each DuckDB database's
memory by tag (in memory / in its temporary files) and its eviction queues' entries (and dead ones),
what glibc malloc's heap and DuckDB's jemalloc hold, with ``--stacks`` the other threads' last frames.

    uv run python bench/memory_trace.py --out trace.txt -- score g50k-leads.parquet \\
        --activities g50k-activities.parquet --engine duckdb --explain --as-of 2026-12-01 -o e.jsonl
    uv run python bench/memory_trace.py --memory-limit 160MB --out trace.txt -- score ...

The arguments after ``--`` are the CLI's. ``--memory-limit`` runs the columnar engine's scorer with
that DuckDB memory limit instead of its own. The last line of the trace is the highest resident size
sampled and the process's peak. DuckDB answers from a cursor of each connection the run opens, so a
figure is read when the running statement lets it: the resident size, its peak and Arrow's bytes
are read first, at the moment.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leadscore_cli.main import prefer_system_allocator  # imports no pyarrow

prefer_system_allocator()  # as leadscore's main() does, before pyarrow is imported

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proc_memory import status  # noqa: E402

_TAGS = ("SELECT list(tag || ':' || (memory_usage_bytes // 1048576) || '/' || (temporary_storage_bytes // 1048576)) "
         "FROM duckdb_memory() WHERE memory_usage_bytes + temporary_storage_bytes >= 1048576")
# The entries of the buffer pool's eviction queues, and how many are dead (of buffers freed since):
# a dead entry keeps its buffer's handle allocated (malloc) until DuckDB purges the queue, which it
# does for a queue of 32,768 entries or more (bench/README.md twenty-ninth round).
_QUEUES = "SELECT 'queued ' || sum(approximate_size) || ' dead ' || sum(dead_nodes) FROM duckdb_eviction_queues()"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _allocators() -> Callable[[], str]:
    """What the two allocators under the process hold, as a function giving one part of a sample's
    line: glibc malloc's heap (Python's larger objects, pyarrow on the system pool, DuckDB's C++
    objects: bytes in use, and free but kept) and DuckDB's own jemalloc (its buffers: bytes allocated,
    and resident). An empty text where either cannot be read (not glibc, a DuckDB built without it)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        [so] = Path(duckdb.__file__).parent.parent.glob("_duckdb*.so")
        je = ctypes.CDLL(str(so))
        mallctl = je.duckdb_je_mallctl
    except (OSError, AttributeError, ValueError):
        return lambda: ""

    def stat(name: str) -> int:
        value, size = ctypes.c_size_t(), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t))
        if mallctl(name.encode(), ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)):
            return -1
        return value.value >> 20

    def line() -> str:
        epoch = ctypes.c_uint64(1)  # jemalloc's statistics are as of the last epoch
        mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(ctypes.sizeof(epoch)))
        heap = libc.mallinfo2()
        return (f"  malloc in use {heap.uordblks >> 20} free {heap.fordblks >> 20} MiB  "
                f"jemalloc allocated {stat('stats.allocated')} resident {stat('stats.resident')} MiB")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the trace file")
    parser.add_argument("--every", type=float, default=0.25, help="seconds between samples")
    parser.add_argument("--memory-limit", help="the columnar scorer's DuckDB memory limit (e.g. 160MB); unlike "
                        "the CLI's --memory-limit, any size (for finding where a run stops fitting)")
    parser.add_argument("--stacks", action="store_true", help="each sample with the other threads' last frames")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the leadscore command's arguments")
    options = parser.parse_args()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args

    connections: list[Any] = []
    connect = duckdb.connect

    def recorded(*a: Any, **k: Any) -> Any:
        con = connect(*a, **k)
        connections.append(con)
        return con

    duckdb.connect = recorded
    if options.memory_limit:
        from leadscore.columnar.engine import ColumnarScorer

        init = ColumnarScorer.__init__

        def limited(self: Any, *a: Any, **k: Any) -> None:  # any limit, below the CLI's least too
            init(self, *a, **{**k, "memory_limit": options.memory_limit})

        ColumnarScorer.__init__ = limited  # type: ignore[method-assign]
    done = threading.Event()
    highest = 0
    allocators = _allocators()

    def sample(out: Any) -> None:
        nonlocal highest
        started = time.monotonic()
        me = threading.get_ident()
        while not done.wait(options.every):
            rss, peak = status("VmRSS"), status("VmHWM")
            arrow, blocks = pa.total_allocated_bytes() >> 20, sys.getallocatedblocks()
            highest = max(highest, rss)
            tags: list[Any] = []
            for con in list(connections):
                try:
                    cursor = con.cursor()
                    tags.append(cursor.execute(_TAGS).fetchall()[0][0])
                    tags.append(cursor.execute(_QUEUES).fetchall()[0][0])
                except duckdb.Error as err:  # closed, or busy past what a cursor may read
                    tags.append(type(err).__name__)
            out.write(f"{time.monotonic() - started:7.2f} s  rss {rss} MiB  peak {peak} MiB  arrow {arrow} MiB  "
                      f"python blocks {blocks}  duckdb {tags}{allocators()}\n")
            if options.stacks:
                for ident, frame in sys._current_frames().items():
                    if ident != me:
                        frames = traceback.extract_stack(frame)[-4:]
                        out.write("    " + " | ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}" for f in frames) + "\n")
            out.flush()

    from leadscore_cli.main import main as leadscore

    with options.out.open("w") as out:
        sampler = threading.Thread(target=sample, args=(out,), daemon=True)
        sampler.start()
        sys.argv = ["leadscore", *args]
        try:
            leadscore()
        except SystemExit as end:
            code = end.code
        else:
            code = 0
        finally:
            done.set()
            sampler.join()
            out.write(f"highest resident size sampled: {highest} MiB; the process's peak: {status('VmHWM')} MiB\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
