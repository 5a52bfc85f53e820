"""Bytes on the wire to event models and back.

``decode`` checks the cheap things first (size, UTF-8, nesting depth) on the raw bytes,
then parses and validates in one pass with pydantic's JSON parser, then checks timestamps
against the clock. Every refusal is an InvalidEvent with its own Reason.
``encode`` writes JSON with orjson.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.base import Event
from schemas.errors import InvalidEvent, Reason
from schemas.registry import TOPIC_MODELS, timestamp_fields
from schemas.times import MAX_FUTURE_MS, now_ms
from shopstream.config import Settings

# Strings (skipped whole, so brackets inside them do not count) or a bracket.
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPEN = frozenset(b"[{")

# When several fields are wrong, the reason reported is the first of these that applies.
_PRIORITY = (
    Reason.NOT_JSON, Reason.NOT_OBJECT, Reason.UNKNOWN_VERSION, Reason.MISSING_FIELD,
    Reason.UNKNOWN_FIELD, Reason.WRONG_TYPE, Reason.EMPTY_ID, Reason.UNKNOWN_ACTION,
    Reason.TS_TOO_OLD, Reason.OUT_OF_RANGE, Reason.TOO_LONG,
)
_TS_FIELDS = {model: frozenset(timestamp_fields(model)) for model in TOPIC_MODELS.values()}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds checked on the raw bytes before parsing."""

    max_bytes: int = 65_536
    max_depth: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(max_bytes=settings.max_event_bytes, max_depth=settings.max_json_depth)


def decode(topic: str, raw: bytes | None, limits: Limits = Limits(),
           now: int | None = None) -> Event:
    """The event in ``raw`` as the model of ``topic``; raises InvalidEvent.

    ``now`` is the receiver's clock in epoch ms (default: the real clock), against which
    timestamps more than a day ahead are refused.
    """
    model = TOPIC_MODELS.get(topic)
    if model is None:
        raise InvalidEvent(Reason.UNKNOWN_TOPIC, f"no event type for topic {topic!r}")
    if raw is None:
        raise InvalidEvent(Reason.NO_VALUE, "the record has no value")
    if len(raw) > limits.max_bytes:
        raise InvalidEvent(Reason.TOO_LARGE, f"{len(raw)} bytes, limit {limits.max_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent(Reason.NOT_UTF8, f"invalid UTF-8 at byte {exc.start}") from None
    if too_deep(raw, limits.max_depth):
        raise InvalidEvent(Reason.TOO_DEEP, f"nesting deeper than {limits.max_depth}")
    try:
        event = model.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    _check_clock(event, _TS_FIELDS[model], now_ms() if now is None else now)
    return event


def encode(event: Event) -> bytes:
    """The event as compact JSON bytes (the wire format)."""
    return orjson.dumps(event.model_dump())


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``raw`` nest deeper than ``limit``, without parsing.

    Brackets inside strings do not count. Does not validate the JSON.
    """
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return False  # too few brackets to go that deep: the common case, at C speed
    depth = 0
    for match in _STRUCTURE.finditer(raw):
        token = match.group()
        if len(token) != 1:
            continue  # a whole string
        if token[0] in _OPEN:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _check_clock(event: Event, fields: frozenset[str], now: int) -> None:
    latest = now + MAX_FUTURE_MS
    for name in fields:
        if getattr(event, name) > latest:
            raise InvalidEvent(Reason.TS_IN_FUTURE,
                               f"field {name!r} is more than a day after the receiver's clock")


def _invalid(exc: ValidationError) -> InvalidEvent:
    found = [(_reason(err), err) for err in exc.errors(include_url=False, include_input=True)]
    reason, err = min(found, key=lambda pair: _PRIORITY.index(pair[0]))
    where = ".".join(str(part) for part in err["loc"]) or "the record"
    return InvalidEvent(reason, f"{where}: {err['msg']}")


def _reason(err: ErrorDetails) -> Reason:
    kind, loc = err["type"], err["loc"]
    field = loc[-1] if loc else None
    if kind == "json_invalid":
        return Reason.NOT_JSON
    if kind in ("model_type", "model_attributes_type") and not loc:
        return Reason.NOT_OBJECT
    if field == "schema_version" and kind in ("greater_than_equal", "less_than_equal"):
        return Reason.UNKNOWN_VERSION
    if kind == "missing":
        return Reason.MISSING_FIELD
    if kind == "extra_forbidden":
        return Reason.UNKNOWN_FIELD
    if kind == "literal_error" and field == "action":
        return Reason.UNKNOWN_ACTION
    if kind == "string_too_short" and _input(err) == "":
        return Reason.EMPTY_ID
    if kind == "greater_than_equal":
        if isinstance(field, str) and (field == "ts" or field.endswith("_ts")):
            return Reason.TS_TOO_OLD
        return Reason.OUT_OF_RANGE
    if kind in ("string_too_long", "too_long"):
        return Reason.TOO_LONG
    if kind in ("less_than_equal", "string_too_short", "too_short"):
        return Reason.OUT_OF_RANGE
    return Reason.WRONG_TYPE


def _input(err: ErrorDetails) -> Any:
    return err.get("input")
