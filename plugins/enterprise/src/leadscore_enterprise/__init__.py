"""leadscore-enterprise: buying-committee weighting, named-account tiers, long-cycle decay and ABM routing.

Registered through the ``leadscore`` entry point ``enterprise``. It serves the ``enterprise``
rulepack (applies to companies with 1,000+ employees or a named account tier), the
``enterprise`` signal extractor (``enterprise.account_tier``, see :mod:`leadscore_enterprise.tiers`)
and an ABM router: a named account's lead with a strong buying signal goes to the named-account
team instead of the band's queue.
"""

from __future__ import annotations

from importlib.resources import files

from leadscore.plugin import Route, RulepackSource, SignalExtractor, hookimpl

from leadscore_enterprise import tiers

PACK = "enterprise"
# Per tier: the ABM queue and how fast the named-account team must start the play.
ABM_QUEUES = {"strategic": ("abm-strategic", 1), "target": ("abm-target", 2)}


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("enterprise", tiers.extract, tiers.PROVIDES, tiers.__doc__ or "")]


@hookimpl
def leadscore_rulepacks():
    return [RulepackSource(PACK, files("leadscore_enterprise") / "rulepacks" / "enterprise.toml")]


def strong_signal(band: str, signals: dict) -> str | None:
    """What makes a named account's lead worth an account play now, or None.

    Sales-ready and target-account bands are strong on their own; an MQL is strong when it comes
    with a hand-raise in the last 30 days or with a buying committee forming (two or more engaged
    senior contacts). Earlier bands never are: the ABM team works buyers, not downloads.
    """
    if band in ("sales_ready", "target_account"):
        return f"a {band.replace('_', '-')} score"
    if band != "mql":
        return None
    if signals.get("intent.readiness.count_30d", 0) >= 1:
        return "a demo or sales request in the last 30 days"
    senior = signals.get("account.senior_engaged_contacts", 0)
    if senior >= 2:
        return f"{senior} senior stakeholders engaged at the account"
    return None


@hookimpl
def leadscore_route_lead(card, lead, ctx):
    # Only for leads the enterprise pack scored: a run pinned to other packs keeps their routing.
    if PACK not in ctx["packs"]:
        return None
    signals = ctx["signals"]
    tier = signals.get(tiers.TIER_SIGNAL)
    if tier not in ABM_QUEUES:
        return None
    why = strong_signal(card.band, signals)
    if why is None:
        return None
    queue, sla = ABM_QUEUES[tier]
    account = signals.get("account.id") or signals.get("company.domain") or signals.get("email.domain") or lead.id
    return Route("abm_play", queue, sla, f"named account owner of {account}",
                 f"{tier.capitalize()} account with {why}: the named-account team starts the play within "
                 f"{sla} hour{'s' if sla != 1 else ''}")
