"""The default router: the band's ``[routing.<band>]`` table of the composed rulepacks is the Route.

Registered ``trylast``, so any plugin router that returns a Route wins. The loader builds each
table entry as a :class:`~leadscore.model.Route` whose reason defaults to the band.
"""

from __future__ import annotations

from leadscore.hookspecs import hookimpl, reads_signals
from leadscore.model import evolve


@hookimpl(trylast=True)
@reads_signals()  # the band and the routing table only
def leadscore_route_lead(card, lead, ctx):
    route = ctx["routing"].get(card.band)
    if route is None or route.reason:
        return route
    # A table built by hand, without the loader's default reason.
    return evolve(route, reason=f"band {card.band}")


# The columnar engine may hand routers a lead that holds only its id and account id (it never builds
# the rest); this router reads nothing of the lead itself.
leadscore_route_lead.reads_lead = ()
# Its routes are the composed [routing] tables, which the columnar engine joins in SQL.
leadscore_route_lead.routes_by_table = True
