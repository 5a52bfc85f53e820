"""The Faust app: topics, tables and agents. Agents stay thin; logic lives in plain modules.

``create_app`` builds everything from a Settings object, so importing this module connects
to nothing and reads no environment.
"""

from __future__ import annotations

import logging
import time

import faust
from faust.types import EventT

from shopstream import topics as t
from shopstream.config import Settings
from streams.activity import RejectedEvent, activity_summary, dead_letter, decode_event

log = logging.getLogger(__name__)


def _raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    # Raw bytes in: we validate in the agent so bad input is dead-lettered, not dropped.
    return app.topic(*names, key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


def create_app(settings: Settings) -> faust.App:
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
    )

    events = _raw_topic(app, t.VIEWS, t.CLICKS)
    recs = _raw_topic(app, t.RECS)
    deadletters = _raw_topic(app, t.DEADLETTER)
    counts = app.Table(
        "user_event_counts", default=int, partitions=settings.topic_partitions,
        key_type=str, value_type=int,
    )

    @app.agent(events)
    async def count_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await _handle(event)

    async def _handle(event: EventT) -> None:
        msg = event.message
        try:
            decoded = decode_event(event.value)
        except RejectedEvent as exc:
            await deadletters.send(
                key=msg.key,
                value=dead_letter(msg.topic, msg.partition, msg.offset, exc, event.value),
            )
            log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition,
                        msg.offset, exc.reason)
            return
        user_id = decoded["user_id"]
        # Written per event, so the row lands in the changelog partition of this event.
        counts[user_id] += 1
        await recs.send(
            key=user_id.encode(),
            value=activity_summary(user_id, counts[user_id], decoded, int(time.time() * 1000)),
        )

    @app.page("/health")  # type: ignore[arg-type]
    async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok"})

    app.shopstream_settings = settings  # type: ignore[attr-defined]
    app.user_event_counts = counts  # type: ignore[attr-defined]
    return app
