"""Registers the rule engine as the built-in scorer ``rules``.

The Engine runs it directly on its hot path; this function gives the same lines to a caller that
holds a composed pack (``ctx["composed"]``, ``ctx["matcher"]``, ``ctx["as_of"]``).
"""

from __future__ import annotations

from leadscore.hookspecs import hookimpl
from leadscore.model import Scorer, ScoreLine


def rules_scorer(lead, signals, ctx):
    from leadscore.scoring import build_ledger

    composed, matcher, as_of = ctx["composed"], ctx["matcher"], ctx["as_of"]
    values = {name: sig.value for name, sig in signals.items()}
    matches = matcher.match(values, lead.activities, as_of)
    ledger, _, _ = build_ledger(composed, matches, signals, lead.activities, as_of)
    return [ScoreLine(c.rule_id, c.category, c.points, c.reason, c.observed_at, c.signal)
            for c in ledger if c.kind == "rule"]


@hookimpl
def leadscore_scorers():
    return [Scorer("rules", rules_scorer, "the TOML rule engine")]
