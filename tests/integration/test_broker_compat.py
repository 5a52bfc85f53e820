"""The pinned aiokafka (Faust's client) against the pinned Kafka 4.x broker: plain produce and
consume, a consumer group rebalancing, a compacted topic, and transactions."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from shopstream import topics as t
from shopstream.config import Settings
from shopstream.topics import create_topics


async def _make_topic(settings: Settings, name: str, partitions: int = 1,
                      config: dict[str, str] | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()


async def _drain(consumer: AIOKafkaConsumer, n: int, timeout: float = 30.0) -> list:
    out: list = []
    async def loop() -> None:
        async for msg in consumer:
            out.append(msg)
            if len(out) >= n:
                return
    await asyncio.wait_for(loop(), timeout)
    return out


def test_aiokafka_produce_and_consume(kafka, topic_namer):
    topic = topic_namer("compat-plain")

    async def run() -> list[bytes]:
        await _make_topic(kafka, topic)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap)
        await producer.start()
        for i in range(5):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.kafka_bootstrap,
                                    group_id=topic, auto_offset_reset="earliest")
        await consumer.start()
        try:
            return [m.value for m in await _drain(consumer, 5)]
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == [f"m{i}".encode() for i in range(5)]


def test_consumer_group_rebalances_partitions_between_members(kafka, topic_namer):
    topic = topic_namer("compat-group")

    async def assigned(consumer: AIOKafkaConsumer) -> set[int]:
        for _ in range(100):
            await consumer.getmany(timeout_ms=100)
            parts = {tp.partition for tp in consumer.assignment()}
            if parts:
                return parts
        return set()

    async def run() -> tuple[set[int], set[int], set[int]]:
        await _make_topic(kafka, topic, partitions=4)
        opts = dict(bootstrap_servers=kafka.kafka_bootstrap, group_id=topic,
                    auto_offset_reset="earliest", session_timeout_ms=10000,
                    heartbeat_interval_ms=500)
        first = AIOKafkaConsumer(topic, **opts)
        await first.start()
        alone = await assigned(first)
        second = AIOKafkaConsumer(topic, **opts)
        await second.start()
        try:
            for _ in range(200):  # both poll until the rebalance settles on a split
                await asyncio.gather(first.getmany(timeout_ms=100),
                                     second.getmany(timeout_ms=100))
                a = {tp.partition for tp in first.assignment()}
                b = {tp.partition for tp in second.assignment()}
                if a and b and not a & b and a | b == {0, 1, 2, 3}:
                    return alone, a, b
            return alone, a, b
        finally:
            await second.stop()
            await first.stop()

    alone, a, b = asyncio.run(run())
    assert alone == {0, 1, 2, 3}
    assert a and b and not a & b and a | b == {0, 1, 2, 3}


def test_compacted_topic_is_created_compacted_and_takes_keyed_records_and_tombstones(kafka):
    create_topics(kafka)  # idempotent: the session already made them
    admin = AdminClient({"bootstrap.servers": kafka.kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, t.CATALOG)
    configs = admin.describe_configs([resource])[resource].result(30)
    assert configs["cleanup.policy"].value == "compact"

    async def run() -> list[tuple[bytes, bytes | None]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap)
        await producer.start()
        meta = [await producer.send_and_wait(t.CATALOG, v, key=b"compat-item")
                for v in (b'{"v":1}', b'{"v":2}', None)]
        await producer.stop()
        tp = TopicPartition(t.CATALOG, meta[0].partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.kafka_bootstrap)
        await consumer.start()
        consumer.assign([tp])
        consumer.seek(tp, meta[0].offset)
        try:
            return [(m.key, m.value) for m in await _drain(consumer, 3)]
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == [(b"compat-item", b'{"v":1}'), (b"compat-item", b'{"v":2}'),
                                  (b"compat-item", None)]


def test_transactions_commit_and_abort(kafka, topic_namer):
    topic = topic_namer("compat-tx")

    async def run() -> list[bytes]:
        await _make_topic(kafka, topic)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap,
                                    transactional_id=topic, enable_idempotence=True)
        await producer.start()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"after")
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.kafka_bootstrap,
                                    group_id=topic, auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            return [m.value for m in await _drain(consumer, 2)]
        finally:
            await consumer.stop()

    assert asyncio.run(run()) == [b"committed", b"after"]
