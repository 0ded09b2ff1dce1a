"""Topic specs follow the settings: partitions configurable, catalog and item statistics compacted, outputs present."""

from __future__ import annotations

from streams.broker.topics import topic_specs
from streams.core.settings import Settings, TopicSettings


def test_default_topics() -> None:
    specs = {spec.name: spec for spec in topic_specs(Settings())}
    assert set(specs) == {"news", "news.by-ticker", "transactions", "labels", "transactions.by-merchant",
                          "labels.by-card", "clicks", "catalog", "alerts.sentiment", "alerts.fraud", "recommendations",
                          "item-deltas", "item-stats", "deadletter"}
    # the fraud stages read their topics in pairs, co-partitioned: the same partitions each
    paired = ("transactions", "labels", "transactions.by-merchant", "labels.by-card")
    assert {specs[n].partitions for n in paired} == {3}
    assert specs["news"].partitions == specs["transactions"].partitions == specs["clicks"].partitions == 3
    assert specs["news.by-ticker"].partitions == specs["news"].partitions  # the surge stage: one owner per ticker
    assert specs["catalog"].cleanup_policy == specs["item-stats"].cleanup_policy == "compact"
    assert specs["item-deltas"].cleanup_policy == "delete" and specs["item-deltas"].partitions == 3
    assert specs["deadletter"].cleanup_policy == "delete"


def test_partitions_come_from_settings() -> None:
    settings = Settings(topics=TopicSettings(news="headlines", news_partitions=8))
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert specs["headlines"].partitions == specs["news.by-ticker"].partitions == 8
