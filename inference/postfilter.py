"""From the graph's candidates to the K items a user is shown, each with a short reason.

The graph already drops what is known before scoring (bought items, and viewed ones when
configured; see ``graph_exclusions``) and returns its ``top_k`` best, which is more than
the K shown. Here the rest of the rules apply in rank order: out-of-stock items, excluded
categories and the per-category diversity cap. When fewer than K survive, popular items
(filtered by the same rules) fill the gap; if even those run out, the recommendation is
shorter than K rather than padded with items the rules forbid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from inference.windows import (
    ADD_TO_CART,
    CLICK,
    PURCHASE,
    VIEW,
    ItemIndex,
    Window,
    code_of,
    encode_windows,
    item_of,
)
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


class Pick(NamedTuple):  # a tuple: a batch makes thousands of them
    item_id: str
    score: float
    source: str  # "model" or "popular"
    reason: str = ""


def graph_exclusions(window: Window, rules: FilterRules,
                     bought: Iterable[str] = ()) -> set[str]:
    """Items to hand the graph as ``exclude``: bought ones, plus the window if configured."""
    excluded = set(bought)
    if rules.exclude_viewed:
        excluded.update(map(item_of, window))
    elif PURCHASE in map(code_of, window):  # seldom: look for the items only then
        excluded.update(entry[0] for entry in window if entry[1] == PURCHASE)
    return excluded


# (item_id, score, source) as Pick's first three fields; a model candidate may also carry its
# reason's window item and event code (see word_reasons)
Candidate = tuple[str, float, str] | tuple[str, float, str, int, int]


def select(candidates: Iterable[Candidate], excluded: set[str],
           catalog: CatalogLookup, rules: FilterRules) -> list[Candidate]:
    """The first ``top_k`` candidates (best first) that every rule allows, as they came."""
    chosen: list[Candidate] = []
    seen: set[str] = set()
    per_category: dict[str, int] = {}
    top_k, cap, banned = rules.top_k, rules.diversity_cap, rules.excluded_categories
    for candidate in candidates:
        item_id = candidate[0]
        if item_id in seen or item_id in excluded:
            continue
        seen.add(item_id)
        info = catalog(item_id)
        if info is not None:
            if not info.in_stock:
                continue
            category = info.category
            if category is not None:
                if category in banned:
                    continue
                taken = per_category.get(category, 0)
                if cap and taken >= cap:
                    continue
                per_category[category] = taken + 1
        chosen.append(candidate)
        if len(chosen) == top_k:
            break
    return chosen


class CatalogView:
    """The catalog and the rules as arrays over one model's item indices, so that the
    graph's candidates for a whole batch are filtered with array operations
    (``first_allowed``; the scoring thread runs it as a graph, ``inference.postgraph``), as
    ``select`` filters one user's in Python.

    ``allowed[i]``: in stock (or unknown to the catalog) and not in an excluded category;
    ``category[i]``: the item's category as a code from ``categories`` (shared by every
    view, so that codes compare across model versions), -1 for none. ``update`` keeps it
    current with the items that changed; index 0 (padding) is never allowed.
    """

    def __init__(self, index: ItemIndex, catalog: CatalogLookup, rules: FilterRules,
                 categories: dict[str, int]) -> None:
        self.index = index
        self.banned = rules.excluded_categories
        self.categories = categories
        self.allowed = np.ones(len(index), dtype=bool)
        self.allowed[0] = False
        self.category = np.full(len(index), -1, dtype=np.int32)
        for i, item_id in enumerate(index.ids[1:], start=1):
            info = catalog(item_id)
            if info is not None:
                self._set(i, info)

    def _set(self, i: int, info: CatalogItem | None) -> None:
        if info is None:  # left the catalog: in stock, no category, as for an unknown item
            self.allowed[i], self.category[i] = True, -1
            return
        category = info.category
        self.allowed[i] = info.in_stock and category not in self.banned
        self.category[i] = -1 if category is None else self.code(category)

    def code(self, category: str) -> int:
        return self.categories.setdefault(category, len(self.categories))

    def update(self, item_ids: Iterable[str], catalog: CatalogLookup) -> None:
        """Read these items from the catalog again (the ones the model knows)."""
        get = self.index.get
        for item_id in item_ids:
            i = get(item_id)
            if i:
                self._set(i, catalog(item_id))


def first_allowed(top_items: np.ndarray, top_scores: np.ndarray, view: CatalogView,
                  top_k: int, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """``select`` for a batch of the graph's candidates ([B, C] indices and scores, best
    first): per row the columns of the first ``top_k`` candidates that every rule allows,
    in rank order ([B, min(C, top_k)]), and how many of those columns are real per row.

    The graph's candidates are distinct and already without the excluded items it was
    handed, so only the catalog's rules and the diversity cap are left. The cap counts the
    allowed candidates of the same category ranked higher: a candidate it turns away had at
    least ``cap`` of those, so counting it as well changes no later decision.
    """
    valid = (top_items > 0) & (top_scores > -np.inf)
    valid &= view.allowed[top_items]
    if cap:
        valid &= _rank_in_category(view.category[top_items], valid) < cap
    valid &= np.cumsum(valid, axis=1) <= top_k
    columns = np.argsort(~valid, axis=1, kind="stable")[:, :top_k]
    return columns, np.count_nonzero(valid, axis=1)


def _rank_in_category(category: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each valid candidate with a category, how many valid ones of the same category
    rank above it in its row (other entries: anything). A stable sort by category puts each
    category's candidates together in rank order: the rank is the place in that run (half
    the time of comparing every pair of a row)."""
    width = category.shape[1]
    places = np.arange(width)
    # the others get keys of their own, below every category's
    key = np.where(valid & (category >= 0), category, -1 - places)
    order = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, order, axis=1)
    starts = np.zeros(key.shape, dtype=np.int64)
    new_run = ordered[:, 1:] != ordered[:, :-1]
    starts[:, 1:] = np.where(new_run, places[1:], 0)
    np.maximum.accumulate(starts, axis=1, out=starts)
    rank = np.empty_like(starts)
    np.put_along_axis(rank, order, places - starts, axis=1)
    return rank


_TEMPLATES = {
    VIEW: "because you viewed item {}",
    CLICK: "because you clicked item {}",
    ADD_TO_CART: "because you added item {} to your cart",
    PURCHASE: "because you bought item {}",
}
POPULAR_REASON = "popular right now"
GENERIC_REASON = "recommended for you"


def explain(picks: Sequence[Candidate], window: Window, index: ItemIndex,
            unit_embeddings: np.ndarray) -> list[Pick]:
    """``explain_batch`` for one user."""
    return explain_batch([picks], [window], index, unit_embeddings)[0]


def explain_batch(picks: Sequence[Sequence[Candidate]], windows: Sequence[Window],
                  index: ItemIndex, unit_embeddings: np.ndarray) -> list[list[Pick]]:
    """``explain_encoded`` for windows of external ids (all of each window is considered)."""
    batch = encode_windows(index, windows, max(map(len, windows), default=0))
    return explain_encoded(picks, batch.item_seq, batch.event_type, index, unit_embeddings)


def explain_encoded(picks: Sequence[Sequence[Candidate]], item_seq: np.ndarray,
                    event_type: np.ndarray, index: ItemIndex,
                    unit_embeddings: np.ndarray) -> list[list[Pick]]:
    """Give each pick the window item most similar to it (``nearest_sources``), worded
    (``word_reasons``). The windows come as the graph's left-padded index arrays ([B, W],
    0 for padding)."""
    get = index.lookup
    cands = [[get(pick[0], 0) if pick[2] == "model" else 0 for pick in user_picks]
             for user_picks in picks]
    cand_idx = np.zeros((len(picks), max(map(len, cands), default=0)), dtype=np.int64)
    for row, cand_row in enumerate(cands):
        cand_idx[row, :len(cand_row)] = cand_row
    sources, codes = nearest_sources(cand_idx, item_seq, event_type, unit_embeddings)
    return word_reasons([[(*pick[:3], source, code) for pick, source, code
                          in zip(user_picks, source_row, code_row, strict=False)]
                         for user_picks, source_row, code_row
                         in zip(picks, sources.tolist(), codes.tolist(), strict=True)],
                        index.ids)


def nearest_sources(cand_idx: np.ndarray, item_seq: np.ndarray, event_type: np.ndarray,
                    unit_embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate ([B, C] item indices, 0 for none), the window item most similar
    to it (cosine over item embeddings) and the strongest event the user had with that
    item (a purchase beats an add-to-cart beats a click beats a view): two [B, C] index
    arrays, 0 where there is no candidate or no window. An item is not its own source
    while the window holds another; ties go to the item seen first. Array work only, one
    similarity tensor for the whole batch (the worker's scoring thread runs it as a graph,
    ``inference.postgraph``)."""
    known = item_seq != 0
    # the columns every row leaves empty (windows are left-padded) need no similarity
    start = int(np.argmax(known.any(axis=0))) if known.any() else item_seq.shape[1]
    item_seq, event_type, known = item_seq[:, start:], event_type[:, start:], known[:, start:]
    if not item_seq.shape[1] or not cand_idx.size:
        return np.zeros(cand_idx.shape, dtype=np.int64), np.zeros(cand_idx.shape, dtype=np.int64)
    sims = unit_embeddings[cand_idx] @ unit_embeddings[item_seq].transpose(0, 2, 1)
    # (copyto broadcasts the masks: ~15% less time here than indexing with them)
    np.copyto(sims, -np.inf, where=~known[:, None, :])
    several = (known & (item_seq != item_seq[:, -1:])).any(axis=1)  # distinct items > 1
    np.copyto(sims, -2.0,
              where=(cand_idx[:, :, None] == item_seq[:, None, :]) & several[:, None, None])
    nearest = sims.argmax(axis=2)  # [B, C]: a position in the window
    sources = np.take_along_axis(item_seq, nearest, axis=1)  # [B, C]
    # the strongest event with the source item anywhere in the window
    same = item_seq[:, None, :] == sources[:, :, None]  # [B, C, W]
    # event codes fit a byte: a [B, C, W] product of bytes, not of int64s
    codes = (same * event_type.astype(np.int8)[:, None, :]).max(axis=2).astype(np.int64)
    none = cand_idx == 0
    sources[none] = 0
    codes[none] = 0
    return sources, codes


@lru_cache(maxsize=1 << 16)
def reason_text(item_id: str, code: int) -> str:
    """"because you viewed item 123" and the like (kept: a batch words hundreds)."""
    return _TEMPLATES.get(code, _TEMPLATES[VIEW]).format(item_id)


def word_reasons(picks: Sequence[Sequence[Candidate]], ids: Sequence[str]) -> list[list[Pick]]:
    """Each pick with its reason: a model pick that carries a source (its fourth field, an
    index into ``ids``, with the event code as the fifth, see ``nearest_sources``) is
    explained by that item, a popular pick as popular, any other generically."""
    out = []
    for user_picks in picks:
        explained = []
        for pick in user_picks:
            origin = pick[2]
            if origin == "model" and len(pick) == 5 and pick[3]:
                reason = reason_text(ids[pick[3]], pick[4])
            elif origin == "popular":
                reason = POPULAR_REASON
            else:
                reason = GENERIC_REASON
            explained.append(Pick(pick[0], float(pick[1]), origin, reason))
        out.append(explained)
    return out
