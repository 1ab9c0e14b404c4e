"""leadscore-midmarket: faster decay, heavier hand-raises, evaluation sprints and short-SLA SDR routing.

Registered through the ``leadscore`` entry point ``midmarket``. It serves the ``midmarket``
rulepack (applies to companies with 100-999 employees) and the ``midmarket`` signal extractor
(``midmarket.high_intent_types_14d``, see :mod:`leadscore_midmarket.sprint`).
"""

from __future__ import annotations

from importlib.resources import files

from leadscore.plugin import RulepackSource, SignalExtractor, hookimpl

from leadscore_midmarket import sprint


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("midmarket", sprint.extract, sprint.PROVIDES, sprint.__doc__ or "", sprint.columnar)]


@hookimpl
def leadscore_rulepacks():
    return [RulepackSource("midmarket", files("leadscore_midmarket") / "rulepacks" / "midmarket.toml")]
