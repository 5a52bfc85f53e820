"""The worker's changes to Faust's consumer, against the pinned faust-streaming (no broker:
nothing here connects)."""

from __future__ import annotations

import asyncio
import threading
import warnings
from types import SimpleNamespace

import faust
import pytest
from faust.types import TP
from mode.threads import QueueServiceThread

from streams.consumer import (
    OnParentLoop,
    client_on_loop,
    commit_before_revoke,
    deliver_without_tasks,
    name_consumer_thread,
    seek_before_streaming,
    tune_fetches,
    wait_briefly_for_records,
)

TOPIC_PARTITION = TP("views", 0)


def test_the_consumer_asks_the_broker_for_the_settings_fetch_size_and_wait(tmp_path):
    async def build():  # aiokafka wants a running loop for its client
        app = faust.App("fetch-wait", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        tune_fetches(app, 35, 4096)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer._client.close()
        return consumer

    consumer = asyncio.run(build())
    # Faust's own values are 1,500 ms, which live traffic waited for, and one byte
    assert (consumer._fetch_max_wait_ms, consumer._fetch_min_bytes) == (35, 4096)


def test_the_drain_loop_waits_briefly_for_the_records_of_its_active_partitions(tmp_path):
    app = faust.App("records-wait", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    wait_briefly_for_records(app, 0.05)
    consumer = app.consumer
    waits = []

    async def wait_next_records(timeout):  # what Faust's getmany asks the consumer thread
        waits.append(timeout)
        return None, None

    consumer._wait_next_records = wait_next_records

    async def drain_once():
        # the drain loop (Consumer._drain_messages) calls self.getmany(timeout=1.0)
        return [record async for record in consumer.getmany(timeout=1.0)]

    assert asyncio.run(drain_once()) == []
    assert waits == [0.05]


def test_the_kafka_client_service_is_made_for_the_apps_loop_and_no_thread(tmp_path):
    app = faust.App("on-loop", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    client_on_loop(app)
    service = app.consumer._thread  # the service Faust would run in a thread
    assert service.thread_loop is service.parent_loop is app.consumer.loop
    assert service.Worker is OnParentLoop


class _Probe(QueueServiceThread):
    """A service as Faust's consumer thread is one: started, called through its method
    queue, stopped."""

    started_in: threading.Thread | None = None
    loop_seen: asyncio.AbstractEventLoop | None = None

    async def on_start(self) -> None:
        self.started_in = threading.current_thread()
        self.loop_seen = asyncio.get_running_loop()

    async def double(self, n: int) -> int:
        return 2 * n


class _SyncShutdownProbe(_Probe):
    def _shutdown_thread(self) -> None:  # as faust's AIOKafkaConsumerThread has it
        return None


@pytest.mark.parametrize("probe", [_Probe, _SyncShutdownProbe])
def test_a_service_thread_on_the_parent_loop_runs_calls_and_stops_without_a_thread(probe):
    threads_before = threading.active_count()

    async def run():
        loop = asyncio.get_running_loop()
        service = probe(loop=loop, thread_loop=loop, Worker=OnParentLoop)
        await service.start()
        threads_running = threading.active_count()
        doubled = await service.call_thread(service.double, 21)
        bystander = asyncio.ensure_future(asyncio.sleep(10))  # another task of the app's
        await asyncio.wait_for(service.stop(), 5)
        survived = not bystander.done()
        bystander.cancel()
        return service, loop, doubled, threads_running, survived

    service, loop, doubled, threads_running, survived = asyncio.run(run())
    assert service.started_in is threading.main_thread() and service.loop_seen is loop
    assert doubled == 42
    assert threads_running == threads_before
    assert service._shutdown.is_set()  # what ServiceThread.stop waited for
    assert survived  # stopping the service left the loop's other tasks alone


def test_the_consumer_thread_runs_under_a_name_of_its_own(tmp_path):
    app = faust.App("thread-name", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    name_consumer_thread(app)
    service = app.consumer._thread
    # what the service starts its thread with (mode.threads.ServiceThread.start)
    assert service.Worker(service).name == "kafka-consumer"


def _app_with_held_seeks(tmp_path):
    app = faust.App("seek-hold", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    app.Table("rows", partitions=4)  # its changelog topic: <app id>-rows-changelog
    seek_before_streaming(app)
    return app, app.consumer


def test_resuming_an_input_partition_holds_records_until_the_flow_resumes(tmp_path):
    app, consumer = _app_with_held_seeks(tmp_path)
    inputs = {TP("events.views", 0), TP("seek-hold-rows-changelog", 0)}
    consumer._active_partitions = set()  # as after an assignment pausing them all
    consumer._paused_partitions.update(inputs)
    consumer.resume_flow()

    consumer.resume_partitions(inputs)

    assert consumer._active_partitions == inputs and not consumer._paused_partitions
    # the fetch loop stops before its next record and waits to be let go
    assert not consumer.flow_active
    assert not consumer.can_resume_flow.is_set()
    # a record in hand is not abandoned: that is stop_flow's signal, not this
    assert not consumer.suspend_flow.is_set()
    consumer.resume_flow()  # what Faust's recovery does once it has sought
    assert consumer.flow_active and consumer.can_resume_flow.is_set()


def test_resuming_only_changelog_partitions_lets_records_flow(tmp_path):
    app, consumer = _app_with_held_seeks(tmp_path)
    consumer._active_partitions = set()
    consumer.resume_flow()

    consumer.resume_partitions({TP("seek-hold-rows-changelog", 1)})

    assert consumer.flow_active and consumer.can_resume_flow.is_set()


def run_with_app(tmp_path, handler, body):
    """Run ``body(app, deliver, tasks)`` on a loop that counts the tasks it starts, with
    ``handler`` as the stream callback for TOPIC_PARTITION; ``deliver(message)`` is the call
    Faust's drain loop makes for each fetched record."""

    async def main():
        tasks = []
        loop = asyncio.get_running_loop()

        def factory(loop, coro):
            task = asyncio.Task(coro, loop=loop)
            tasks.append(task)
            return task

        app = faust.App("deliver", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        deliver_without_tasks(app)
        app.topics._tp_to_callback[TOPIC_PARTITION] = handler
        consumer = app.consumer

        def deliver(message):
            return consumer.wait_first(app.topics.on_message(message),
                                       consumer.suspend_flow.wait())

        loop.set_task_factory(factory)
        return await body(app, deliver, tasks)

    return asyncio.run(main())


def message(n):
    return SimpleNamespace(tp=TOPIC_PARTITION, n=n)


def test_a_record_whose_stream_has_room_is_handed_on_without_a_task(tmp_path):
    seen = []

    async def handler(msg):
        seen.append(msg.n)

    async def body(app, deliver, tasks):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an unawaited suspend_flow.wait() would warn
            results = [await deliver(message(n)) for n in range(3)]
        return results, len(tasks)

    results, started = run_with_app(tmp_path, handler, body)
    assert seen == [0, 1, 2]
    assert started == 0
    assert all(not r.stopped and r.results == [None] for r in results)


def test_a_record_that_has_to_wait_is_handed_on_when_its_stream_has_room(tmp_path):
    room = asyncio.Event()
    seen = []

    async def handler(msg):
        seen.append(("waiting", msg.n))
        await room.wait()  # a full stream buffer
        await asyncio.sleep(0)
        seen.append(("in", msg.n))

    async def body(app, deliver, tasks):
        pending = asyncio.ensure_future(deliver(message(7)))
        await asyncio.sleep(0.01)
        assert seen == [("waiting", 7)] and not pending.done()
        room.set()
        result = await asyncio.wait_for(pending, 1)
        return result

    result = run_with_app(tmp_path, handler, body)
    assert seen == [("waiting", 7), ("in", 7)]
    assert not result.stopped


def test_a_rebalance_abandons_a_record_that_waits_as_faust_does(tmp_path):
    seen = []

    async def handler(msg):
        try:
            await asyncio.Event().wait()  # a full buffer that never drains
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("in")

    async def body(app, deliver, tasks):
        pending = asyncio.ensure_future(deliver(message(1)))
        await asyncio.sleep(0.01)
        app.consumer.suspend_flow.set()  # what stop_flow() does when partitions move
        result = await asyncio.wait_for(pending, 1)
        await asyncio.sleep(0)
        return result

    result = run_with_app(tmp_path, handler, body)
    assert seen == ["cancelled"]
    assert result.done and result.done[0] is not None


def test_an_error_in_the_handler_reaches_the_drain_loop(tmp_path):
    async def handler(msg):
        raise ValueError("bad record")

    async def body(app, deliver, tasks):
        await deliver(message(1))

    with pytest.raises(ValueError, match="bad record"):
        run_with_app(tmp_path, handler, body)


def test_other_waits_of_the_consumer_still_go_through_faust(tmp_path):
    async def handler(msg):
        return None

    async def body(app, deliver, tasks):
        flag = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, flag.set)
        result = await app.consumer.wait_first(flag.wait(), timeout=1)
        return result, len(tasks)

    result, started = run_with_app(tmp_path, handler, body)
    assert not result.stopped
    assert started >= 1  # Faust's wait_first made its tasks


def test_a_revoke_commits_while_faust_still_knows_the_acknowledged_offsets(tmp_path):
    async def main():
        app = faust.App("revoke-commit", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        consumer = app.consumer
        tp = TP("events.views", 0)
        consumer._acked[tp] = [0, 1, 2]  # handled, waiting for the next commit
        committed = []

        async def commit(*args, **kwargs):
            committed.append(list(consumer._acked.get(tp, [])))
            return True

        async def faust_revoke(revoked):  # what Faust's own revoke does first
            for gone in revoked:
                consumer._acked.pop(gone, None)

        consumer.commit = commit
        consumer.on_partitions_revoked = faust_revoke
        commit_before_revoke(app)
        await consumer.on_partitions_revoked({tp})
        return committed, tp in consumer._acked

    committed, still_known = asyncio.run(main())
    assert committed == [[0, 1, 2]]  # committed before the offsets were forgotten
    assert not still_known


def test_a_revoke_flushes_the_sink_first_even_with_no_offset_to_commit(tmp_path):
    # the sink's deferred rows belong in the revoked partitions' stores and changelogs
    async def main():
        app = faust.App("revoke-flush", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        consumer = app.consumer
        steps = []

        async def flush():
            steps.append("flush")

        async def commit(*args, **kwargs):
            steps.append("commit")
            return False  # nothing to commit: Faust's commit then flushes nothing

        async def faust_revoke(revoked):
            steps.append("revoke")

        consumer.commit = commit
        consumer.on_partitions_revoked = faust_revoke
        commit_before_revoke(app, flush)
        await consumer.on_partitions_revoked({TP("events.views", 0)})
        return steps

    assert asyncio.run(main()) == ["flush", "commit", "revoke"]


def test_faust_forgets_a_revoked_partitions_acknowledged_offsets_before_its_own_commit():
    # why commit_before_revoke exists: the pinned Faust pops them first thing
    import inspect

    from faust.transport.consumer import Consumer

    source = inspect.getsource(Consumer.on_partitions_revoked)
    assert source.index("self._acked.pop(tp, None)") < source.index("_on_partitions_revoked")
