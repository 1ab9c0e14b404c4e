"""The built-in extractors' columnar forms, named without importing the columnar engine's dependencies.

``columnar("email_columnar")`` is a function that imports :mod:`leadscore.columnar.builtins` (and so
DuckDB's companions, sqlglot and pyarrow) only when the columnar engine calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def columnar(name: str) -> Callable[[Any], Any]:
    def form(ctx: Any) -> Any:
        from leadscore.columnar import builtins

        return getattr(builtins, name)(ctx)

    form.__name__ = name
    form.__qualname__ = name
    return form
