"""Deterministic catalog records for the items of a replayed log (``replay --catalog``).

The logs name items by id only. Each item's record is derived from BLAKE2b(item id), so
every replay (and every machine) publishes the same catalog: a category out of
CATEGORIES, a brand out of BRANDS, a title made of an adjective, the category's noun and
the id (``"Gentle Serum 1234"``), a price between 2.00 and 119.99, and in stock unless the
hash falls in the lowest 5 %. ``updated_ts`` is fixed (SEQ_BASE_MS) so records do not
change between runs.
"""

from __future__ import annotations

import hashlib

from schemas import CatalogItem
from streams.replay_formats import SEQ_BASE_MS

CATEGORIES = ("skincare", "makeup", "haircare", "fragrance", "bath", "nails", "tools",
              "toys", "games", "puzzles", "outdoor", "books")
_NOUNS = ("Serum", "Lipstick", "Shampoo", "Eau de Parfum", "Bath Salts", "Nail Polish",
          "Brush Set", "Plush Bear", "Board Game", "Jigsaw", "Kite", "Picture Book")
_ADJECTIVES = ("Gentle", "Classic", "Bright", "Everyday", "Deluxe", "Travel", "Fresh", "Bold")
BRANDS = ("Aster", "Brio", "Calla", "Dune", "Ember", "Fjord", "Glint", "Halo")
OUT_OF_STOCK_SHARE = 0.05


def catalog_item(item_id: str, updated_ts: int = SEQ_BASE_MS) -> CatalogItem:
    """The synthetic catalog record of ``item_id`` (the same for the same id, always)."""
    digest = hashlib.blake2b(item_id.encode(), digest_size=16).digest()
    kind = digest[0] % len(CATEGORIES)
    in_stock = int.from_bytes(digest[4:8], "big") / 2**32 >= OUT_OF_STOCK_SHARE
    cents = 200 + int.from_bytes(digest[8:12], "big") % 11_800
    return CatalogItem(
        item_id=item_id,
        title=f"{_ADJECTIVES[digest[1] % len(_ADJECTIVES)]} {_NOUNS[kind]} {item_id}",
        category=CATEGORIES[kind],
        brand=BRANDS[digest[2] % len(BRANDS)],
        price=cents / 100,
        in_stock=in_stock,
        updated_ts=updated_ts,
    )
