"""Output events: ids that let consumers drop repeats, dead letters that keep the bytes."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from schemas import AdTargeting, DeadLetter, Recommendation, RecommendedItem, encode

ITEMS = [RecommendedItem(item_id="7", score=1.5, reason="seq")]


def rec(**changes):
    args = dict(user_id="u1", items=ITEMS, model_version="v1", variant="fp32",
                trigger_event_id="ev-1", event_ts=1_700_000_000_000,
                emitted_ts=1_700_000_000_010)
    args.update(changes)
    return Recommendation.create(**args)


def test_recommendation_id_ignores_the_emit_time_so_a_repeat_has_the_same_id():
    assert rec().output_id == rec(emitted_ts=1_700_000_009_999).output_id


@pytest.mark.parametrize("field", ["user_id", "trigger_event_id", "model_version", "variant"])
def test_recommendation_id_changes_with_each_input(field):
    assert rec().output_id != rec(**{field: "other"}).output_id


def test_ad_id_depends_on_the_campaign():
    args = dict(user_id="u1", score=0.5, segment="s", model_version="v1",
                trigger_event_id="ev-1", event_ts=1_700_000_000_000,
                emitted_ts=1_700_000_000_001)
    a = AdTargeting.create(campaign_id="c1", **args)
    b = AdTargeting.create(campaign_id="c2", **args)
    assert a.output_id != b.output_id
    assert a.output_id == AdTargeting.create(campaign_id="c1", **args).output_id


def dead(raw, limit=8):
    return DeadLetter.create(source_topic="events.views", source_partition=1, source_offset=5,
                             error_class="InvalidEvent", reason="not_json", detail="x",
                             raw=raw, limit=limit, dead_ts=1_700_000_000_000)


def test_dead_letter_id_is_the_source_position():
    assert dead(b"abc").output_id == dead(b"other bytes").output_id
    other = DeadLetter.create(source_topic="events.views", source_partition=1, source_offset=6,
                              error_class="E", reason="r", detail="", raw=b"abc", limit=8,
                              dead_ts=1_700_000_000_000)
    assert other.output_id != dead(b"abc").output_id


def test_dead_letter_cuts_raw_to_the_limit_and_says_so():
    letter = dead(b"0123456789abc", limit=8)
    assert letter.raw == "01234567"
    assert letter.raw_truncated and letter.raw_size == 13
    assert letter.raw_b64 is None


def test_dead_letter_keeps_invalid_utf8_exactly_in_base64():
    letter = dead(b"ab\xffcd", limit=8)
    assert letter.raw == "ab\ufffdcd"
    assert base64.b64decode(letter.raw_b64 or "") == b"ab\xffcd"


def test_dead_letter_cut_through_a_character_is_not_called_invalid():
    letter = dead("aaaaaaaé".encode(), limit=8)  # é is 2 bytes; the cut splits it
    assert letter.raw_truncated and letter.raw_b64 is None


def test_dead_letter_of_a_record_without_value():
    letter = dead(None)
    assert letter.raw is None and letter.raw_size == 0 and not letter.raw_truncated


def test_outputs_are_strict_too():
    with pytest.raises(ValidationError):
        RecommendedItem(item_id="7", score="1.5", reason="seq")  # type: ignore[arg-type]


@pytest.mark.parametrize("items", [[], [("7", 1.5, "because you viewed item 3"),
                                       ("9", -0.25, "popular right now"),
                                       ("é/ü", 3e-9, 'quote " and \\\\ back')]])
def test_recommendation_wire_bytes_are_what_encode_gives_for_the_model(items):
    args = dict(user_id="u1", model_version="v1", variant="B", trigger_event_id="ev-1",
                event_ts=1_700_000_000_000, emitted_ts=1_700_000_000_010)
    model = Recommendation.create(items=[RecommendedItem(item_id=i, score=s, reason=r)
                                         for i, s, r in items], **args)
    fast = Recommendation.wire(items=items, **args)
    assert fast == encode(model)
    assert Recommendation.model_validate_json(fast) == model
    # the worker hands its picks over as they are: (item_id, score, source, reason)
    picks = [(item, score, "model", reason) for item, score, reason in items]
    assert Recommendation.wire(items=picks, **args) == fast
