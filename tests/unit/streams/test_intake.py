"""Micro-batches taken straight from an agent's channel (streams.intake), with Faust's own
consumer bookkeeping (no broker: nothing here connects)."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import faust
from faust.types.tuples import ConsumerMessage

from streams.intake import take_batches

TOPIC = "events.views"


def record(offset: int, generation: int = 1) -> SimpleNamespace:
    message = ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None,
                      generation_id=generation)
    message.incref()  # as Faust's conductor does for the one channel it hands it to
    return SimpleNamespace(message=message)


def run(tmp_path, body):
    async def main():
        app = faust.App("intake", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        app.consumer_generation_id = 1
        app.flow_control.resume()  # as Faust's recovery does once partitions are sought
        app.topics._acking_topics.add(TOPIC)  # as once the agent's topic is subscribed
        queue: asyncio.Queue = asyncio.Queue()
        stream = SimpleNamespace(channel=SimpleNamespace(queue=queue))
        return await body(app, queue, stream)

    return asyncio.run(main())


def test_batches_keep_order_and_stop_at_max_records(tmp_path):
    async def body(app, queue, stream):
        for offset in range(5):
            queue.put_nowait(record(offset))
        batches = take_batches(app, stream, 3, within=0.01)
        first = await batches.__anext__()
        second = await batches.__anext__()
        return [e.message.offset for e in first], [e.message.offset for e in second]

    assert run(tmp_path, body) == ([0, 1, 2], [3, 4])


def test_a_lone_record_is_handed_on_after_at_most_the_wait(tmp_path):
    async def body(app, queue, stream):
        queue.put_nowait(record(7))
        loop = asyncio.get_running_loop()
        start = loop.time()
        batch = await asyncio.wait_for(take_batches(app, stream, 256, within=0.05).__anext__(),
                                       timeout=2)
        return [e.message.offset for e in batch], loop.time() - start

    offsets, waited = run(tmp_path, body)
    assert offsets == [7]
    assert 0.04 <= waited < 1.0


def test_a_record_arriving_within_the_wait_joins_the_batch(tmp_path):
    async def body(app, queue, stream):
        queue.put_nowait(record(1))
        asyncio.get_running_loop().call_later(0.01, queue.put_nowait, record(2))
        batch = await take_batches(app, stream, 256, within=0.2).__anext__()
        return [e.message.offset for e in batch]

    assert run(tmp_path, body) == [1, 2]


def test_records_are_unacked_while_handled_and_acked_when_the_next_batch_is_asked(tmp_path):
    async def body(app, queue, stream):
        consumer = app.consumer
        first, second = record(0), record(1)
        queue.put_nowait(first)
        batches = take_batches(app, stream, 1, within=0.01)
        await batches.__anext__()
        # handed over: a graceful stop or a rebalance waits for it, nothing to commit yet
        during = (first.message in consumer._unacked_messages, first.message.acked,
                  list(consumer._acked[first.message.tp]))
        queue.put_nowait(second)
        await batches.__anext__()
        after = (first.message in consumer._unacked_messages, first.message.acked,
                 list(consumer._acked[first.message.tp]))
        return during, after

    during, after = run(tmp_path, body)
    assert during == (True, False, [])
    assert after == (False, True, [0])  # offset 0 can now be committed


def test_a_batch_whose_handling_failed_is_neither_acked_nor_waited_for(tmp_path):
    async def body(app, queue, stream):
        consumer = app.consumer
        done, failed = [record(0), record(1)], [record(2), record(3)]
        for r in done + failed:
            queue.put_nowait(r)

        async def actor():  # as the worker's agent: handling the second batch raises
            async with contextlib.aclosing(take_batches(app, stream, 2, within=0.01)) as taken:
                async for batch in taken:
                    if batch[0] is failed[0]:
                        raise RuntimeError("handler failed")

        try:
            await asyncio.wait_for(actor(), timeout=2)
        except RuntimeError:
            pass
        tp = done[0].message.tp
        return ([r.message.acked for r in done + failed], list(consumer._acked[tp]),
                [r.message in consumer._unacked_messages for r in failed])

    acked, committable, still_waited_for = run(tmp_path, body)
    assert acked == [True, True, False, False]
    assert committable == [0, 1]  # Faust's commit stops below offset 2: it is read again
    assert still_waited_for == [False, False]  # so a graceful stop does not hang on them


def test_records_of_an_old_generation_or_while_flow_is_stopped_are_skipped_unacked(tmp_path):
    async def body(app, queue, stream):
        stale, current = record(3, generation=0), record(4)
        queue.put_nowait(stale)
        queue.put_nowait(current)
        batches = take_batches(app, stream, 10, within=0.01)
        batch = await batches.__anext__()
        app.flow_control.suspend()  # a rebalance began: what is queued is not handled
        paused = record(5)
        queue.put_nowait(paused)
        queue.put_nowait(record(6))
        waiting = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0.05)
        skipped_while_paused = not waiting.done() and queue.empty()
        waiting.cancel()
        return ([e.message.offset for e in batch], stale.message.acked,
                skipped_while_paused, paused.message.acked)

    offsets, stale_acked, skipped_while_paused, paused_acked = run(tmp_path, body)
    assert offsets == [4]
    assert not stale_acked  # Faust's stream leaves it too: its partition may have moved
    assert skipped_while_paused and not paused_acked


def test_a_stream_that_faust_ends_ends_the_batches_without_an_error(tmp_path):
    class Ended(asyncio.Queue):  # Faust throws StopAsyncIteration into it when stopping
        async def get(self):
            raise StopAsyncIteration

    async def body(app, queue, stream):
        stream.channel.queue = Ended()
        return [batch async for batch in take_batches(app, stream, 4, within=0.01)]

    assert run(tmp_path, body) == []


def test_after_a_failed_lone_record_no_later_record_of_its_partition_is_acked(tmp_path):
    """Faust's commit passes a gap of one offset: acking offset 3 after 2 failed would
    commit past 2. Until the next rebalance, nothing after it in its partition is acked."""

    async def body(app, queue, stream):
        consumer = app.consumer
        done, lone = [record(0), record(1)], record(2)
        for r in [*done, lone]:
            queue.put_nowait(r)

        async def failing_actor():
            async with contextlib.aclosing(take_batches(app, stream, 2, within=0.01)) as taken:
                async for batch in taken:
                    if batch[0] is lone:
                        raise RuntimeError("handler failed")

        with contextlib.suppress(RuntimeError):
            await asyncio.wait_for(failing_actor(), timeout=2)
        later = [record(3), record(4)]
        for r in later:
            queue.put_nowait(r)
        batches = take_batches(app, stream, 2, within=0.01)  # a restarted actor
        handled = await batches.__anext__()
        app.consumer_generation_id = 2  # a rebalance: reading resumes from the commit
        again = [record(2, generation=2), record(3, generation=2)]
        for r in again:
            queue.put_nowait(r)
        await batches.__anext__()  # asking for the next batch settles the one before
        queue.put_nowait(record(4, generation=2))
        await batches.__anext__()
        tp = lone.message.tp
        return ([e.message.offset for e in handled],
                [r.message.acked for r in [*done, lone, *later]],
                [r.message in consumer._unacked_messages for r in later],
                [r.message.acked for r in again], sorted(consumer._acked[tp]))

    handled, acked, still_waited_for, acked_again, committable = run(tmp_path, body)
    assert handled == [3, 4]
    assert acked == [True, True, False, False, False]
    assert still_waited_for == [False, False]  # a graceful stop does not hang on them
    assert acked_again == [True, True]  # read again after the rebalance, and acked
    assert committable == [0, 1, 2, 3]
