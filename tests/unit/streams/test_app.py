"""The worker's app as create_app wires it (no broker: nothing here connects)."""

from __future__ import annotations

import asyncio

from shopstream.config import Settings
from streams.app import create_app
from streams.handlers import NoInference


def test_the_consumer_asks_the_broker_to_answer_fetches_within_the_setting(tmp_path):
    settings = Settings(worker_data_dir=tmp_path, fetch_max_wait_ms=35)

    async def build():  # aiokafka wants a running loop for its client
        app = create_app(settings, stage=NoInference())
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        await consumer._client.close()
        return consumer

    consumer = asyncio.run(build())
    # Faust's own value is 1,500 ms, which live traffic waited for (see bound_fetch_wait)
    assert consumer._fetch_max_wait_ms == 35
