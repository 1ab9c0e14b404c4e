"""The history in an embedded DuckDB file: the default target, nothing to start or administer.

DuckDB lets one process write a file at a time: a second writer waits for the lock (up to
``wait`` seconds) and then fails with one line. Large batches go in through DuckDB's appender
(values converted in C++, no statement per row).
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadscore.errors import first_line
from leadscore.history.store import HistoryError, SqlStore, optional_module

DEFAULT_WAIT_SECONDS = 60.0
WAIT_ENV = "LEADSCORE_HISTORY_WAIT"
# DuckDB's memory for the history file's connection (its own default is 80% of the machine's RAM).
# A run's store is written in one transaction, which DuckDB otherwise holds in memory as it grows:
# `score --history` on 100,000 generated leads peaked at 986 MB with DuckDB's default and 380 MB with
# this limit (50,000: 576 -> 365 MB), in about the same time (-2% to +6%); past the limit DuckDB writes
# to the file and its temporary folder. Lower limits made the runs slower (9% at 150 MB, 27% at 100 MB;
# bench/README.md).
MEMORY_LIMIT = "256MB"
_LOCKED = re.compile(r"lock on file|Conflicting lock", re.IGNORECASE)
_PID = re.compile(r"PID (\d+)")


def wait_seconds(wait: float | None) -> float:
    if wait is not None:
        return wait
    try:
        return float(os.environ.get(WAIT_ENV, DEFAULT_WAIT_SECONDS))
    except ValueError:
        return DEFAULT_WAIT_SECONDS


class DuckDBStore(SqlStore):
    """A history kept in one DuckDB file (plus its write-ahead log beside it)."""

    def __init__(self, path: str, *, create: bool = True, wait: float | None = None) -> None:
        super().__init__(path)
        self.duckdb = optional_module("duckdb", path)
        if not create and not Path(path).exists():
            raise HistoryError(path, "no history database here",
                               "record a run first: leadscore score LEADS --history " + path)
        if Path(path).is_dir():
            raise HistoryError(path, "is a directory", "give a file path such as history.duckdb")
        self.con = self._connect(path, wait_seconds(wait))

    def _connect(self, path: str, wait: float) -> Any:
        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            try:
                # No progress bar: DuckDB draws it on standard output, where the cards may be going.
                con = self.duckdb.connect(path, config={"memory_limit": MEMORY_LIMIT})
                con.execute("SET enable_progress_bar = false")
                return con
            except self.duckdb.Error as err:
                text = first_line(err)
                if not _LOCKED.search(text):
                    raise self._failure(err, "open") or HistoryError(path, text) from err
                if time.monotonic() >= deadline:
                    pid = _PID.search(str(err))
                    holder = f" (PID {pid.group(1)})" if pid else ""
                    raise HistoryError(path, f"in use by another process{holder} for more than {wait:g} s",
                                       f"wait for it to finish, or set {WAIT_ENV} to wait longer") from err
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def close(self) -> None:
        con, self.con = getattr(self, "con", None), None
        if con is not None:
            try:
                con.close()
            except self.duckdb.Error:
                pass

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.con.execute(sql, list(params)) if params else self.con.execute(sql)
        except self.duckdb.Error as err:
            raise self._failure(err, "write" if not sql.lstrip().upper().startswith("SELECT") else "read") from err

    def _begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self.con.execute("COMMIT")

    def _rollback(self) -> None:
        self.con.execute("ROLLBACK")

    def _bulk(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        # The appender converts in C++ and writes in the connection's transaction.
        try:
            with self.con.appender(table, columns=list(columns)) as appender:
                appender.append_rows(rows)
        except self.duckdb.Error as err:
            raise self._failure(err, "write") from err

    def _failure(self, err: Exception, doing: str) -> HistoryError:
        text = first_line(err)
        number = getattr(err, "errno", None)
        if number == errno.ENOSPC or "No space left" in text:
            return HistoryError(self.target, f"the disk is full, could not {doing}",
                                "free some space and run again; nothing of this run was stored")
        if number == errno.EROFS or "Read-only file system" in text or "read-only" in text.lower():
            return HistoryError(self.target, f"cannot {doing}: the database file is read-only",
                                "give a writable path with --history, or make the file writable")
        if number == errno.EACCES or "Permission denied" in text:
            return HistoryError(self.target, f"cannot {doing}: permission denied",
                                "give a writable path with --history, or fix the file's permissions")
        if "not a valid DuckDB database" in text or "Invalid Input Error: The file" in text:
            return HistoryError(self.target, "is not a DuckDB history file",
                                "give the path of a history database, or a new file name")
        return HistoryError(self.target, f"could not {doing}: {text}")
