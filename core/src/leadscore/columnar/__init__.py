"""The columnar engine: a run's rulepacks compiled to set-based SQL and run by embedded DuckDB.

``Engine(backend="duckdb")`` and ``leadscore score --engine duckdb`` use it; see docs/backends.md.
Importing this package needs nothing beyond leadscore; the modules that build and run plans need the
``leadscore[columnar]`` extra (DuckDB, sqlglot, pyarrow).
"""

import re

from leadscore.errors import ConfigurationError

# DuckDB's memory limit on the columnar engine's connection (``Engine(memory_limit=)``, ``leadscore
# score --memory-limit``): past it DuckDB spills to a temporary directory, so a file of any size runs
# within it; the process holds more beside it (Python, pyarrow, the plan: docs/backends.md, "Its memory
# limit", with what a higher limit gains).
DEFAULT_MEMORY_LIMIT = "200MB"
# The least limit taken. Below it a block's query does not fit and its leads go to the python engine
# (the same cards, far slower): 50,000 generated leads with an activities file, every installed pack
# and --explain left 13 of their 196 batches to it at 120MB and none at 140MB.
LEAST_MEMORY_LIMIT = "150MB"
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _size(text: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*", text)
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def memory_limit_bytes(text: str, where: str = "memory_limit") -> int:
    """The bytes of a memory limit written as DuckDB writes one (``300MB``, ``1.5GB``, ``512MiB``;
    KB/MB/GB/TB count in thousands, KiB/MiB/GiB/TiB in 1024s).

    :raises ConfigurationError: (naming ``where``) for a text that is not a size with its unit, or a
        size under LEAST_MEMORY_LIMIT.
    """
    size = _size(text)
    if size is None:
        raise ConfigurationError(where, f"{text!r} is not a size with its unit",
                                 "give a number and a unit, e.g. 300MB or 1.5GB (KB, MB, GB, TB; KiB, MiB, GiB, TiB)")
    if size < (_size(LEAST_MEMORY_LIMIT) or 0):
        raise ConfigurationError(where, f"{text.strip()} is below the least the columnar engine runs in ({LEAST_MEMORY_LIMIT})",
                                 f"give {LEAST_MEMORY_LIMIT} or more, or leave it out (the default is {DEFAULT_MEMORY_LIMIT})")
    return size


def memory_limit_text(limit: str) -> str:
    """A memory limit as a user writes one, in MB (``"150000000B"`` -> ``"150MB"``)."""
    size = _size(limit)
    return f"{round(size / 10**6)}MB" if size is not None else limit


def higher_limit(limit: str) -> str:
    """The way out of DuckDB running out of memory under ``limit``, as the notes and errors word it."""
    return f"a memory limit above {memory_limit_text(limit)} (--memory-limit)"


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


def interrupted_statement(err: BaseException) -> bool:
    """Whether ``err`` is how DuckDB's Python module reports a signal that came while a statement
    ran: Ctrl-C, or SIGTERM (which the CLI turns into KeyboardInterrupt). The module runs the
    signal's handler itself, keeps its KeyboardInterrupt and raises RuntimeError("Query interrupted")
    (DuckDB 2.0; its InterruptException otherwise). Code that falls back to the python engine when a
    statement fails must let this one through, or Ctrl-C would score the batch the slow way and go on."""
    return type(err).__name__ == "InterruptException" or (type(err) is RuntimeError and str(err) == "Query interrupted")


def stop_if_interrupted(err: BaseException) -> None:
    """Raise KeyboardInterrupt (from ``err``) when ``err`` is an :func:`interrupted_statement`: for the
    ``except`` blocks that would otherwise take it for a failure and go on."""
    if interrupted_statement(err):
        raise KeyboardInterrupt from err


__all__ = ["RENDERED_FORMATS", "Rendered", "RenderedRow"]
