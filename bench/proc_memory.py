"""The process's memory as Linux reports it (/proc/self), for the memory benchmarks: a figure of
/proc/self/status in MiB, and the reset of its peak (``VmHWM``) to the resident size now."""

from __future__ import annotations

from pathlib import Path


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
