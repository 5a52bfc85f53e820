"""The librdkafka intake (streams.kafka_intake): its batches, the offsets it gives Faust to
commit, and how it hooks into Faust's consumer, with a fake consumer in its thread (no
broker: nothing here connects; tests/integration runs it against a real one)."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import faust
from faust.types import TP

from shopstream.config import load_settings
from streams.kafka_intake import IntakeMessage, IntakeRecord, KafkaIntake

VIEWS = "events.views"
A, B = TP(VIEWS, 0), TP(VIEWS, 1)


def settings(**overrides):
    return load_settings(**{"max_batch_size": 256, "max_wait_ms": 0.1, **overrides})


def record(tp, offset):
    return IntakeRecord(IntakeMessage(tp, offset, b"u"), b"{}")


def run(body):
    return asyncio.run(body())


def intake_holding(*pending, max_batch_size=256):
    """An intake reading A and B (no thread: records are handed to it as its thread does)."""
    intake = KafkaIntake(settings(max_batch_size=max_batch_size), [VIEWS])
    intake._send = lambda tps: None  # the thread is not started here
    intake.assign([A, B])
    intake._arrive(intake._generation, [record(tp, offset) for tp, offset in pending])
    return intake


def offsets(batch):
    return [(r.message.partition, r.message.offset) for r in batch]


def test_a_batch_takes_from_each_partition_in_turn_keeping_each_ones_order():
    async def body():
        intake = intake_holding(*[(A, n) for n in range(10, 16)], *[(B, n) for n in range(3)],
                                max_batch_size=6)
        batches = intake.batches()
        return offsets(await batches.__anext__()), offsets(await batches.__anext__())

    first, second = run(body)
    # three each, though A's records came first; then what is left
    assert first == [(0, 10), (0, 11), (0, 12), (1, 0), (1, 1), (1, 2)]
    assert second == [(0, 13), (0, 14), (0, 15)]


async def finish(batches):
    """What an actor does when it has handled its batch: ask for the next (none come)."""
    asking = asyncio.ensure_future(batches.__anext__())
    await asyncio.sleep(0.01)
    asking.cancel()


def test_the_offset_to_commit_waits_for_a_batch_still_being_handled():
    async def body():
        intake = intake_holding(*[(A, n) for n in range(5, 9)], max_batch_size=2)
        one, two = intake.batches(), intake.batches()  # two actors
        await one.__anext__()  # offsets 5-6, being handled
        await two.__anext__()  # 7-8
        seen = [intake.handled()[A]]
        await finish(two)  # the later batch is done first
        seen.append(intake.handled()[A])
        await finish(one)
        seen.append(intake.handled()[A])
        return seen

    assert run(body) == [5, 5, 9]


def test_a_batch_whose_handling_failed_is_not_counted_as_handled():
    async def body():
        intake = intake_holding(*[(A, n) for n in range(3)], max_batch_size=2)
        batches = intake.batches()
        await batches.__anext__()  # offsets 0-1
        await batches.aclose()  # the actor raised: aclosing closed its batches
        return intake.handled()[A], intake._in_flight

    assert run(body) == (0, 0)  # read again after a restart; nothing waits for it


def test_settling_waits_for_batches_being_handled_and_drops_what_was_not_taken():
    async def body():
        intake = intake_holding(*[(A, n) for n in range(4)], max_batch_size=2)
        batches = intake.batches()
        await batches.__anext__()  # offsets 0-1, being handled
        settled = asyncio.ensure_future(intake.settle())
        await asyncio.sleep(0.05)
        waited = not settled.done()
        await finish(batches)
        await settled
        intake._arrive(intake._generation - 1, [record(A, 4)])  # read before it settled
        return waited, intake.handled(), intake._count

    waited, handled, left = run(body)
    assert waited
    assert handled == {A: 2}  # the batch handled; offsets 2-3 were never taken
    assert left == 0


def test_records_read_before_the_assignment_changed_are_dropped():
    async def body():
        intake = intake_holding((A, 0))
        old = intake._generation
        intake.assign([B])
        intake._arrive(old, [record(A, 1)])
        intake._arrive(intake._generation, [record(B, 7)])
        return offsets(await intake.batches().__anext__())

    assert run(body) == [(1, 7)]


def test_lag_counts_each_partitions_records_from_the_first_not_handled_to_its_end():
    async def body():
        intake = intake_holding(*[(A, n) for n in range(10, 16)], max_batch_size=3)
        seen = [intake.lag()]  # the thread has read no end offsets yet
        intake._ends = {A: (16, 16), B: (3, 3)}  # as the thread read them: (end, position)
        seen.append(intake.lag())  # A: fetched, none taken; B: read to its end
        batches = intake.batches()
        await batches.__anext__()  # A 10-12, being handled
        seen.append(intake.lag())
        await finish(batches)
        seen.append(intake.lag())
        intake._ends = {A: (20, 16), B: (-1001, -1001)}  # B's end not known yet
        seen.append(intake.lag())
        return seen

    assert run(body) == [{}, {A: 6, B: 0}, {A: 6, B: 0}, {A: 3, B: 0}, {A: 7}]


class FakeConsumer:
    """What the intake's thread calls on a confluent_kafka.Consumer."""

    def __init__(self, messages):
        self.messages = list(messages)
        self.assigned = []
        self.closed = threading.Event()

    def assign(self, parts):
        self.assigned.append(sorted((p.topic, p.partition) for p in parts))

    def poll(self, timeout):
        if self.messages and self.assigned and self.assigned[-1]:
            return self.messages.pop(0)
        threading.Event().wait(min(timeout, 0.01))
        return None

    def position(self, parts):
        return [SimpleNamespace(offset=-1001) for _ in parts]

    def get_watermark_offsets(self, part, cached=False):
        assert cached  # no request to the broker
        return -1001, -1001

    def consume(self, n, timeout):
        taken, self.messages = self.messages[:n], self.messages[n:]
        return taken

    def close(self):
        self.closed.set()


def message(tp, offset, error=None):
    return SimpleNamespace(error=lambda: error, topic=lambda: tp.topic,
                           partition=lambda: tp.partition, offset=lambda: offset,
                           key=lambda: b"u", value=lambda: b"{}")


def test_the_thread_reads_the_assigned_partitions_and_closes_the_consumer():
    fake = FakeConsumer([message(A, n) for n in range(3)] + [message(B, 0)])

    async def body():
        intake = KafkaIntake(settings(), [VIEWS], make_consumer=lambda s: fake)
        intake.assign([B, A])
        batch = await asyncio.wait_for(intake.batches().__anext__(), 5)
        got = list(offsets(batch))
        while len(got) < 4:  # the rest may come in a second hand-over
            got += offsets(await asyncio.wait_for(intake.batches().__anext__(), 5))
        await intake.settle()
        await intake.close()
        return sorted(got)

    assert run(body) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert fake.assigned == [[(VIEWS, 0), (VIEWS, 1)], []]  # assigned, then unassigned
    assert fake.closed.is_set()


def test_a_record_with_an_error_is_not_handed_on():
    fake = FakeConsumer([message(A, 0), message(A, 1, error=SimpleNamespace(code=lambda: 1)),
                         message(A, 2)])

    async def body():
        intake = KafkaIntake(settings(), [VIEWS], make_consumer=lambda s: fake)
        intake.assign([A])
        batch = await asyncio.wait_for(intake.batches().__anext__(), 5)
        await intake.close()
        return offsets(batch)

    assert run(body) == [(0, 0), (0, 2)]


def app_with_intake(tmp_path):
    app = faust.App("kafka-intake", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    intake = KafkaIntake(settings(), [VIEWS])
    assigned = []
    intake.assign = assigned.append  # type: ignore[method-assign]
    intake.attach(app)
    return app, intake, assigned


def test_faust_hands_the_topics_partitions_over_once_its_flow_resumes(tmp_path):
    app, intake, assigned = app_with_intake(tmp_path)
    consumer = app.consumer
    catalog = TP("catalog", 0)
    consumer.pause_partitions({A, catalog})
    consumer.resume_partitions({A, catalog})  # what Faust's recovery does at its end
    assert A in consumer._paused_partitions  # Faust does not read it
    assert catalog not in consumer._paused_partitions
    assert assigned == []  # not before the seek and the flow
    consumer.resume_flow()
    assert assigned == [{A}]


def test_faust_commits_the_offsets_the_intake_has_handled(tmp_path):
    app, intake, _ = app_with_intake(tmp_path)
    consumer = app.consumer
    intake._handled = {A: 40, B: 7}
    consumer._committed_offset[B] = 7  # nothing new there
    catalog = TP("catalog", 0)
    consumer._acked[catalog] = [0, 1]  # Faust's own acknowledged offsets still count
    tps = list(consumer._filter_tps_with_pending_acks())
    assert consumer._filter_committable_offsets(tps) == {catalog: 2, A: 40}
    assert list(consumer._filter_tps_with_pending_acks({"catalog"})) == [catalog]


def test_the_intakes_partitions_stay_paused_in_fausts_kafka_client(tmp_path):
    app = faust.App("kafka-intake", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    thread = app.consumer._thread  # the aiokafka driver's client service
    paused, handed = [], []
    thread._ensure_consumer = lambda: SimpleNamespace(pause=lambda *tps: paused.extend(tps))

    async def faust_assigned(tps, generation):  # Faust's own handling, after the pause
        handed.append((set(tps), list(paused)))

    thread.on_partitions_assigned = faust_assigned
    KafkaIntake(settings(), [VIEWS]).attach(app)
    catalog = TP("catalog", 0)
    asyncio.run(thread.on_partitions_assigned({A, catalog}, 3))
    assert [(tp.topic, tp.partition) for tp in paused] == [(VIEWS, 0)]
    assert handed == [({A, catalog}, paused)]  # Faust still gets every partition
