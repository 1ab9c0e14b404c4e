"""Tables derived from a run's vocabulary, built once per vocabulary object.

Extractors and plugins turn the merged ``[vocabulary]`` of the loaded rulepacks into lookup tables
(tier maps, compiled patterns, parsed lists). The engine keeps one vocabulary object per run, so a
table is keyed by that object's id; each entry keeps its vocabulary alive, so a matching id is
always the same vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def per_vocabulary(build: Callable[[Mapping[str, Any]], T], *, keep: int = 16,
                   on_clear: Callable[[], None] | None = None) -> Callable[[Mapping[str, Any]], T]:
    """A function ``get(vocabulary)`` that returns ``build(vocabulary)``, built once per vocabulary object.

    At most ``keep`` vocabularies are remembered; when one more arrives the entries are dropped
    and ``on_clear`` (if given) runs, for callers that key further caches by the built values' ids.
    """
    entries: dict[int, tuple[Mapping[str, Any], T]] = {}

    def get(vocabulary: Mapping[str, Any]) -> T:
        entry = entries.get(id(vocabulary))
        if entry is None or entry[0] is not vocabulary:
            if len(entries) > keep:
                entries.clear()
                if on_clear is not None:
                    on_clear()
            entry = entries[id(vocabulary)] = (vocabulary, build(vocabulary))
        return entry[1]

    return get


__all__ = ["per_vocabulary"]
