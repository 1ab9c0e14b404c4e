"""BoundedCache and per_vocabulary: memo tables that stay bounded, and one build per vocabulary object."""

from __future__ import annotations

import pytest

from leadscore.caching import BoundedCache, per_vocabulary


def test_builds_once_per_vocabulary_object_not_per_equal_value():
    built = []
    get = per_vocabulary(lambda vocab: built.append(vocab) or len(built))
    first, second = {"topics": ["crm"]}, {"topics": ["crm"]}
    assert get(first) == 1 and get(first) == 1
    assert get(second) == 2  # equal content, another object: its own entry
    assert built == [first, second]


def test_drops_its_entries_past_the_limit():
    get = per_vocabulary(lambda vocab: object(), keep=2)
    vocabularies = [{"n": n} for n in range(3)]
    tables = [get(v) for v in vocabularies]
    assert get(vocabularies[2]) is tables[2]  # the third found the table full and started afresh
    assert get(vocabularies[0]) is not tables[0]  # dropped, so built again


def test_bounded_cache_never_holds_more_than_its_limit():
    cache: BoundedCache[int, str] = BoundedCache(3)
    for n in range(10):
        assert cache.put(n, str(n)) == str(n)
        assert len(cache) <= 3 and cache.get(n) == str(n)
    assert cache == {9: "9"}  # 9 arrived when 6, 7, 8 filled it


def test_bounded_cache_needs_room_for_one_entry():
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(0)
