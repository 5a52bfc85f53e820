"""Input events: what the shop sends in (views, clicks, catalog updates, erasures)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import Event, Id, NonNegativeInt, Price, Timestamp
from schemas.times import to_datetime

Action = Literal["click", "add_to_cart", "purchase"]

# Event codes used inside the model and the per-user window (0 is padding).
EVENT_CODES: dict[str, int] = {"pad": 0, "view": 1, "click": 2, "add_to_cart": 3, "purchase": 4}
VIEW, CLICK, ADD_TO_CART, PURCHASE = 1, 2, 3, 4


class _Interaction(Event):
    event_id: Id = Field(description="producer-chosen unique id; repeats are dropped")
    user_id: Id
    item_id: Id
    ts: Timestamp
    session_id: Id | None = Field(None, description="the shop's own session id, if it has one")
    dwell_ms: NonNegativeInt | None = Field(None, description="time spent on the item, ms")
    source: str | None = Field(
        None, max_length=64, description="where it happened (search, home, ad, ...)"
    )

    @property
    def at(self) -> datetime:
        return to_datetime(self.ts)


class ViewEvent(_Interaction):
    """A product page view (topic events.views, keyed by user_id)."""

    @property
    def code(self) -> int:
        return VIEW


class ClickEvent(_Interaction):
    """A click, add-to-cart or purchase (topic events.clicks, keyed by user_id)."""

    action: Action
    price: Price | None = Field(None, description="unit price, in the shop's currency")
    campaign_id: Id | None = Field(None, description="set when the click came from an ad")

    @property
    def code(self) -> int:
        return EVENT_CODES[self.action]


class CatalogItem(Event):
    """The latest state of one catalog item (compacted topic catalog.items, keyed by item_id).

    A record with no value (a tombstone) on the topic means the item was removed.
    """

    item_id: Id
    title: str = Field(max_length=1024)
    category: str | None = Field(None, max_length=256)
    brand: str | None = Field(None, max_length=256)
    price: Price | None = None
    in_stock: bool
    updated_ts: Timestamp


class UserErasure(Event):
    """A request to forget a user (topic users.erase, keyed by user_id)."""

    user_id: Id
    ts: Timestamp
