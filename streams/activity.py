"""Pure functions behind the first stream path: decode an event, summarise a user's activity.

Kept free of Kafka and Faust so unit tests call them directly.
"""

from __future__ import annotations

from typing import Any

import orjson


class RejectedEvent(ValueError):
    """An input record that cannot be used; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_event(raw: bytes | None) -> dict[str, Any]:
    """Decode a view or click record; raise RejectedEvent when it has no usable user id."""
    if raw is None:
        raise RejectedEvent("empty", "record has no value")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RejectedEvent("not_json", str(exc)) from None
    if not isinstance(event, dict):
        raise RejectedEvent("not_object", f"expected a JSON object, got {type(event).__name__}")
    user_id = event.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise RejectedEvent("bad_user_id", "user_id must be a non-empty string")
    return event


def activity_summary(user_id: str, count: int, event: dict[str, Any], emitted_ms: int) -> bytes:
    """The output record for a user after one more event."""
    return orjson.dumps({
        "user_id": user_id,
        "events_seen": count,
        "last_item_id": event.get("item_id"),
        "trigger_event_id": event.get("event_id"),
        "emitted_ts": emitted_ms,
    })


def dead_letter(topic: str, partition: int, offset: int, error: RejectedEvent,
                raw: bytes | None, limit: int = 4096) -> bytes:
    """The dead-letter record for a rejected input, with the raw bytes cut to ``limit``."""
    return orjson.dumps({
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "error_class": type(error).__name__,
        "reason": error.reason,
        "detail": error.detail,
        "raw": (raw or b"")[:limit].decode("utf-8", errors="replace"),
    })
