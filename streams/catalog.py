"""An in-memory view of the catalog for the filters, kept current from the catalog table.

The event loop writes single keys and reads them for the filters; the ids it changed are
handed to the recommender (``take_changes``), which keeps array views of the catalog for
the scoring thread (inference.postfilter.CatalogView). It is fed by the catalog agent on
the worker that consumes catalog.items, and by the global table's changelog on every
worker (recovery included).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from faust.types import EventT

from inference.postfilter import CatalogItem as FilterItem


class CatalogCache:
    def __init__(self) -> None:
        self._items: dict[str, FilterItem] = {}
        # The filters look up every candidate item: the dict's own get (C), not a method
        # around it. Valid for good, since the dict is only ever changed in place.
        self.lookup: Callable[[str], FilterItem | None] = self._items.get
        # items put since take_changes last ran, for the recommender's catalog views (one
        # entry an item at most, so no larger than the catalog where no recommender takes them)
        self._changed: set[str] = set()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item_id: str, raw: bytes | None) -> None:
        self._changed.add(item_id)
        if raw is None:
            self._items.pop(item_id, None)
            return
        data = orjson.loads(raw)
        self._items[item_id] = FilterItem(in_stock=bool(data.get("in_stock", True)),
                                          category=data.get("category"))

    def take_changes(self) -> set[str]:
        """The ids put since the last call (the recommender's view of the catalog reads
        them again; inference.postfilter.CatalogView)."""
        changed, self._changed = self._changed, set()
        return changed

    async def on_changelog_event(self, event: EventT) -> None:
        key = event.key
        if isinstance(key, bytes):
            key = orjson.loads(key)
        if isinstance(key, str):
            value = event.value
            self.put(key, value if isinstance(value, bytes) or value is None else None)
