"""The history in PostgreSQL (psycopg 3), for a team that shares one database between machines.

Runs are serialised: a run takes an exclusive lock on ``runs`` for its transaction, so a second
writer waits (up to ``lock_timeout``) and then fails with one line; readers never wait.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from leadscore.errors import first_line
from leadscore.history.duckdb_store import wait_seconds
from leadscore.history.store import HistoryError, SqlStore, optional_module

# Any fixed number: the key of the advisory lock that serialises schema migrations.
_MIGRATION_LOCK = 7_215_316


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class PostgresStore(SqlStore):
    placeholder = "%s"

    def __init__(self, url: str, *, wait: float | None = None) -> None:
        super().__init__(redact(url))
        self.psycopg = optional_module("psycopg", self.target)
        self.wait = wait_seconds(wait)
        try:
            self.con = self.psycopg.connect(url, autocommit=True, connect_timeout=10)
        except self.psycopg.Error as err:
            raise HistoryError(self.target, f"cannot connect: {first_line(err)}",
                               "check the URL, the credentials and that the server is running") from err
        self._execute("SET TIME ZONE 'UTC'")
        self._execute(f"SET lock_timeout = {int(self.wait * 1000)}")

    def close(self) -> None:
        con, self.con = getattr(self, "con", None), None
        if con is not None:
            con.close()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self.con.execute(sql, list(params) if params else None)
        except self.psycopg.Error as err:
            raise self._failure(err, "read" if sql.lstrip().upper().startswith("SELECT") else "write") from err

    def _begin(self) -> None:
        self.con.execute("BEGIN")

    def _commit(self) -> None:
        self.con.execute("COMMIT")

    def _rollback(self) -> None:
        self.con.execute("ROLLBACK")

    def _lock_schema(self) -> None:
        self._execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])

    def new_run(self, **kwargs: Any) -> int:
        # Held to the end of the run's transaction: run ids stay dense and runs never interleave.
        self._execute("LOCK TABLE runs IN EXCLUSIVE MODE")
        return super().new_run(**kwargs)

    def _bulk(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        try:
            with self.con.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except self.psycopg.Error as err:
            raise self._failure(err, "write") from err

    def _failure(self, err: Exception, doing: str) -> HistoryError:
        text = first_line(err)
        errors = getattr(self.psycopg, "errors", None)
        if errors is not None and isinstance(err, errors.LockNotAvailable):
            return HistoryError(self.target, f"another run has been writing to this history for more than "
                                f"{self.wait:g} s", "wait for it to finish, or set LEADSCORE_HISTORY_WAIT to wait longer")
        if errors is not None and isinstance(err, (errors.DiskFull,)):
            return HistoryError(self.target, f"the database server's disk is full, could not {doing}",
                                "free space on the server and run again; nothing of this run was stored")
        if errors is not None and isinstance(err, (errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege)):
            return HistoryError(self.target, f"cannot {doing}: {text}",
                                "connect as a user that may write, to a primary server")
        return HistoryError(self.target, f"could not {doing}: {text}")
