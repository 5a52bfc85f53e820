"""Per-user behaviour state: the rolling window, recent event ids, bought items, sessions.

Plain Python, no Kafka: the agents call ``apply`` once per event and store the state with
``streams.state_codec``. Times are epoch milliseconds (UTC) as on the wire.

Ordering: the window is kept sorted by ``ts``; an event older than the newest one (views
and clicks arrive on two topics, so they can interleave late) is slotted in by time, and
is simply not kept when the window is full of newer ones. Sessions move forward only: a
late event never splits or opens a past session.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from schemas.inputs import EVENT_CODES, PURCHASE, ClickEvent, ViewEvent
from shopstream.config import Settings
from streams.features import Features, compute_features

EVENT_NAMES = {code: name for name, code in EVENT_CODES.items() if code}  # 0 is padding


class Interaction(NamedTuple):
    item_id: str
    code: int  # view=1, click=2, add_to_cart=3, purchase=4
    ts: int  # epoch ms
    dwell_ms: int  # 0 when the event did not say


@dataclass(frozen=True, slots=True)
class StateLimits:
    window_size: int = 50
    dedupe_memory: int = 64
    bought_memory: int = 100
    session_idle_ms: int = 30 * 60 * 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> StateLimits:
        return cls(window_size=settings.window_size, dedupe_memory=settings.dedupe_memory,
                   bought_memory=settings.bought_memory,
                   session_idle_ms=settings.session_idle_ms)


def event_key(event_id: str) -> int:
    """The 8-byte hash an event id is remembered by (a collision is a 2**-64 chance)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


def _ts(item: Interaction) -> int:
    return item.ts


class UserState:
    """Everything kept about one user. Build with ``UserState(limits)``; mutate by ``apply``."""

    __slots__ = ("limits", "window", "seen", "_seen_set", "bought", "events_total",
                 "last_ts", "session_count", "session_start_ms", "session_events",
                 "codec_memo", "latest")

    def __init__(self, limits: StateLimits) -> None:
        self.limits = limits
        self.window: list[Interaction] = []  # oldest first, sorted by ts
        self.seen: deque[int] = deque(maxlen=limits.dedupe_memory)  # event keys, oldest first
        self._seen_set: set[int] = set()
        self.bought: list[str] = []  # most recent purchase last, no repeats
        self.events_total = 0  # every applied event, also those that left the window
        self.last_ts = 0  # newest ts applied (0: none yet)
        self.session_count = 0
        self.session_start_ms = 0
        self.session_events = 0
        self.codec_memo: object = None  # streams.state_codec's, to re-encode only what changed
        self.latest = b""  # the latest recommendation published for the user (JSON; b"": none)

    def has_seen(self, event_id: str) -> bool:
        return event_key(event_id) in self._seen_set

    def apply(self, event_id: str, item_id: str, code: int, ts: int, dwell_ms: int = 0) -> bool:
        """Record one interaction; returns False, changing nothing, when the id was seen."""
        if code not in EVENT_NAMES:
            raise ValueError(f"unknown event code {code}")
        key = event_key(event_id)
        if key in self._seen_set:
            return False
        self.remember(key)
        self._add_to_window(Interaction(item_id, code, ts, dwell_ms))
        if code == PURCHASE:
            self._add_bought(item_id)
        self._advance_session(ts)
        self.events_total += 1
        return True

    def apply_event(self, event: ViewEvent | ClickEvent) -> bool:
        """``apply`` for a decoded view or click."""
        return self.apply(event.event_id, event.item_id, event.code, event.ts,
                          event.dwell_ms or 0)

    def remember(self, key: int) -> None:
        """Add an event key to the dedupe memory, forgetting the oldest when full."""
        if self.seen.maxlen == 0:
            return
        if len(self.seen) == self.seen.maxlen:
            self._seen_set.discard(self.seen[0])
        self.seen.append(key)
        self._seen_set.add(key)

    def restore_seen_index(self) -> None:
        """Rebuild the membership set after ``seen`` was replaced (as decoding does)."""
        self._seen_set = set(self.seen)

    def features(self, now_ms: int) -> Features:
        return compute_features(self.window, now_ms, self.last_ts if self.events_total else None)

    def summary(self, now_ms: int) -> dict[str, Any]:
        """The JSON-able view of this state (what ``GET /users/{id}`` shows)."""
        idle = self.limits.session_idle_ms
        return {
            "events_total": self.events_total,
            "last_ts": self.last_ts or None,
            "window": [
                {"item_id": i.item_id, "event": EVENT_NAMES[i.code],
                 "ts": i.ts, "dwell_ms": i.dwell_ms}
                for i in self.window
            ],
            "features": self.features(now_ms).as_dict(),
            "session": {
                "count": self.session_count,
                "current_start_ts": self.session_start_ms or None,
                "current_events": self.session_events,
                "active": bool(self.events_total) and now_ms - self.last_ts < idle,
            },
            "bought": list(self.bought),
        }

    def _add_to_window(self, item: Interaction) -> None:
        window = self.window
        if not window or item.ts >= window[-1].ts:
            window.append(item)
        else:
            window.insert(bisect.bisect_right(window, item.ts, key=_ts), item)
        if len(window) > self.limits.window_size:
            del window[: len(window) - self.limits.window_size]

    def _add_bought(self, item_id: str) -> None:
        if self.limits.bought_memory == 0:
            return
        if item_id in self.bought:
            self.bought.remove(item_id)
        self.bought.append(item_id)
        if len(self.bought) > self.limits.bought_memory:
            del self.bought[0]

    def _advance_session(self, ts: int) -> None:
        if self.events_total == 0 or ts - self.last_ts >= self.limits.session_idle_ms:
            self.session_count += 1
            self.session_start_ms = ts
            self.session_events = 1
        elif ts >= self.session_start_ms:
            self.session_events += 1
        self.last_ts = max(self.last_ts, ts)
