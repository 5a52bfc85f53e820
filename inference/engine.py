"""One batch of users in, one result per user out: what the micro-batcher runs.

It runs in three steps, ``prepare`` (the graphs' inputs), ``infer`` (the graphs, the
campaign scores, and which window item explains each of the graphs' top items) and
``finish`` (filters, worded reasons, ads), so that the micro-batcher's scoring thread runs
only ``infer``, array work that leaves the GIL to the event loop, and every Python step
stays on the loop's thread (see inference.batcher on why).

For each batch the model is picked per user once (A/B split), so a hot swap in the middle
never mixes versions within a user's result, and a batch finishes on the models it
started with. Users whose window holds no item the model knows get popular items instead
of a model guess; everyone else is scored by the graph, filtered, explained, and scored
against the ad campaigns.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from inference.ads import Campaign, ResolvedCampaign, campaign_scores, resolve, segment
from inference.popularity import DecayedPopularity
from inference.postfilter import (
    CatalogLookup,
    FilterRules,
    Pick,
    graph_exclusions,
    nearest_sources,
    no_catalog,
    select,
    word_reasons,
)
from inference.registry import LoadedModel, ModelRegistry
from inference.windows import EncodedBatch, Window, encode_windows

POPULAR_REFRESH_S = 1.0


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
    batch: EncodedBatch
    campaigns: list[ResolvedCampaign]
    # the graphs' top items and scores per row (none where a window has no known item), and
    # per top item the window item that explains it and the user's event code with it
    top_items: np.ndarray
    top_scores: np.ndarray
    sources: np.ndarray
    source_codes: np.ndarray
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
                 campaigns: Sequence[Campaign] = ()) -> None:
        self.registry = registry
        self.popularity = popularity
        self.rules = rules
        self.catalog = catalog
        self.campaigns = list(campaigns)
        self._resolved: dict[str, list[ResolvedCampaign]] = {}  # per model version
        self._popular_cache: tuple[float, int, list[tuple[str, float, str]]] = (0.0, 0, [])

    def catalog_changed(self) -> None:
        """Campaign categories are resolved through the catalog: resolve them again."""
        self._resolved = {}

    def _campaigns_for(self, model: LoadedModel) -> list[ResolvedCampaign]:
        resolved = self._resolved.get(model.version)
        if resolved is None:
            resolved = resolve(self.campaigns, model.index, self.catalog)
            # keep the versions in use only, so swapped-out models are not pinned
            self._resolved = {model.version: resolved,
                              **{v: r for v, r in self._resolved.items()
                                 if v in self._live_versions()}}
        return resolved

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
        batch = encode_windows(model.index, [req.window for _, req in rows], meta.max_len,
                               excluded, max_exclude=max(0, len(meta.item_ids) - 1 - meta.top_k))
        no_items = np.zeros((len(rows), 0), dtype=np.int64)
        return _Group(model, variant, members, rows, excluded, batch,
                      self._campaigns_for(model) if self.campaigns else [],
                      no_items, np.zeros((len(rows), 0), dtype=np.float32), no_items, no_items)

    def infer(self, prepared: Prepared) -> Prepared:
        """Run the graphs, the campaign scores and the reasons' similarities (for every top
        item, before the filters pick some) on a prepared batch: array work only, which
        leaves the GIL to the loop, so it is what the scoring thread does."""
        for group in prepared.groups:
            batch, n = group.batch, len(group.rows)
            known = np.flatnonzero(batch.lengths > 0)
            if not known.size:
                continue
            items, scores, user_vec = group.model.session.score(
                batch.item_seq[known], batch.event_type[known], batch.exclude[known],
                batch.lengths[known])
            group.top_items = np.zeros((n, items.shape[1]), dtype=np.int64)
            group.top_scores = np.zeros((n, items.shape[1]), dtype=np.float32)
            group.top_items[known], group.top_scores[known] = items, scores
            group.sources, group.source_codes = nearest_sources(
                group.top_items, batch.item_seq, batch.event_type, group.model.unit_embeddings)
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
        # Ranking the popularity table costs more than scoring a small batch; the ranking
        # barely moves within a second, so it is reused for that long.
        cached_at, cached_n, cached = self._popular_cache
        if cached_n >= n and 0 <= now_s - cached_at < POPULAR_REFRESH_S:
            return cached[:n]
        fresh = [(item, score, "popular") for item, score in self.popularity.top(n, now_s)]
        self._popular_cache = (now_s, n, fresh)
        return fresh

    def _finish_group(self, group: _Group, now_s: float) -> list[UserResult]:
        model, rows, excluded, batch = group.model, group.rows, group.excluded, group.batch
        ad_scores, campaigns = group.ad_scores, group.campaigns
        # enough popular items to refill any one user after the rules take their share
        popular = self._popular(3 * self.rules.top_k + max(map(len, excluded), default=0),
                                now_s)
        ids = model.index.ids
        chosen = []
        sources, codes = group.sources.tolist(), group.source_codes.tolist()
        # -inf: excluded by the graph; 0: padding (a catalog smaller than K)
        for row, (items_row, scores_row) in enumerate(zip(group.top_items.tolist(),
                                                          group.top_scores.tolist(),
                                                          strict=True)):
            from_model = [(ids[i], score, "model", source, code)
                          for i, score, source, code in zip(items_row, scores_row, sources[row],
                                                            codes[row], strict=True)
                          if i > 0 and score > -math.inf]
            chosen.append(select(itertools.chain(from_model, popular), excluded[row],
                                 self.catalog, self.rules))
        explained = word_reasons(chosen, ids)
        lengths = batch.lengths.tolist()
        out = []
        for row, ((user, req), picks) in enumerate(zip(rows, explained, strict=True)):
            # a user with known history whose model items ran out got popular ones instead
            backfilled = sum(p.source == "popular" for p in picks) if lengths[row] else 0
            ads = []
            if ad_scores is not None and lengths[row] > 0:
                for j, rc in enumerate(campaigns):
                    if ad_scores[row, j] >= rc.campaign.threshold:
                        ads.append(AdCandidate(rc.campaign.campaign_id,
                                               float(ad_scores[row, j]),
                                               segment(req.window, self.catalog, rc.campaign)))
            out.append(UserResult(user, picks, model.version, group.variant, backfilled, ads))
        return out
