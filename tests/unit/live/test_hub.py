"""The fan-out hub: per-user routing, bounded queues that drop the oldest, cleanup."""

from __future__ import annotations

import asyncio

import pytest

from live.hub import Hub, LiveEvent


def _event(user: str, n: int, kind: str = "recommendation") -> LiveEvent:
    return LiveEvent(kind=kind, user_id=user, event_id=f"{user}-{kind}-{n}",
                     data=b'{"n": %d}' % n)


def _drain(sub) -> list[LiveEvent | None]:
    async def go():
        out = []
        while sub.pending():
            out.append(await sub.get(timeout=1))
        return out
    return asyncio.run(go())


def test_events_reach_only_the_watchers_of_their_user():
    hub = Hub()
    alice, alice2, bob = hub.subscribe("alice"), hub.subscribe("alice"), hub.subscribe("bob")
    assert hub.publish(_event("alice", 1)) == 2
    assert hub.publish(_event("carol", 1)) == 0
    assert [e.event_id for e in _drain(alice)] == ["alice-recommendation-1"]
    assert [e.event_id for e in _drain(alice2)] == ["alice-recommendation-1"]
    assert _drain(bob) == []


def test_a_full_queue_drops_its_oldest_events_and_counts_them():
    hub = Hub(queue_size=3)
    sub = hub.subscribe("u")
    for n in range(5):
        hub.publish(_event("u", n))
    assert [e.data for e in _drain(sub)] == [b'{"n": 2}', b'{"n": 3}', b'{"n": 4}']
    assert sub.dropped == 2


def test_a_slow_watcher_does_not_hold_back_another():
    hub = Hub(queue_size=2)
    slow, fast = hub.subscribe("u"), hub.subscribe("u")
    received = []
    for n in range(4):
        hub.publish(_event("u", n))
        received += _drain(fast)  # the fast one keeps up after every event
    assert [e.data for e in received] == [b'{"n": %d}' % n for n in range(4)]
    assert fast.dropped == 0
    assert [e.data for e in _drain(slow)] == [b'{"n": 2}', b'{"n": 3}']
    assert slow.dropped == 2


def test_unsubscribe_removes_the_watcher_and_forgets_an_unwatched_user():
    hub = Hub()
    a, b = hub.subscribe("u"), hub.subscribe("u")
    assert (hub.watched_users(), hub.subscribers()) == (1, 2)
    hub.unsubscribe(a)
    assert (hub.watched_users(), hub.subscribers()) == (1, 1)
    hub.unsubscribe(b)
    assert (hub.watched_users(), hub.subscribers()) == (0, 0)
    assert hub.publish(_event("u", 1)) == 0
    assert a.pending() == 0 and b.pending() == 0
    hub.unsubscribe(b)  # twice is harmless


def test_a_repeated_output_is_delivered_once():
    hub = Hub()
    sub = hub.subscribe("u")
    assert hub.publish(_event("u", 1)) == 1
    assert hub.publish(_event("u", 1)) == 0
    assert len(_drain(sub)) == 1 and hub.repeats == 1 and hub.published == 1


def test_close_ends_every_stream():
    hub = Hub()
    subs = [hub.subscribe("a"), hub.subscribe("b")]
    hub.close()
    assert [_drain(s) for s in subs] == [[None], [None]]


def test_get_waits_for_the_next_event_and_times_out_without_one():
    async def go():
        hub = Hub()
        sub = hub.subscribe("u")
        waiter = asyncio.create_task(sub.get(timeout=5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        hub.publish(_event("u", 7))
        got = await waiter
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.01)
        return got
    assert asyncio.run(go()).data == b'{"n": 7}'


def test_recent_users_are_newest_first_counted_by_kind_and_capped():
    hub = Hub(recent_users=2)
    hub.publish(_event("a", 1))
    hub.publish(_event("b", 1))
    hub.publish(_event("b", 2, kind="ad"))
    hub.publish(_event("c", 1))
    assert hub.recent_users() == [
        {"user_id": "c", "recommendations": 1, "ads": 0},
        {"user_id": "b", "recommendations": 1, "ads": 1},
    ]
    hub.publish(_event("b", 3))
    assert [u["user_id"] for u in hub.recent_users()] == ["b", "c"]
