"""How fast a replay sends: as fast as possible, at the log's own pace (scaled), capped in
events per second, or both.

``Pacer.delay`` is plain arithmetic over a clock reading, so tests check it without
sleeping. Both limits schedule against absolute targets, so sleeps too short to take
(under a millisecond) are skipped without the average pace drifting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

MIN_SLEEP_S = 0.001


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing), ``realtime`` -> 1.0, ``Nx`` (``10x``, ``0.5x``) -> N."""
    value = text.strip().lower()
    if value == "max":
        return None
    if value == "realtime":
        return 1.0
    if value.endswith("x"):
        try:
            factor = float(value[:-1])
        except ValueError:
            factor = 0.0
        if factor > 0 and factor != float("inf"):
            return factor
    raise ValueError(f"expected max, realtime or a factor such as 10x, got {text!r}")


class Pacer:
    """Spaces events by their timestamps divided by ``speed`` and at most ``rate`` a second.

    ``speed`` None sends without regard to timestamps; ``rate`` None sets no cap. The first
    event goes at once; event time then maps to wall time from there. Events older than
    the replay clock (out of order) go at once too.
    """

    def __init__(self, speed: float | None = None, rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.speed = speed
        self.interval = None if rate is None else 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._origin: tuple[int, float] | None = None  # (event ms, wall s) of the first event
        self._next_slot: float | None = None  # earliest wall time the rate allows

    @property
    def paces(self) -> bool:
        return self.speed is not None or self.interval is not None

    def delay(self, ts_ms: int, now: float) -> float:
        """Seconds to wait, at wall time ``now``, before sending an event stamped ``ts_ms``;
        books the event's slot, so call it once per event."""
        wait = 0.0
        if self.speed is not None:
            if self._origin is None:
                self._origin = (ts_ms, now)
            first_ms, first_wall = self._origin
            target = first_wall + (ts_ms - first_ms) / 1000.0 / self.speed
            wait = max(wait, target - now)
        if self.interval is not None:
            slot = now if self._next_slot is None else max(self._next_slot, now)
            wait = max(wait, slot - now)
            self._next_slot = now + wait + self.interval
        return wait

    def wait(self, ts_ms: int) -> float:
        """Sleep until the event stamped ``ts_ms`` may go; returns the seconds slept."""
        if not self.paces:
            return 0.0
        wait = self.delay(ts_ms, self.clock())
        if wait < MIN_SLEEP_S:
            return 0.0
        self.sleep(wait)
        return wait
