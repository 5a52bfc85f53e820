"""The worker's app wiring (no broker: nothing here connects)."""

from __future__ import annotations

import asyncio

import faust

from streams.app import bound_fetch_wait


def test_the_consumer_asks_the_broker_to_answer_fetches_within_the_setting(tmp_path):
    async def build():  # aiokafka wants a running loop for its client
        app = faust.App("fetch-wait", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        bound_fetch_wait(app, 35)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        await consumer._client.close()
        return consumer

    consumer = asyncio.run(build())
    # Faust's own value is 1,500 ms, which live traffic waited for (see bound_fetch_wait)
    assert consumer._fetch_max_wait_ms == 35
