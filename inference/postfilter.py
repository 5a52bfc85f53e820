"""From the graph's candidates to the K items a user is shown, each with a short reason.

The graph already drops what is known before scoring (bought items, and viewed ones when
configured; see ``graph_exclusions``) and returns its ``top_k`` best, which is more than
the K shown. Here the rest of the rules apply in rank order: out-of-stock items, excluded
categories and the per-category diversity cap. When fewer than K survive, popular items
(filtered by the same rules) fill the gap; if even those run out, the recommendation is
shorter than K rather than padded with items the rules forbid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from inference.windows import ADD_TO_CART, CLICK, PURCHASE, VIEW, ItemIndex, Window
from shopstream.config import Settings


@dataclass(frozen=True)
class CatalogItem:
    in_stock: bool = True
    category: str | None = None


# None: the catalog has not seen the item; it is treated as in stock, with no category.
CatalogLookup = Callable[[str], CatalogItem | None]


def no_catalog(item_id: str) -> CatalogItem | None:
    return None


@dataclass(frozen=True)
class FilterRules:
    top_k: int = 10
    exclude_viewed: bool = False
    excluded_categories: frozenset[str] = frozenset()
    diversity_cap: int = 0  # 0: no cap

    @classmethod
    def from_settings(cls, settings: Settings) -> FilterRules:
        return cls(settings.top_k, settings.exclude_viewed, settings.excluded_categories,
                   settings.diversity_cap)


@dataclass(frozen=True)
class Pick:
    item_id: str
    score: float
    source: str  # "model" or "popular"
    reason: str = ""


def graph_exclusions(window: Window, rules: FilterRules,
                     bought: Iterable[str] = ()) -> set[str]:
    """Items to hand the graph as ``exclude``: bought ones, plus the window if configured."""
    excluded = set(bought)
    excluded.update(item for item, code in window if code == PURCHASE)
    if rules.exclude_viewed:
        excluded.update(item for item, _ in window)
    return excluded


def select(candidates: Iterable[tuple[str, float, str]], excluded: set[str],
           catalog: CatalogLookup, rules: FilterRules) -> list[Pick]:
    """The first ``top_k`` candidates (best first) that every rule allows."""
    chosen: list[Pick] = []
    seen: set[str] = set()
    per_category: Counter[str] = Counter()
    for item_id, score, source in candidates:
        if item_id in excluded or item_id in seen:
            continue
        seen.add(item_id)
        info = catalog(item_id)
        category = info.category if info else None
        if info is not None and not info.in_stock:
            continue
        if category is not None:
            if category in rules.excluded_categories:
                continue
            if rules.diversity_cap and per_category[category] >= rules.diversity_cap:
                continue
            per_category[category] += 1
        chosen.append(Pick(item_id, float(score), source))
        if len(chosen) == rules.top_k:
            break
    return chosen


_TEMPLATES = {
    VIEW: "because you viewed item {}",
    CLICK: "because you clicked item {}",
    ADD_TO_CART: "because you added item {} to your cart",
    PURCHASE: "because you bought item {}",
}
POPULAR_REASON = "popular right now"
GENERIC_REASON = "recommended for you"


def explain(picks: Sequence[Pick], window: Window, index: ItemIndex,
            unit_embeddings: np.ndarray) -> list[Pick]:
    """``explain_batch`` for one user."""
    return explain_batch([picks], [window], index, unit_embeddings)[0]


def explain_batch(picks: Sequence[Sequence[Pick]], windows: Sequence[Window], index: ItemIndex,
                  unit_embeddings: np.ndarray) -> list[list[Pick]]:
    """Give each pick the window item most similar to it (cosine over item embeddings).

    The word comes from the strongest event the user had with that item (a purchase beats
    an add-to-cart beats a click beats a view). An item is not its own reason while the
    window holds another. One padded similarity tensor serves the whole batch.
    """
    strongest: list[dict[str, int]] = []
    for window in windows:
        best_code: dict[str, int] = {}
        for item, code in window:
            if index.get(item):
                best_code[item] = max(code, best_code.get(item, 0))
        strongest.append(best_code)
    sources = [list(s) for s in strongest]
    cands = [[index.get(p.item_id) if p.source == "model" else 0 for p in user_picks]
             for user_picks in picks]
    b = len(picks)
    width = max((len(s) for s in sources), default=0)
    n_cand = max((len(c) for c in cands), default=0)
    nearest = np.zeros((b, n_cand), dtype=np.int64)
    if width and n_cand:
        src_idx = np.zeros((b, width), dtype=np.int64)
        cand_idx = np.zeros((b, n_cand), dtype=np.int64)
        for row, (src, cand) in enumerate(zip(sources, cands, strict=True)):
            src_idx[row, :len(src)] = [index.get(item) for item in src]
            cand_idx[row, :len(cand)] = cand
        sims = np.einsum("bcd,bwd->bcw", unit_embeddings[cand_idx], unit_embeddings[src_idx])
        sims[np.broadcast_to((src_idx == 0)[:, None, :], sims.shape)] = -np.inf
        several = np.array([len(src) > 1 for src in sources])[:, None, None]
        sims[(cand_idx[:, :, None] == src_idx[:, None, :]) & several] = -2.0
        nearest = sims.argmax(axis=2)  # [B, C]
    out = []
    for row, user_picks in enumerate(picks):
        explained = []
        for c, pick in enumerate(user_picks):
            if cands[row][c] and sources[row]:
                item = sources[row][nearest[row, c]]
                template = _TEMPLATES.get(strongest[row][item], _TEMPLATES[VIEW])
                reason = template.format(item)
            elif pick.source == "popular":
                reason = POPULAR_REASON
            else:
                reason = GENERIC_REASON
            explained.append(Pick(pick.item_id, pick.score, pick.source, reason))
        out.append(explained)
    return out
