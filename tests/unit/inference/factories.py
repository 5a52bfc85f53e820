"""Random inputs shared by the tests of the catalog's rules (numpy and graph alike)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from inference.postfilter import CatalogItem, CatalogView, FilterRules
from inference.windows import ItemIndex


class Candidates(NamedTuple):
    index: ItemIndex
    catalog: dict[str, CatalogItem]
    rules: FilterRules
    view: CatalogView
    items: np.ndarray  # [rows, width] the graph's candidates, best first, 0 as padding
    scores: np.ndarray  # their scores, -inf where the graph excluded one


def random_candidates(seed: int, rows: int = 40, width: int = 30, n_items: int = 60,
                      max_top_k: int = 12) -> Candidates:
    """A random catalog (stock, a few categories, some items unknown to it), rules and
    graph outputs: some candidates excluded by the graph, the last three padding."""
    rng = np.random.default_rng(seed)
    index = ItemIndex(["", *(f"i{k}" for k in range(1, n_items))])
    catalog = {f"i{k}": CatalogItem(bool(rng.random() > 0.2),
                                    None if rng.random() < 0.2 else f"c{rng.integers(4)}")
               for k in range(1, n_items) if rng.random() < 0.9}
    rules = FilterRules(top_k=int(rng.integers(3, max_top_k)), diversity_cap=seed % 4,
                        excluded_categories=frozenset({"c3"} if seed % 2 else set()))
    view = CatalogView(index, catalog.get, rules, {})
    items = np.stack([rng.permutation(np.arange(1, n_items))[:width] for _ in range(rows)])
    scores = -np.sort(rng.random(items.shape), axis=1).astype(np.float32)
    scores[rng.random(items.shape) < 0.1] = -np.inf  # excluded by the graph
    items[:, -3:] = 0  # padding: a catalog smaller than the graph's K
    return Candidates(index, catalog, rules, view, items, scores)
