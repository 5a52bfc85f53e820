"""Building valid input events for tests (the wire format of schemas/)."""

from __future__ import annotations

import time
from typing import Any

BASE_TS = int(time.time() * 1000) - 3_600_000  # an hour ago, inside the accepted range


def view(user: str, item: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{user}-v{n}", "user_id": user, "item_id": item,
            "ts": BASE_TS + n * 1000, **extra}


def click(user: str, item: str, n: int, action: str = "click", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{user}-c{n}", "user_id": user, "item_id": item,
            "ts": BASE_TS + n * 1000, "action": action, **extra}
