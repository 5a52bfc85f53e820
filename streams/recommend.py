"""The inference stage: every accepted event leads to a fresh recommendation for its user,
and to ad-targeting events where a campaign fits and its frequency cap allows.

Each event's agent actor submits the user's window to the micro-batcher and awaits the
result, so table rows (latest recommendation, ad caps) are still written while handling the
event that caused them: they land in that user's changelog partition. Batches form across
the agent's concurrent actors (SHOPSTREAM_AGENT_CONCURRENCY). When several events of one
user meet in a batch, only the newest of them publishes.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

import faust

from inference.ads import decide, load_campaigns
from inference.batcher import MicroBatcher
from inference.engine import Recommender, UserRequest, UserResult
from inference.freqcap import decode as decode_caps
from inference.freqcap import encode as encode_caps
from inference.popularity import DecayedPopularity
from inference.postfilter import FilterRules
from inference.registry import ModelRegistry, RegistryWatcher
from schemas import (
    AdTargeting,
    ClickEvent,
    Recommendation,
    RecommendedItem,
    ViewEvent,
    encode,
    now_ms,
)
from shopstream import topics as t
from shopstream.config import Settings
from streams.catalog import CatalogCache
from streams.metrics import WorkerMetrics
from streams.state import UserState
from streams.tables import Tables

log = logging.getLogger(__name__)


def cap_key(user_id: str, campaign_id: str) -> str:
    return f"{user_id}\x1f{campaign_id}"


class ModelStage:
    def __init__(self, settings: Settings, registry: ModelRegistry, catalog: CatalogCache,
                 metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.campaigns = {c.campaign_id: c for c in (
            load_campaigns(settings.campaigns_path) if settings.campaigns_path else [])}
        self.popularity = DecayedPopularity(settings.popularity_half_life_s,
                                            settings.popularity_capacity)
        self._popular_events: deque[tuple[str, float]] = deque()
        self.recommender = Recommender(registry, self.popularity,
                                       FilterRules.from_settings(settings),
                                       catalog=catalog.lookup,
                                       campaigns=list(self.campaigns.values()))
        self.batcher: MicroBatcher[UserRequest, UserResult] = MicroBatcher(
            self._score, settings.max_batch_size, settings.max_wait_ms / 1000)
        self.watcher = RegistryWatcher(registry, settings.model_poll_s)
        # user -> (ts, event id) of the newest event waiting for a result. Concurrent actors
        # can take a user's events out of order, so "newest" is by timestamp.
        self._newest: dict[str, tuple[int, str]] = {}
        self.tables: Tables | None = None
        self.recs: faust.TopicT | None = None
        self.ads: faust.TopicT | None = None

    def bind(self, tables: Tables, recs: faust.TopicT, ads: faust.TopicT) -> None:
        self.tables, self.recs, self.ads = tables, recs, ads
        self.watcher.start()
        log.info("serving model %s; %d ad campaigns", self.registry.current.version,
                 len(self.campaigns))

    def _score(self, rows: Sequence[tuple[str, UserRequest]]) -> list[UserResult]:
        # runs in the scoring thread: popularity is only touched here
        while self._popular_events:
            item, ts_s = self._popular_events.popleft()
            self.popularity.add(item, ts_s)
        self.metrics.batch_size.observe(len(rows))
        return self.recommender(rows)

    async def on_update(self, event: ViewEvent | ClickEvent, state: UserState) -> None:
        user = event.user_id
        self._popular_events.append((event.item_id, event.ts / 1000))
        mine = (event.ts, event.event_id)
        if mine >= self._newest.get(user, mine):
            self._newest[user] = mine
        request = UserRequest(window=[(i.item_id, i.code) for i in state.window],
                              bought=frozenset(state.bought))
        result = await self.batcher.submit(user, request)
        if self._newest.get(user) != mine:
            return  # a newer event of this user publishes, or the user was erased meanwhile
        del self._newest[user]
        await self._publish(event, result)

    def forget(self, user_id: str) -> None:
        self._newest.pop(user_id, None)
        assert self.tables is not None
        for campaign_id in self.campaigns:
            self.tables.ad_caps.pop(cap_key(user_id, campaign_id), None)

    async def _publish(self, event: ViewEvent | ClickEvent, result: UserResult) -> None:
        assert self.tables is not None and self.recs is not None and self.ads is not None
        emitted = now_ms()
        rec = Recommendation.create(
            user_id=event.user_id, model_version=result.model_version, variant=result.variant,
            # built from the model's own output, so the items skip re-validation
            items=[RecommendedItem.model_construct(item_id=p.item_id, score=float(p.score),
                                                   reason=p.reason) for p in result.items],
            trigger_event_id=event.event_id, event_ts=event.ts, emitted_ts=emitted)
        raw = encode(rec)
        self.tables.last_recs[event.user_id] = raw
        await self.recs.send(key=event.user_id.encode(), value=raw)
        self.metrics.events_out.labels(topic=t.RECS).inc()
        self.metrics.latency.observe(max(0, emitted - event.ts) / 1000)
        for ad in result.ads:
            key = cap_key(event.user_id, ad.campaign_id)
            allowed, history = self._cap(key, ad.campaign_id, ad.score, emitted)
            if not allowed:
                continue
            target = AdTargeting.create(
                user_id=event.user_id, campaign_id=ad.campaign_id, score=ad.score,
                segment=ad.segment, model_version=result.model_version,
                trigger_event_id=event.event_id, event_ts=event.ts, emitted_ts=emitted)
            await self.ads.send(key=event.user_id.encode(), value=encode(target))
            self.metrics.events_out.labels(topic=t.ADS).inc()

    def _cap(self, key: str, campaign_id: str, score: float, now: int) -> tuple[bool, list[int]]:
        assert self.tables is not None
        history = decode_caps(self.tables.ad_caps.get(key))
        allowed, history = decide(self.campaigns[campaign_id], score, history, now)
        if allowed:
            self.tables.ad_caps[key] = encode_caps(history)
        return allowed, history
