"""The SSE wire format, and output records turned into the page's events."""

from __future__ import annotations

from live.feed import to_live_event
from live.hub import LiveEvent
from live.sse import frame
from schemas import AdTargeting, Recommendation, RecommendedItem, encode, now_ms
from shopstream import topics as t


def _rec(user: str = "u-1") -> Recommendation:
    ts = now_ms()
    return Recommendation.create(
        user_id=user, items=[RecommendedItem(item_id="42", score=0.5, reason="like 7")],
        model_version="v1", variant="fp32", trigger_event_id="e1", event_ts=ts, emitted_ts=ts)


def test_a_frame_names_the_event_and_carries_its_id_and_json():
    event = LiveEvent("ad", "u", "abc", b'{"x":1}')
    assert frame(event) == b'event: ad\nid: abc\ndata: {"x":1}\n\n'


def test_a_frame_keeps_a_multi_line_body_inside_one_event():
    body = frame(LiveEvent("recommendation", "u", "i", b'{\n"x": 1\n}'))
    assert body == b'event: recommendation\nid: i\ndata: {\ndata: "x": 1\ndata: }\n\n'
    assert body.count(b"\n\n") == 1


def test_a_recommendation_record_becomes_a_recommendation_event_for_its_user():
    rec = _rec()
    raw = encode(rec)
    event = to_live_event(t.RECS, raw)
    assert event == LiveEvent("recommendation", "u-1", rec.output_id, raw)


def test_an_ad_record_becomes_an_ad_event():
    ts = now_ms()
    ad = AdTargeting.create(user_id="u-2", campaign_id="c", score=0.3, segment="s",
                            model_version="v1", trigger_event_id="e", event_ts=ts,
                            emitted_ts=ts)
    event = to_live_event(t.ADS, encode(ad))
    assert event is not None and (event.kind, event.user_id) == ("ad", "u-2")


def test_records_that_are_not_valid_outputs_are_skipped():
    assert to_live_event(t.RECS, b"not json") is None
    assert to_live_event(t.RECS, None) is None
    assert to_live_event(t.RECS, b'{"user_id": "u"}') is None
    assert to_live_event(t.ADS, encode(_rec())) is None  # a recommendation on the ads topic
