"""The default router: the band's ``[routing.<band>]`` table of the composed rulepacks becomes a Route.

Registered ``trylast``, so any plugin router that returns a Route wins.
"""

from __future__ import annotations

from leadscore.hookspecs import hookimpl
from leadscore.model import Route


# One immutable Route per routing table entry and band, reused for every lead it routes.
_ROUTES: dict[tuple[int, str], tuple[object, Route]] = {}


@hookimpl(trylast=True)
def leadscore_route_lead(card, lead, ctx):
    route = ctx["routing"].get(card.band)
    if route is None:
        return None
    key = (id(route), card.band)
    hit = _ROUTES.get(key)
    # The entry keeps its routing definition alive, so a matching id is always the same one.
    if hit is None or hit[0] is not route:
        if len(_ROUTES) > 1024:
            _ROUTES.clear()
        hit = _ROUTES[key] = (route, Route(route.action, route.queue, route.sla_hours, route.owner_hint,
                                           route.reason or f"band {card.band}"))
    return hit[1]
