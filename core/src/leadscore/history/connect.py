"""Open a history by its target: a ``postgresql://`` URL, else a DuckDB file path.

Kept apart from :mod:`.store` (the interface and the shared SQL) so that the two implementations
can build on the store without the store importing them back.
"""

from __future__ import annotations

from leadscore.history.store import SqlStore


def open_store(target: str, *, create: bool = True, wait: float | None = None) -> SqlStore:
    """Open the history at ``target``: a ``postgresql://`` URL, else a DuckDB file path.

    Migrations run on open. ``create=False`` refuses a DuckDB file that does not exist yet (for
    commands that only read). ``wait`` is how long to wait for another process holding a DuckDB
    file (default ``$LEADSCORE_HISTORY_WAIT`` or 60 seconds).
    """
    if target.startswith(("postgresql://", "postgres://")):
        from leadscore.history.postgres_store import PostgresStore

        store: SqlStore = PostgresStore(target, wait=wait)
    else:
        from leadscore.history.duckdb_store import DuckDBStore

        store = DuckDBStore(target, create=create, wait=wait)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
