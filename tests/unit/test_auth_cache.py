"""The bounded, expiring cache of identification lookups: time moves through the clock seam."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityos.auth.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_for_the_ttl_or_its_own_shorter_validity() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=60, max_entries=10, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, valid_for=5)
    cache.put("c", 3, valid_for=600)  # never longer than the ttl
    clock.now += 4.9
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, 2, 3)
    clock.now += 0.1
    assert cache.get("b") is None
    clock.now += 55
    assert (cache.get("a"), cache.get("c")) == (None, None)
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (3, 3)


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, max_entries=2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_discard_and_a_disabled_cache() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, max_entries=5, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.discard("a")
    assert cache.discard_where(lambda key, value: value == 2) == 1
    assert len(cache) == 0
    off: TtlCache[str, int] = TtlCache(ttl=0, max_entries=5)
    off.put("a", 1)
    assert off.get("a") is None and not off.enabled
    expired: TtlCache[str, int] = TtlCache(ttl=60, max_entries=5)
    expired.put("a", 1, valid_for=-1)  # a token already past its exp is never kept
    assert len(expired) == 0


@given(st.integers(min_value=1, max_value=20),
       st.lists(st.tuples(st.integers(0, 40), st.floats(0, 100), st.floats(-5, 200)), max_size=200))
def test_never_more_than_max_entries_and_never_past_a_deadline(size: int,
                                                               steps: list[tuple[int, float, float]]) -> None:
    clock = Clock()
    cache: TtlCache[int, float] = TtlCache(ttl=60, max_entries=size, clock=clock)
    deadlines: dict[int, float] = {}
    for key, advance, valid_for in steps:
        clock.now += advance / 10
        cache.put(key, clock.now, valid_for=valid_for)
        if min(60, valid_for) > 0:
            deadlines[key] = clock.now + min(60, valid_for)
        assert len(cache) <= size
        for known, deadline in deadlines.items():
            if clock.now >= deadline:
                assert cache.get(known) is None
