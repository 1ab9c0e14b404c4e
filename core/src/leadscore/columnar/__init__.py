"""The columnar engine: a run's rulepacks compiled to set-based SQL and run by embedded DuckDB.

``Engine(backend="duckdb")`` and ``leadscore score --engine duckdb`` use it; see docs/backends.md.
Importing this package needs nothing beyond leadscore; the modules that build and run plans need the
``leadscore[columnar]`` extra (DuckDB, sqlglot, pyarrow).
"""


class Rendered:
    """A lead scored in SQL, as the JSON line the python writer would print for its card.

    The columnar engine hands these out instead of ScoreCards for ``--format jsonl`` without
    ``--explain``: building a record per lead only to print it cost more than scoring it.
    """

    __slots__ = ("line", "lead_id")

    def __init__(self, line: str, lead_id: str) -> None:
        self.line = line
        self.lead_id = lead_id


__all__ = ["Rendered"]
