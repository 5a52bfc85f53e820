"""The worker's change to Faust's consumer, against the pinned faust-streaming (no broker:
nothing here connects)."""

from __future__ import annotations

import asyncio

import faust

from streams.consumer import tune_fetches


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
