"""Topic specs: the catalog is compacted, event topics have retention, user topics share
partition counts so a user's events, rows and outputs are co-partitioned."""

from __future__ import annotations

from shopstream import topics as t


def test_catalog_is_compacted_and_event_topics_have_retention(settings_factory):
    settings = settings_factory(event_retention_ms=1234)
    specs = {s.name: s for s in t.TOPICS}
    assert specs[t.CATALOG].config(settings)["cleanup.policy"] == "compact"
    for name in (t.VIEWS, t.CLICKS, t.RECS, t.ADS, t.ERASE):
        assert specs[name].config(settings) == {"cleanup.policy": "delete", "retention.ms": "1234"}


def test_user_keyed_topics_share_the_partition_count(settings_factory):
    settings = settings_factory(topic_partitions=6)
    counts = {s.partitions(settings) for s in t.TOPICS if s.per_user}
    assert counts == {6}
