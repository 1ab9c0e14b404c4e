"""Bounded memo tables, and tables derived from a run's vocabulary, built once per vocabulary object.

Values repeat from lead to lead (titles, domains, companies, days), so extractors remember what
they computed; every such table is a :class:`BoundedCache`, which forgets everything when full,
so memory stays flat however long the input. Extractors and plugins also turn the merged
``[vocabulary]`` of the loaded rulepacks into lookup tables (tier maps, compiled patterns, parsed
lists): :func:`per_vocabulary` builds those once per vocabulary object (the engine keeps one per
run); each entry keeps its vocabulary alive, so a matching id is always the same vocabulary.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class BoundedCache(dict, Generic[K, T]):  # type: ignore[type-arg]
    """A dict for memoising that holds at most ``limit`` entries: when full, ``put`` starts afresh.

    Read with ``cache.get(key)``; store with ``cache.put(key, value)``, which returns the value.
    Forgetting everything at once is cheaper than tracking recency, and the inputs this serves
    arrive in runs (the contacts of an account, the leads of a campaign), so the hit rate holds.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        if limit < 1:
            raise ValueError(f"a BoundedCache needs a limit of at least 1, not {limit}")
        self.limit = limit

    def put(self, key: K, value: T) -> T:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value


def per_vocabulary(build: Callable[[Mapping[str, Any]], T], *, keep: int = 16) -> Callable[[Mapping[str, Any]], T]:
    """A function ``get(vocabulary)`` that returns ``build(vocabulary)``, built once per vocabulary object.

    At most ``keep`` vocabularies are remembered (a process that builds many engines drops the
    oldest tables together).
    """
    entries: BoundedCache[int, tuple[Mapping[str, Any], T]] = BoundedCache(keep)

    def get(vocabulary: Mapping[str, Any]) -> T:
        entry = entries.get(id(vocabulary))
        if entry is None or entry[0] is not vocabulary:
            entry = entries.put(id(vocabulary), (vocabulary, build(vocabulary)))
        return entry[1]

    return get


__all__ = ["BoundedCache", "per_vocabulary"]


class SeenHashes:
    """Which keys were met, in 16 bytes a key at most: their 64-bit hashes in one open-addressing
    array, instead of a set of the keys, so remembering every lead of a run of millions stays
    small (duplicate lead ids, an account's distinct contacts). Two keys with the same hash
    count as one: a chance of about n^2 / 2^65 for n keys."""

    _BITS = (1 << 64) - 1

    def __init__(self) -> None:
        self._slots = array("Q", bytes(8 * 1024))
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def add(self, key: Hashable) -> bool:
        """Remember ``key``; False when it was already there."""
        digest = (hash(key) & self._BITS) | 1  # 0 marks an empty slot
        slots = self._slots
        mask = len(slots) - 1
        index = digest & mask
        while True:
            held = slots[index]
            if held == 0:
                break
            if held == digest:
                return False
            index = (index + 1) & mask
        slots[index] = digest
        self._used += 1
        if self._used * 2 > len(slots):
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        slots = self._slots = array("Q", bytes(16 * len(old)))
        mask = len(slots) - 1
        for digest in old:
            if digest:
                index = digest & mask
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = digest
