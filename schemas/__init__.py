"""The event contracts: every event type on every topic, strict and versioned.

Wire format: JSON (UTF-8) written with orjson. Timestamps (``ts`` and every ``*_ts``
field) are integer epoch milliseconds, UTC; ``schemas.times`` converts them to and from
timezone-aware datetimes. Each event has ``schema_version`` (currently 1; absent means 1).

    event = decode("events.views", raw_bytes, Limits.from_settings(settings))
    raw = encode(event)

``decode`` raises InvalidEvent with a stable ``reason`` (see ``schemas.errors.Reason``).
"""

from schemas.base import SCHEMA_VERSION, Event
from schemas.codec import Limits, decode, encode
from schemas.errors import InvalidEvent, Reason
from schemas.inputs import (
    ADD_TO_CART,
    CLICK,
    EVENT_CODES,
    PURCHASE,
    VIEW,
    CatalogItem,
    ClickEvent,
    UserErasure,
    ViewEvent,
)
from schemas.outputs import AdTargeting, DeadLetter, Recommendation, RecommendedItem, output_id
from schemas.registry import TOPIC_MODELS
from schemas.times import from_datetime, now_ms, to_datetime

__all__ = [
    "ADD_TO_CART", "CLICK", "EVENT_CODES", "PURCHASE", "SCHEMA_VERSION", "TOPIC_MODELS", "VIEW",
    "AdTargeting", "CatalogItem", "ClickEvent", "DeadLetter", "Event", "InvalidEvent", "Limits",
    "Reason", "Recommendation", "RecommendedItem", "UserErasure", "ViewEvent", "decode",
    "encode", "from_datetime", "now_ms", "output_id", "to_datetime",
]
