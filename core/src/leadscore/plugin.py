"""The public API for plugin authors: everything a plugin may import from leadscore, in one place.

A plugin writes ``from leadscore.plugin import hookimpl, Signal, SignalExtractor, ...`` and
nothing deeper: the rest of the core may change between releases, this module does not without
notice (a test fails when a shipped plugin imports anything else). docs/hooks.md documents each
name and when to use it.

Records a plugin returns from its hooks:
    :class:`SignalExtractor` (with :class:`SignalSpec`), :class:`RulepackSource`, :class:`Scorer`
    (yielding :class:`ScoreLine`), :class:`DecayPolicy`, :class:`RollupStrategy`, :class:`Route`,
    and the :class:`Signal` records an extractor yields.
Records a plugin reads:
    :class:`Lead` (with :class:`Company` and :class:`Activity` records), :class:`ExtractContext`,
    :class:`ScoreCard` (in a router).
Helpers built-ins and plugins share:
    :func:`classify_email` (business / personal / disposable / education / invalid),
    :func:`activity_tiers` (activity type -> intent tier for the run's vocabulary),
    :func:`day_text` (a day as evidence text), :func:`age_days`,
    :func:`reads_signals` (what a router, scorer or extractor function reads),
    :func:`per_vocabulary` and :class:`BoundedCache` (memo tables that keep memory flat).
"""

from __future__ import annotations

from leadscore.caching import BoundedCache, per_vocabulary
from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import (
    Activity,
    Company,
    DecayPolicy,
    ExtractContext,
    Lead,
    RollupStrategy,
    Route,
    RulepackSource,
    ScoreCard,
    ScoreLine,
    Scorer,
    Signal,
    SignalExtractor,
    SignalSpec,
    age_days,
    day_text,
)
from leadscore.taxonomy.activities import ACTIVITY_TIERS, KNOWN_TYPES
from leadscore.taxonomy.activities import tiers_for as activity_tiers
from leadscore.taxonomy.email import classify_address as classify_email

__all__ = [
    "ACTIVITY_TIERS",
    "Activity",
    "BoundedCache",
    "Company",
    "DecayPolicy",
    "ExtractContext",
    "KNOWN_TYPES",
    "Lead",
    "RollupStrategy",
    "Route",
    "RulepackSource",
    "ScoreCard",
    "ScoreLine",
    "Scorer",
    "Signal",
    "SignalExtractor",
    "SignalSpec",
    "activity_tiers",
    "age_days",
    "classify_email",
    "day_text",
    "hookimpl",
    "per_vocabulary",
    "reads_signals",
]
