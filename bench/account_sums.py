#!/usr/bin/env python3
"""The columnar engine's account sums at the size of a large file, without reading one: time and
memory of the statements that turn every contact into one row per account.

    uv run python bench/account_sums.py                          # 10,000,000 contacts
    uv run python bench/account_sums.py --contacts 3000000
    uv run python bench/account_sums.py --memory-limit 175MB    # the scorer's limit, the fallback's
    uv run python bench/account_sums.py --part-contacts 20000000    # the sums in one part
    uv run python bench/account_sums.py --blocks 100    # then 100 blocks' account rows, as the scoring pass reads them

The account pass writes every lead of a file with an account as a contact row (a Parquet file a
block) and then, in :meth:`leadscore.columnar.accounts.AccountPass.finish`, sums them up per
account, counts each ``same_account`` condition's first people and keeps each lead's account.
Reading 10 million generated leads to get there takes twenty minutes on a 2-core machine; this
script writes contacts of the same shape instead, 12,000 a file (three contacts an account, as
bench/generate.py's leads have; a person per contact; every seventh matching the ``same_account``
condition of the installed packs) on the engine's own connection (two threads; the account pass's
memory limit while they are written), then times each sum of the first part of the accounts
(``finish`` sums up PART_CONTACTS contacts a part, under the sums' limit) with its peak resident
memory, then ``finish`` whole (the sums, then the sort of each contact's account row, each with the
peak so far), and prints the process's peak. ``--part-contacts`` sets the contacts a part (a number
past ``--contacts`` sums them in one part); ``--memory-limit`` sets the scorer's limit, the one a part
or a range of the sort that does not fit in its own runs again under. With ``--blocks N``
it then reads the account rows of N blocks of 12,000 leads spread over the file (``b_acc``, as the
scoring pass's statements read it), and prints their time and the resident memory after them.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

from leadscore import Engine, PluginManager
from leadscore.columnar import sql as q
from leadscore.columnar import accounts
from leadscore.columnar.accounts import AccountPass
from leadscore.columnar.scan import _views
from proc_memory import reset_peak, status

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)
BLOCK = 12_000  # contacts a file, as a 24 MB block of generated leads gave (16 MB blocks give about 8,000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000_000, help="contacts (default 10000000)")
    parser.add_argument("--blocks", type=int, default=0, help="then read this many blocks' account rows (default 0)")
    parser.add_argument("--memory-limit", help="the scorer's DuckDB memory limit (default the engine's)")
    parser.add_argument("--part-contacts", type=int, default=accounts.PART_CONTACTS,
                        help=f"contacts a part of the sums (default {accounts.PART_CONTACTS})")
    args = parser.parse_args(argv)
    accounts.PART_CONTACTS = args.part_contacts
    limit = {"memory_limit": args.memory_limit} if args.memory_limit else {}
    with Engine(plugins=PluginManager(), backend="duckdb", as_of=AS_OF, **limit) as engine:
        if not engine.needs_accounts:
            print("no installed pack reads account signals: install the segment plugins (uv sync does)")
            return 1
        scorer = engine.columnar_scorer(AS_OF, explain=False, top=3, values=False, render="jsonl")
        account_pass = AccountPass(engine, scorer, AS_OF)
        con = scorer.con
        matched = "".join(f", (i % {7 + j}) = 0 AS m{j}" for j in range(len(account_pass.signals)))
        started = time.perf_counter()
        with account_pass.reading():
            for low in range(0, args.contacts, BLOCK):
                account_pass.write(f"""SELECT i AS k, 'ACC-' || (i // 3)::VARCHAR AS key, 'L-' || i::VARCHAR AS id,
                'e:person' || i::VARCHAR || '@acme' || (i // 3)::VARCHAR || '.io' AS person, (i % 2) = 0 AS engaged,
                (i % 5) = 0 AS senior, ['sales', 'marketing', 'it', 'finance', 'other', NULL][(i % 6) + 1] AS function,
                i % 4 AS high, NULL AS total{matched} FROM range({low}, {min(low + BLOCK, args.contacts)}) t(i)""")
        print(f"{args.contacts:,} contacts of {args.contacts // 3:,} accounts written in {account_pass.files.files} files "
              f"in {time.perf_counter() - started:.1f} s")
        account_pass.gather()
        parts = accounts.parts_of(args.contacts)
        source = account_pass.part_contacts(parts, 0)
        steps = [("account_sum", account_pass.sql.summary(source))]
        steps += [(f"same_{index}", account_pass.sql.same(index, source)) for index in range(len(account_pass.signals))]
        print(f"part 1 of {parts}, under {accounts.ACCOUNT_SUMS_MEMORY}:")
        failed = False
        with account_pass.limited(accounts.ACCOUNT_SUMS_MEMORY):
            for name, select in steps:
                started = time.perf_counter()
                try:
                    reset_peak()
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {q.sql(select)}")
                    print(f"  {name}: {time.perf_counter() - started:.1f} s, peak {_peak_mib():.0f} MiB")
                except Exception as err:  # noqa: BLE001 - the figure to report
                    failed = True
                    print(f"  {name}: failed after {time.perf_counter() - started:.1f} s: {str(err).splitlines()[0]}")
        for name, _ in steps:
            con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute("DROP VIEW IF EXISTS part_contacts")
        if not failed:
            started = time.perf_counter()
            reset_peak()
            sorted_rows = AccountPass._sorted_rows

            def timed_sort(self: AccountPass, *sort_args: object) -> None:
                print(f"finish: the sums in {time.perf_counter() - started:.1f} s, peak {_peak_mib():.0f} MiB")
                sorted_rows(self, *sort_args)

            AccountPass._sorted_rows = timed_sort  # type: ignore[method-assign]
            rows = account_pass.finish()
            print(f"finish whole (the sums, then each contact's account row in line order): "
                  f"{time.perf_counter() - started:.1f} s, peak {_peak_mib():.0f} MiB")
            if args.blocks:
                _peak_mib()
                print(f"peak resident memory so far {_highest:.0f} MiB")
                _read_blocks(con, rows, args.contacts, args.blocks)
            rows.close()
    _peak_mib()
    print(f"peak resident memory {_highest:.0f} MiB")
    return 1 if failed else 0


_highest = 0.0


def _peak_mib() -> float:
    """The resident size's peak since the last reset_peak(). The largest of these is the run's
    peak, which the last line prints (the resets lower the kernel's own figure of it)."""
    global _highest
    peak = float(status("VmHWM"))
    _highest = max(_highest, peak)
    return peak


def _read_blocks(con: object, accounts: object, contacts: int, blocks: int) -> None:
    """``blocks`` blocks of BLOCK leads, spread evenly over the contacts' lines, each read whole
    from ``b_acc`` (as the scoring pass's first statement that reads it does)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE leads AS SELECT i AS k FROM range({contacts}) t(i)")
    con.execute("CREATE OR REPLACE TEMP TABLE activities (k BIGINT)")
    step = max(contacts // blocks, BLOCK)
    started, rows, number = time.perf_counter(), 0, 0
    for number, low in enumerate(range(0, contacts - BLOCK + 1, step)[:blocks], 1):
        _views(con, (low, low + BLOCK - 1), False, accounts)
        con.execute("CREATE OR REPLACE TEMP TABLE block_acc AS SELECT * FROM b_acc")  # every column, as the plan reads them
        rows += con.execute("SELECT count(*) FROM block_acc").fetchall()[0][0]
        if number % 10 == 0:
            print(f"  block {number}: {(time.perf_counter() - started) / number * 1000:.0f} ms a block, "
                  f"resident {status('VmRSS')} MiB")
    print(f"{number} blocks, {rows:,} account rows read in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
