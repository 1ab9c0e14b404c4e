"""Rule backends: each compiles a list of rules (the IR) into a matcher with the same contract.

``Backend.compile(rules, key)`` is handed the composed rules and the names of the packs they
came from (for messages). ``Matcher.match(values, events, as_of)`` returns
``[(rule_index, event_index), ...]`` sorted, with ``event_index == -1`` for lead-level rules.
Decay, caps and bands happen afterwards in plain Python, so two backends that return the same
matches produce byte-identical score cards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from leadscore.errors import ConfigurationError

if TYPE_CHECKING:
    from leadscore.model import Activity
    from leadscore.rulepack.schema import RuleIR

Match = tuple[int, int]


class Matcher(Protocol):
    def match(self, values: Mapping[str, Any], events: Sequence[Activity], as_of: datetime) -> list[Match]: ...

    def close(self) -> None: ...


class Backend(Protocol):
    name: str

    def compile(self, rules: Sequence[RuleIR], key: Sequence[str]) -> Matcher: ...

    def close(self) -> None: ...


BACKENDS = ("python", "durable", "duckdb")


def get_backend(name: str) -> Backend:
    """Instantiate a backend by name; a missing optional dependency is a one-line error."""
    if name == "python":
        from leadscore.backends.python import PythonBackend

        return PythonBackend()
    if name == "durable":
        try:
            from leadscore.backends.durable import DurableBackend
        except ImportError as err:
            raise ConfigurationError(
                "--engine durable", f"the durable backend is not available ({err})",
                "install it with pip install 'leadscore[durable]' (Python 3.11-3.12 and a C compiler)") from err
        return DurableBackend()
    raise ConfigurationError("--engine", f"unknown backend {name!r}", f"use one of {', '.join(BACKENDS)}")
