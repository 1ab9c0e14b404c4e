"""The built-in extractors' columnar forms, named without importing the columnar engine's dependencies.

``columnar("email_columnar")`` is a function that loads :mod:`leadscore.default_plugins.extract.sql`
(and so sqlglot and pyarrow) only when the columnar engine calls it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def columnar(name: str) -> Callable[[Any], Any]:
    def form(ctx: Any) -> Any:
        return getattr(importlib.import_module("leadscore.default_plugins.extract.sql"), name)(ctx)

    form.__name__ = name
    form.__qualname__ = name
    return form
