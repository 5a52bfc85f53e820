"""`shopstream replay` on real Kafka: counts and keys per format, a second replay dropped by
the worker as repeats, bad lines reported by number while the rest is sent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from schemas import now_ms
from shopstream import topics as t
from shopstream.config import PROJECT_ROOT, Settings
from shopstream.kafkaio import make_consumer
from streams.replay import ReplayOptions, run_replay
from streams.replay_formats import seq_action
from tests.integration.helpers import (
    DUPLICATES,
    http_get,
    metric_value,
    wait_for,
)


def _ids(n: int) -> list[str]:
    """n integer ids no other test (or run on this broker) uses."""
    base = (uuid.uuid4().int % 10**9) * 1000 + 10**12
    return [str(base + i) for i in range(n)]


def _consume(settings: Settings, expected: Counter, seconds_after: float = 2.0,
             timeout: float = 60.0) -> tuple[Counter, dict[tuple[str, str], set[int]]]:
    """(topic, key) counts of the records whose key is in ``expected``, read from the start of
    the input topics until ``expected`` is reached and ``seconds_after`` more have passed;
    also the partitions each (topic, key) landed on."""
    keys = {key for _, key in expected}
    consumer = make_consumer(settings, f"test-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([t.VIEWS, t.CLICKS, t.CATALOG])
    seen: Counter = Counter()
    partitions: dict[tuple[str, str], set[int]] = defaultdict(set)
    deadline, settle = time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.key() is None:
                continue
            key = msg.key().decode()
            if key not in keys:
                continue
            record = orjson.loads(msg.value())
            owner = record.get("user_id", record.get("item_id"))
            assert owner == key, "the record key is not its user (or item) id"
            seen[(msg.topic(), key)] += 1
            partitions[(msg.topic(), key)].add(msg.partition())
            if settle is None and all(seen[k] >= n for k, n in expected.items()):
                settle = time.monotonic() + seconds_after
    finally:
        consumer.close()
    return seen, partitions


def _seq_case(tmp_path: Path) -> tuple[Path, Counter]:
    users, items = _ids(6), _ids(20)
    lines = [[users[u], *items[u: u + 3 + u]] for u in range(len(users))]
    expected: Counter = Counter()
    for user, *seq in lines:
        for pos in range(len(seq)):
            expected[(t.CLICKS if seq_action(user, pos)[0] else t.VIEWS, user)] += 1
    path = tmp_path / "log.txt"
    path.write_text("".join(" ".join(line) + "\n" for line in lines))
    return path, expected


def _jsonl_case(tmp_path: Path) -> tuple[Path, Counter]:
    users, ts = _ids(4), now_ms() - 3_600_000
    lines, expected = [], Counter()
    for i in range(24):
        user = users[i % 4]
        event = {"event_id": f"ev-{user}-{i}", "user_id": user, "item_id": f"sku-{i}",
                 "ts": ts + i}
        if i % 3 == 0:
            event["action"] = "add_to_cart"
        lines.append(orjson.dumps(event).decode())
        expected[(t.CLICKS if i % 3 == 0 else t.VIEWS, user)] += 1
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


def _retailrocket_case(tmp_path: Path) -> tuple[Path, Counter]:
    users = _ids(5)
    kinds = ["view", "view", "addtocart", "view", "transaction"]
    rows, expected = ["timestamp,visitorid,event,itemid,transactionid"], Counter()
    for i in range(30):  # newest first: the replay sorts them
        user, kind = users[i % 5], kinds[(i // 5) % 5]
        rows.append(f"{1433221332117 + 30 - i},{user},{kind},{900 + i},"
                    f"{'77' if kind == 'transaction' else ''}")
        expected[(t.VIEWS if kind == "view" else t.CLICKS, user)] += 1
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    return path, expected


@pytest.mark.parametrize(("fmt", "case"), [("seq", _seq_case), ("jsonl", _jsonl_case),
                                           ("retailrocket", _retailrocket_case)])
def test_replay_sends_every_event_keyed_by_user(kafka, tmp_path, fmt, case):
    path, expected = case(tmp_path)
    summary = run_replay(kafka, ReplayOptions(path, fmt, progress=False))
    assert summary.ok and summary.sent == sum(expected.values()) and summary.skipped_lines == 0
    seen, partitions = _consume(kafka, expected)
    assert seen == expected
    for user in {user for _, user in expected}:  # all of a user's records on one partition
        assert len(set().union(*(partitions[(topic, user)] for topic in (t.VIEWS, t.CLICKS)
                                 if (topic, user) in partitions))) == 1


def test_catalog_records_are_published_once_per_item_keyed_by_item(kafka, tmp_path):
    users, items = _ids(3), _ids(5)
    path = tmp_path / "log.txt"
    path.write_text(f"{users[0]} {items[0]} {items[1]} {items[2]}\n"
                    f"{users[1]} {items[2]} {items[3]}\n{users[2]} {items[4]} {items[0]}\n")
    summary = run_replay(kafka, ReplayOptions(path, "seq", catalog=True, progress=False))
    assert summary.ok and summary.catalog_sent == 5 and summary.sent == 7
    seen, _ = _consume(kafka, Counter({(t.CATALOG, item): 1 for item in items}))
    assert seen == Counter({(t.CATALOG, item): 1 for item in items})


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env["SHOPSTREAM_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    return subprocess.run([sys.executable, "-m", "shopstream.cli", "replay", *args],
                          capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=120)


def _events_total(port: int, user: str) -> int | None:
    status, body = http_get(port, f"/users/{user}")
    return body["window"]["events_total"] if status == 200 else None


def test_second_replay_of_the_same_file_is_dropped_by_the_worker(kafka, worker_factory,
                                                                  tmp_path):
    path, expected = _seq_case(tmp_path)
    per_user = Counter()
    for (_, user), n in expected.items():
        per_user[user] += n
    worker = worker_factory().start()
    assert _cli(kafka, str(path)).returncode == 0
    for user, n in per_user.items():
        wait_for(lambda u=user, n=n: _events_total(worker.web_port, u) == n,
                 what=f"user {user} to have {n} events")

    again = _cli(kafka, str(path))
    assert again.returncode == 0 and f"{sum(per_user.values())} events sent" in again.stdout
    wait_for(lambda: metric_value(worker.web_port, DUPLICATES) >= sum(per_user.values()),
             what="the repeats to be counted as duplicates")
    assert {user: _events_total(worker.web_port, user) for user in per_user} == dict(per_user)


def test_bad_lines_are_reported_by_number_and_the_rest_is_sent(kafka, tmp_path):
    users, items = _ids(4), _ids(3)
    path = tmp_path / "log.txt"
    path.write_text(f"{users[0]} {items[0]} {items[1]}\nnot a line\n{users[1]} {items[2]}\n"
                    f"{users[2]}\n{users[3]} {items[0]}\n")
    result = _cli(kafka, str(path))
    assert result.returncode == 0, result.stderr
    assert "line 2 is unreadable" in result.stderr and "line 4 is unreadable" in result.stderr
    assert "not a line" not in result.stderr  # the content stays out of the log
    assert "4 events sent, 0 failed, 2 lines skipped" in result.stdout
    assert "unreadable lines: 2, 4" in result.stdout
    expected: Counter = Counter()
    for user, n in ((users[0], 2), (users[1], 1), (users[3], 1)):
        for pos in range(n):
            expected[(t.CLICKS if seq_action(user, pos)[0] else t.VIEWS, user)] += 1
    seen, _ = _consume(kafka, expected)
    assert seen == expected
