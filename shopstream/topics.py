"""The topics shopstream reads and writes, and creating them with the right configs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from shopstream.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    purpose: str
    keyed_by: str
    compacted: bool = False
    per_user: bool = True  # co-partitioned with the other user-keyed topics
    extra: dict[str, str] = field(default_factory=dict)

    def config(self, settings: Settings) -> dict[str, str]:
        if self.compacted:
            base = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        elif self.name == DEADLETTER:
            base = {"cleanup.policy": "delete",
                    "retention.ms": str(settings.deadletter_retention_ms)}
        else:
            base = {"cleanup.policy": "delete", "retention.ms": str(settings.event_retention_ms)}
        return {**base, **self.extra}

    def partitions(self, settings: Settings) -> int:
        return settings.topic_partitions if self.per_user else 1


VIEWS = "events.views"
CLICKS = "events.clicks"
CATALOG = "catalog.items"
ERASE = "users.erase"
RECS = "recs.users"
ADS = "ads.targeting"
DEADLETTER = "events.deadletter"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(VIEWS, "product views from the shop", "user_id"),
    TopicSpec(CLICKS, "clicks, add-to-cart and purchases", "user_id"),
    TopicSpec(CATALOG, "latest state of each catalog item", "item_id", compacted=True,
              per_user=False),
    TopicSpec(ERASE, "requests to forget a user", "user_id"),
    TopicSpec(RECS, "fresh recommendations per user (front-end)", "user_id"),
    TopicSpec(ADS, "ad-targeting events (marketing)", "user_id"),
    TopicSpec(DEADLETTER, "rejected input with the reason", "source topic/partition/offset",
              per_user=False),
)


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create every topic that does not exist yet; returns name -> 'created' | 'exists'."""
    return _create(settings, [
        (spec.name, spec.partitions(settings), spec.config(settings)) for spec in TOPICS
    ], timeout)


def create_changelogs(settings: Settings, partitions_by_name: dict[str, int],
                      timeout: float = 30.0) -> dict[str, str]:
    """Create tables' compacted changelog topics before the worker starts.

    Faust declares them itself, but on a first start it can subscribe before a new global
    table's changelog shows up in the metadata, and then waits for it forever.
    """
    config = {"cleanup.policy": "compact"}
    return _create(settings, [(name, n, config) for name, n in partitions_by_name.items()],
                   timeout)


def _create(settings: Settings, topics: list[tuple[str, int, dict[str, str]]],
            timeout: float) -> dict[str, str]:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    new = [NewTopic(name, num_partitions=partitions,
                    replication_factor=settings.topic_replication, config=config)
           for name, partitions, config in topics]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            outcome[name] = "created"
        except Exception as exc:
            err = exc.args[0] if exc.args else None
            if getattr(err, "code", lambda: None)() == KafkaError.TOPIC_ALREADY_EXISTS:
                outcome[name] = "exists"
            else:
                raise
        log.log(logging.INFO if outcome[name] == "created" else logging.DEBUG,
                "topic %s: %s", name, outcome[name])
    return outcome
