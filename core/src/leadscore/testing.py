"""pytest helpers for plugin authors: a fresh plugin manager, a plugin registered for one test, case files as tests.

pytest loads it automatically wherever leadscore is installed (a ``pytest11`` entry point), so
the fixtures ``leadscore_plugin_manager`` and ``register_plugin`` are simply there::

    from leadscore.testing import case_params

    @pytest.mark.parametrize("case", case_params("tests/cases/*.toml"))
    def test_case(case, leadscore_plugin_manager):
        result = run_case(case, leadscore_plugin_manager)
        assert result.passed, "\\n".join(result.problems)
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from leadscore.cases import Case, CaseResult, load_cases, run_cases
from leadscore.plugins import PluginManager


def fresh_plugin_manager(*plugins: Any, entry_points: bool = False) -> PluginManager:
    """A plugin manager with the built-ins and ``plugins`` only (no installed plugins unless asked)."""
    pm = PluginManager(entry_points=entry_points, disabled=(), allow=None)
    for plugin in plugins:
        pm.register(plugin, getattr(plugin, "__name__", None) or type(plugin).__name__)
    return pm


@contextmanager
def registered(pm: PluginManager, plugin: Any, name: str | None = None) -> Iterator[PluginManager]:
    """Register ``plugin`` on ``pm`` for the duration of a with-block."""
    used = pm.register(plugin, name)
    try:
        yield pm
    finally:
        pm.unregister(used)


@pytest.fixture
def leadscore_plugin_manager() -> PluginManager:
    """A fresh PluginManager with the built-ins only: no entry points, no environment switches."""
    return fresh_plugin_manager()


@pytest.fixture
def register_plugin(leadscore_plugin_manager: PluginManager):
    """``with register_plugin(MyPlugin()): ...`` registers a plugin on the fixture's manager for a block."""

    def register(plugin: Any, name: str | None = None):
        return registered(leadscore_plugin_manager, plugin, name)

    return register


def case_params(*patterns: str | Path) -> list[Any]:
    """Every case in the files matching ``patterns``, as pytest params with readable ids."""
    params = []
    for pattern in patterns:
        paths = sorted(glob.glob(str(pattern))) or [str(pattern)]
        for path in paths:
            for case in load_cases(path):
                params.append(pytest.param(case, id=f"{Path(case.file).name}:{case.line}:{case.name}"))
    return params


def run_case(case: Case, plugins: PluginManager | None = None) -> CaseResult:
    """Score one case and compare it with its expectations."""
    return next(run_cases([case], plugins=plugins))
