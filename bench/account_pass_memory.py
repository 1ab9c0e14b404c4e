"""Where the columnar engine's account pass holds memory, block by block.

Reads a JSON Lines file with every installed pack (so the account pass runs) up to the account
sums, and prints after each block: the process's peak since the block before (VmHWM, reset through
/proc/self/clear_refs), its resident size, and every --every blocks DuckDB's own accounting
(duckdb_memory(): in memory and spilled), Python's live memory blocks and the bytes Arrow holds.
Stops before the sums (bench/account_sums.py times those).

    uv run python bench/account_pass_memory.py g2m.jsonl            # the first 2,000,000 lines of g10m.jsonl
    uv run python bench/account_pass_memory.py g2m.jsonl --blocks 170

Linux only (it reads /proc/self).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

import pyarrow as pa

from leadscore import Engine, PluginManager
from leadscore.columnar import accounts
from leadscore.columnar.scan import scan_jsonl
from proc_memory import duckdb_mib, reset_peak, status

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)


class _Done(BaseException):
    """Stops the scan: not an Exception, which the scan would take for a block the SQL could not run
    (and score that block the python way, going on to the next)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="a JSON Lines file of generated leads (bench/generate.py)")
    parser.add_argument("--blocks", type=int, default=0, help="stop after this many blocks (default: every block)")
    parser.add_argument("--every", type=int, default=20, help="print DuckDB's and Python's accounts every N blocks")
    args = parser.parse_args()

    add_sql = accounts.AccountPass.add_sql
    count = 0
    start = time.perf_counter()
    print("block  peak_MiB  resident_MiB  [s  duckdb_MiB  spilled_MiB  python_blocks  arrow_MiB]", flush=True)

    def traced(self: accounts.AccountPass) -> None:
        nonlocal count
        add_sql(self)
        count += 1
        line = f"{count:5d}  {status('VmHWM'):8d}  {status('VmRSS'):12d}"
        if count % args.every == 0:
            held, spilled = duckdb_mib(self.scorer.con)
            line += f"  {time.perf_counter() - start:6.0f}  {held:10d}  {spilled:11d}  {sys.getallocatedblocks():13d}  " \
                    f"{pa.total_allocated_bytes() // 1048576:9d}"
        print(line, flush=True)
        reset_peak()  # the next block's peak is its own
        if args.blocks and count >= args.blocks:
            raise _Done

    def stop(self: accounts.AccountPass, *args: object, **kwargs: object) -> None:
        raise _Done

    accounts.AccountPass.add_sql = traced
    accounts.AccountPass.finish = stop
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF) as engine:
        if not engine.needs_accounts:
            sys.exit("no installed pack needs the account pass: install the segment plugins (uv sync)")
        out = scan_jsonl(engine, args.path, args.path, AS_OF, explain=False, top=3, render="jsonl")
        try:
            next(iter(out))
        except _Done:
            pass
    print(f"{count} blocks in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
