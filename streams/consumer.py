"""Six changes to the worker's Faust consumer: where its Kafka client runs, how it fetches,
how long it waits for fetched records, how it hands records on, committing before a
rebalance takes partitions away, and holding records back while a rebalance seeks; and a
name for the client's thread where it has one. Each patches one app's consumer (not
Faust's classes) and is tested against the pinned faust-streaming
(tests/unit/streams/test_consumer.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import faust
from mode.services import WaitResults
from mode.threads import WorkerThread

log = logging.getLogger(__name__)


def client_on_loop(app: faust.App) -> None:
    """Run the app's Kafka client (aiokafka, driven by Faust's consumer thread service) on
    the event loop that runs the agents, not in a thread with a loop of its own. Call it
    before anything asks for ``app.consumer``.

    In its own thread the client's Python (fetch requests encoded, answers decoded, the
    group's heartbeats) competes with the loop for the GIL, and each fetch's records
    reach the loop through a method queue and two wake-ups across the threads. At 4,000
    events/s that thread took ~24 µs of CPU an event. On the loop the same service runs
    as a task, its calls still go through its method queue, and the records wait for no
    other thread. In six pairs of bench_worker runs at 4,000 events/s, alternating with
    the thread, p99 was lower in five: 59, 65, 55, 49, 39, 55 ms against 53, 79, 93, 91,
    88, 66 (medians 55 and 84); the worker used 216-239 µs of CPU an event against
    237-247, and drained as fast (0.56-0.60x of the consume-only agent against 0.56-0.67x).

    The loop now also runs the heartbeats; Faust's session timeout (60 s) is far longer
    than anything the worker holds the loop for."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

    class OnLoopConsumer(AIOKafkaConsumer):
        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            return AIOKafkaConsumerThread(self, loop=self.loop, thread_loop=self.loop,
                                          beacon=self.beacon, Worker=OnParentLoop)

    app.transport.Consumer = OnLoopConsumer  # type: ignore[misc]  # the consumer it makes


class OnParentLoop:
    """Stands in for mode's WorkerThread: runs a ServiceThread's service as a task on the
    loop that starts it (its ``thread_loop`` must be that loop), with no thread."""

    def __init__(self, service: Any, **kwargs: Any) -> None:
        self.service = service
        self.task: asyncio.Task[None] | None = None
        # At its end _serve cancels every task left on its loop, those a client library
        # started there included: on a loop of the service's own. On this one, they are
        # every task of the app.
        service._gather_remaining_tasks = _no_sweep

    def start(self) -> None:
        self.task = self.service.parent_loop.create_task(self._serve())

    async def _serve(self) -> None:
        # what WorkerThread.run and ServiceThread._start_thread do around _serve
        try:
            await self.service._serve()
        except TypeError:
            # Faust's AIOKafkaConsumerThread._shutdown_thread is no coroutine, so _serve
            # ends in this TypeError at every stop; in a thread, _start_thread sets the
            # shutdown and the thread ends with it
            log.debug("the Kafka client's service stopped", exc_info=True)
        finally:
            self.service.set_shutdown()

    def stop(self) -> None:
        return None  # no thread to join: ServiceThread.stop has waited for its shutdown


async def _no_sweep() -> None:
    return None


def tune_fetches(app: faust.App, max_wait_ms: int, min_bytes: int) -> None:
    """Make the worker's consumer ask the broker to answer a fetch once ``min_bytes`` are
    there, or within ``max_wait_ms``.

    Faust hard-codes a 1,500 ms wait, and its client (aiokafka) keeps one fetch in flight
    per broker, leaving out partitions that still hold unread records. When such a fetch
    asks only for partitions with nothing new, records arriving meanwhile on the others wait
    for it to time out: on live traffic here, half the runs had every event ~1.5 s late
    (measured between an event's ts and its handler).

    With Faust's minimum of one byte, the broker answers as soon as anything arrives, so on
    live traffic every few records cost a fetch round: a request for every assigned
    partition, its answer decoded in Python, and two hand-offs between Faust's consumer
    thread and the event loop. Gathering up to 32 KB within 10 ms cut the worker's CPU per
    event by 7-10% at 2,400 events/s, and its p99 latency in four of five alternating
    pairs (median 196 against 238 ms). An idle worker fetches every ``max_wait_ms``
    (a fetch is ~1 ms of CPU)."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]  # the aiokafka driver's
    create = thread._create_worker_consumer

    def create_consumer(transport: Any) -> Any:
        consumer = create(transport)
        # its fetcher reads them when it starts
        consumer._fetch_max_wait_ms = max_wait_ms
        consumer._fetch_min_bytes = min_bytes
        return consumer

    thread._create_worker_consumer = create_consumer


def wait_briefly_for_records(app: faust.App, timeout_s: float) -> None:
    """Make Faust's drain loop ask the consumer thread for records with a wait of at most
    ``timeout_s`` (Faust's is 1 s), so that it asks again, for the partitions it then
    reads, that much sooner.

    The loop asks for the records of its active partitions only. Once a stream's queue is
    under pressure, Faust takes that stream's partitions out of that set until the queue
    has drained to half; the fetcher holds their next records meanwhile. A request made in
    between waits its whole timeout for records of the other partitions, and none come
    while the held ones sit there: in bench_worker's drains the streams had emptied their
    queues 0.5 s into such a 1 s wait, once every ~5 s, and then waited for the rest of it
    (~10% of the drain). An idle worker now asks every ``timeout_s`` instead of every
    second (~0.1 ms of CPU each)."""
    consumer: Any = app.consumer
    getmany = consumer.getmany

    def getmany_briefly(timeout: float) -> Any:
        return getmany(timeout=min(timeout, timeout_s))

    consumer.getmany = getmany_briefly


def name_consumer_thread(app: faust.App, name: str = "kafka-consumer") -> None:
    """Give the thread that runs the worker's Kafka client, where it has one (see
    ``client_on_loop``), a name (Python's default is Thread-N), as
    shopstream_thread_cpu_seconds reports it (streams.metrics)."""
    service: Any = app.consumer._thread  # type: ignore[attr-defined]  # started later
    service.Worker = functools.partial(WorkerThread, name=name)


def commit_before_revoke(app: faust.App,
                         flush: Callable[[], Awaitable[None]] | None = None) -> None:
    """Commit what was handled before a rebalance takes partitions away, after ``flush``
    (the worker's sink: it writes the rows it deferred, which belong in these partitions'
    stores and changelogs, whether or not there is an offset to commit).

    Faust means to commit when partitions are revoked, but it first forgets the revoked
    partitions' acknowledged offsets, so that commit finds nothing to do. Whatever was
    handled since the last periodic commit (up to ``broker_commit_interval``, 2.8 s by default) was
    then read again by the partitions' next owner: in tools/rebalance_check.py, 1,000-3,200
    records, and a user with more of them than the dedupe memory (64 events) was counted
    twice. Here the consumer commits while it still knows those offsets; the commit waits
    for the sink's records first, as every commit does (streams.sink)."""
    consumer: Any = app.consumer
    revoke = consumer.on_partitions_revoked

    async def on_partitions_revoked(revoked: Any) -> None:
        try:
            if flush is not None:
                await flush()
            await consumer.commit()
        except Exception:  # noqa: BLE001 — uncommitted records are read again, as before
            log.warning("no commit before partitions were revoked", exc_info=True)
        await revoke(revoked)

    consumer.on_partitions_revoked = on_partitions_revoked


def seek_before_streaming(app: faust.App) -> None:
    """Hand on no records of the input partitions until a rebalance has sought them to
    their committed offsets.

    At the end of a rebalance Faust's recovery resumes the input partitions, then seeks
    them to their committed offsets, then resumes flow control, which empties the streams'
    queues. Records fetched between the resume and the end of the seek were handed to a
    stream and counted as read; the seek moved the read offset back below them, the next
    record from the fetch already under way then looked like a gap that Faust counts as
    acknowledged, and when the same records came again from the committed offset they
    were dropped as read. In between, emptying the queue had thrown away the copies
    handed on first, so their events were never handled and their offsets were committed
    (tools/rebalance_check.py: 15-30 of 2,558 users short by whole offset ranges in about
    one run of five).

    Here resuming an input partition first holds the flow: the fetch loop finishes the
    record in hand and fetches nothing more until the recovery, once it has sought,
    resumes the flow as it always does. Holding is not Faust's ``stop_flow``: that would
    also abandon a record in hand, which may be a standby's changelog record."""
    consumer: Any = app.consumer
    resume = consumer.resume_partitions

    def resume_partitions(partitions: Any) -> None:
        if any(not consumer._is_changelog_tp(tp) for tp in partitions):
            consumer.flow_active = False
            consumer.can_resume_flow.clear()
        resume(partitions)

    consumer.resume_partitions = resume_partitions


def deliver_without_tasks(app: faust.App) -> None:
    """Hand each fetched record to its streams without starting tasks for it, when nothing
    has to wait.

    Faust's consumer passes every record on through ``wait_first(on_message(record),
    suspend_flow.wait())``, so that a rebalance (which sets ``suspend_flow``) can abandon
    a record whose stream buffer is full. ``wait_first`` makes a task of each of those and
    of two more waits (the service stopping or crashing), waits for the first to finish
    and cancels the rest: 33 µs a record here, measured against 0.1 µs for awaiting the
    handler itself, while the consume-only agent spends ~75 µs a record in all.

    Almost always the handler finishes at once (its stream's buffer has room). So here
    the handler's first step runs directly; only when it has to wait (a full buffer, flow
    stopped, the producer's buffer full) does the rest of it go through Faust's
    ``wait_first``, from where it stopped, with the same waits as before.
    """
    consumer: Any = app.consumer
    # the coroutine Faust's drain loop hands to wait_first for each record
    handler = app.topics.on_message.__code__
    wait_first = consumer.wait_first

    async def wait_first_fast(*coros: Any, timeout: Any = None) -> WaitResults:
        first = coros[0] if coros else None
        if getattr(first, "cr_code", None) is not handler or consumer.should_stop:
            return await wait_first(*coros, timeout=timeout)
        assert isinstance(first, Coroutine)
        try:
            blocked_on = first.send(None)
        except StopIteration as done:
            _close(coros[1:])
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(coros[1:])
            raise
        return await wait_first(_go_on(first, blocked_on), *coros[1:], timeout=timeout)

    consumer.wait_first = wait_first_fast


def _close(waits: tuple[Any, ...]) -> None:
    for wait in waits:
        if isinstance(wait, Coroutine):
            wait.close()  # never started: closing it is all it needs


async def _go_on(coro: Coroutine[Any, Any, Any], blocked_on: Any) -> Any:
    return await _resume(coro, blocked_on)


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any],
            blocked_on: Any) -> Generator[Any, Any, Any]:
    """Drive ``coro`` on from a step that left it waiting for ``blocked_on``: the task
    running this waits for that future, then passes on what the task is sent or thrown
    (a cancellation included) until ``coro`` returns."""
    while True:
        try:
            sent = yield blocked_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 — handed to the coroutine as it came
            try:
                blocked_on = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                blocked_on = coro.send(sent)
            except StopIteration as done:
                return done.value

