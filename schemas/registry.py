"""Which event model travels on which topic: the one table decode and the JSON Schemas use."""

from __future__ import annotations

from schemas.base import Event
from schemas.inputs import CatalogItem, ClickEvent, UserErasure, ViewEvent
from schemas.outputs import AdTargeting, DeadLetter, Recommendation
from shopstream import topics as t

TOPIC_MODELS: dict[str, type[Event]] = {
    t.VIEWS: ViewEvent,
    t.CLICKS: ClickEvent,
    t.CATALOG: CatalogItem,
    t.ERASE: UserErasure,
    t.RECS: Recommendation,
    t.ADS: AdTargeting,
    t.DEADLETTER: DeadLetter,
}


def timestamp_fields(model: type[Event]) -> tuple[str, ...]:
    """The top-level epoch-ms fields of a model (those checked against the clock)."""
    return tuple(name for name in model.model_fields if name == "ts" or name.endswith("_ts"))
