"""Streaming item popularity with exponential decay, bounded in memory.

Each event adds ``2 ** ((t - t_ref) / half_life)`` to its item's weight, which ranks items
exactly like counts that halve every ``half_life`` seconds, without touching every item on
each tick. When the exponent grows large the reference time moves forward and all weights
are rescaled once. The table keeps at most ``capacity`` items: when it grows past a slack
above that, the lightest are dropped (amortised, so an update stays O(1)).

The event loop adds while the scoring thread reads, so every access takes a lock.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Container, Iterable


class DecayedPopularity:
    def __init__(self, half_life_s: float, capacity: int, slack: float = 0.25) -> None:
        if half_life_s <= 0 or capacity < 1:
            raise ValueError("half_life_s must be > 0 and capacity >= 1")
        self.half_life_s = half_life_s
        self.capacity = capacity
        self._limit = capacity + max(1, int(capacity * slack))
        self._weights: dict[str, float] = {}
        self._t_ref: float | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._weights)

    def add(self, item_id: str, ts_s: float, weight: float = 1.0) -> None:
        """Count one event for ``item_id`` at time ``ts_s`` (seconds, any epoch)."""
        with self._lock:
            self._add(item_id, ts_s, weight)

    def add_many(self, events: Iterable[tuple[str, float]]) -> None:
        """``add`` for each ``(item_id, ts_s)``, under one lock."""
        with self._lock:
            for item_id, ts_s in events:
                self._add(item_id, ts_s, 1.0)

    def _add(self, item_id: str, ts_s: float, weight: float) -> None:
        if self._t_ref is None:
            self._t_ref = ts_s
        exponent = (ts_s - self._t_ref) / self.half_life_s
        if exponent > 60:  # keep weights far from float overflow
            self._rebase(ts_s)
            exponent = 0.0
        self._weights[item_id] = self._weights.get(item_id, 0.0) + weight * 2.0**exponent
        if len(self._weights) > self._limit:
            self._prune()

    def _rebase(self, ts_s: float) -> None:
        assert self._t_ref is not None
        factor = 2.0 ** (-(ts_s - self._t_ref) / self.half_life_s)
        self._weights = {k: w * factor for k, w in self._weights.items() if w * factor > 0}
        self._t_ref = ts_s

    def _prune(self) -> None:
        keep = heapq.nlargest(self.capacity, self._weights.items(), key=lambda kv: kv[1])
        self._weights = dict(keep)

    def score(self, item_id: str, now_s: float) -> float:
        """The item's decayed count as of ``now_s``."""
        with self._lock:
            if self._t_ref is None:
                return 0.0
            weight, t_ref = self._weights.get(item_id, 0.0), self._t_ref
        return weight * 2.0 ** (-(now_s - t_ref) / self.half_life_s)

    def top(self, n: int, now_s: float, exclude: Container[str] = ()) -> list[tuple[str, float]]:
        """The ``n`` most popular items not in ``exclude``, with decayed counts as of ``now_s``."""
        with self._lock:
            if self._t_ref is None or n <= 0:
                return []
            scale = 2.0 ** (-(now_s - self._t_ref) / self.half_life_s)
            items = (kv for kv in self._weights.items() if kv[0] not in exclude)
            best = heapq.nlargest(n, items, key=lambda kv: kv[1])
        return [(item, w * scale) for item, w in best]
