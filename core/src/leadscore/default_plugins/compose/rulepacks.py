"""Serves the core's base rulepack, ``firr-base`` (fit, intent, readiness, revenue, negative)."""

from __future__ import annotations

from importlib.resources import files

from leadscore.hookspecs import hookimpl
from leadscore.model import RulepackSource


@hookimpl
def leadscore_rulepacks():
    return [RulepackSource("firr-base", files("leadscore") / "rulepacks" / "firr-base.toml")]
