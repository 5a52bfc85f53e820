"""Features of a user's window: counts per event type, rates, recency.

Rates are over the window and per view: click-through = clicks / views, cart conversion =
add-to-carts / views, purchase conversion = purchases / views. They are None when the
window holds no view (undefined, not zero), and can exceed 1 when the views that led to
clicks have already left the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol


class _Coded(Protocol):
    @property
    def code(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Features:
    views: int
    clicks: int
    add_to_carts: int
    purchases: int
    click_through: float | None
    cart_conversion: float | None
    purchase_conversion: float | None
    ms_since_last: int | None  # None before the first event; 0 if the clock is behind

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_features(window: Sequence[_Coded], now_ms: int, last_ts: int | None) -> Features:
    counts = [0, 0, 0, 0, 0]
    for item in window:
        counts[item.code] += 1
    views = counts[1]
    return Features(
        views=views, clicks=counts[2], add_to_carts=counts[3], purchases=counts[4],
        click_through=counts[2] / views if views else None,
        cart_conversion=counts[3] / views if views else None,
        purchase_conversion=counts[4] / views if views else None,
        ms_since_last=None if last_ts is None else max(0, now_ms - last_ts),
    )
