#!/usr/bin/env python3
"""Run ``leadscore`` with the peak resident memory of each phase of a columnar scan with the
account pass: the pass reading the file, its sums (``AccountPass.finish`` up to the sort), the sort of
each contact's account row into line order (``AccountPass._sorted_rows``), the scoring pass.

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

from leadscore_cli.main import prefer_system_allocator  # imports no pyarrow

prefer_system_allocator()  # as leadscore's main() does, before pyarrow is imported

from leadscore.columnar import accounts  # noqa: E402
from proc_memory import reset_peak, status  # noqa: E402

STARTED = time.time()


def _phase(name: str) -> None:
    print(f"[phase] {name}: peak {status('VmHWM')} MiB, resident {status('VmRSS')} MiB at "
          f"{time.time() - STARTED:.0f} s", file=sys.stderr)
    reset_peak()


def main() -> None:
    finish = accounts.AccountPass.finish

    def timed_finish(self: accounts.AccountPass, *args: object, **kwargs: object) -> accounts.SqlAccounts:
        _phase("account pass")
        try:
            return finish(self, *args, **kwargs)
        finally:
            _phase("the sort of each contact's account row")

    sorted_rows = accounts.AccountPass._sorted_rows

    def timed_sort(self: accounts.AccountPass, *args: object, **kwargs: object) -> None:
        _phase("sums")
        sorted_rows(self, *args, **kwargs)

    accounts.AccountPass.finish = timed_finish  # type: ignore[method-assign]
    accounts.AccountPass._sorted_rows = timed_sort  # type: ignore[method-assign]
    atexit.register(_phase, "scoring pass (or the whole run, without the account pass)")
    from leadscore_cli.main import main as cli

    sys.argv[0] = "leadscore"
    cli()


if __name__ == "__main__":
    main()
