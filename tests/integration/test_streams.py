"""Per-user windows through `shopstream worker` on real Kafka: windows read over HTTP,
dead letters, dedupe, crash recovery from changelogs, erasure."""

from __future__ import annotations

import re
import time

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from shopstream import topics as t
from tests.integration.factories import BASE_TS, click, view
from tests.integration.helpers import (
    DUPLICATES,
    collect,
    http_get,
    metric_value,
    metrics_text,
    send_json,
    send_raw,
    unique_users,
    wait_for,
)


def _script(users: list[str]) -> tuple[list[dict], list[dict]]:
    """Views and clicks for each user; user i has i+2 views and one click action."""
    views, clicks = [], []
    for i, user in enumerate(users):
        views += [view(user, f"item-{n}", n) for n in range(i + 2)]
        clicks.append(click(user, "item-0", 50, action=["click", "add_to_cart", "purchase"][i % 3]))
    return views, clicks


def _window(port: int, user: str) -> list[tuple[str, str]] | None:
    status, body = http_get(port, f"/users/{user}")
    if status != 200:
        return None
    return [(w["item_id"], w["event"]) for w in body["window"]["window"]]


def _expected(user_index: int) -> list[tuple[str, str]]:
    action = ["click", "add_to_cart", "purchase"][user_index % 3]
    return [(f"item-{n}", "view") for n in range(user_index + 2)] + [("item-0", action)]


@pytest.mark.parametrize("intake", ["librdkafka", "faust"])
def test_scripted_stream_gives_exact_windows_over_http(kafka, worker_factory, intake):
    users = unique_users(3)
    worker = worker_factory(intake=intake).start()
    views, clicks = _script(users)
    send_json(kafka, t.VIEWS, views)
    send_json(kafka, t.CLICKS, clicks)
    for i, user in enumerate(users):
        assert wait_for(lambda u=user, i=i: _window(worker.web_port, u) == _expected(i),
                        what=f"window of user {i}")
    status, body = http_get(worker.web_port, f"/users/{users[2]}")
    features = body["window"]["features"]
    assert (features["views"], features["purchases"]) == (4, 1)
    assert features["purchase_conversion"] == 0.25
    assert body["window"]["bought"] == ["item-0"]
    assert http_get(worker.web_port, "/users/nobody-at-all")[0] == 404


def test_bad_records_are_dead_lettered_and_good_ones_around_them_processed(kafka,
                                                                          worker_factory):
    (user,) = unique_users(1)
    worker = worker_factory().start()
    key = user.encode()
    records = [
        (key, orjson.dumps(view(user, "a", 1))),
        (key, b"{not json"),
        (key, orjson.dumps({**view(user, "b", 2), "ts": 5})),  # 1970: too old
        (key, b"\xff\xfe"),
        (b"someone-else", orjson.dumps(view(user, "c", 3))),  # key is not the user id
        (key, orjson.dumps(view(user, "d", 4))),
    ]
    send_raw(kafka, t.VIEWS, records)
    assert wait_for(lambda: _window(worker.web_port, user) == [("a", "view"), ("d", "view")])
    dead = collect(kafka, t.DEADLETTER,
                   keep=lambda r: r["source_topic"] == t.VIEWS and user in (r["raw"] or "")
                   or r["raw"] in ("{not json", "\ufffd\ufffd"),
                   until=lambda rs: {"not_json", "ts_too_old", "not_utf8", "key_mismatch"}
                   <= {r["reason"] for r in rs})
    assert all(r["source_partition"] >= 0 and r["source_offset"] >= 0 for r in dead)
    metrics = metrics_text(worker.web_port)
    assert 'shopstream_dead_letters_total{reason="not_json"}' in metrics
    assert worker.proc is not None and worker.proc.poll() is None


def _settled(read, seconds: float = 1.5) -> float:
    """A counter's value once it has stopped moving (the worker also replays earlier tests'
    records from the shared topics, some of them repeats)."""
    last = read()
    while True:
        time.sleep(seconds)
        now = read()
        if now == last:
            return now
        last = now


def test_redelivered_duplicates_change_no_count(kafka, worker_factory):
    (user,) = unique_users(1)
    worker = worker_factory().start()
    events = [view(user, f"i{n}", n) for n in range(3)]
    send_json(kafka, t.VIEWS, events)
    wait_for(lambda: _window(worker.web_port, user) is not None
             and len(_window(worker.web_port, user) or []) == 3, what="first three events")
    before = _settled(lambda: metric_value(worker.web_port, DUPLICATES))
    send_json(kafka, t.VIEWS, events)  # the same event ids again, as after a producer retry
    send_json(kafka, t.VIEWS, [view(user, "last", 9)])
    assert wait_for(lambda: _window(worker.web_port, user) == [("i0", "view"), ("i1", "view"),
                                                              ("i2", "view"), ("last", "view")])
    status, body = http_get(worker.web_port, f"/users/{user}")
    assert body["window"]["events_total"] == 4
    # concurrent actors may count a repeat after the last event is applied: wait for it
    assert wait_for(lambda: metric_value(worker.web_port, DUPLICATES) == before + 3,
                    what="three duplicates counted")


def test_kill_9_and_wiped_tables_recover_the_same_windows(kafka, worker_factory):
    users = unique_users(4)
    views = [view(u, f"item-{n}", n) for n in range(12) for u in users]
    first, second = views[:20], views[20:]

    worker = worker_factory().start()
    send_json(kafka, t.VIEWS, first)
    wait_for(lambda: _window(worker.web_port, users[3]) is not None
             and len(_window(worker.web_port, users[3]) or []) >= 3, what="first events")
    send_json(kafka, t.VIEWS, second[:10])
    worker.kill()  # kill -9 mid-stream
    worker.wipe_tables()
    send_json(kafka, t.VIEWS, second[10:])
    worker.start()
    expected = [(f"item-{n}", "view") for n in range(12)]
    for user in users:
        assert wait_for(lambda u=user: _window(worker.web_port, u) == expected,
                        what="recovered window")
        status, body = http_get(worker.web_port, f"/users/{user}")
        assert body["window"]["events_total"] == 12  # nothing counted twice


def test_erased_user_is_gone_and_stays_gone_after_restart(kafka, worker_factory):
    keep, erase = unique_users(2)
    worker = worker_factory().start()
    send_json(kafka, t.VIEWS, [view(keep, "x", 1), view(erase, "y", 1)])
    wait_for(lambda: _window(worker.web_port, erase) == [("y", "view")])
    send_json(kafka, t.ERASE, [{"user_id": erase, "ts": BASE_TS + 5000}])
    wait_for(lambda: http_get(worker.web_port, f"/users/{erase}")[0] == 404, what="erasure")
    worker.stop()
    worker.wipe_tables()  # rebuilt from the changelog, where the tombstone is
    worker.start()
    wait_for(lambda: _window(worker.web_port, keep) == [("x", "view")], what="kept user")
    assert http_get(worker.web_port, f"/users/{erase}")[0] == 404


def test_a_second_worker_joining_mid_stream_loses_and_repeats_nothing(kafka, worker_factory):
    users = unique_users(24)  # spread over the partitions, so both workers get some
    first = worker_factory().start()
    second = worker_factory(app_id=first.env["SHOPSTREAM_APP_ID"])
    views = [view(u, f"item-{n}", n) for n in range(8) for u in users]
    send_json(kafka, t.VIEWS, views[:len(views) // 2])
    wait_for(lambda: _window(first.web_port, users[-1]) is not None, what="first half")
    second.start()  # the group rebalances while the rest arrives
    send_json(kafka, t.VIEWS, views[len(views) // 2:])
    expected = [(f"item-{n}", "view") for n in range(8)]
    for user in users:  # either worker answers for every user (it asks the owner)
        assert wait_for(lambda u=user: _window(second.web_port, u) == expected,
                        what="window after the rebalance")
        status, body = http_get(first.web_port, f"/users/{user}")
        assert body["window"]["events_total"] == 8  # nothing counted twice
    # the rebalance did split the partitions: each worker handled some of the views
    taken = 'shopstream_events_in_total{topic="events.views"}'
    assert wait_for(lambda: all(metric_value(w.web_port, taken) for w in (first, second)),
                    what="views taken by both workers")


def test_a_worker_stopping_commits_every_view_it_handled(kafka, worker_factory):
    # the intake reads views and clicks with librdkafka; its offsets go out in Faust's commits
    users = unique_users(12)  # spread over the partitions
    worker = worker_factory().start()
    send_json(kafka, t.VIEWS, [view(u, f"item-{n}", n) for n in range(3) for u in users])
    for user in users:
        wait_for(lambda u=user: len(_window(worker.web_port, u) or ()) == 3, what="windows")
    # the metrics report each views partition, every record of it handled
    wait_for(lambda: _input_lag(worker.web_port, t.VIEWS)
             == {p: 0.0 for p in range(kafka.topic_partitions)}, what="views lag of 0")
    worker.stop()  # SIGTERM: a graceful stop
    assert f"reading {2 * kafka.topic_partitions} partitions of {t.CLICKS}, {t.VIEWS}" in (
        worker.log_path.read_text())
    group = Consumer({"bootstrap.servers": kafka.kafka_bootstrap,
                      "group.id": worker.env["SHOPSTREAM_APP_ID"]})
    try:
        parts = [TopicPartition(t.VIEWS, p) for p in range(kafka.topic_partitions)]
        committed = {p.partition: p.offset for p in group.committed(parts, timeout=20)}
        ends = {p.partition: group.get_watermark_offsets(p, timeout=20)[1] for p in parts}
    finally:
        group.close()
    assert sum(ends.values()) >= 3 * len(users)  # other tests' views are there too
    assert committed == ends  # every view the group has read


def _input_lag(port: int, topic: str) -> dict[int, float]:
    """``shopstream_input_lag`` of each of ``topic``'s partitions, from the worker's metrics."""
    found = re.findall(rf'^shopstream_input_lag\{{partition="(\d+)",topic="{re.escape(topic)}"\}} '
                       r"(\S+)$", metrics_text(port), re.M)
    return {int(partition): float(value) for partition, value in found}
