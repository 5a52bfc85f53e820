"""The worker's changes to Faust's consumer, against the pinned faust-streaming (no broker:
nothing here connects)."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP

from streams.consumer import seek_before_streaming, tune_fetches


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
