"""leadscore: a B2B lead-scoring rules engine with pluggy hooks, TOML rulepacks and an exact ledger.

Programs call ``leadscore.score(...)`` or use an :class:`Engine`; plugins import what they need
from :mod:`leadscore.plugin` (docs/hooks.md).
"""

from leadscore.engine import Engine, score
from leadscore.hookspecs import hookimpl
from leadscore.model import (
    Activities,
    Activity,
    Company,
    Contribution,
    DecayPolicy,
    Lead,
    Rejection,
    Route,
    RulepackSource,
    ScoreCard,
    ScoreLine,
    Scorer,
    Signal,
    SignalExtractor,
    SignalSpec,
)
from leadscore.plugins import PluginManager

__version__ = "0.1.0"

__all__ = [
    "Activities", "Activity", "Company", "Contribution", "DecayPolicy", "Engine", "Lead", "PluginManager",
    "Rejection", "Route", "RulepackSource", "ScoreCard", "ScoreLine", "Scorer", "Signal", "SignalExtractor",
    "SignalSpec", "hookimpl", "score",
]
