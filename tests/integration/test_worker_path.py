"""The first end-to-end path: events in through confluent-kafka, a Faust agent counting per
user in a RocksDB table, summaries out; then the table rebuilt from its changelog."""

from __future__ import annotations

import orjson

from shopstream import topics as t
from tests.integration.helpers import collect, send_json, send_raw, unique_users


def _events(users: list[str], per_user: int, start: int = 0) -> list[dict]:
    return [
        {"user_id": u, "item_id": str(100 + i), "event_id": f"{u}-e{start + i}"}
        for i in range(per_user) for u in users
    ]


def _latest_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["user_id"]] = max(counts.get(r["user_id"], 0), r["events_seen"])
    return counts


def test_worker_counts_events_per_user_and_dead_letters_bad_input(kafka, worker_factory):
    users = unique_users(3)
    worker = worker_factory().start()
    send_json(kafka, t.VIEWS, _events(users[:2], 4))
    send_json(kafka, t.CLICKS, _events(users[2:], 4))
    bad_key = users[0].encode()
    send_raw(kafka, t.VIEWS, [(bad_key, b"{not json"), (bad_key, orjson.dumps({"item_id": "1"}))])

    outputs = collect(kafka, t.RECS, keep=lambda r: r.get("user_id") in users,
                      until=lambda rs: len(rs) >= 12)
    assert _latest_counts(outputs) == {u: 4 for u in users}

    dead = collect(kafka, t.DEADLETTER,
                   keep=lambda r: r.get("source_topic") == t.VIEWS and "{not json" in r["raw"]
                   or r.get("raw") == '{"item_id":"1"}',
                   until=lambda rs: len(rs) >= 2)
    assert {d["reason"] for d in dead} == {"not_json", "bad_user_id"}
    assert all(isinstance(d["source_offset"], int) for d in dead)
    assert worker.proc is not None and worker.proc.poll() is None  # kept going


def test_table_state_recovers_from_changelog_after_local_store_is_wiped(kafka, worker_factory):
    users = unique_users(2)
    worker = worker_factory().start()
    send_json(kafka, t.VIEWS, _events(users, 3))
    collect(kafka, t.RECS, keep=lambda r: r.get("user_id") in users,
            until=lambda rs: _latest_counts(rs) == {u: 3 for u in users})

    worker.stop()
    worker.wipe_tables()
    assert not worker.data_dir.exists()
    worker.start()

    send_json(kafka, t.VIEWS, _events(users, 1, start=100))
    outputs = collect(kafka, t.RECS, keep=lambda r: r.get("user_id") in users,
                      until=lambda rs: len(rs) >= 8)
    # 3 counted before the wipe + 1 after: the count came back from the changelog
    assert _latest_counts(outputs) == {u: 4 for u in users}
    assert worker.data_dir.exists()  # and the RocksDB store was rebuilt locally
