"""Scores a stream of Lead records in batches with the columnar plan, in input order.

Per batch: leads the SQL reproduces exactly become rows; the others, and every lead of a part
whose SQL fails (a batch out of DuckDB's memory is halved first), are scored by the python engine
in their place. With an account index, each lead's account signals come from it (as in the python
engine) and scored contacts are recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any


from leadscore.accounts import account_key
from leadscore.columnar import sql as q
from leadscore.columnar.engine import BATCH, NotColumnar, Rows, account_table
from leadscore.model import Lead, Rejection, ScoreCard


# A part of a batch DuckDB runs out of memory on is halved down to this many leads (see _in_parts).
MIN_PART_LEADS = 256


def score_batches(engine: Any, scorer: Any, leads: Iterable[Lead | Rejection], when: datetime,
                  accounts: Any = None, batch_size: int = BATCH, file_acts: Any = None) -> Iterator[ScoreCard | Rejection]:
    """``file_acts``: the leads' activities file kept in DuckDB (a leadscore.columnar.activities.SqlActivityTable
    the reader joined the leads to), whose rows each batch joins in SQL."""
    batch: list[Lead | Rejection] = []
    for item in leads:
        batch.append(item)
        if len(batch) >= batch_size:
            yield from _batch(engine, scorer, batch, when, accounts, file_acts)
            batch = []
    if batch:
        yield from _batch(engine, scorer, batch, when, accounts, file_acts)


def _batch(engine: Any, scorer: Any, batch: list[Lead | Rejection], when: datetime,
           accounts: Any, file_acts: Any) -> Iterator[ScoreCard | Rejection]:
    if file_acts is not None and file_acts.con is None:
        file_acts = None  # the python reader's table read the file after all: the leads carry their activities
    rows = Rows(scorer.numeric_fields, evidence=scorer.explain)
    as_of_us = q.micros(when)
    columnar: dict[int, Lead] = {}
    for k, item in enumerate(batch):
        if isinstance(item, Rejection):
            continue
        try:
            _add(rows, k, item, as_of_us, file_acts)
            columnar[k] = item
        except NotColumnar:
            continue
    results: dict[int, ScoreCard | Rejection] = {}
    values: dict[int, dict[str, Any]] = {}
    if columnar:
        results, values = _in_parts(scorer, columnar, rows, accounts, as_of_us, file_acts)
    scorer.stats["sql"] += len(results)
    scorer.stats["python"] += sum(1 for item in batch if not isinstance(item, Rejection)) - len(results)
    python = [k for k, item in enumerate(batch) if k not in results and isinstance(item, Lead)] if file_acts else []
    if python:  # the leads the python engine scores, as the python reader hands them on
        batch = list(batch)
        for k, lead in zip(python, file_acts.joined([batch[k] for k in python])):
            batch[k] = lead
    for k, item in enumerate(batch):
        result = results.get(k)
        if result is None:
            yield engine.score_item(item, when, accounts)
            continue
        if accounts is not None and isinstance(result, ScoreCard):
            accounts.record(account_key(item), item, result, values.get(k, {}))
        yield result


def _add(rows: Rows, k: int, lead: Lead, as_of_us: int, file_acts: Any) -> None:
    """The lead into ``rows``, with the rows of the activities file the python reader read; NotColumnar
    for a lead whose file activities the SQL does not take exactly."""
    if file_acts is None:
        rows.add(k, lead, as_of_us)
        return
    if lead.id in file_acts.python_ids:
        raise NotColumnar("file activities")
    rows.add(k, lead, as_of_us, file_acts.held_of(lead.id))


def _in_parts(scorer: Any, leads: dict[int, Lead], rows: Rows, accounts: Any, as_of_us: int,
              file_acts: Any = None) -> tuple[dict[int, ScoreCard | Rejection], dict[int, dict[str, Any]]]:
    """The cards (and signal values) of ``leads`` (``rows`` holds them all) from the SQL, the whole
    batch at once; a part DuckDB runs out of memory on is halved and each half run again, down to
    MIN_PART_LEADS leads, as the file scan halves its blocks. The leads of a part that still fails
    are left out: the python engine scores them."""
    results: dict[int, ScoreCard | Rejection] = {}
    values: dict[int, dict[str, Any]] = {}
    parts = [sorted(leads)]
    while parts:
        keys = parts.pop()
        part = leads if len(keys) == len(leads) else {k: leads[k] for k in keys}
        if part is not leads:
            rows = Rows(scorer.numeric_fields, evidence=scorer.explain)
            for k in keys:
                _add(rows, k, part[k], as_of_us, file_acts)
        try:
            acc = account_table(scorer, part, accounts) if accounts is not None else None
            if file_acts is None:
                found = scorer.run(*rows.tables(), acc)
            else:
                found = scorer.run(*rows.tables(), acc, file_acts=file_acts, held=rows.held_table())
            results.update(scorer.cards(found, part))
            values.update(scorer.last_values)
        except Exception as err:  # noqa: BLE001 - the python engine gives each lead its own result or message
            if halve_or_record(scorer, err, len(keys), MIN_PART_LEADS):
                middle = len(keys) // 2
                parts += [keys[middle:], keys[:middle]]  # the first half next
    return results, values


def halve_or_record(scorer: Any, err: Exception, size: int, least: int) -> bool:
    """After a part of ``size`` leads failed in SQL: True when it is to be halved and run again
    (DuckDB out of memory, and more than ``least`` leads); else the failure is recorded (see
    :func:`record_failure`) and the python engine scores the part. Either way the connection is
    ready for the next statement."""
    import duckdb

    scorer.con.abort()  # a result left half fetched would refuse the next part's tables
    scorer.drop_batch()
    if isinstance(err, duckdb.OutOfMemoryException) and size > least:
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
            return (f"the columnar engine could not run {failed} batch{'es' if failed > 1 else ''} in SQL, so the "
                    f"python engine scored those leads (same cards, slower); first error: {scorer.stats['first_failure']}; "
                    "LEADSCORE_COLUMNAR_STRICT=1 stops at it instead")
    return None
