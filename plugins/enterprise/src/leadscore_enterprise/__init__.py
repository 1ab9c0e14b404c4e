"""leadscore-enterprise: buying-committee weighting, named-account tiers, long-cycle decay and ABM routing.

Registered through the ``leadscore`` entry point ``enterprise``. It serves the ``enterprise``
rulepack (applies to companies with 1,000+ employees or a named account tier), the
``enterprise`` signal extractor (``enterprise.account_tier``, see :mod:`leadscore_enterprise.tiers`)
and an ABM router: a named account's lead with a strong buying signal goes to the named-account
team instead of the band's queue.
"""

from __future__ import annotations

from importlib.resources import files

from leadscore.plugin import Route, RulepackSource, SignalExtractor, hookimpl, reads_signals

from leadscore_enterprise import tiers

PACK = "enterprise"
# Per tier: the ABM queue and how fast the named-account team must start the play.
ABM_QUEUES = {"strategic": ("abm-strategic", 1), "target": ("abm-target", 2)}


@hookimpl
def leadscore_signal_extractors():
    return [SignalExtractor("enterprise", tiers.extract, tiers.PROVIDES, tiers.__doc__ or "", tiers.columnar)]


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


# It reads nothing for a lead the enterprise pack did not score (it answers None first), so its
# reads are declared for that pack's leads: ingest rescores a contact for a moved senior count
# only when the contact's own packs hold the enterprise pack. The route it chooses depends on
# the senior count only through "two or more" (its reason shows the count, a card's text).
@hookimpl
@reads_signals(tiers.TIER_SIGNAL, "intent.readiness.count_30d", "account.senior_engaged_contacts", "account.id",
               "company.domain", "email.domain", packs=PACK,
               compares={"account.senior_engaged_contacts": {"gte": 2}})
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


# What the router reads of the lead itself (the rest comes from the card and the signals), so the
# columnar engine can route leads it never builds as records.
leadscore_route_lead.reads_lead = ("id",)


def _route_columnar(ctx):
    """The same router for the columnar engine: a SQL route per lead, NULL for no opinion."""
    from leadscore.columnar.api import q, route_struct

    band, tier = ctx.band, ctx.signal(tiers.TIER_SIGNAL)
    readiness = q.coalesce(ctx.signal("intent.readiness.count_30d"), q.lit(0))
    senior = q.coalesce(ctx.signal("account.senior_engaged_contacts"), q.lit(0))
    why = q.case([
        (q.in_(band, ("sales_ready", "target_account")),
         q.concat(q.lit("a "), q.fn("replace", band, q.lit("_"), q.lit("-")), q.lit(" score"))),
        (q.and_(band.eq(q.lit("mql")), readiness >= 1), q.lit("a demo or sales request in the last 30 days")),
        (q.and_(band.eq(q.lit("mql")), senior >= 2),
         q.concat(q.cast(senior, "VARCHAR"), q.lit(" senior stakeholders engaged at the account"))),
    ])
    account = q.coalesce(*[q.fn("nullif", ctx.signal(name), q.lit("")) for name in
                           ("account.id", "company.domain", "email.domain")], ctx.lead_id)
    routes = []
    for name, (queue, sla) in ABM_QUEUES.items():
        hours = f"{sla} hour{'s' if sla != 1 else ''}"
        routes.append((tier.eq(q.lit(name)), route_struct(
            q.lit("abm_play"), q.lit(queue), q.lit(sla), q.concat(q.lit("named account owner of "), account),
            q.concat(q.lit(f"{name.capitalize()} account with "), why,
                     q.lit(f": the named-account team starts the play within {hours}")))))
    return q.case([(q.and_(ctx.has_pack(PACK), q.not_null(why)), q.case(routes))])


leadscore_route_lead.columnar = _route_columnar
