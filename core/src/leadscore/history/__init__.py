"""Memory between runs: score history in DuckDB or PostgreSQL, and what is built on it.

``open_store(target)`` opens (and migrates) a history; ``RunRecorder`` stores a scoring run;
``alerts``, ``diff``, ``ingest`` and ``replay`` hold the features of the same names. The database
drivers are the optional extra ``leadscore[history]``: the rest of leadscore works without them.
"""

from leadscore.history.connect import open_store
from leadscore.history.store import (
    AlertRecord,
    HistoryError,
    HistoryStore,
    LeadState,
    RunInfo,
    StoredCard,
    StoredPack,
)

__all__ = [
    "AlertRecord", "HistoryError", "HistoryStore", "LeadState", "RunInfo", "StoredCard", "StoredPack", "open_store",
]
