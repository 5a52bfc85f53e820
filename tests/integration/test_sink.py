"""The worker's sink against the real broker: what the broker refuses surfaces at the flush,
also from the outputs' producer, which reports failed deliveries only."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streams.sink import DeliveryError, make_sink


def test_an_output_the_broker_refuses_makes_the_flush_raise(kafka):
    topic = f"sink-small-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.kafka_bootstrap})
    created = admin.create_topics([NewTopic(topic, 1, 1,
                                            config={"max.message.bytes": "1000"})])
    created[topic].result(30)
    sink = make_sink(kafka)
    try:
        sink.send(topic, b"u1", b"x" * 5000)  # over the topic's limit: the broker refuses it
        with pytest.raises(DeliveryError, match="1 refused"):
            asyncio.run(sink.flush())
    finally:
        sink.close()
