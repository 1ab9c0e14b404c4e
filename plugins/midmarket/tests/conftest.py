"""Fixtures for the midmarket plugin's tests: a plugin manager with the core's built-ins and this plugin only.

``leadscore_plugin_manager`` comes from ``leadscore.testing``, which pytest loads by itself
wherever leadscore is installed (a ``pytest11`` entry point).
"""

from __future__ import annotations

import pytest

import leadscore_midmarket
from leadscore.plugins import PluginManager


@pytest.fixture
def midmarket_pm(leadscore_plugin_manager: PluginManager) -> PluginManager:
    """Built-ins plus leadscore_midmarket: no other installed plugin can change the results."""
    leadscore_plugin_manager.register(leadscore_midmarket)
    return leadscore_plugin_manager
