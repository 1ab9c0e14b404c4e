"""Fixtures for the midmarket plugin's tests: a plugin manager with the core's built-ins and this plugin only.

The ``leadscore.testing`` fixture is imported rather than enabled with ``pytest_plugins``: pytest
refuses ``pytest_plugins`` outside the root conftest, and these tests also run from the workspace
root (testpaths includes ``plugins``).
"""

from __future__ import annotations

import pytest

import leadscore_midmarket
from leadscore.plugins import PluginManager
from leadscore.testing import leadscore_plugin_manager  # noqa: F401  (a fixture, used below)


@pytest.fixture
def midmarket_pm(leadscore_plugin_manager: PluginManager) -> PluginManager:
    """Built-ins plus leadscore_midmarket: no other installed plugin can change the results."""
    leadscore_plugin_manager.register(leadscore_midmarket)
    return leadscore_plugin_manager
