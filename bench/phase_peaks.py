#!/usr/bin/env python3
"""Run ``leadscore`` with the peak resident memory of each phase of a columnar scan with the
account pass: the pass reading the file, its sums (``AccountPass.finish``), the scoring pass.

    uv run python bench/phase_peaks.py score g10m.jsonl --engine duckdb --as-of 2026-11-23 -o d.jsonl

The arguments are the CLI's. Each phase's peak is the kernel's high-water mark of the process's
resident size (``VmHWM``), reset at each phase's start (``/proc/self/clear_refs``, Linux only);
the phases' lines go to stderr as ``[phase] ...``. The reset also lowers what ``/usr/bin/time``
reports as the run's peak: with this script the run's peak is the largest of the phases'.
"""

from __future__ import annotations

import atexit
import sys
import time

from leadscore.columnar import accounts

STARTED = time.time()


def _status(key: str) -> int:
    """The process's ``key`` line of /proc/self/status, in MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{key}:")) // 1024


def _phase(name: str) -> None:
    print(f"[phase] {name}: peak {_status('VmHWM')} MiB, resident {_status('VmRSS')} MiB at "
          f"{time.time() - STARTED:.0f} s", file=sys.stderr)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # the high-water mark starts again from the resident size


def main() -> None:
    finish = accounts.AccountPass.finish

    def timed_finish(self: accounts.AccountPass, *args: object, **kwargs: object) -> accounts.SqlAccounts:
        _phase("account pass")
        try:
            return finish(self, *args, **kwargs)
        finally:
            _phase("sums")

    accounts.AccountPass.finish = timed_finish  # type: ignore[method-assign]
    atexit.register(_phase, "scoring pass (or the whole run, without the account pass)")
    from leadscore_cli.main import main as cli

    sys.argv[0] = "leadscore"
    cli()


if __name__ == "__main__":
    main()
