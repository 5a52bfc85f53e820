"""Output events: what shopstream publishes (recommendations, ad targeting, dead letters).

Each output carries ``output_id``, a hash of the inputs that caused it (never of the time
it was emitted), so a consumer can drop the repeats that at-least-once delivery produces.
Build outputs with the ``create`` class methods, which fill ``output_id`` in.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.base import SCHEMA_VERSION, Event, Id, NonNegativeInt, Timestamp

OUTPUT_ID_CHARS = 32


def output_id(kind: str, *parts: object) -> str:
    """A stable id (32 hex chars) for an output made from ``parts``."""
    text = "\x1f".join((kind, *(str(p) for p in parts)))
    return hashlib.blake2b(text.encode(), digest_size=OUTPUT_ID_CHARS // 2).hexdigest()


_OutputId = Field(
    min_length=OUTPUT_ID_CHARS, max_length=OUTPUT_ID_CHARS,
    description="deterministic from the inputs; consumers drop repeats by it",
)


class RecommendedItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    item_id: Id
    score: float
    reason: str = Field(max_length=256, description="short explanation code or text")


class Recommendation(Event):
    """Fresh recommendations for one user (topic recs.users, keyed by user_id)."""

    output_id: str = _OutputId
    user_id: Id
    items: list[RecommendedItem] = Field(max_length=1000)
    model_version: Id
    variant: Id = Field(description="model variant that scored it: fp32, fp16, int8, ...")
    trigger_event_id: Id = Field(description="event_id of the input that caused this output")
    event_ts: Timestamp = Field(description="ts of the triggering event, epoch ms UTC")
    emitted_ts: Timestamp = Field(description="when this output was made, epoch ms UTC")

    @classmethod
    def create(cls, *, user_id: str, items: list[RecommendedItem], model_version: str,
               variant: str, trigger_event_id: str, event_ts: int,
               emitted_ts: int) -> Recommendation:
        oid = output_id("rec", user_id, trigger_event_id, model_version, variant)
        return cls(output_id=oid, user_id=user_id, items=items, model_version=model_version,
                   variant=variant, trigger_event_id=trigger_event_id, event_ts=event_ts,
                   emitted_ts=emitted_ts)

    @classmethod
    def wire(cls, *, user_id: str, items: Sequence[tuple[Any, ...]], model_version: str,
             variant: str, trigger_event_id: str, event_ts: int, emitted_ts: int) -> bytes:
        """The bytes ``encode(create(...))`` gives, without building the models: the
        worker's hot path, whose inputs (a validated event, the model's own items) need no
        second validation. ``items`` are ``(item_id, score, reason)``, or the worker's
        picks, ``(item_id, score, source, reason)``: the first two fields and the last."""
        return orjson.dumps({
            "schema_version": SCHEMA_VERSION,
            "output_id": output_id("rec", user_id, trigger_event_id, model_version, variant),
            "user_id": user_id,
            "items": [{"item_id": item[0], "score": item[1], "reason": item[-1]}
                      for item in items],
            "model_version": model_version, "variant": variant,
            "trigger_event_id": trigger_event_id, "event_ts": event_ts,
            "emitted_ts": emitted_ts,
        })


class AdTargeting(Event):
    """A user chosen for a campaign (topic ads.targeting, keyed by user_id)."""

    output_id: str = _OutputId
    user_id: Id
    campaign_id: Id
    score: float
    segment: Id
    model_version: Id
    trigger_event_id: Id = Field(description="event_id of the input that caused this output")
    event_ts: Timestamp
    emitted_ts: Timestamp

    @classmethod
    def create(cls, *, user_id: str, campaign_id: str, score: float, segment: str,
               model_version: str, trigger_event_id: str, event_ts: int,
               emitted_ts: int) -> AdTargeting:
        oid = output_id("ad", user_id, campaign_id, trigger_event_id, model_version)
        return cls(output_id=oid, user_id=user_id, campaign_id=campaign_id, score=score,
                   segment=segment, model_version=model_version,
                   trigger_event_id=trigger_event_id, event_ts=event_ts, emitted_ts=emitted_ts)


class DeadLetter(Event):
    """An input record that could not be used (topic events.deadletter).

    ``raw`` is the record's value cut to the configured byte limit and decoded as UTF-8
    with invalid bytes replaced (U+FFFD), so it is readable in any JSON tool. When the cut
    bytes are not valid UTF-8, ``raw_b64`` holds them exactly (base64), since the text then
    lost information; otherwise it is null. ``raw_size`` is the full length before the cut.
    """

    output_id: str = _OutputId
    source_topic: str = Field(min_length=1, max_length=249)
    source_partition: NonNegativeInt
    source_offset: NonNegativeInt
    error_class: str = Field(max_length=128)
    reason: str = Field(min_length=1, max_length=64, description="short stable code")
    detail: str = Field(max_length=1024)
    raw: str | None = Field(description="the value cut to the limit, as text; null: no value")
    raw_b64: str | None = Field(None, description="the cut bytes, base64, when not UTF-8")
    raw_size: NonNegativeInt
    raw_truncated: bool
    dead_ts: Timestamp

    @classmethod
    def create(cls, *, source_topic: str, source_partition: int, source_offset: int,
               error_class: str, reason: str, detail: str, raw: bytes | None, limit: int,
               dead_ts: int) -> DeadLetter:
        cut = raw[:limit] if raw is not None else None
        text = b64 = None
        if cut is not None:
            text = cut.decode("utf-8", errors="replace")
            # A cut through a multi-byte character is ours, not the sender's: only bytes
            # that were invalid before the cut make raw_b64 necessary.
            if not _is_utf8(cut, truncated=len(cut) < len(raw or b"")):
                b64 = base64.b64encode(cut).decode("ascii")
        return cls(
            output_id=output_id("dead", source_topic, source_partition, source_offset),
            source_topic=source_topic, source_partition=source_partition,
            source_offset=source_offset, error_class=error_class[:128], reason=reason,
            detail=detail[:1024], raw=text, raw_b64=b64,
            raw_size=len(raw) if raw is not None else 0,
            raw_truncated=raw is not None and len(raw) > limit, dead_ts=dead_ts,
        )



def _is_utf8(data: bytes, truncated: bool) -> bool:
    # With final=False the decoder holds back an unfinished character at the end instead
    # of failing, which is what a cut through a multi-byte character leaves.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=not truncated)
    except UnicodeDecodeError:
        return False
    return True
