"""``shopstream replay``: load a historical log into events.views and events.clicks.

Reads the file with ``streams.replay_formats``, sends each event keyed by its user id
through the project's producer (murmur2 partitioner, idempotent), optionally publishes a
catalog record for each item before its first event, and counts what the broker
acknowledged through delivery callbacks and a final flush.

Order: a seq file goes out in file order as it is read (its events are in time order per
user by construction). A jsonl or CSV file, or any file replayed at a paced speed, is read
whole and sent sorted by timestamp (a stable sort: ties keep file order), so each user's
events go in time order and the pacer walks forward through time; ``--limit`` keeps
memory bounded, since it cuts the file before the sort.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from schemas import Limits, encode
from shopstream import topics as t
from shopstream.config import Settings
from streams.replay_catalog import catalog_item
from streams.replay_formats import SEQ_BASE_MS, BadLine, Item, Parsed, read_events
from streams.replay_pacing import Pacer

log = logging.getLogger(__name__)

# Unreadable lines logged one by one; past this they are only counted.
MAX_LISTED_BAD_LINES = 100


class BrokerUnavailable(Exception):
    """No Kafka broker answers at the configured address."""


@dataclass(frozen=True)
class ReplayOptions:
    path: Path
    fmt: str = "seq"
    speed: float | None = None  # None: as fast as possible; 1.0: the log's own pace
    rate: float | None = None  # most events a second; None: no cap
    limit: int | None = None  # the first N events of the file
    catalog: bool = False
    seq_base_ms: int = SEQ_BASE_MS
    progress: bool = True


@dataclass
class ReplaySummary:
    sent: int = 0  # events acknowledged by the broker
    failed: int = 0  # events and catalog records not delivered
    skipped_lines: int = 0
    bad_lines: list[int] = field(default_factory=list)  # the first MAX_LISTED_BAD_LINES
    catalog_sent: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        text = (f"replay: {self.sent} events sent, {self.failed} failed, "
                f"{self.skipped_lines} lines skipped, {self.catalog_sent} catalog items, "
                f"{self.seconds:.1f} s, {self.rate:,.0f} events/s")
        if self.bad_lines:
            listed = ", ".join(map(str, self.bad_lines[:10]))
            text += f"\nunreadable lines: {listed}{', ...' if self.skipped_lines > 10 else ''}"
        return text


def open_log(settings: Settings, options: ReplayOptions) -> Iterator[Item]:
    """The file's items in send order, with its format checked before anything is sent;
    raises FormatMismatch."""
    items = _limited(read_events(options.path, options.fmt, options.seq_base_ms,
                                 Limits.from_settings(settings)), options.limit)
    first = next(items, None)  # reading the first item runs the format probe
    stream = items if first is None else chain([first], items)
    if options.fmt == "seq" and options.speed is None:
        return stream
    return _sorted_by_time(stream)


def run_replay(settings: Settings, options: ReplayOptions,
               stop: threading.Event | None = None) -> ReplaySummary:
    """Replay the file, or its part until ``stop`` is set (what was produced by then is
    still delivered); raises FormatMismatch or BrokerUnavailable before sending anything."""
    from shopstream.localkafka import broker_answers
    from shopstream.topics import create_topics

    items = open_log(settings, options)
    if not broker_answers(settings.kafka_bootstrap):
        raise BrokerUnavailable(f"no Kafka broker answers at {settings.kafka_bootstrap} "
                                "(start one with 'shopstream kafka up')")
    create_topics(settings)
    sender = _Sender(settings, options)
    try:
        with logging_redirect_tqdm():  # warnings print above the bar, not through it
            sender.send_all(items, stop)
    finally:
        sender.finish()
    return sender.summary


def _limited(items: Iterator[Item], limit: int | None) -> Iterator[Item]:
    if limit is None:
        yield from items
        return
    events = 0
    for item in items:
        if isinstance(item, Parsed):
            if events >= limit:
                return
            events += 1
        yield item


def _sorted_by_time(items: Iterable[Item]) -> Iterator[Item]:
    bad: list[Item] = []
    parsed: list[Parsed] = []
    for item in items:
        (parsed if isinstance(item, Parsed) else bad).append(item)  # type: ignore[arg-type]
    parsed.sort(key=lambda p: p.event.ts)
    yield from bad  # reported first: their line numbers are known already
    yield from parsed


class _Sender:
    """Produces items one by one, counting deliveries; owns the producer and progress bar."""

    def __init__(self, settings: Settings, options: ReplayOptions) -> None:
        from shopstream.kafkaio import make_producer

        self.settings = settings
        self.options = options
        self.timeout_s = settings.replay_delivery_timeout_s
        self.producer = make_producer(
            settings, **{"message.timeout.ms": int(self.timeout_s * 1000)})
        self.pacer = Pacer(options.speed, options.rate)
        self.summary = ReplaySummary()
        self.catalogued: set[str] = set()
        self.bar = tqdm(desc="replay", unit=" events", unit_scale=True, mininterval=0.5,
                        disable=None if options.progress else True)
        self.started = time.monotonic()

    def send_all(self, items: Iterable[Item], stop: threading.Event | None = None) -> None:
        for item in items:
            if stop is not None and stop.is_set():
                return
            if isinstance(item, BadLine):
                self._skip(item)
                continue
            event = item.event
            if self.options.catalog and event.item_id not in self.catalogued:
                self.catalogued.add(event.item_id)
                self._produce(t.CATALOG, event.item_id, encode(catalog_item(event.item_id)),
                              self._on_catalog)
            self.pacer.wait(event.ts)
            self._produce(item.topic, event.user_id, encode(event), self._on_event)

    def finish(self) -> None:
        undelivered = self.producer.flush(self.timeout_s)
        self.summary.failed += undelivered
        self.summary.seconds = time.monotonic() - self.started
        self.bar.close()
        if undelivered:
            log.warning("%d records were still undelivered after %.0f s", undelivered,
                        self.timeout_s)

    def _skip(self, bad: BadLine) -> None:
        self.summary.skipped_lines += 1
        if len(self.summary.bad_lines) < MAX_LISTED_BAD_LINES:
            self.summary.bad_lines.append(bad.line_no)
            log.warning("%s line %d is unreadable (%s); skipped", self.options.path.name,
                        bad.line_no, bad.reason)
            if len(self.summary.bad_lines) == MAX_LISTED_BAD_LINES:
                log.warning("further unreadable lines are counted, not listed")

    def _produce(self, topic: str, key: str, value: bytes, callback: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key.encode(), value=value,
                                      on_delivery=callback)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _on_event(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.summary.sent += 1
            self.bar.update()
        else:
            self._failed(err)

    def _on_catalog(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.summary.catalog_sent += 1
        else:
            self._failed(err)

    def _failed(self, err: Any) -> None:
        self.summary.failed += 1
        if self.summary.failed <= 3:
            log.warning("a record was not delivered: %s", err)
