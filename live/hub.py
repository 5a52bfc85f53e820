"""Fan-out of output events to the browsers watching a user.

Every browser connection is a Subscription to one user id, with a bounded queue of its own:
a slow browser loses its oldest events and never holds up the others or grows memory. The
hub also remembers which users were active recently (for the page's pick list) and drops
repeated outputs by ``output_id`` (at-least-once delivery can send one twice).

The hub lives on the event loop: ``publish`` is called there (the Kafka thread hands events
over with ``loop.call_soon_threadsafe``), so it needs no lock.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One output for the page: ``kind`` is the SSE event name, ``data`` its JSON body."""

    kind: str
    user_id: str
    event_id: str
    data: bytes


class Subscription:
    """One browser's bounded queue of events for one user."""

    def __init__(self, user_id: str, size: int) -> None:
        self.user_id = user_id
        self._items: deque[LiveEvent | None] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, event: LiveEvent | None) -> None:
        """Queue an event (None ends the stream); the oldest one goes when full."""
        if self.closed:
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(event)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> LiveEvent | None:
        """The next event; None when the stream ended. Raises TimeoutError on ``timeout``."""
        while not self._items:
            self._ready.clear()
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self._items.popleft()

    def pending(self) -> int:
        return len(self._items)


class Hub:
    def __init__(self, queue_size: int = 100, recent_users: int = 30,
                 remembered_ids: int = 4096) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_cap = recent_users
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_cap = remembered_ids
        self.published = 0
        self.repeats = 0

    def subscribe(self, user_id: str) -> Subscription:
        sub = Subscription(user_id, self.queue_size)
        self._subs.setdefault(user_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        subs = self._subs.get(sub.user_id)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.user_id]

    def publish(self, event: LiveEvent) -> int:
        """Hand ``event`` to everyone watching its user; returns how many got it."""
        if self._is_repeat(event.event_id):
            self.repeats += 1
            return 0
        self.published += 1
        self._note_user(event)
        subs = self._subs.get(event.user_id, ())
        for sub in subs:
            sub.put(event)
        return len(subs)

    def close(self) -> None:
        """End every stream (server shutdown): each subscriber gets the end marker."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.put(None)

    def watched_users(self) -> int:
        return len(self._subs)

    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def recent_users(self) -> list[dict[str, Any]]:
        """Users seen on the output topics, most recent first."""
        return [{"user_id": user, **info} for user, info in reversed(self._recent.items())]

    def _note_user(self, event: LiveEvent) -> None:
        info = self._recent.pop(event.user_id, None) or {"recommendations": 0, "ads": 0}
        info["recommendations" if event.kind == "recommendation" else "ads"] += 1
        self._recent[event.user_id] = info
        while len(self._recent) > self._recent_cap:
            self._recent.popitem(last=False)

    def _is_repeat(self, event_id: str) -> bool:
        if not event_id:
            return False
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return True
        self._seen[event_id] = None
        if len(self._seen) > self._seen_cap:
            self._seen.popitem(last=False)
        return False
