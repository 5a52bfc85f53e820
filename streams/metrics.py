"""Prometheus metrics of one worker, in a registry of its own (served at GET /metrics)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

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
        r.register(ThreadCPU())
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

    def track_lag(self, lag: Callable[[], Mapping[TP, int]]) -> None:
        """Report each input partition's records not handled yet, as ``lag`` gives them when
        scraped (streams.kafka_intake.KafkaIntake.lag)."""
        self.registry.register(InputLag(lag))

    def render(self) -> bytes:
        return generate_latest(self.registry)


TASKS = Path("/proc/self/task")


def stat_cpu_seconds(stat: str) -> float:
    """User and system CPU seconds from a /proc ``stat`` line ("pid (name) state ...": the
    name may hold spaces and parentheses)."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user and system) this process's threads have used, by thread name:
    Python threads under their own names, the others (librdkafka's, RocksDB's) under the
    name the kernel has for them; threads of one name add up. Empty where there is no
    /proc (not Linux)."""
    used: dict[str, float] = {}
    try:
        tasks = list(TASKS.iterdir())
    except OSError:
        return used
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread has ended
            continue
        name = names.get(int(task.name)) or stat[stat.index("(") + 1:stat.rindex(")")]
        used[name] = used.get(name, 0.0) + stat_cpu_seconds(stat)
    return used


class ThreadCPU(Collector):
    """``shopstream_thread_cpu_seconds_total{thread=...}``: where the worker's CPU goes (the
    event loop is MainThread, the model inference_0, Faust's Kafka client kafka-consumer
    where it has a thread), read from /proc when scraped."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("shopstream_thread_cpu_seconds",
                                     "CPU time of the worker's threads", labels=["thread"])
        for name, seconds in sorted(thread_cpu_seconds().items()):
            family.add_metric([name], seconds)
        yield family


class InputLag(Collector):
    """``shopstream_input_lag{topic,partition}``: records of an input partition this worker
    reads that it has not handled yet (the partition's end offset as last fetched, less the
    offset below which every record is handled)."""

    def __init__(self, lag: Callable[[], Mapping[TP, int]]) -> None:
        self._lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("shopstream_input_lag",
                                   "records of an input partition not handled yet",
                                   labels=["topic", "partition"])
        for tp, records in sorted(self._lag().items()):
            family.add_metric([tp.topic, str(tp.partition)], records)
        yield family
