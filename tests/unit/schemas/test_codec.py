"""decode/encode: valid events round-trip, every kind of bad input has its own reason."""

from __future__ import annotations

import pytest

from schemas import (
    TOPIC_MODELS,
    ClickEvent,
    InvalidEvent,
    Limits,
    Reason,
    ViewEvent,
    decode,
    encode,
)
from schemas.codec import too_deep
from schemas.times import MIN_TS_MS

from .samples import NOW, TOPICS, payload, raw

DAY = 24 * 3600 * 1000
LIMITS = Limits(max_bytes=2048, max_depth=4)


def reason_of(topic: str, data: bytes | None, limits: Limits = LIMITS) -> Reason:
    with pytest.raises(InvalidEvent) as info:
        decode(topic, data, limits, now=NOW)
    return info.value.reason


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_decodes_its_sample_into_its_model(topic):
    event = decode(topic, raw(topic), LIMITS, now=NOW)
    assert type(event) is TOPIC_MODELS[topic]
    assert event.model_dump() == payload(topic)


@pytest.mark.parametrize("topic", TOPICS)
def test_encode_then_decode_gives_the_same_event(topic):
    event = decode(topic, raw(topic), LIMITS, now=NOW)
    assert decode(topic, encode(event), LIMITS, now=NOW) == event


def test_schema_version_may_be_absent_and_means_one():
    event = decode("events.views", raw("events.views", schema_version=...), LIMITS, now=NOW)
    assert event.schema_version == 1


def test_click_code_follows_its_action():
    click = decode("events.clicks", raw("events.clicks", action="purchase"), LIMITS, now=NOW)
    assert isinstance(click, ClickEvent) and click.code == 4
    view = decode("events.views", raw("events.views"), LIMITS, now=NOW)
    assert isinstance(view, ViewEvent) and view.code == 1


V, C = "events.views", "events.clicks"

BAD_INPUTS = [
    # (case, topic, raw bytes, expected reason)
    ("no value", V, None, Reason.NO_VALUE),
    ("unknown topic", "events.nope", raw(V), Reason.UNKNOWN_TOPIC),
    ("over the byte limit", V, raw(V, source="x" * 3000), Reason.TOO_LARGE),
    ("latin-1 bytes", V, raw(V).replace(b"search", "séarch".encode("latin-1")),
     Reason.NOT_UTF8),
    ("nested too deep", V, raw(V)[:-1] + b',"x":[[[[[1]]]]]}', Reason.TOO_DEEP),
    ("truncated json", V, raw(V)[:-5], Reason.NOT_JSON),
    ("not json at all", V, b"user=17&item=3", Reason.NOT_JSON),
    ("NaN literal", C, raw(C).replace(b"19.5", b"NaN"), Reason.WRONG_TYPE),
    ("a json array", V, b"[1, 2]", Reason.NOT_OBJECT),
    ("a json string", V, b'"view"', Reason.NOT_OBJECT),
    ("schema version 2", V, raw(V, schema_version=2), Reason.UNKNOWN_VERSION),
    ("schema version true", V, raw(V, schema_version=True), Reason.WRONG_TYPE),
    ("missing user_id", V, raw(V, user_id=...), Reason.MISSING_FIELD),
    ("missing action", C, raw(C, action=...), Reason.MISSING_FIELD),
    ("unknown field", V, raw(V, colour="red"), Reason.UNKNOWN_FIELD),
    ("ts as a string", V, raw(V, ts=str(NOW)), Reason.WRONG_TYPE),
    ("ts as a float", V, raw(V, ts=float(NOW)), Reason.WRONG_TYPE),
    ("item id as an int", V, raw(V, item_id=1234), Reason.WRONG_TYPE),
    ("price as a string", C, raw(C, price="19.50"), Reason.WRONG_TYPE),
    ("dwell as a bool", V, raw(V, dwell_ms=True), Reason.WRONG_TYPE),
    ("empty user id", V, raw(V, user_id=""), Reason.EMPTY_ID),
    ("empty item id", C, raw(C, item_id=""), Reason.EMPTY_ID),
    ("empty event id", V, raw(V, event_id=""), Reason.EMPTY_ID),
    ("unknown action", C, raw(C, action="wishlist"), Reason.UNKNOWN_ACTION),
    ("seconds instead of ms", V, raw(V, ts=NOW // 1000), Reason.TS_TOO_OLD),
    ("1999-12-31", V, raw(V, ts=MIN_TS_MS - 1), Reason.TS_TOO_OLD),
    ("two days ahead", V, raw(V, ts=NOW + 2 * DAY), Reason.TS_IN_FUTURE),
    ("negative dwell", V, raw(V, dwell_ms=-1), Reason.OUT_OF_RANGE),
    ("negative price", C, raw(C, price=-0.01), Reason.OUT_OF_RANGE),
    ("id over 256 chars", V, raw(V, item_id="i" * 257), Reason.TOO_LONG),
]


@pytest.mark.parametrize(("topic", "data", "expected"),
                         [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_with_its_own_reason(topic, data, expected):
    assert reason_of(topic, data) == expected


def test_every_reason_is_exercised_by_the_table():
    # key_mismatch compares the record's Kafka key with the payload: the worker checks it
    # (tests/integration/test_streams.py), decode() never sees the key.
    assert {case[3] for case in BAD_INPUTS} == set(Reason) - {Reason.KEY_MISMATCH}


def test_ts_just_under_a_day_ahead_is_accepted():
    event = decode(V, raw(V, ts=NOW + DAY), LIMITS, now=NOW)
    assert event.ts == NOW + DAY


def test_future_check_covers_every_timestamp_field():
    assert reason_of("catalog.items", raw("catalog.items", updated_ts=NOW + 2 * DAY)) \
        == Reason.TS_IN_FUTURE
    assert reason_of("recs.users", raw("recs.users", emitted_ts=NOW + 2 * DAY)) \
        == Reason.TS_IN_FUTURE


def test_size_is_checked_before_utf8_and_parsing():
    junk = b"\xff" * 3000
    assert reason_of(V, junk) == Reason.TOO_LARGE


def test_depth_is_checked_before_parsing():
    # Deep and broken: the depth check answers first, without parsing.
    assert reason_of(V, b"[" * 50) == Reason.TOO_DEEP


def test_detail_names_the_field_and_never_repeats_the_value():
    secret = "user-with-a-secret-name"
    with pytest.raises(InvalidEvent) as info:
        decode(V, raw(V, user_id=secret, ts="soon"), LIMITS, now=NOW)
    assert "ts" in info.value.detail
    assert secret not in info.value.detail and "soon" not in info.value.detail


def test_worst_of_several_problems_is_reported():
    # A missing field outranks a wrong type, whatever order pydantic lists them in.
    data = raw(V, ts="x", user_id=...)
    assert reason_of(V, data) == Reason.MISSING_FIELD


@pytest.mark.parametrize(("text", "limit", "expected"), [
    (b'{"a": 1}', 1, False),
    (b'{"a": [1, {"b": [2]}]}', 4, False),
    (b'{"a": [1, {"b": [2]}]}', 3, True),
    (b'[[1], [2], [3], [4]]', 2, False),
    (b'{"a": "[[[[[[[[[["}', 1, False),
    (b'{"a": "quote \\" then [[[[[[["}', 1, False),
    (b"[[[[", 3, True),
])
def test_too_deep_counts_nesting_but_not_brackets_inside_strings(text, limit, expected):
    assert too_deep(text, limit) is expected
