"""Generated catalog records: valid, deterministic, varied."""

from __future__ import annotations

from collections import Counter

from schemas import CatalogItem, decode, encode
from shopstream import topics as t
from streams.replay_catalog import BRANDS, CATEGORIES, catalog_item


def test_catalog_item_is_the_same_for_the_same_id():
    assert catalog_item("1234") == catalog_item("1234")
    assert catalog_item("1234") != catalog_item("1235")


def test_catalog_item_is_a_valid_wire_record():
    item = catalog_item("42")
    assert decode(t.CATALOG, encode(item)) == item
    assert item.item_id == "42" and item.title.endswith(" 42")


def test_catalog_items_spread_over_categories_brands_prices_and_stock():
    items = [catalog_item(str(i)) for i in range(2000)]
    assert {i.category for i in items} == set(CATEGORIES)
    assert {i.brand for i in items} == set(BRANDS)
    prices = [i.price for i in items if i.price is not None]
    assert min(prices) >= 2.0 and max(prices) < 120.0 and len(set(prices)) > 1000
    stock = Counter(i.in_stock for i in items)
    assert 0.02 < stock[False] / len(items) < 0.08
    assert all(isinstance(i, CatalogItem) for i in items)
