"""What a plugin's columnar forms build with: the public API of the columnar engine for plugin authors.

``q`` builds SQL as sqlglot expressions (``q.col``, ``q.lit``, ``q.fn``, ``q.case``, ``q.select``...),
``emit`` gives the three columns of one signal, ``day_text`` the ``2026-11-20`` of a time,
``lookup`` a table's value for a key (one CASE, a SQL form of ``dict.get``), and ``route_struct``
what a router's columnar form returns. Importing it needs leadscore[columnar].
"""

from __future__ import annotations

from leadscore.columnar import sql as q
from leadscore.columnar.context import ColumnarContext, day_text, emit, json_path
from leadscore.columnar.portable import lookup
from leadscore.columnar.render import RouterContext, route_struct

__all__ = ["ColumnarContext", "RouterContext", "day_text", "emit", "json_path", "lookup", "q", "route_struct"]
