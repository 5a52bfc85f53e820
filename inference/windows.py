"""A user's behaviour window, and turning windows into the graph's index arrays.

A window is a sequence of entries, oldest first, whose first two fields are an external
item id (a non-empty string) and the contract's event code (view=1, click=2,
add_to_cart=3, purchase=4): ``(item_id, event_code)`` pairs, or the worker's own
``streams.state.Interaction`` tuples, which carry a timestamp and a dwell time after them
and are handed over as they are (copying 50 entries into pairs for every event cost more
than the code that reads them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import itemgetter
from typing import Any

import numpy as np

Window = Sequence[tuple[Any, ...]]  # (item_id, event_code, ...) entries, see above
item_of = itemgetter(0)  # an entry's item id
code_of = itemgetter(1)  # an entry's event code

VIEW, CLICK, ADD_TO_CART, PURCHASE = 1, 2, 3, 4
EVENT_WORDS = {VIEW: "viewed", CLICK: "clicked", ADD_TO_CART: "added to cart",
               PURCHASE: "bought"}


class ItemIndex:
    """External item ids <-> the model's internal indices (0 is padding, never an item)."""

    def __init__(self, item_ids: Sequence[str]) -> None:
        self.ids = list(item_ids)
        self._index = {item: i for i, item in enumerate(self.ids) if i > 0}

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, item_id: str) -> int:
        """The internal index, or 0 for an id the model does not know."""
        return self._index.get(item_id, 0)

    @property
    def lookup(self) -> Callable[[str, int], int]:
        """``lookup(item_id, 0)`` is ``get(item_id)`` as one C call, for loops over many."""
        return self._index.get

    def indices(self, item_ids: Iterable[str]) -> list[int]:
        """Internal indices of the known ids, in order; unknown ids are dropped."""
        found = (self._index.get(i, 0) for i in item_ids)
        return [i for i in found if i]

    def external(self, indices: Iterable[int]) -> list[str]:
        return [self.ids[int(i)] for i in indices]


@dataclass(frozen=True)
class EncodedBatch:
    item_seq: np.ndarray  # int64 [B, L], left-padded with 0
    event_type: np.ndarray  # int64 [B, L], 0 where padded
    exclude: np.ndarray  # int64 [B, E], padded with 0
    lengths: np.ndarray  # int64 [B], known items kept per window


@dataclass(frozen=True)
class GatheredWindows:
    """What encoding takes from the windows' Python objects (``gather_windows``), before
    ``place_windows`` lays it out as the graph's arrays."""

    found: np.ndarray  # int64 [N]: every window's entries one after another, 0 if unknown
    codes: np.ndarray  # int64 [N]: their event codes
    sizes: list[int]  # entries per window
    excluded: list[list[int]]  # per window the indices of the items to exclude
    max_len: int


def encode_windows(index: ItemIndex, windows: Sequence[Window], max_len: int,
                   excludes: Sequence[Iterable[str]] | None = None,
                   max_exclude: int | None = None) -> EncodedBatch:
    """Map ids to indices (unknown dropped), keep the newest ``max_len``, left-pad with 0;
    at most ``max_exclude`` exclusions per row reach the graph (the rest are filtered after
    it, see inference.postfilter)."""
    return place_windows(gather_windows(index, windows, max_len, excludes, max_exclude))


def gather_windows(index: ItemIndex, windows: Sequence[Window], max_len: int,
                   excludes: Sequence[Iterable[str]] | None = None,
                   max_exclude: int | None = None) -> GatheredWindows:
    """The Python half of ``encode_windows``: each entry's item index and event code, and
    the exclusions' indices. Every window's entries go in one flat run: a loop per row cost
    more than the model for short windows."""
    sizes = [len(window) for window in windows]
    found = np.fromiter(map(index.lookup, map(item_of, chain.from_iterable(windows)),
                            repeat(0)), dtype=np.int64, count=sum(sizes))
    codes = np.fromiter(map(code_of, chain.from_iterable(windows)), dtype=np.int64,
                        count=len(found))
    excluded = ([index.indices(ids)[:max_exclude] if ids else [] for ids in excludes]
                if excludes else [[] for _ in windows])
    return GatheredWindows(found, codes, sizes, excluded, max_len)


def place_windows(gathered: GatheredWindows) -> EncodedBatch:
    """The array half of ``encode_windows``: the newest ``max_len`` known entries of each
    window, left-padded. The worker runs it in the scoring thread, not on the event loop:
    numpy lets go of the GIL for a mask or an index over a few hundred entries, and a loop
    that lets go while another thread runs Python waits up to the switch interval to get
    it back (measured with one spinning thread: ~29 us a user for a batch of 52, against
    ~3 alone)."""
    found, codes, sizes, max_len = (gathered.found, gathered.codes, gathered.sizes,
                                    gathered.max_len)
    b = len(sizes)
    item_seq = np.zeros((b, max_len), dtype=np.int64)
    event_type = np.zeros((b, max_len), dtype=np.int64)
    rows = np.repeat(np.arange(b), sizes)
    known = found != 0
    found, codes, rows = found[known], codes[known], rows[known]
    counts = np.bincount(rows, minlength=b)
    from_end = np.cumsum(counts)[rows] - np.arange(len(found)) - 1  # 0: a row's newest known
    keep = from_end < max_len
    rows, cols = rows[keep], max_len - 1 - from_end[keep]
    item_seq[rows, cols] = found[keep]
    event_type[rows, cols] = codes[keep]
    lengths = np.minimum(counts, max_len)
    width = max(1, max((len(e) for e in gathered.excluded), default=0))
    exclude = np.zeros((b, width), dtype=np.int64)
    for row, ids in enumerate(gathered.excluded):
        exclude[row, :len(ids)] = ids
    return EncodedBatch(item_seq, event_type, exclude, lengths)
