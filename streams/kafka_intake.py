"""Views and clicks read by a librdkafka consumer of the worker's own, beside Faust's.

Why: consuming was the largest single cost on the worker's event loop. At 3,500 events/s
a Faust agent consuming as the worker did (aiokafka's Python client on the loop, Faust's
drain loop, streams.intake) used 51-53 µs of CPU an event; a librdkafka consumer thread
handing batches to an asyncio loop used 7-8 (bench/HISTORY.md, session 29).

How it fits with Faust, which still does everything else:

- Faust stays subscribed to the topics (the interactions agent's topic), so its group
  assignor still gives a worker the input partitions whose table partitions it holds;
  only the reading moves here. The partitions stay paused in Faust and in its Kafka
  client, whose fetcher would otherwise still fetch and decode their records.
- Once a rebalance's recovery has brought the tables up to date and Faust lets its
  streams flow, the intake assigns the same partitions to its consumer. That consumer
  never joins the group: it only uses the group's id to start at its committed offsets.
- A thread runs the consumer. It waits up to ``POLL_S`` for a record, takes whatever
  else has already been fetched (up to a batch), and hands the lot to the event loop in
  one call. The agent's actors take micro-batches from there, up to ``max_batch_size``
  records, from each partition in turn, waiting ``max_wait_ms`` after the first.
- A batch is handled when its actor asks for the next one. Per partition the intake
  keeps the offset below which every record has been handled (actors may finish out of
  order), and Faust's commits (its timer, a rebalance, the stop) commit that offset as if
  Faust had acknowledged those records itself: after its producer's flush, which waits
  for the sink (streams.sink), so nothing committed is undelivered.
- Before partitions are revoked, and when the worker stops, the intake takes no more
  batches, waits for those being handled, and drops the records it holds that were not
  taken (their offsets are not committed, so their next owner reads them); then the sink
  flushes and the offsets are committed (streams.consumer.commit_before_revoke).
- Once a second the thread also reads its partitions' end offsets (what librdkafka's
  fetches found) for ``lag``, which the worker's metrics report. Only this thread calls
  the consumer: asked from the event loop while the thread was in ``poll``,
  ``get_watermark_offsets`` did not return (confluent-kafka 2.16).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Collection, Iterable, Iterator
from typing import Any, cast

import faust
from aiokafka.structs import TopicPartition as AIOKafkaTP
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from faust.types import TP

from shopstream.config import Settings

log = logging.getLogger(__name__)

POLL_S = 0.1  # the longest the thread waits for a record before it looks for commands
# the longest a rebalance or a stop waits for batches being handled before it commits
SETTLE_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 10.0
ENDS_EVERY_S = 1.0  # how often the thread reads its partitions' end offsets (lag)


class IntakeMessage:
    """What the handlers, the sink and Faust's stores read of a record's Kafka message."""

    __slots__ = ("topic", "partition", "offset", "key", "tp", "__weakref__")

    def __init__(self, tp: TP, offset: int, key: bytes | None) -> None:
        self.topic = tp.topic
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.tp = tp


class IntakeRecord:
    """A record as the handlers read a Faust event: ``message`` and ``value`` (weakly
    referable: it is made Faust's current event while its user's rows are written)."""

    __slots__ = ("message", "value", "__weakref__")

    def __init__(self, message: IntakeMessage, value: bytes | None) -> None:
        self.message = message
        self.value = value


def make_intake_consumer(settings: Settings) -> Consumer:
    return Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": f"{settings.app_id}-intake",
        # Faust's group: assign() starts a partition at the group's committed offset. The
        # consumer never subscribes, so it never joins the group; commits go through Faust.
        "group.id": settings.app_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": settings.consumer_offset_reset,
        "fetch.wait.max.ms": settings.fetch_max_wait_ms,
        "fetch.min.bytes": settings.fetch_min_bytes,
    })


class KafkaIntake:
    def __init__(self, settings: Settings, topics: Iterable[str],
                 make_consumer: Callable[[Settings], Any] = make_intake_consumer) -> None:
        self.topics = frozenset(topics)
        self.max_records = settings.max_batch_size
        self.within = settings.max_wait_ms / 1000
        self._settings = settings
        self._make_consumer = make_consumer
        self._thread: threading.Thread | None = None
        # (generation, partitions to read) for the thread; None: stop
        self._commands: queue.SimpleQueue[tuple[int, list[TP]] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app: faust.App | None = None
        # --- the event loop's side: everything below is read and written on the loop
        self._generation = 0  # bumped whenever the assignment changes
        self._assigned: frozenset[TP] = frozenset()
        self._handing_over: set[TP] = set()  # resumed by Faust, not yet assigned here
        self._pending: dict[TP, deque[IntakeRecord]] = {}  # fetched, not yet taken
        self._count = 0
        self._ready = asyncio.Event()  # records to take, or the assignment changed
        self._taking = False
        self._in_flight = 0  # batches being handled
        self._settled = asyncio.Event()  # no batch is being handled
        self._settled.set()
        self._taken_to: dict[TP, int] = {}  # per partition: the offset after the last taken
        self._handled: dict[TP, int] = {}  # per partition: every record below it is handled
        self._ahead: dict[TP, dict[int, int]] = {}  # batches done before an earlier one
        # per partition read, (end offset, position) as the thread last read them (for lag)
        self._ends: dict[TP, tuple[int, int]] = {}

    # --- wiring into Faust's consumer -------------------------------------------------
    def attach(self, app: faust.App) -> None:
        """Patch ``app``'s consumer so that the intake reads its topics (module text)."""
        self._app = app
        consumer: Any = app.consumer
        thread: Any = consumer._thread  # the aiokafka driver's client service

        assigned = thread.on_partitions_assigned

        async def on_partitions_assigned(tps: set[TP], *args: Any, **kwargs: Any) -> None:
            # runs where the client runs, before Faust's own handling: keep the client's
            # fetcher off these partitions
            mine = [AIOKafkaTP(tp.topic, tp.partition) for tp in tps if self.owns(tp)]
            if mine:
                thread._ensure_consumer().pause(*mine)
            await assigned(tps, *args, **kwargs)

        thread.on_partitions_assigned = on_partitions_assigned

        resume_partitions = consumer.resume_partitions

        def resume(tps: Iterable[TP]) -> None:
            tps = set(tps)
            mine = {tp for tp in tps if self.owns(tp)}
            self._handing_over |= mine  # assigned here once Faust resumes its flow
            resume_partitions(tps - mine)

        consumer.resume_partitions = resume

        resume_flow = consumer.resume_flow

        def resume_flow_and_assign() -> None:
            resume_flow()
            if self._handing_over:
                self.assign(self._handing_over)
                self._handing_over = set()

        consumer.resume_flow = resume_flow_and_assign

        pending_acks = consumer._filter_tps_with_pending_acks
        new_offset = consumer._new_offset

        def with_handled(topics: Any = None) -> Iterator[TP]:
            seen = set()
            for tp in itertools.chain(pending_acks(topics), self._handled):
                if tp not in seen and (topics is None or tp in topics or tp.topic in topics):
                    seen.add(tp)
                    yield tp

        def handled_offset(tp: TP) -> int | None:
            if self.owns(tp):
                return self._handled.get(tp)
            return new_offset(tp)

        consumer._filter_tps_with_pending_acks = with_handled
        consumer._new_offset = handled_offset

        verify = consumer.verify_event_path

        def verify_event_path(now: float, tp: TP) -> None:
            # Faust's check that a stream reads its partitions: not with these paused
            if not self.owns(tp):
                verify(now, tp)

        consumer.verify_event_path = verify_event_path

        wait_empty = consumer.wait_empty

        async def settle_then_wait_empty() -> None:  # when the worker stops
            await self.settle()
            await wait_empty()

        consumer.wait_empty = settle_then_wait_empty

        async def forget(app: faust.App, revoked: Any = None, **kwargs: Any) -> None:
            self._handled.clear()  # committed by now (commit_before_revoke)

        app.on_partitions_revoked.connect(forget)  # type: ignore[arg-type]

    def owns(self, tp: TP) -> bool:
        return tp.topic in self.topics

    # --- the assignment -----------------------------------------------------------------
    def assign(self, tps: Collection[TP]) -> None:
        """Read ``tps`` from their committed offsets (on the event loop)."""
        self._generation += 1
        self._assigned = frozenset(tps)
        self._drop_pending()
        self._taken_to.clear()
        self._handled.clear()
        self._ahead.clear()
        self._taking = True
        self._ready.set()
        self._send(sorted(self._assigned))
        log.info("reading %d partitions of %s", len(self._assigned),
                 ", ".join(sorted(self.topics)))

    async def settle(self) -> None:
        """Take no more batches, wait for those being handled, then stop reading and drop
        what was not taken: what is handled is then all there is to commit."""
        self._taking = False
        self._handing_over = set()
        try:
            await asyncio.wait_for(self._settled.wait(), SETTLE_TIMEOUT_S)
        except TimeoutError:
            log.warning("%d batches still being handled after %.0f s; their offsets are not "
                        "committed", self._in_flight, SETTLE_TIMEOUT_S)
        self._generation += 1  # what the thread hands over from now on is dropped
        if self._assigned:
            self._assigned = frozenset()
            self._send([])
        self._drop_pending()

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._count = 0

    async def close(self) -> None:
        """Stop the thread and close the consumer (when the worker stops)."""
        thread = self._thread
        if thread is None:
            return
        self._commands.put(None)
        await asyncio.to_thread(thread.join, CLOSE_TIMEOUT_S)
        self._thread = None

    # --- the consumer's thread ----------------------------------------------------------
    def _send(self, tps: list[TP]) -> None:
        """Have the thread assign ``tps`` (none: unassign) for the current generation."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="kafka-intake", daemon=True)
            self._thread.start()
        self._commands.put((self._generation, tps))

    def _run(self) -> None:
        assert self._loop is not None
        hand_over, arrive = self._loop.call_soon_threadsafe, self._arrive
        consumer = self._make_consumer(self._settings)
        generation, reading = 0, False  # the assignment the consumer reads
        parts: list[TopicPartition] = []
        ends_due = 0.0
        try:
            while True:
                try:  # assignments come between reads; with none, wait for one
                    command = self._commands.get(block=not reading)
                except queue.Empty:
                    pass
                else:
                    if command is None:
                        return
                    generation, tps = command
                    # each partition from the group's committed offset (or the reset policy)
                    parts = [TopicPartition(tp.topic, tp.partition) for tp in tps]
                    consumer.assign(parts)
                    reading, ends_due, self._ends = bool(tps), 0.0, {}
                    continue
                now = time.monotonic()
                if now >= ends_due:  # read here: the consumer is this thread's
                    ends_due = now + ENDS_EVERY_S
                    self._ends = _ends(consumer, parts)
                first = consumer.poll(POLL_S)
                if first is None:
                    continue
                # then whatever else has been fetched already, without waiting for more
                messages = [first, *consumer.consume(self.max_records - 1, 0)]
                hand_over(arrive, generation, _records(messages))
        except Exception as exc:  # noqa: BLE001 — handed to the worker, which stops
            hand_over(self._failed, exc)
        finally:
            self._ends = {}
            consumer.close()

    # --- the event loop's side ----------------------------------------------------------
    def _failed(self, exc: Exception) -> None:
        log.error("the intake's consumer failed: %r", exc)
        if self._app is not None:  # the worker cannot go on without its input
            asyncio.ensure_future(self._app.crash(exc))

    def _arrive(self, generation: int, records: list[IntakeRecord]) -> None:
        if generation != self._generation or not records:
            return  # read for an assignment since changed: its next reader reads them
        pending = self._pending
        for record in records:
            tp = record.message.tp
            waiting = pending.get(tp)
            if waiting is None:
                waiting = pending[tp] = deque()
            waiting.append(record)
        self._count += len(records)
        self._ready.set()

    async def batches(self) -> AsyncGenerator[list[IntakeRecord], None]:
        """Yield micro-batches; each is handled when the caller asks for the next. One the
        caller did not finish (it raised, or was cancelled, and closed this) is not: its
        offsets are not committed, so it is read again. Actors may share the intake: each
        takes its own batches."""
        while True:
            while not (self._taking and self._count):
                self._ready.clear()
                await self._ready.wait()
            if self._count < self.max_records:
                await asyncio.sleep(self.within)  # records come a fetch at a time
                if not (self._taking and self._count):
                    continue
            generation = self._generation
            batch, ranges = self._take()
            self._in_flight += 1
            self._settled.clear()
            finished = False
            try:
                yield batch
                finished = True
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._settled.set()
                if finished and generation == self._generation:
                    self._done(ranges)

    def _take(self) -> tuple[list[IntakeRecord], dict[TP, tuple[int, int]]]:
        """Up to ``max_records`` records, from each partition in turn, and per partition
        the offsets they cover (from just after the previous batch's)."""
        batch: list[IntakeRecord] = []
        ranges: dict[TP, tuple[int, int]] = {}
        waiting = [(tp, records) for tp, records in self._pending.items() if records]
        room = self.max_records
        while room and waiting:
            share = -(-room // len(waiting))
            for tp, records in waiting:
                n = min(share, len(records), room)
                if not n:
                    continue
                taken = [records.popleft() for _ in range(n)]
                batch += taken
                room -= n
                start = self._taken_to.get(tp)
                if start is None:
                    start = self._handled[tp] = taken[0].message.offset
                end = taken[-1].message.offset + 1
                self._taken_to[tp] = end
                first = ranges.get(tp, (start, end))[0]
                ranges[tp] = (first, end)
            waiting = [(tp, records) for tp, records in waiting if records]
        self._count -= len(batch)
        return batch, ranges

    def _done(self, ranges: dict[TP, tuple[int, int]]) -> None:
        for tp, (start, end) in ranges.items():
            ahead = self._ahead.setdefault(tp, {})
            if self._handled.get(tp) != start:
                ahead[start] = end  # an earlier batch of the partition is still out
                continue
            while end in ahead:
                end = ahead.pop(end)
            self._handled[tp] = end

    def handled(self) -> dict[TP, int]:
        """Per partition, the offset to commit: every record below it is handled."""
        return dict(self._handled)

    def lag(self) -> dict[TP, int]:
        """Per partition read here, the records not handled yet: its end offset, as the
        thread last read it (at most ENDS_EVERY_S ago, from what the fetches found), less
        the offset below which every record is handled. A partition whose end or start is
        not known yet (nothing fetched since it was assigned) is left out."""
        lags: dict[TP, int] = {}
        for tp, (end, position) in self._ends.items():
            if tp not in self._assigned:  # read before the assignment changed
                continue
            start = self._handled.get(tp)
            if start is None:  # no batch of it taken since it was assigned
                waiting = self._pending.get(tp)
                start = waiting[0].message.offset if waiting else position
            if end >= 0 and start >= 0:
                lags[tp] = max(0, end - start)
        return lags


def _ends(consumer: Consumer, parts: list[TopicPartition]) -> dict[TP, tuple[int, int]]:
    """Each partition's end offset as its last fetch found it and the consumer's position
    in it (both kept by librdkafka: no request is made); on the consumer's thread."""
    positions = consumer.position(parts) if parts else []
    return {TP(p.topic, p.partition): (consumer.get_watermark_offsets(p, cached=True)[1],
                                       at.offset)
            for p, at in zip(parts, positions, strict=True)}


def _records(messages: list[Message]) -> list[IntakeRecord]:
    records = []
    tps: dict[tuple[str, int], TP] = {}
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("reading input failed: %s", error)
            continue
        topic, partition = cast(str, message.topic()), cast(int, message.partition())
        tp = tps.get((topic, partition))
        if tp is None:
            tp = tps[topic, partition] = TP(topic, partition)
        records.append(IntakeRecord(IntakeMessage(tp, cast(int, message.offset()), message.key()),
                                    message.value()))
    return records
