"""Prometheus metrics of one worker, in a registry of its own (served at GET /metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# end-to-end latency: event timestamp -> output emitted; buckets from 1 ms to 10 s
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
TABLE_SIZE_MAX_AGE_S = 10.0
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class WorkerMetrics:
    # aiohttp takes the charset apart from the content type; the text is UTF-8 either way
    content_type = CONTENT_TYPE_LATEST.split("; charset")[0]

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_in = Counter("shopstream_events_in", "records consumed", ["topic"],
                                 registry=r)
        self.events_out = Counter("shopstream_events_out", "records produced", ["topic"],
                                  registry=r)
        self.dead_letters = Counter("shopstream_dead_letters", "records dead-lettered",
                                    ["reason"], registry=r)
        self.duplicates = Counter("shopstream_duplicates", "redelivered events dropped",
                                  registry=r)
        self.batch_size = Histogram("shopstream_batch_size", "users scored per model call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.latency = Histogram("shopstream_end_to_end_latency_seconds",
                                 "from an event's ts to its output's emit time",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.table_rows = Gauge("shopstream_table_rows", "rows in a table on this worker",
                                ["table"], registry=r)
        # a labelled child costs ~1.5 µs to look up and ~0.3 µs to count: keep them
        self._in: dict[str, Counter] = {}
        self._out: dict[str, Counter] = {}

    def count_in(self, topic: str, n: int = 1) -> None:
        self._count(self._in, self.events_in, topic, n)

    def count_out(self, topic: str, n: int = 1) -> None:
        self._count(self._out, self.events_out, topic, n)

    @staticmethod
    def _count(children: dict[str, Counter], counter: Counter, topic: str, n: int) -> None:
        child = children.get(topic)
        if child is None:
            child = children[topic] = counter.labels(topic=topic)
        child.inc(n)

    def track_table(self, name: str, size: Callable[[], int],
                    max_age_s: float = TABLE_SIZE_MAX_AGE_S) -> None:
        """Report a table's row count. Counting walks the table's store, so a count is
        reused for ``max_age_s`` rather than redone on every scrape."""
        last = {"at": float("-inf"), "rows": 0}

        def rows() -> int:
            now = time.monotonic()
            if now - last["at"] >= max_age_s:
                last["at"], last["rows"] = now, size()
            return int(last["rows"])

        self.table_rows.labels(table=name).set_function(rows)

    def render(self) -> bytes:
        return generate_latest(self.registry)
