"""The process's memory as Linux reports it (/proc/self), for the memory benchmarks: a figure of
/proc/self/status in MiB, and the reset of its peak (``VmHWM``) to the resident size now; and what
a DuckDB connection says it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def status(field: str) -> int:
    """A /proc/self/status figure (``VmHWM``, ``VmRSS``, ...) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Start the peak (``VmHWM``) again from the resident size now (it also lowers what the kernel
    reports as the process's peak at its end, e.g. to /usr/bin/time)."""
    Path("/proc/self/clear_refs").write_text("5")


def duckdb_mib(con: Any) -> tuple[int, int]:
    """(MiB in memory, MiB spilled to temporary storage) by DuckDB's own accounting (duckdb_memory())."""
    held, spilled = con.execute("SELECT sum(memory_usage_bytes) // 1048576, sum(temporary_storage_bytes) // 1048576 "
                                "FROM duckdb_memory()").fetchall()[0]
    return int(held), int(spilled)
