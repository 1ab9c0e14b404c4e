"""per_vocabulary: one build per vocabulary object, bounded, and a hook for caches keyed by its results."""

from __future__ import annotations

from leadscore.caching import per_vocabulary


def test_builds_once_per_vocabulary_object_not_per_equal_value():
    built = []
    get = per_vocabulary(lambda vocab: built.append(vocab) or len(built))
    first, second = {"topics": ["crm"]}, {"topics": ["crm"]}
    assert get(first) == 1 and get(first) == 1
    assert get(second) == 2  # equal content, another object: its own entry
    assert built == [first, second]


def test_drops_its_entries_past_the_limit_and_says_so():
    cleared = []
    get = per_vocabulary(lambda vocab: object(), keep=2, on_clear=lambda: cleared.append(True))
    vocabularies = [{"n": n} for n in range(4)]
    tables = [get(v) for v in vocabularies]
    assert cleared == [True]  # the fourth vocabulary found three entries (more than keep)
    assert get(vocabularies[3]) is tables[3]
    assert get(vocabularies[0]) is not tables[0]  # dropped, so built again
