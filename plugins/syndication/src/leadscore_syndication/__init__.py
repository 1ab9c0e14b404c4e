"""leadscore-syndication: scores content-syndication leads with the published fit / topic / follow-up table.

Registered through the ``leadscore`` entry point ``syndication``. It serves the ``syndication``
rulepack (applies to leads whose channel is ``content_syndication``) and the ``syndication``
signal extractor (topic relevance of the downloaded asset and the follow-up after it; see
:mod:`leadscore_syndication.signals`).
"""

from __future__ import annotations

from importlib.resources import files

from leadscore.plugin import RulepackSource, SignalExtractor, hookimpl

from leadscore_syndication import signals


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("syndication", signals.extract, signals.PROVIDES, signals.__doc__ or "", signals.columnar)]


@hookimpl
def leadscore_rulepacks():
    return [RulepackSource("syndication", files("leadscore_syndication") / "rulepacks" / "syndication.toml")]
