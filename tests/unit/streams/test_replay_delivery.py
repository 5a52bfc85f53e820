"""Delivery accounting: only acknowledged records count as sent, and the exit code says
whether everything arrived (a stand-in producer plays the broker)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from shopstream.cli import main
from streams.replay import ReplayOptions, run_replay


class StandInProducer:
    """Acknowledges records on poll/flush; refuses every ``fail_every``-th record and never
    acknowledges every ``stuck_every``-th one (flush reports those as still queued)."""

    def __init__(self, fail_every: int = 0, stuck_every: int = 0,
                 queue_limit: int = 1000) -> None:
        self.fail_every, self.stuck_every, self.queue_limit = fail_every, stuck_every, queue_limit
        self.pending: list[tuple[Any, Any]] = []
        self.stuck = 0
        self.produced: list[tuple[str, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        if len(self.pending) >= self.queue_limit:
            raise BufferError("queue full")
        self.produced.append((topic, key))
        n = len(self.produced)
        if self.stuck_every and n % self.stuck_every == 0:
            self.stuck += 1
            return
        err = "broker said no" if self.fail_every and n % self.fail_every == 0 else None
        self.pending.append((on_delivery, err))

    def poll(self, timeout: float = 0) -> int:
        done, self.pending = self.pending, []
        for callback, err in done:
            callback(err, None)
        return len(done)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return self.stuck


@pytest.fixture
def stand_in(monkeypatch):
    def install(producer: StandInProducer) -> StandInProducer:
        monkeypatch.setattr("shopstream.kafkaio.make_producer", lambda *a, **k: producer)
        monkeypatch.setattr("shopstream.localkafka.broker_answers", lambda *a, **k: True)
        monkeypatch.setattr("shopstream.topics.create_topics", lambda *a, **k: {})
        return producer

    return install


def _log(tmp_path, users: int = 10, items: int = 5):
    path = tmp_path / "log.txt"
    path.write_text("".join(f"{u} " + " ".join(str(i) for i in range(1, items + 1)) + "\n"
                            for u in range(1, users + 1)))
    return path


def test_everything_acknowledged_is_sent_and_ok(tmp_path, settings_factory, stand_in):
    producer = stand_in(StandInProducer(queue_limit=7))  # forces BufferError retries
    summary = run_replay(settings_factory(), ReplayOptions(_log(tmp_path), progress=False))
    assert summary.ok and summary.sent == 50 and summary.failed == 0
    assert len(producer.produced) == 50
    assert all(key == topic_key for (_, key), topic_key in zip(
        producer.produced, [str(u).encode() for u in range(1, 11) for _ in range(5)],
        strict=True))


def test_refused_and_stuck_records_count_as_failed(tmp_path, settings_factory, stand_in):
    stand_in(StandInProducer(fail_every=10, stuck_every=7))
    summary = run_replay(settings_factory(), ReplayOptions(_log(tmp_path), progress=False))
    # refused: 10, 20, 30, 40, 50; stuck: 7, 14, ..., 49 (7 of them)
    assert summary.failed == 5 + 7 and summary.sent == 50 - 12 and not summary.ok


def test_catalog_records_go_before_their_items_first_event(tmp_path, settings_factory,
                                                           stand_in):
    producer = stand_in(StandInProducer())
    summary = run_replay(settings_factory(), ReplayOptions(_log(tmp_path, users=2, items=3),
                                                           catalog=True, progress=False))
    assert summary.catalog_sent == 3 and summary.sent == 6
    topics = [topic for topic, _ in producer.produced]
    assert topics[:2] == ["catalog.items", topics[1]] and topics[1] != "catalog.items"
    assert topics.count("catalog.items") == 3


def test_a_replay_told_to_stop_sends_no_more_and_delivers_what_it_produced(
        tmp_path, settings_factory, stand_in):
    stop = threading.Event()

    class StoppedAtTen(StandInProducer):
        def produce(self, *args: Any, **kwargs: Any) -> None:
            super().produce(*args, **kwargs)
            if len(self.produced) == 10:
                stop.set()

    producer = stand_in(StoppedAtTen())
    summary = run_replay(settings_factory(), ReplayOptions(_log(tmp_path), progress=False),
                         stop)
    assert len(producer.produced) == 10
    assert summary.sent == 10 and summary.ok


def test_the_demos_replay_ends_soon_once_halted(tmp_path, settings_factory, stand_in):
    from shopstream.demo import _replay_in_background

    producer = stand_in(StandInProducer())
    settings = settings_factory(export_data=_log(tmp_path, users=50, items=20))
    done, halt = threading.Event(), threading.Event()
    thread = _replay_in_background(settings, 20.0, done, halt)  # 1,000 events: ~50 s
    time.sleep(0.3)
    assert not done.is_set()
    halt.set()
    thread.join(5)
    assert not thread.is_alive() and done.is_set()
    assert 0 < len(producer.produced) < 100  # the 20-odd due by then, catalog records included


def test_cli_exits_1_when_anything_was_not_delivered(tmp_path, stand_in, capsys):
    stand_in(StandInProducer(stuck_every=50))
    assert main(["replay", str(_log(tmp_path))]) == 1
    assert "1 failed" in capsys.readouterr().out


def test_cli_exits_0_when_everything_was_delivered(tmp_path, stand_in, capsys):
    stand_in(StandInProducer())
    assert main(["replay", str(_log(tmp_path))]) == 0
    assert "50 events sent, 0 failed" in capsys.readouterr().out
