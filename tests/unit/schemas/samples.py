"""One valid payload (a plain dict, as on the wire) per topic, and a way to vary it."""

from __future__ import annotations

from typing import Any

import orjson

from schemas import output_id

NOW = 1_764_000_000_000  # 2025-11-24, the receiver's clock in these tests
TS = NOW - 60_000


def payload(topic: str, **changes: Any) -> dict[str, Any]:
    """A valid event for ``topic`` as a dict; ``changes`` override fields (``...`` drops one)."""
    base = dict(_VALID[topic])
    for key, value in changes.items():
        if value is ...:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def raw(topic: str, **changes: Any) -> bytes:
    return orjson.dumps(payload(topic, **changes))


_VALID: dict[str, dict[str, Any]] = {
    "events.views": {
        "schema_version": 1, "event_id": "ev-1", "user_id": "u-17", "item_id": "1234",
        "ts": TS, "session_id": "s-9", "dwell_ms": 4200, "source": "search",
    },
    "events.clicks": {
        "schema_version": 1, "event_id": "ev-2", "user_id": "u-17", "item_id": "1234",
        "ts": TS, "action": "add_to_cart", "price": 19.5, "campaign_id": "summer",
        "session_id": None, "dwell_ms": None, "source": "ad",
    },
    "catalog.items": {
        "schema_version": 1, "item_id": "1234", "title": "Rose hand cream 50 ml",
        "category": "Beauty/Hands", "brand": "Acme", "price": 7.25, "in_stock": True,
        "updated_ts": TS,
    },
    "users.erase": {"schema_version": 1, "user_id": "u-17", "ts": TS},
    "recs.users": {
        "schema_version": 1, "output_id": output_id("rec", "u-17", "ev-1", "v1", "fp32"),
        "user_id": "u-17",
        "items": [{"item_id": "77", "score": 3.5, "reason": "seq"},
                  {"item_id": "78", "score": 2.0, "reason": "similar:1234"}],
        "model_version": "v20261128-141500-ab12cd", "variant": "fp32",
        "trigger_event_id": "ev-1", "event_ts": TS, "emitted_ts": TS + 4,
    },
    "ads.targeting": {
        "schema_version": 1, "output_id": output_id("ad", "u-17", "c-1", "ev-1", "v1"),
        "user_id": "u-17", "campaign_id": "c-1", "score": 0.8, "segment": "skincare",
        "model_version": "v1", "trigger_event_id": "ev-1", "event_ts": TS,
        "emitted_ts": TS + 4,
    },
    "events.deadletter": {
        "schema_version": 1, "output_id": output_id("dead", "events.views", 2, 17),
        "source_topic": "events.views", "source_partition": 2, "source_offset": 17,
        "error_class": "InvalidEvent", "reason": "not_json", "detail": "the record: EOF",
        "raw": "{\"user_id\":", "raw_b64": None, "raw_size": 11, "raw_truncated": False,
        "dead_ts": TS,
    },
}

TOPICS = tuple(_VALID)
