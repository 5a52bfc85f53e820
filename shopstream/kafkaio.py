"""confluent-kafka producers and consumers configured the way this project needs them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer

from shopstream.config import Settings


def make_producer(settings: Settings, **extra: Any) -> Producer:
    return Producer({
        "bootstrap.servers": settings.kafka_bootstrap,
        # librdkafka's default (CRC32) would put a user's events on another partition than
        # Faust (aiokafka, murmur2) puts that user's table rows and outputs.
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "linger.ms": 5,
        "socket.nagle.disable": True,  # small requests go out now, not after a TCP delay
        **extra,
    })


def make_consumer(settings: Settings, group_id: str, **extra: Any) -> Consumer:
    return Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    })


def produce_all(producer: Producer, topic: str, records: list[tuple[bytes, bytes]],
                timeout: float = 30.0) -> None:
    """Send (key, value) records and wait until every one is acknowledged."""
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    if remaining or failures:
        raise KafkaException(f"{remaining} undelivered, {len(failures)} failed: {failures[:3]}")


def consume_messages(consumer: Consumer, topics: list[str], until: int,
                     timeout: float = 60.0) -> Iterator[Message]:
    """Yield messages from ``topics`` until ``until`` were seen or ``timeout`` passes."""
    consumer.subscribe(topics)
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < until and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        seen += 1
        yield msg
