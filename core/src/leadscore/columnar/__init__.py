"""The columnar engine: a run's rulepacks compiled to set-based SQL and run by embedded DuckDB.

``Engine(backend="duckdb")`` and ``leadscore score --engine duckdb`` use it; see docs/backends.md.
Importing this package needs nothing beyond leadscore; the modules that build and run plans need the
``leadscore[columnar]`` extra (DuckDB, sqlglot, pyarrow).
"""


# The output formats whose cards the columnar engine makes in SQL (leadscore.columnar.render).
RENDERED_FORMATS = ("jsonl", "csv", "parquet")


class Rendered:
    """A lead scored in SQL, as the line the python writer would print for its card: a JSON line, or
    a CSV row (``leadscore.columnar.render``).

    The columnar engine hands these out instead of ScoreCards for ``--format jsonl`` and ``--format
    csv``: building a record per lead only to print it cost more than scoring it.
    """

    __slots__ = ("line", "lead_id")

    def __init__(self, line: str | None, lead_id: str) -> None:
        self.line = line
        self.lead_id = lead_id


class RenderedRow(Rendered):
    """A lead scored in SQL, as row ``index`` of ``batch``: an Arrow table of the Parquet writer's
    columns, made in SQL for ``--format parquet`` (``leadscore.columnar.render``)."""

    __slots__ = ("batch", "index")

    def __init__(self, batch: object, index: int, lead_id: str) -> None:
        super().__init__(None, lead_id)
        self.batch = batch
        self.index = index


__all__ = ["RENDERED_FORMATS", "Rendered", "RenderedRow"]
