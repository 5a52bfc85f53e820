"""Reading recs.users and ads.targeting for the live page, on a thread of its own.

confluent-kafka's ``poll`` blocks, so it runs on a plain thread and hands each decoded
event to the hub on the event loop with ``call_soon_threadsafe``. The consumer has a
group id of its own (every page service sees every event) and starts at the end of the
topics: on assignment it seeks each partition to its high watermark right then, so an
event sent after the service reports ready is never skipped by a late offset lookup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, Message, TopicPartition

from live.hub import LiveEvent
from schemas import InvalidEvent, decode
from schemas.outputs import AdTargeting, Recommendation
from shopstream import topics as t
from shopstream.config import Settings
from shopstream.kafkaio import make_consumer

log = logging.getLogger(__name__)

KINDS = {t.RECS: "recommendation", t.ADS: "ad"}


def to_live_event(topic: str, raw: bytes | None) -> LiveEvent | None:
    """The page's event for one output record; None for a record that is not valid."""
    try:
        event = decode(topic, raw)
    except InvalidEvent:
        return None
    if not isinstance(event, Recommendation | AdTargeting):
        return None
    return LiveEvent(kind=KINDS[topic], user_id=event.user_id, event_id=event.output_id,
                     data=raw or b"")


class Feed:
    """The Kafka consumer thread; ``ready`` is set once its partitions are positioned."""

    def __init__(self, settings: Settings, deliver: Callable[[LiveEvent], object],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.deliver = deliver
        self.loop = loop
        self.group_id = f"{settings.app_id}-live-{uuid.uuid4().hex[:8]}"
        self.ready = threading.Event()
        self.invalid = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        consumer = make_consumer(self.settings, self.group_id,
                                 **{"auto.offset.reset": "latest"})
        consumer.subscribe([t.RECS, t.ADS], on_assign=self._at_the_end)
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.5)
                if msg is not None:
                    self._handle(msg)
        except Exception:
            log.exception("live feed stopped")
            raise
        finally:
            consumer.close()

    def _at_the_end(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10.0)
            tp.offset = high
        consumer.assign(partitions)
        log.info("live feed reading %d partitions from their end", len(partitions))
        self.ready.set()

    def _handle(self, msg: Message) -> None:
        if msg.error():
            log.warning("live feed: %s", msg.error())
            return
        event = to_live_event(msg.topic() or "", msg.value())
        if event is None:
            self.invalid += 1
            return
        self.loop.call_soon_threadsafe(self.deliver, event)
