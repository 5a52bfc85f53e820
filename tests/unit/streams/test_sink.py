"""The worker's sink: rows go to the event's partition, deliveries advance persisted offsets,
refusals surface, and Faust's flush (before every commit) waits for the sink."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP

from shopstream.config import Settings
from streams.sink import WRITE_TURN, DeliveryError, KafkaSink, make_sink


class FakeMessage:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._t, self._p, self._o = topic, partition, offset

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o


class FakeProducer:
    """Takes records; flush() reports each delivered (or refused, when told to)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, int]] = []
        self._pending: list[tuple[str, int, object]] = []
        self.refuse: str | None = None

    def produce(self, topic, value, key, partition=-1, on_delivery=None):  # noqa: ANN001
        self.records.append((topic, key, value, partition))
        self._pending.append((topic, partition, on_delivery))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        offsets: dict[tuple[str, int], int] = {}
        for topic, partition, callback in self._pending:
            offset = offsets[(topic, partition)] = offsets.get((topic, partition), -1) + 1
            error = SimpleNamespace(str=lambda: "refused") if topic == self.refuse else None
            callback(error, FakeMessage(topic, partition, offset))  # type: ignore[operator]
        self._pending.clear()
        return 0


class Record:
    """What the sink reads of a Faust event (weakly referenced, as Faust does)."""

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition, tp=TP("events.views", partition))


def record(partition: int) -> Record:
    return Record(partition)


@pytest.fixture
def table():
    app = faust.App("sink-test", store="memory://")
    return app.Table("rows", partitions=4, key_type=str, value_type=bytes)


def test_a_row_goes_to_the_store_and_to_its_events_partition_of_the_changelog(table):
    producer = FakeProducer()
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.put_row(table, "user-1", b"\x00state", record(partition=3))
    sink.put_row(table, "user-2", None, record(partition=1))  # a delete: a tombstone
    changelog = table.changelog_topic.get_topic_name()
    key = table.data._encode_key("user-1")
    assert producer.records == [(changelog, key, b"\x00state", 3),
                                (changelog, table.data._encode_key("user-2"), None, 1)]
    assert table.data["user-1"] == b"\x00state"


def test_flush_advances_each_partitions_persisted_offset_once(table, monkeypatch):
    producer = FakeProducer()
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    sink.add_table(table)
    persisted = []
    monkeypatch.setattr(table.data, "set_persisted_offset",
                        lambda tp, offset: persisted.append((tp.partition, offset)))
    for partition in (0, 2, 2, 2):
        sink.put_row(table, f"u{partition}", b"v", record(partition))
    sink.send("recs.users", b"u0", b"{}")  # an output: no offset to keep
    asyncio.run(sink.flush())
    assert sorted(persisted) == [(0, 0), (2, 2)]


class Counter:
    """A deferred row's value: how many times it was made, and what it is now."""

    def __init__(self, value: bytes) -> None:
        self.value, self.made = value, 0

    def __call__(self) -> bytes:
        self.made += 1
        return self.value


def test_a_deferred_row_is_written_once_at_the_flush_as_it_is_then(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=8, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    state = Counter(b"one event")
    for _ in range(3):  # three batches change the user's state before the commit
        sink.defer_row(table, "user-1", state, record(partition=2))
    state.value = b"three events"
    assert producer.records == [] and "user-1" not in table.data
    assert sink.get_row(table, "user-1") == b"three events"  # reads see it meanwhile
    asyncio.run(sink.flush())
    changelog = table.changelog_topic.get_topic_name()
    assert producer.records == [(changelog, table.data._encode_key("user-1"),
                                 b"three events", 2)]
    assert table.data["user-1"] == b"three events"
    assert state.made == 2  # the read and the write: never once per batch
    asyncio.run(sink.flush())
    assert len(producer.records) == 1  # written once


def test_past_defer_max_the_longest_waiting_row_is_written_at_once(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=2, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    for user in ("u1", "u2", "u1", "u3"):  # u1 again keeps its place as the oldest
        sink.defer_row(table, user, Counter(user.encode()), record(partition=0))
    assert [r[2] for r in producer.records] == [b"u1"]
    sink.close()  # a stopping worker writes the rest
    assert sorted(r[2] for r in producer.records) == [b"u1", b"u2", b"u3"]


def test_a_flush_writes_deferred_rows_in_turns_and_not_one_erased_meanwhile(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=1000, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    users = [f"u{n}" for n in range(2 * WRITE_TURN + 1)]
    for user in users:
        sink.defer_row(table, user, Counter(b"state"), record(partition=0))

    async def main() -> int:
        flush = asyncio.create_task(sink.flush())
        await asyncio.sleep(0)  # the flush's first turn runs, then lets this go on
        written_then = len(producer.records)
        sink.put_row(table, users[-1], None, record(partition=0))  # an erasure meanwhile
        await flush
        return written_then

    assert asyncio.run(main()) == WRITE_TURN
    last = table.data._encode_key(users[-1])
    assert [r[2] for r in producer.records if r[1] == last] == [None]
    assert len(producer.records) == len(users)  # every other row once, and the tombstone


def test_a_row_waiting_longer_than_defer_age_s_is_written_at_the_next_defer(table,
                                                                           monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("streams.sink.time.monotonic", lambda: clock[0])
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=8, defer_age_s=0.5)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.defer_row(table, "old", b"1", record(partition=0))
    clock[0] += 0.3
    sink.defer_row(table, "old", b"2", record(partition=0))  # keeps its age
    sink.defer_row(table, "new", b"1", record(partition=0))
    assert producer.records == []
    clock[0] += 0.3  # "old" has waited 0.6 s, "new" 0.3 s
    sink.defer_row(table, "other", b"1", record(partition=0))
    assert [(r[1], r[2]) for r in producer.records] == [(table.data._encode_key("old"), b"2")]


def test_a_settling_flush_leaves_rows_to_their_due_writes_and_not_the_later_ones(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=100, defer_age_s=0.5)  # type: ignore[arg-type]
    sink.add_table(table)
    key = table.data._encode_key

    async def main() -> list[bytes]:
        sink.defer_row(table, "before", b"1", record(partition=0))
        flush = asyncio.create_task(sink.flush(settle=True))
        await asyncio.sleep(0.2)
        sink.defer_row(table, "after", b"1", record(partition=0))  # an event meanwhile
        assert producer.records == []  # the flush writes nothing itself meanwhile
        await asyncio.sleep(0.32)
        sink.defer_row(table, "later", b"1", record(partition=0))  # "before" comes due
        written_by_then = [r[1] for r in producer.records]
        await flush
        return written_by_then

    assert asyncio.run(main()) == [key("before")]
    assert [r[1] for r in producer.records] == [key("before")]  # and no more
    assert not producer._pending  # delivered before the flush returned
    assert sink.get_row(table, "after") == b"1" and "after" not in table.data


def test_a_settling_flush_writes_what_no_event_brought_due(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=100, defer_age_s=0.05)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.defer_row(table, "quiet", b"1", record(partition=0))
    asyncio.run(sink.flush(settle=True))  # no events come: the flush writes it after a wait
    assert [r[2] for r in producer.records] == [b"1"] and table.data["quiet"] == b"1"


def test_fausts_flush_before_a_commit_lets_rows_come_due(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=100, defer_age_s=60)  # type: ignore[arg-type]
    settles = []

    async def flush(settle: bool = False) -> None:
        settles.append(settle)

    sink.flush = flush  # type: ignore[method-assign]

    class FaustProducer:
        async def flush(self) -> None:
            return None

    faust_producer = FaustProducer()
    sink.flush_with(faust_producer)
    asyncio.run(faust_producer.flush())
    assert settles == [True]


def test_a_put_row_replaces_a_deferred_one_so_an_erasure_stays_erased(table):
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=8, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.defer_row(table, "user-1", Counter(b"state"), record(partition=1))
    sink.put_row(table, "user-1", None, record(partition=1))  # the erasure's tombstone
    asyncio.run(sink.flush())
    assert [r[2] for r in producer.records] == [None]
    assert sink.get_row(table, "user-1") is None


def test_a_deferred_row_of_a_partition_gone_to_another_worker_is_not_written(table):
    # deferred after the flush before the revoke (a batch's results came back late): its
    # event was not committed here, so the partition's new owner handles it again
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=8, defer_age_s=60)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.assigned = lambda: {TP("events.views", 0)}
    sink.defer_row(table, "kept", b"rec", record(partition=0))
    sink.defer_row(table, "gone", b"rec", record(partition=1))
    asyncio.run(sink.flush())
    assert [r[1] for r in producer.records] == [table.data._encode_key("kept")]


def test_after_a_rebalance_a_row_written_for_its_age_is_checked_against_the_new_assignment(
        table, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("streams.sink.time.monotonic", lambda: clock[0])
    producer = FakeProducer()
    sink = KafkaSink(producer, defer_max=8, defer_age_s=0.5)  # type: ignore[arg-type]
    sink.add_table(table)
    held = {TP("events.views", 0), TP("events.views", 1)}
    sink.assigned = lambda: set(held)
    sink.defer_row(table, "a", b"1", record(partition=0))
    clock[0] = 1.0
    sink.defer_row(table, "b", b"1", record(partition=1))  # writes "a" for its age
    held.discard(TP("events.views", 1))  # partition 1 goes to another worker
    sink.partitions_changed()
    clock[0] = 2.0
    sink.defer_row(table, "c", b"1", record(partition=0))  # "b" is due: not ours now
    assert [r[1] for r in producer.records] == [table.data._encode_key("a")]


def test_with_defer_max_0_a_deferred_row_is_written_at_once(table):
    producer = FakeProducer()
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.defer_row(table, "user-1", Counter(b"state"), record(partition=1))
    assert [r[2] for r in producer.records] == [b"state"]


def test_a_refused_record_makes_flush_raise(table):
    producer = FakeProducer()
    producer.refuse = "recs.users"
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    sink.send("recs.users", b"u0", b"{}")
    with pytest.raises(DeliveryError, match="refused"):
        asyncio.run(sink.flush())


def test_fausts_flush_waits_for_the_sink(table):
    producer = FakeProducer()
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    calls = []

    class FaustProducer:
        async def flush(self) -> None:
            calls.append("faust")

    faust_producer = FaustProducer()
    sink.flush_with(faust_producer)
    sink.send("recs.users", b"u0", b"{}")
    asyncio.run(faust_producer.flush())
    assert calls == ["faust"] and not producer._pending  # the sink's record was delivered



def test_fausts_last_flush_still_works_after_the_sink_closed():
    # Faust flushes its producer once more after the app's shutdown signal (where the sink
    # closes); a closed flush thread there once left the worker hanging on SIGTERM
    producer = FakeProducer()
    sink = KafkaSink(producer)  # type: ignore[arg-type]
    sink.close()
    sink.send("recs.users", b"u0", b"{}")
    asyncio.run(sink.flush())
    assert not producer._pending


def test_rows_and_outputs_go_through_their_own_producers_and_flush_waits_for_both(table):
    outputs, rows = FakeProducer(), FakeProducer()
    sink = KafkaSink(outputs, rows)  # type: ignore[arg-type]
    sink.add_table(table)
    sink.put_row(table, "user-1", b"\x00state", record(partition=2))
    sink.send("recs.users", b"user-1", b"{}")
    assert [r[0] for r in rows.records] == [table.changelog_topic.get_topic_name()]
    assert [r[0] for r in outputs.records] == ["recs.users"]
    asyncio.run(sink.flush())
    assert not rows._pending and not outputs._pending


def test_a_row_in_a_rocksdb_store_is_where_fausts_reads_look_for_it(tmp_path):
    # the sink writes RocksDB rows itself; Faust's reads (with and without an event) and a
    # delete through the sink must see them in the event's partition
    from streams.sink import in_event

    app = faust.App("sink-rocks", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("rows", partitions=4, key_type=str, value_type=bytes)
    sink = KafkaSink(FakeProducer())  # type: ignore[arg-type]
    sink.add_table(table)
    sink.put_row(table, "user-1", b"\x00state", record(partition=3))
    assert table.data._db_for_partition(3).get(table.data._encode_key("user-1")) == b"\x00state"
    assert table.data._db_for_partition(1).get(table.data._encode_key("user-1")) is None
    with in_event(record(partition=3)):  # type: ignore[arg-type]
        assert table.data.get("user-1") == b"\x00state"
    assert table.data.get("user-1") == b"\x00state"  # no event: found through its index
    sink.put_row(table, "user-1", None, record(partition=3))
    with in_event(record(partition=3)):  # type: ignore[arg-type]
        assert table.data.get("user-1") is None


def test_the_sink_defers_rows_as_the_settings_say():
    sink = make_sink(Settings(kafka_bootstrap="127.0.0.1:9", deferred_rows=7,
                              deferred_row_age_s=3.5))
    assert (sink.defer_max, sink.defer_age_s) == (7, 3.5)
