"""The Faust app: topics, tables and agents, wired from one Settings object.

Agents stay thin: each hands every record to streams.handlers. ``create_app`` builds
everything, so importing this module connects to nothing and reads no environment.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import faust

from inference.registry import ModelRegistry, RegistryError
from shopstream import topics as t
from shopstream.config import Settings
from streams.catalog import CatalogCache
from streams.consumer import (
    client_on_loop,
    commit_before_revoke,
    deliver_without_tasks,
    name_consumer_thread,
    seek_before_streaming,
    tune_fetches,
    wait_briefly_for_records,
)
from streams.handlers import EventHandlers, InferenceStage, NoInference
from streams.intake import take_batches
from streams.kafka_intake import KafkaIntake
from streams.metrics import WorkerMetrics
from streams.recommend import ModelStage
from streams.sink import make_sink
from streams.tables import create_tables
from streams.views import add_views

log = logging.getLogger(__name__)

# the longest Faust's drain loop waits for fetched records (streams.consumer)
RECORDS_WAIT_S = 0.05
# Faust also commits every 10,000 acknowledged records (broker_commit_every), from the loop
# that hands fetched records on, which hands on none until that commit is done: the sink's
# flush included, 80-220 ms at 4,000 events/s. So only its timer commits here, alongside.
COMMIT_EVERY_NEVER = 2**62


class RawRecords(faust.Schema):
    """Keys and values as the bytes that came: records are validated in the agent, so bad
    input is dead-lettered with a reason instead of being dropped by Faust's deserializer.

    Faust's own decoding of a raw key and value still goes through its schema, serializer
    registry and codec for each, to return the bytes it was given: 3.3 µs a record here,
    against 1.7 µs for making the event alone, which is all this one does (the same key,
    value and headers as Faust's)."""

    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")

    def compile(self, app: faust.types.AppT, **kwargs: Any) -> Any:
        create_event = app.create_event

        async def decode(message: faust.types.Message, *, propagate: bool = False) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    return app.topic(*names, schema=RawRecords())


def model_stage(settings: Settings, catalog: CatalogCache,
                metrics: WorkerMetrics) -> InferenceStage:
    """The model from the registry, or no inference (with a warning) when there is none."""
    try:
        registry = ModelRegistry(settings)
    except RegistryError as exc:
        log.warning("no model to serve (%s); windows are kept but nothing is recommended "
                    "until a model is published (make export)", exc)
        return NoInference()
    return ModelStage(settings, registry, catalog, metrics)


def create_app(settings: Settings, stage: InferenceStage | None = None) -> faust.App:
    """The worker's app. Views and clicks are handled in micro-batches (``take_batches`` with
    the batch size and wait from settings) by a few actors, so one can score while another
    decodes; everything the interactions path writes goes through librdkafka (streams.sink,
    which says why)."""
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        store="rocksdb://",
        datadir=str(settings.worker_data_dir),
        topic_partitions=settings.topic_partitions,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=False,  # generic table browsing would expose user data
        producer_acks=-1,
        # Every event produces changelog rows and an output: a few ms of linger lets the
        # client send them in fewer, larger requests.
        producer_linger=settings.producer_linger_ms / 1000,
        consumer_auto_offset_reset=settings.consumer_offset_reset,
        broker_commit_interval=settings.commit_interval_s,
        broker_commit_every=COMMIT_EVERY_NEVER,
    )
    # Faust holds the stream whenever more than 100 table-changelog writes wait to be sent
    # and then drains them in 0.1 s steps (the catalog table still writes through Faust).
    app.producer.buffer.max_messages = settings.producer_buffer_messages
    if settings.kafka_client_thread:
        name_consumer_thread(app)
    else:
        client_on_loop(app)
    intake = (KafkaIntake(settings, (t.VIEWS, t.CLICKS)) if settings.intake == "librdkafka"
              else None)
    # with the intake, Faust's client reads only low-volume topics (its fetch rounds cost the
    # loop and the broker ~85 ms of CPU a second each at a 10 ms wait)
    tune_fetches(app, settings.fetch_max_wait_ms if intake is None
                 else settings.faust_fetch_max_wait_ms, settings.fetch_min_bytes)
    wait_briefly_for_records(app, RECORDS_WAIT_S)
    seek_before_streaming(app)
    deliver_without_tasks(app)
    metrics = WorkerMetrics()
    catalog_cache = CatalogCache()
    tables = create_tables(app, settings, on_catalog_change=catalog_cache.on_changelog_event)
    sink = make_sink(settings)
    sink.assigned = app.consumer.assignment
    sink.flush_with(app.producer)
    if intake is not None:
        intake.attach(app)
        metrics.track_lag(intake.lag)

    async def settle() -> None:  # before a revoke's commit
        if intake is not None:
            await intake.settle()  # its batches handled, what was not taken dropped
        await sink.flush()

    commit_before_revoke(app, settle)
    for table in tables.user_tables() + (tables.ad_caps,):
        sink.add_table(table)
    if stage is None:
        stage = model_stage(settings, catalog_cache, metrics)
    handlers = EventHandlers(settings, tables, metrics, sink, stage, catalog_cache)
    if isinstance(stage, ModelStage):
        stage.bind(tables, sink, handlers.keep_latest)

    @app.agent(raw_topic(app, t.VIEWS, t.CLICKS), concurrency=settings.agent_concurrency)
    async def interactions(stream: faust.StreamT[bytes]) -> None:
        if intake is not None:  # the stream stays empty: its partitions are read there
            async with aclosing(intake.batches()) as taken:  # a failed batch ends at once
                async for batch in taken:
                    await handlers.on_interactions(batch)  # type: ignore[arg-type]
            return
        batches = take_batches(app, stream, settings.max_batch_size, settings.max_wait_ms / 1000)
        async with aclosing(batches) as taken:  # a failed batch ends at once, unacknowledged
            async for records in taken:
                await handlers.on_interactions(records)

    @app.agent(raw_topic(app, t.CATALOG))
    async def catalog(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await handlers.on_catalog(event)

    @app.agent(raw_topic(app, t.ERASE))
    async def erasures(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await handlers.on_erasure(event)

    for name, table in (("user_state", tables.user_state), ("ad_caps", tables.ad_caps)):
        metrics.track_table(name, table.__len__)
    # the catalog as the filters see it: in memory, so counting it is free
    metrics.track_table("catalog", catalog_cache.__len__, max_age_s=0)

    async def on_rebalanced(app: faust.App, *args: object, **kwargs: object) -> None:
        handlers.forget_cached_states()
        sink.partitions_changed()

    app.on_partitions_revoked.connect(on_rebalanced)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_rebalanced)  # type: ignore[arg-type]

    async def on_shutdown(app: faust.App, **kwargs: object) -> None:
        if intake is not None:
            await intake.close()
        sink.close()

    app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]

    add_views(app, handlers, metrics, raw_topic(app, t.VIEWS))
    return app
