"""Why an input record was refused: one short, stable code per kind of problem."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NO_VALUE = "no_value"  # the record has no value at all
    UNKNOWN_TOPIC = "unknown_topic"
    TOO_LARGE = "too_large"  # over the byte limit
    NOT_UTF8 = "not_utf8"
    TOO_DEEP = "too_deep"  # nesting over the depth limit
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"  # valid JSON, but not an object
    UNKNOWN_VERSION = "unknown_version"  # schema_version this code does not know
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"  # includes NaN/Infinity and "1" for an integer
    EMPTY_ID = "empty_id"
    UNKNOWN_ACTION = "unknown_action"
    TS_TOO_OLD = "ts_too_old"  # before 2000-01-01
    TS_IN_FUTURE = "ts_in_future"  # more than a day after the receiver's clock
    OUT_OF_RANGE = "out_of_range"  # a negative dwell_ms or price, for example
    TOO_LONG = "too_long"  # a string or list over its maximum length
    KEY_MISMATCH = "key_mismatch"  # a per-user record whose Kafka key is not its user_id


class InvalidEvent(ValueError):
    """An input record that cannot be used. ``reason`` is a Reason; ``detail`` says where.

    ``detail`` names fields and limits but never repeats the payload's values, so it is
    safe to log.
    """

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
