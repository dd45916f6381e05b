"""A bounded, expiring cache for the per-request lookups of identification (publishable key → store, verified
tokens): at most `max_entries` entries, least recently used evicted first, each entry valid until its own deadline
(never longer than `ttl` seconds). The clock is a seam so tests move time instead of sleeping."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0 and self.max_entries > 0

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if self.clock() >= entry[0]:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: K, value: V, *, valid_for: float | None = None) -> None:
        """Keep `value` for `ttl` seconds, or `valid_for` if that is shorter (a token that expires sooner)."""
        lifetime = self.ttl if valid_for is None else min(self.ttl, valid_for)
        if not self.enabled or lifetime <= 0:
            return
        self._entries[key] = (self.clock() + lifetime, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> int:
        doomed = [key for key, (_, value) in self._entries.items() if predicate(key, value)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
