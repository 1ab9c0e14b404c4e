"""Scores a stream of Lead records in batches with the columnar plan, in input order.

Per batch: leads the SQL reproduces exactly become rows; the others, and every lead of a part
whose SQL fails (a batch out of DuckDB's memory is halved first), are scored by the python engine
in their place. With an account index, each lead's account signals come from it (as in the python
engine) and scored contacts are recorded; or the account pass is made in DuckDB first over the
same stream (leadscore.columnar.accounts.account_pass, as the JSON Lines scan makes it), and each
batch joins its contacts' rows of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any


from leadscore.accounts import account_key
from leadscore.columnar import higher_limit, stop_if_interrupted
from leadscore.columnar import sql as q
from leadscore.columnar.engine import BATCH, NotColumnar, Rows, account_table
from leadscore.model import Lead, Rejection, ScoreCard


# A part of a batch DuckDB runs out of memory on is halved down to this many leads (see in_parts).
MIN_PART_LEADS = 256


def score_batches(engine: Any, scorer: Any, leads: Iterable[Lead | Rejection], when: datetime,
                  accounts: Any = None, batch_size: int = BATCH, file_acts: Any = None) -> Iterator[ScoreCard | Rejection]:
    """``file_acts``: the leads' activities file kept in DuckDB (a leadscore.columnar.activities.SqlActivityTable
    the reader joined the leads to), whose rows each batch joins in SQL. ``accounts``: an AccountIndex,
    or the SqlAccounts leadscore.columnar.accounts.account_pass made of the same stream of leads
    (each lead is numbered by its place in the stream, rejections included, in both passes)."""
    for first, batch in batches(leads, batch_size):
        yield from _batch(engine, scorer, first, batch, when, accounts, file_acts)


def batches(leads: Iterable[Lead | Rejection], size: int) -> Iterator[tuple[int, list[Lead | Rejection]]]:
    """The stream in lists of ``size``, each with the number of its first item in the stream."""
    batch: list[Lead | Rejection] = []
    first = 0
    for item in leads:
        batch.append(item)
        if len(batch) >= size:
            yield first, batch
            first += len(batch)
            batch = []
    if batch:
        yield first, batch


def columnar_leads(batch: list[Lead | Rejection], first: int, rows: Rows, as_of_us: int,
                    file_acts: Any) -> dict[int, Lead]:
    """The batch's leads the SQL takes, by their number in the stream, added to ``rows``."""
    columnar: dict[int, Lead] = {}
    for k, item in enumerate(batch, start=first):
        if isinstance(item, Rejection):
            continue
        try:
            add_lead(rows, k, item, as_of_us, file_acts)
            columnar[k] = item
        except NotColumnar:
            continue
    return columnar


def _batch(engine: Any, scorer: Any, first: int, batch: list[Lead | Rejection], when: datetime,
           accounts: Any, file_acts: Any) -> Iterator[ScoreCard | Rejection]:
    if file_acts is not None and file_acts.con is None:
        file_acts = None  # the python reader's table read the file after all: the leads carry their activities
    rows = Rows(scorer.numeric_fields, evidence=scorer.explain)
    as_of_us = q.micros(when)
    columnar = columnar_leads(batch, first, rows, as_of_us, file_acts)
    results: dict[int, ScoreCard | Rejection] = {}
    values: dict[int, dict[str, Any]] = {}
    # The account pass made in DuckDB (a leadscore.columnar.accounts.SqlAccounts: that module reads this one).
    in_sql = hasattr(accounts, "block_rows")

    def score(part: dict[int, Lead], rows: Rows) -> None:
        if in_sql:  # the contacts' rows of the account pass, by number
            acc: Any = q.sql(accounts.block_rows((min(part), max(part))).join(
                q.table("b_leads", "l"), on=q.col("k", "l").eq(q.col("k", "r")), copy=False))
        else:
            acc = account_table(scorer, part, accounts) if accounts is not None else None
        scorer.load(*rows.tables(), acc, file_acts, rows.held_table())
        found = scorer.run_views(with_accounts=acc is not None)
        results.update(scorer.cards(found, part))
        values.update(scorer.last_values)

    if columnar:
        in_parts(scorer, columnar, rows, as_of_us, file_acts, score, "cards")
    scorer.stats["sql"] += len(results)
    scorer.stats["python"] += sum(1 for item in batch if not isinstance(item, Rejection)) - len(results)
    python = [k for k, item in enumerate(batch, start=first) if k not in results and isinstance(item, Lead)]
    if python and file_acts is not None:  # the leads the python engine scores, as the python reader hands them on
        batch = list(batch)
        for k, lead in zip(python, file_acts.joined([batch[k - first] for k in python])):
            batch[k - first] = lead
    if python and in_sql:
        accounts.fetch(account_key(batch[k - first]) for k in python)
    for k, item in enumerate(batch, start=first):
        result = results.get(k)
        if result is None:
            yield engine.score_item(item, when, accounts)
            continue
        if accounts is not None and isinstance(result, ScoreCard):
            accounts.record(account_key(item), item, result, values.get(k, {}))
        yield result


def add_lead(rows: Rows, k: int, lead: Lead, as_of_us: int, file_acts: Any) -> None:
    """The lead into ``rows``, with the rows of the activities file the python reader read; NotColumnar
    for a lead whose file activities the SQL does not take exactly."""
    if file_acts is None:
        rows.add(k, lead, as_of_us)
        return
    if lead.id in file_acts.python_ids:
        raise NotColumnar("file activities")
    rows.add(k, lead, as_of_us, file_acts.held_of(lead.id))


def in_parts(scorer: Any, leads: dict[int, Lead], rows: Rows, as_of_us: int, file_acts: Any,
              run: Callable[[dict[int, Lead], Rows], None], kind: str) -> list[int]:
    """``run(part, rows)`` on ``leads`` (``rows`` holds them all), the whole batch at once; a part
    DuckDB runs out of memory on is halved and each half run again, down to MIN_PART_LEADS leads, as
    the file scan halves its blocks (and the next batches of this ``kind`` of statement start in parts
    of the size the halving came to). Returns the leads of the parts that still failed (the python
    engine takes them)."""
    left: list[int] = []
    keys = sorted(leads)
    if not keys:  # a batch of rejections only (an activities file's rows for leads the file lacks)
        return left
    size = scorer.fits.get(kind) or len(keys)
    parts = [keys[i:i + size] for i in range(0, len(keys), size)][::-1]  # the first part last: popped first
    while parts:
        keys = parts.pop()
        part = leads if len(keys) == len(leads) else {k: leads[k] for k in keys}
        if part is not leads:
            rows = Rows(scorer.numeric_fields, evidence=rows.evidence)
            for k in keys:
                add_lead(rows, k, part[k], as_of_us, file_acts)
        try:
            run(part, rows)
        except Exception as err:  # noqa: BLE001 - the python engine gives each lead its own result or message
            if halve_or_record(scorer, err, len(keys), MIN_PART_LEADS, kind):
                middle = len(keys) // 2
                parts += [keys[middle:], keys[:middle]]  # the first half next
            else:
                left += keys
    return left


def halve_or_record(scorer: Any, err: Exception, size: int, least: int, kind: str) -> bool:
    """After a part of ``size`` leads failed in SQL: True when it is to be halved and run again
    (DuckDB out of memory, and more than ``least`` leads; the parts of this ``kind`` that follow are
    no larger than the halves, ``scorer.fits``); else the failure is recorded (see :func:`record_failure`)
    and the python engine scores the part. Either way the connection is ready for the next statement.

    :raises KeyboardInterrupt: when the part stopped for Ctrl-C or SIGTERM (:func:`interrupted_statement`)."""
    import duckdb

    stop_if_interrupted(err)
    scorer.con.abort()  # a result left half fetched would refuse the next part's tables
    scorer.drop_batch()
    if isinstance(err, duckdb.OutOfMemoryException) and size > least:
        half = (size + 1) // 2
        scorer.fits[kind] = min(scorer.fits.get(kind, half), half)
        return True
    record_failure(scorer, err)
    return False


def record_failure(scorer: Any, err: Exception) -> None:
    """A batch the SQL could not score (the python engine scores its leads instead, with the same
    cards): counted for :func:`fallback_note`, or raised again under LEADSCORE_COLUMNAR_STRICT."""
    if os.environ.get("LEADSCORE_COLUMNAR_STRICT"):
        raise err
    scorer.stats["failed_batches"] = scorer.stats.get("failed_batches", 0) + 1
    scorer.stats.setdefault("first_failure", " ".join(f"{type(err).__name__}: {err}".split())[:200])


def fallback_note(engine: Any) -> str | None:
    """One line when the plan or some batch of the run could not be scored in SQL (the python engine
    scored those leads, with the same cards), else None."""
    for scorer in getattr(engine, "_scorers", {}).values():
        if scorer is None:
            why = " ".join(str(getattr(engine, "columnar_note", "") or "no reason given").split())[:200]
            return (f"the columnar engine cannot run this run's plan ({why}), so the python engine scored every "
                    "lead (same cards, slower)")
        failed = scorer.stats.get("failed_batches", 0)
        if failed:
            first = scorer.stats["first_failure"]
            # DuckDB's own advice in its message is for SQL users; ours names the option.
            more = f"; {higher_limit(scorer.memory_limit)} keeps them in SQL" if first.startswith("OutOfMemoryException") else ""
            return (f"the columnar engine could not run {failed} batch{'es' if failed > 1 else ''} in SQL, so the "
                    f"python engine scored those leads (same cards, slower); first error: {first}{more}; "
                    "LEADSCORE_COLUMNAR_STRICT=1 stops at it instead")
    return None
