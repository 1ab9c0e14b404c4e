"""The default router: the band's ``[routing.<band>]`` table of the composed rulepacks becomes a Route.

Registered ``trylast``, so any plugin router that returns a Route wins.
"""

from __future__ import annotations

from leadscore.hookspecs import hookimpl
from leadscore.model import Route


@hookimpl(trylast=True)
def leadscore_route_lead(card, lead, ctx):
    route = ctx["routing"].get(card.band)
    if route is None:
        return None
    return Route(route.action, route.queue, route.sla_hours, route.owner_hint,
                 route.reason or f"band {card.band}")
