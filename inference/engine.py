"""One batch of users in, one result per user out: what the micro-batcher runs.

It runs in three steps, ``prepare`` (the graphs' inputs), ``infer`` (the graphs, the
campaign scores, which window item explains each of the graphs' top items, and which of
those items the catalog's rules allow) and ``finish`` (the picks, worded reasons, ads), so
that the micro-batcher's scoring thread runs only ``infer``, array work that leaves the
GIL to the event loop, and every Python step stays on the loop's thread (see
inference.batcher on why). The rules run in ``infer`` over a per-model array view of the
catalog (``CatalogView``, kept current with the items that changed); only users with
too few allowed model items are filtered in Python, with popular ones to fill up.

For each batch the model is picked per user once (A/B split), so a hot swap in the middle
never mixes versions within a user's result, and a batch finishes on the models it
started with. Users whose window holds no item the model knows get popular items instead
of a model guess; everyone else is scored by the graph, filtered, explained, and scored
against the ad campaigns.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple, TypeVar

import numpy as np

from inference.ads import Campaign, ResolvedCampaign, campaign_scores, resolve, segment
from inference.popularity import DecayedPopularity
from inference.postfilter import (
    GENERIC_REASON,
    CatalogLookup,
    CatalogView,
    FilterRules,
    Pick,
    graph_exclusions,
    no_catalog,
    reason_text,
    select,
    word_reasons,
)
from inference.postgraph import first_picks, sources_of
from inference.registry import LoadedModel, ModelRegistry
from inference.windows import EncodedBatch, GatheredWindows, Window, gather_windows, place_windows

POPULAR_REFRESH_S = 1.0
# A ranking holds at least this many popular items: how many a batch needs grows with its
# users' exclusions, and one ranking should serve every batch of its second.
POPULAR_MIN = 128
# Pick(*fields) without NamedTuple's __new__, a Python function: a third less per pick
_make_pick = functools.partial(tuple.__new__, Pick)
_T = TypeVar("_T")


class UserRequest(NamedTuple):  # a tuple: one per event
    window: Window
    bought: frozenset[str] = frozenset()  # bought earlier than the window reaches


@dataclass(frozen=True)
class AdCandidate:
    campaign_id: str
    score: float
    segment: str


@dataclass(frozen=True)
class UserResult:
    user_id: str
    items: list[Pick]
    model_version: str
    variant: str
    backfilled: int  # items that came from popularity because too few survived the rules
    ads: list[AdCandidate] = field(default_factory=list)  # over threshold; caps not applied


@dataclass
class _Group:
    """The rows of a batch that one model scores, from ``prepare`` to ``finish``."""

    model: LoadedModel
    variant: str
    members: list[int]  # the rows' positions in the batch
    rows: list[tuple[str, UserRequest]]
    excluded: list[set[str]]
    gathered: GatheredWindows  # the windows as prepare took them, placed by infer (batch)
    view: CatalogView
    campaigns: list[ResolvedCampaign]
    # the graphs' top items and scores per row (none where a window has no known item), and
    # per top item the window item that explains it and the user's event code with it
    top_items: np.ndarray
    top_scores: np.ndarray
    sources: np.ndarray
    source_codes: np.ndarray
    # rows whose exclusions did not all reach the graph: filtered in Python (``select``)
    truncated: list[bool] = field(default_factory=list)
    batch: EncodedBatch | None = None  # the graph's inputs
    # top_items, top_scores, sources and source_codes at the first ``top_k`` items every
    # rule allows (first_allowed), and the rows whose picks those are: the others (too few
    # allowed, or exclusions the graph did not get) are filtered again in finish
    chosen: tuple[np.ndarray, ...] = ()
    quick: list[bool] = field(default_factory=list)
    ad_scores: np.ndarray | None = None


@dataclass
class Prepared:
    """A batch on its way through the Recommender (see ``prepare``)."""

    size: int
    now_s: float
    groups: list[_Group]


class Recommender:
    """Scores batches of ``(user_id, UserRequest)`` with the registry's models."""

    def __init__(self, registry: ModelRegistry, popularity: DecayedPopularity,
                 rules: FilterRules, catalog: CatalogLookup = no_catalog,
                 campaigns: Sequence[Campaign] = (),
                 catalog_changes: Callable[[], Iterable[str]] | None = None) -> None:
        """``catalog_changes`` returns the ids of the items that changed in ``catalog``
        since it was last called (streams.catalog.CatalogCache.take_changes); without it
        the catalog is taken to stay as it is."""
        self.registry = registry
        self.popularity = popularity
        self.rules = rules
        self.catalog = catalog
        self.catalog_changes = catalog_changes
        self.campaigns = list(campaigns)
        self._resolved: dict[str, list[ResolvedCampaign]] = {}  # per model version
        self._views: dict[str, CatalogView] = {}  # per model version
        self._categories: dict[str, int] = {}  # category codes, shared by the views
        self._popular_cache: tuple[float, int, list[tuple[str, float, str]]] = (0.0, 0, [])

    def _catalog_changed(self) -> None:
        """Bring the catalog views up to date; campaign categories are resolved through
        the catalog, so those are resolved again."""
        if self.catalog_changes is None:
            return
        changed = self.catalog_changes()
        if not changed:
            return
        changed = list(changed)
        for view in self._views.values():
            view.update(changed, self.catalog)
        self._resolved = {}

    def _view_for(self, model: LoadedModel) -> CatalogView:
        view = self._views.get(model.version)
        if view is None:
            view = CatalogView(model.index, self.catalog, self.rules, self._categories)
            self._views = self._keep_live(self._views, model.version, view)
        return view

    def _campaigns_for(self, model: LoadedModel, view: CatalogView) -> list[ResolvedCampaign]:
        resolved = self._resolved.get(model.version)
        if resolved is None:
            resolved = resolve(self.campaigns, view)
            self._resolved = self._keep_live(self._resolved, model.version, resolved)
        return resolved

    def _keep_live(self, cache: dict[str, _T], version: str, value: _T) -> dict[str, _T]:
        """``cache`` with ``value`` for ``version``, less the versions no longer in use
        (so swapped-out models are not pinned)."""
        live = self._live_versions()
        return {version: value, **{v: c for v, c in cache.items() if v in live}}

    def _live_versions(self) -> set[str]:
        live = {self.registry.current.version}
        if self.registry.candidate is not None:
            live.add(self.registry.candidate.version)
        return live

    def __call__(self, rows: Sequence[tuple[str, UserRequest]],
                 now_s: float | None = None) -> list[UserResult]:
        """``prepare``, ``infer`` and ``finish`` in a row."""
        return self.finish(self.infer(self.prepare(rows, now_s)))

    def prepare(self, rows: Sequence[tuple[str, UserRequest]],
                now_s: float | None = None) -> Prepared:
        """The batch as the graphs' inputs, one group per model (Python: the loop's side)."""
        now_s = time.time() if now_s is None else now_s
        self._catalog_changed()
        picked = [self.registry.pick(user) for user, _ in rows]
        members: dict[int, list[int]] = {}
        for i, (model, _) in enumerate(picked):
            members.setdefault(id(model), []).append(i)
        return Prepared(len(rows), now_s, [
            self._prepare_group(*picked[group[0]], group, [rows[i] for i in group])
            for group in members.values()])

    def _prepare_group(self, model: LoadedModel, variant: str, members: list[int],
                       rows: list[tuple[str, UserRequest]]) -> _Group:
        meta = model.metadata
        excluded = [graph_exclusions(req.window, self.rules, req.bought) for _, req in rows]
        # the graph takes its top K+E+1 before excluding: K+E+1 must fit in the item table
        max_exclude = max(0, len(meta.item_ids) - 1 - meta.top_k)
        gathered = gather_windows(model.index, [req.window for _, req in rows], meta.max_len,
                                  excluded, max_exclude=max_exclude)
        no_items = np.zeros((len(rows), 0), dtype=np.int64)
        view = self._view_for(model)
        return _Group(model, variant, members, rows, excluded, gathered, view,
                      self._campaigns_for(model, view) if self.campaigns else [],
                      no_items, np.zeros((len(rows), 0), dtype=np.float32), no_items, no_items,
                      truncated=[len(e) > max_exclude for e in excluded])

    def infer(self, prepared: Prepared) -> Prepared:
        """Lay out the graphs' inputs, run the graphs, the campaign scores, the catalog's
        rules and the reasons' similarities on a prepared batch, and take the allowed
        items' columns: array work only, which leaves the GIL to the loop, so it is what
        the scoring thread does. (Indexing with an array makes numpy let go of the GIL,
        and on the loop each such step could then wait up to the switch interval to get
        it back: see place_windows.)"""
        for group in prepared.groups:
            batch = group.batch = place_windows(group.gathered)
            n = len(group.rows)
            known = np.flatnonzero(batch.lengths > 0)
            if not known.size:
                continue
            items, scores, user_vec = group.model.session.score(
                batch.item_seq[known], batch.event_type[known], batch.exclude[known],
                batch.lengths[known])
            group.top_items = np.zeros((n, items.shape[1]), dtype=np.int64)
            group.top_scores = np.zeros((n, items.shape[1]), dtype=np.float32)
            group.top_items[known], group.top_scores[known] = items, scores
            # The reasons' sources: for each row's first allowed items, and for all of the
            # graph's items only in the rows that finish filters again. Each item's source
            # depends on that item and the window alone: a third of the work for a graph
            # of 30 items. Both are graphs (inference.postgraph): one call each, not ~30
            # numpy steps that each give the GIL up to a busy loop.
            seq, events, units = batch.item_seq, batch.event_type, group.model.unit_embeddings
            longest = int(batch.lengths.max())
            columns, allowed, *chosen = first_picks(
                group.top_items, group.top_scores, group.view, self.rules.top_k,
                self.rules.diversity_cap, seq, events, longest, units)
            quick = (allowed == self.rules.top_k) & ~np.array(group.truncated, dtype=bool)
            group.sources = np.zeros_like(group.top_items)
            group.source_codes = np.zeros_like(group.top_items)
            again = np.flatnonzero(~quick)
            if again.size:
                group.sources[again], group.source_codes[again] = sources_of(
                    group.top_items[again], seq[again], events[again], longest, units)
            if columns.size:
                group.quick = quick.tolist()
                group.chosen = tuple(chosen)
            if group.campaigns:
                group.ad_scores = np.zeros((n, len(group.campaigns)), dtype=np.float32)
                group.ad_scores[known] = campaign_scores(user_vec, group.model.embeddings,
                                                         group.campaigns)
        return prepared

    def finish(self, prepared: Prepared) -> list[UserResult]:
        """Filters, back-fill, reasons and ad candidates of an inferred batch (Python: the
        loop's side), one result per row in the order the rows came."""
        results: list[UserResult | None] = [None] * prepared.size
        for group in prepared.groups:
            for i, result in zip(group.members, self._finish_group(group, prepared.now_s),
                                 strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _popular(self, n: int, now_s: float) -> list[tuple[str, float, str]]:
        # Ranking the popularity table costs more than scoring a small batch (~1 ms for
        # 12,000 items); the ranking barely moves within a second, so it is reused for that
        # long. It is ranked deep enough for any batch, so that a batch needing more items
        # than any before it in that second (more exclusions: with exclude_viewed, a
        # longer window) does not rank it again.
        cached_at, cached_n, cached = self._popular_cache
        if cached_n >= n and 0 <= now_s - cached_at < POPULAR_REFRESH_S:
            return cached[:n]
        depth = max(n, POPULAR_MIN, cached_n)
        fresh = [(item, score, "popular") for item, score in self.popularity.top(depth, now_s)]
        self._popular_cache = (now_s, depth, fresh)
        return fresh[:n]

    def _picks(self, group: _Group,
               popular: list[tuple[str, float, str]]) -> tuple[list[list[Pick]], list[bool]]:
        """Each row's picks with their reasons. Where the scoring step found ``top_k``
        allowed items among the graph's (first_allowed), those are the picks; the other
        rows (too few, or exclusions the graph did not get) go through ``select`` over
        all of the graph's items and then the popular ones, as a lone user would. Also
        which rows were those of first_allowed (they hold model items only)."""
        ids = group.model.index.ids
        arrays = (group.top_items, group.top_scores, group.sources, group.source_codes)
        quick = group.quick or [False] * len(group.rows)
        out: list[list[Pick]] = [[] for _ in quick]
        if any(quick):
            chosen = [a.tolist() for a in group.chosen]
            for row, (items_row, scores_row, sources_row, codes_row, fast) in enumerate(
                    zip(*chosen, quick, strict=True)):
                if fast:
                    reasons = [reason_text(ids[source], code) if source else GENERIC_REASON
                               for source, code in zip(sources_row, codes_row, strict=True)]
                    out[row] = list(map(_make_pick, zip([ids[i] for i in items_row],
                                                        scores_row, repeat("model"), reasons)))
        for row in (r for r, fast in enumerate(quick) if not fast):
            # -inf: excluded by the graph; 0: padding (a catalog smaller than K)
            from_model = [(ids[i], score, "model", source, code)
                          for i, score, source, code in zip(*(a[row].tolist() for a in arrays),
                                                            strict=True)
                          if i > 0 and score > -math.inf]
            out[row] = word_reasons([select(itertools.chain(from_model, popular),
                                            group.excluded[row], self.catalog, self.rules)],
                                    ids)[0]
        return out, quick

    def _finish_group(self, group: _Group, now_s: float) -> list[UserResult]:
        model, rows, excluded, batch = group.model, group.rows, group.excluded, group.batch
        assert batch is not None  # placed by infer
        ad_scores, campaigns = group.ad_scores, group.campaigns
        # enough popular items to refill any one user after the rules take their share
        popular = self._popular(3 * self.rules.top_k + max(map(len, excluded), default=0),
                                now_s)
        explained, model_only = self._picks(group, popular)
        lengths = batch.lengths.tolist()
        out = []
        for row, ((user, req), picks, quick) in enumerate(zip(rows, explained, model_only,
                                                              strict=True)):
            # a user with known history whose model items ran out got popular ones instead
            backfilled = (sum(p.source == "popular" for p in picks)
                          if lengths[row] and not quick else 0)
            ads = []
            if ad_scores is not None and lengths[row] > 0:
                for j, rc in enumerate(campaigns):
                    if ad_scores[row, j] >= rc.campaign.threshold:
                        ads.append(AdCandidate(rc.campaign.campaign_id,
                                               float(ad_scores[row, j]),
                                               segment(req.window, self.catalog, rc.campaign)))
            out.append(UserResult(user, picks, model.version, group.variant, backfilled, ads))
        return out
