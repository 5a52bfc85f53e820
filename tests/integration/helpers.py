"""Small helpers for integration tests: produce JSON events, collect outputs by user."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from confluent_kafka import Consumer

from shopstream.config import Settings
from shopstream.kafkaio import make_consumer, make_producer, produce_all


def send_json(settings: Settings, topic: str, events: Iterable[dict[str, Any]],
              key_field: str = "user_id") -> None:
    produce_all(make_producer(settings), topic,
                [(str(e[key_field]).encode(), orjson.dumps(e)) for e in events])


def send_raw(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    produce_all(make_producer(settings), topic, records)


def _records(settings: Settings, topic: str, seconds: float) -> Iterator[dict[str, Any]]:
    """Decoded records of ``topic`` from its start, for at most ``seconds``."""
    consumer: Consumer = make_consumer(settings, f"test-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                yield orjson.loads(msg.value())
    finally:
        consumer.close()


def collect(settings: Settings, topic: str, keep: Callable[[dict[str, Any]], bool],
            until: Callable[[list[dict[str, Any]]], bool], timeout: float = 60.0
            ) -> list[dict[str, Any]]:
    """Read ``topic`` from the start, keeping decoded records that ``keep`` accepts, until
    ``until(kept)`` is true; fails the test with what was seen when the time runs out."""
    kept: list[dict[str, Any]] = []
    for record in _records(settings, topic, timeout):
        if keep(record):
            kept.append(record)
            if until(kept):
                return kept
    raise AssertionError(f"timed out on {topic}; kept {len(kept)}: {kept[-5:]}")


def collect_for(settings: Settings, topic: str, keep: Callable[[dict[str, Any]], bool],
                seconds: float) -> list[dict[str, Any]]:
    """Every record of ``topic`` that ``keep`` accepts, reading from the start for
    ``seconds`` (for asserting that something did NOT happen, or how often it did)."""
    return [record for record in _records(settings, topic, seconds) if keep(record)]


CATALOG_ROWS = 'shopstream_table_rows{table="catalog"}'
DUPLICATES = "shopstream_duplicates_total"


def metrics_text(port: int) -> str:
    """The worker's GET /metrics (Prometheus text)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric_value(port: int, sample: str) -> float:
    """One sample of the worker's metrics, e.g. 'shopstream_duplicates_total' or
    'shopstream_table_rows{table="catalog"}'; 0 while it is absent."""
    for line in metrics_text(port).splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def unique_users(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"user-{tag}-{i}" for i in range(n)]


def http_get(port: int, path: str) -> tuple[int, Any]:
    """(status, decoded JSON body) of GET http://127.0.0.1:port/path."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null")


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on time-out."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
