"""What the worker writes while it handles views and clicks, through librdkafka: outputs,
dead letters, and table rows (the local RocksDB store plus the changelog record).

Why not Faust's own producer here: every event leads to two records (its user's state row
and the recommendation; until 2026-11-30 a latest-recommendation row as well), and a record
sent through Faust costs hundreds of microseconds of event-loop time (futures, its buffer,
aiokafka's Python sender, callbacks, a RocksDB write of the persisted offset per record).
Measured on this 2-core machine: a Faust agent taking batches of 256 and producing three
records per event kept 6,500-9,500 events/s through librdkafka and 1,700 through Faust's
producer, against 15,400 for an agent that only consumed.

At-least-once holds as in Faust: Faust flushes its producer before it commits offsets,
before it hands partitions over in a rebalance and when it stops, and ``flush_with`` makes
that flush wait for this sink's records too. So nothing Faust commits, hands over or stops
with is still undelivered here, while a batch's handler does not wait for the broker
(measured: awaiting a flush per batch cost ~13 ms of every batch under load). A row's
changelog record goes to the partition of the event that caused it, which is
the partition whose store holds the row (see ARCHITECTURE.md, "Pitfalls"), and the stores'
persisted changelog offsets advance once per flush, so a restart replays only what came
after them.

Two librdkafka producers share that work: outputs and dead letters go out after a couple of
milliseconds (``producer_linger_ms``), changelog rows after up to ``changelog_linger_ms``.
librdkafka sends one partition per produce request, and each event touched a partition of
three topics (two since 2026-11-30), so on live traffic (under one event per partition per
millisecond) most requests carried one or two records; the broker's CPU went into requests,
not records. The rows matter only at the next flush (a commit, a rebalance, a stop), which
sends them at once.

A row that changes with every event of its user (the user's state, which holds the latest
recommendation too) can be deferred: it is written, store and changelog, once it has waited
``defer_age_s`` (at the next row deferred) or at a flush that writes them all (below),
whichever comes first, as it is then; a user with several events meanwhile has each row
written once, not for each event. Up to ``defer_max`` rows wait; beyond that the oldest is
written at once, so a shop with more users than that writes as before. Before a commit, the
flush waits for the rows deferred until then to come due and be written (at most
``defer_age_s``; any still waiting then, with no events to bring them due, it writes
itself), so the offsets it commits are of events whose rows are all written; rows deferred
meanwhile wait on. Before a rebalance takes partitions away
(streams.consumer.commit_before_revoke flushes the sink there) and when the worker stops,
it writes every row at once, a few at a time between the loop's other work; one deferred
after that, for a partition gone elsewhere, is dropped (see ``_write``). A worker that dies
loses them with those uncommitted offsets, whose events are handled again.

Until 2026-11-30 every commit wrote all the rows deferred until then (600-1,250 at 4,000
events/s, 26-78 ms of the loop's time every 2.8 s), and the events handled meanwhile were
late: in three runs alternating with it at ~4,000 events/s, letting them come due instead
gave p99 70, 56, 66 ms against 143, 109, 82 (p50 25-28 against 35-45 ms).

Rows waited 0.5 s until 2026-12-01, now 2 s (the setting ``deferred_row_age_s``): in
bench_worker's latency runs, whose 512 users each have an event every ~0.1 s, a user's row
was written every 0.5 s, ~1,000 rows a second; at 2 s the event loop used 82-88 µs of CPU
an event against 90-98 (three runs each, alternating), 4 s gave 84. The cost: rows reach
the changelog later, a commit waits longer for them, and a crash hands more events again.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Message, Producer
from faust.stores.rocksdb import Store as RocksDBStore

# Faust keeps the event being handled in this context variable; its tables and RocksDB
# stores read it to pick the partition (there is no public setter).
from faust.streams import _current_event
from faust.types import TP, EventT, TableT

from shopstream.config import Settings

log = logging.getLogger(__name__)


@contextmanager
def in_event(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while rows of its user are read or written."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class DeliveryError(RuntimeError):
    """Records the broker did not take; the worker stops so they are processed again."""


def make_sink_producer(settings: Settings, role: str = "out",
                       linger_ms: float | None = None, *,
                       report_only_errors: bool = False) -> Producer:
    return Producer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": f"{settings.app_id}-sink-{role}",
        "partitioner": "murmur2_random",  # as aiokafka and Java clients hash keys
        "enable.idempotence": True,  # no duplicates or reordering from the client's retries
        "linger.ms": settings.producer_linger_ms if linger_ms is None else linger_ms,
        "socket.nagle.disable": True,  # flush() waits on small requests: send them now
        # a delivery report builds a message object (key and value copied) and calls back
        # into Python: outputs need one only when a record failed
        "delivery.report.only.error": report_only_errors,
    })


def make_sink(settings: Settings) -> KafkaSink:
    """Outputs on a producer that sends within ``producer_linger_ms`` and reports failures
    only, rows on one that gathers them for up to ``changelog_linger_ms`` and reports every
    delivery (a row's offset becomes its store's persisted offset)."""
    return KafkaSink(make_sink_producer(settings, report_only_errors=True),
                     make_sink_producer(settings, "rows", settings.changelog_linger_ms),
                     defer_max=settings.deferred_rows, defer_age_s=settings.deferred_row_age_s)


KEY_CACHE_SIZE = 1 << 16
WRITE_TURN = 64  # deferred rows a flush writes before it lets the loop do other work
# The longest a row waits for a flush before it is written anyway (the worker's setting
# deferred_row_age_s). Rows written only at the flush before each commit came in bursts:
# 1,100-2,500 rows every ~2.8 s at 2,700 events/s, 40-340 ms of the loop's time, and 87% of
# the events later than the p99 came within such a burst (one latency probe).
DEFER_AGE_S: float = Settings.model_fields["deferred_row_age_s"].default
SETTLE_POLL_S = 0.02
SETTLE_SLACK_S = 0.05


class _RowTable(NamedTuple):
    topic: str  # its changelog
    store: Any
    raw_key: Callable[[str], bytes]


class _Deferred(NamedTuple):
    table: TableT
    key: str
    value: bytes | Callable[[], bytes]  # the row's value, or what makes it when written
    event: EventT  # one of the events that changed it: its partition holds the row
    since: float  # when it was first deferred (time.monotonic)

    def made(self) -> bytes:
        return _made(self.value)


def _made(value: bytes | Callable[[], bytes]) -> bytes:
    return value if isinstance(value, bytes) else value()


class KafkaSink:
    def __init__(self, producer: Producer, rows_producer: Producer | None = None,
                 flush_timeout_s: float = 120.0, defer_max: int = 0,
                 defer_age_s: float = DEFER_AGE_S) -> None:
        self.producer = producer  # outputs and dead letters
        self.rows_producer = producer if rows_producer is None else rows_producer
        self._producers = ((producer,) if self.rows_producer is producer
                           else (producer, self.rows_producer))
        self.flush_timeout_s = flush_timeout_s
        self._stores: dict[str, Any] = {}  # changelog topic -> the table's store
        self._tables: dict[int, _RowTable] = {}  # id(table) -> what put_row needs of it
        self._delivered: dict[tuple[str, int], int] = {}  # changelog tp -> last offset
        self._errors: list[str] = []
        # rows waiting to be written (defer_row), by (id(table), key), the longest first
        self._deferred: OrderedDict[tuple[int, str], _Deferred] = OrderedDict()
        self.defer_max = defer_max
        self.defer_age_s = defer_age_s
        # the input partitions this worker holds (Faust's consumer.assignment), when known:
        # a deferred row of another partition is not written (see _write); asked once after
        # each rebalance (partitions_changed)
        self.assigned: Callable[[], Collection[TP]] | None = None
        self._held_now: Collection[TP] | None = None
        # flush() blocks until the broker answers: it runs here, off the event loop
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kafka-sink")

    def add_table(self, table: TableT) -> None:
        topic = table.changelog_topic.get_topic_name()
        store: Any = table.data
        self._stores[topic] = store
        # the table's key codec, as Faust's reads use it; a user's key is encoded for every
        # event, so the encodings of recent keys are kept (~3 us each through the codec)
        raw_key = lru_cache(maxsize=KEY_CACHE_SIZE)(store._encode_key)
        self._tables[id(table)] = _RowTable(topic, store, raw_key)

    def flush_with(self, faust_producer: Any) -> None:
        """Make the Faust producer's ``flush()`` also flush this sink (see the module text)."""
        faust_flush = faust_producer.flush

        async def flush() -> None:  # before each commit, and when the worker stops
            await faust_flush()
            await self.flush(settle=True)

        faust_producer.flush = flush

    def poll(self) -> None:
        """Serve delivery reports that are ready (cheap; keeps their queue short)."""
        for producer in self._producers:
            producer.poll(0)

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             partition: int | None = None) -> None:
        """Queue one output record (keyed records are placed by murmur2 unless a partition
        is given)."""
        self._produce(self.producer, topic, key, value, -1 if partition is None else partition)

    def _produce(self, producer: Producer, topic: str, key: bytes | None, value: bytes | None,
                 partition: int) -> None:
        while True:
            try:
                producer.produce(topic, value, key, partition=partition,
                                 on_delivery=self._on_delivery)
                return
            except BufferError:  # the local queue is full: let the client send some
                producer.poll(0.05)

    def get_row(self, table: TableT, key: str, event: EventT | None = None) -> bytes | None:
        """A row as it stands, a deferred one included; ``event`` (one of its user's) points
        at the partition's store to read, else every local store is searched."""
        deferred = self._deferred.get((id(table), key))
        if deferred is not None:
            return deferred.made()
        if event is None:
            found: bytes | None = table.get(key)
            return found
        with in_event(event):
            value: bytes | None = table.data.get(key)
            return value

    def defer_row(self, table: TableT, key: str, value: bytes | Callable[[], bytes],
                  event: EventT) -> None:
        """Write the row later (see the module text): once it has waited ``defer_age_s``,
        when more than ``defer_max`` rows wait, or at the next flush, whichever comes first;
        ``value``, or what ``value()`` makes then. Deferring it again, or a put_row of it,
        replaces it."""
        if not self.defer_max:
            self.put_row(table, key, _made(value), event)
            return
        now = time.monotonic()
        deferred = self._deferred
        waiting = deferred.get((id(table), key))
        # a row deferred again keeps its place and its age
        deferred[(id(table), key)] = _Deferred(table, key, value, event,
                                               now if waiting is None else waiting.since)
        # The longest waiting rows are written now once they have waited defer_age_s, or
        # when too many wait, so rows are written as steadily as events come rather than
        # all at the flush.
        due = now - self.defer_age_s
        while deferred and (len(deferred) > self.defer_max
                            or next(iter(deferred.values())).since <= due):
            self._write_oldest(1)

    def write_deferred(self) -> None:
        """Write every deferred row now."""
        self._write_oldest(len(self._deferred))

    async def _write_deferred_in_turns(self, before: float | None = None) -> None:
        """Write every row deferred now (``before``: every row deferred before that
        time.monotonic), the longest waiting first, ``WRITE_TURN`` at a time
        with the event loop's other work in between. All at once, the 700-1,024 rows each
        commit found in a latency run at 2,500 events/s held the loop for 25-60 ms (a row
        is encoded with every event it missed since it was last written), and every event
        waiting meanwhile got that much later. Rows deferred meanwhile may be written too;
        a row written meanwhile by put_row (an erasure's tombstone) is not written again."""
        left = len(self._deferred) if before is None else self._deferred_before(before)
        while left > 0 and self._deferred:
            self._write_oldest(min(WRITE_TURN, left))
            left -= WRITE_TURN
            if left > 0:
                await asyncio.sleep(0)

    def _deferred_before(self, before: float) -> int:
        """How many of the longest waiting rows were deferred before ``before``."""
        count = 0
        for row in self._deferred.values():
            if row.since >= before:
                break
            count += 1
        return count

    async def _settle(self) -> float:
        """Wait until every row deferred until now has been written by its own due write,
        at most ``defer_age_s`` and a little more (they come due with the rows deferred
        after them, so without events nothing writes them); return when it started."""
        start = time.monotonic()
        give_up = start + self.defer_age_s + SETTLE_SLACK_S
        while (self._deferred and next(iter(self._deferred.values())).since < start
               and time.monotonic() < give_up):
            await asyncio.sleep(SETTLE_POLL_S)
        return start

    def _write_oldest(self, count: int) -> None:
        """Write up to ``count`` deferred rows, the longest waiting first."""
        held = self._held() if self._deferred else None
        for _ in range(min(count, len(self._deferred))):
            self._write(self._deferred.popitem(last=False)[1], held)

    def partitions_changed(self) -> None:
        """A rebalance revoked or assigned partitions: ask for the assignment again."""
        self._held_now = None

    def _held(self) -> Collection[TP] | None:
        if self.assigned is None:
            return None
        if self._held_now is None:
            try:
                self._held_now = frozenset(self.assigned())
            except Exception:  # noqa: BLE001 — a consumer already stopped: write them all
                log.debug("no assignment to check deferred rows against", exc_info=True)
                return None
        return self._held_now

    def _write(self, row: _Deferred, held: Collection[TP] | None) -> None:
        """Write a deferred row, unless its partition went to another worker: a flush before
        every revoke writes what was deferred until then, so such a row comes from a batch
        whose results arrived after its partition was revoked, and written late it could
        overwrite the new owner's newer row in the changelog (the new owner gets the
        event again, since its offset was not committed here)."""
        message = row.event.message
        if held is not None and message.tp not in held:
            return
        self.put_row(row.table, row.key, row.made(), row.event)

    def put_row(self, table: TableT, key: str, value: bytes | None, event: EventT) -> None:
        """Write a row (None: delete it) to the store of ``event``'s partition and queue its
        changelog record (None: a tombstone) for that partition; a deferred write of the
        row is dropped."""
        if self._deferred:
            self._deferred.pop((id(table), key), None)
        topic, store, encode_key = self._tables[id(table)]
        raw_key = encode_key(key)  # Faust's value codecs pass bytes through as they are
        partition = event.message.partition
        if value is not None and isinstance(store, RocksDBStore):
            # What Faust's own write does, without its second key encoding, the event context
            # and its key index (a Python LRU of key -> partition, ~1.5 us a write): a read
            # without an event finds the key through each partition's bloom filter instead
            # and indexes it then. Every event writes a row.
            store._db_for_partition(partition).put(raw_key, value)
        else:
            with in_event(event):
                if value is not None:
                    store[key] = value
                else:
                    with suppress(KeyError):
                        del store[key]
        self._produce(self.rows_producer, topic, raw_key, value, partition)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        # called from whichever thread polls the producer (the flush thread)
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err.str()}")
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic in self._stores and partition is not None and offset is not None:
            tp = (topic, partition)
            if offset > self._delivered.get(tp, -1):
                self._delivered[tp] = offset

    async def flush(self, settle: bool = False) -> None:
        """Write the deferred rows, then wait until every queued record is acknowledged;
        raise DeliveryError if any failed. ``settle`` (before a commit): the rows deferred
        until now are left to their own due writes for up to ``defer_age_s``, only those
        still waiting then are written here, and rows deferred meanwhile wait on."""
        await self._write_deferred_in_turns(before=await self._settle() if settle else None)
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(self._pool, self._flush_all)
        delivered, self._delivered = self._delivered, {}
        for (topic, partition), offset in delivered.items():
            self._stores[topic].set_persisted_offset(TP(topic, partition), offset)
        if self._errors or remaining:
            errors, self._errors = self._errors, []
            raise DeliveryError(f"{remaining} records undelivered after "
                                f"{self.flush_timeout_s:.0f} s, {len(errors)} refused: "
                                f"{errors[:3]}")

    def _flush_all(self) -> int:
        """Records still undelivered after flushing both producers within one
        ``flush_timeout_s`` (flush() sends what lingers at once)."""
        deadline = time.monotonic() + self.flush_timeout_s
        return sum(p.flush(max(0.0, deadline - time.monotonic())) for p in self._producers)

    def close(self) -> None:
        """Deliver what is queued (the worker is stopping). The flush thread stays: Faust
        flushes its producer, and so this sink, once more after this."""
        self.write_deferred()
        remaining = self._flush_all()
        if remaining:
            log.error("%d records were not delivered before the worker stopped", remaining)
