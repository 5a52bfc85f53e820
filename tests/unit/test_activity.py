"""Decoding input and shaping the first path's outputs."""

from __future__ import annotations

import orjson
import pytest

from streams.activity import RejectedEvent, activity_summary, dead_letter, decode_event


@pytest.mark.parametrize("raw,reason", [
    (None, "empty"), (b"{oops", "not_json"), (b"[1,2]", "not_object"),
    (b'{"item_id":"1"}', "bad_user_id"), (b'{"user_id":""}', "bad_user_id"),
])
def test_rejected_input_names_its_reason(raw, reason):
    with pytest.raises(RejectedEvent) as err:
        decode_event(raw)
    assert err.value.reason == reason


def test_summary_and_dead_letter_shapes():
    event = decode_event(b'{"user_id":"u1","item_id":"7","event_id":"e1"}')
    out = orjson.loads(activity_summary("u1", 3, event, 1000))
    assert out == {"user_id": "u1", "events_seen": 3, "last_item_id": "7",
                   "trigger_event_id": "e1", "emitted_ts": 1000}
    dl = orjson.loads(dead_letter("events.views", 2, 9, RejectedEvent("not_json", "x"),
                                  b"a" * 10, limit=4))
    assert (dl["source_partition"], dl["source_offset"], dl["raw"]) == (2, 9, "aaaa")
