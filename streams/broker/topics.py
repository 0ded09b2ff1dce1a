"""The pipeline's topics (the data flow): names and partitions from the settings; catalog and item-stats compacted."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streams.broker.failures import ErrorLog, describe_failure
from streams.core.errors import ServiceError
from streams.core.record import Record
from streams.core.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    """One topic to create, or one found on the broker."""

    name: str
    partitions: int
    cleanup_policy: str = "delete"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the data flow with its configured partitions."""
    t = settings.topics
    return [
        TopicSpec(t.news, t.news_partitions),
        TopicSpec(t.news_by_ticker, t.news_partitions),
        TopicSpec(t.transactions, t.transactions_partitions),
        TopicSpec(t.labels, t.transactions_partitions),  # co-partitioned with transactions.by-merchant
        TopicSpec(t.transactions_by_merchant, t.transactions_partitions),
        TopicSpec(t.labels_by_card, t.transactions_partitions),
        TopicSpec(t.clicks, t.clicks_partitions),
        TopicSpec(t.catalog, t.catalog_partitions, "compact"),
        TopicSpec(t.alerts_sentiment, t.output_partitions),
        TopicSpec(t.alerts_fraud, t.output_partitions),
        TopicSpec(t.recommendations, t.output_partitions),
        TopicSpec(t.item_deltas, t.item_stats_partitions),
        TopicSpec(t.item_stats, t.item_stats_partitions, "compact"),
        TopicSpec(t.deadletter, t.output_partitions),
    ]


def admin_client(settings: Settings, errors: ErrorLog | None = None) -> AdminClient:
    """An admin client with the configured bootstrap servers and security options."""
    return AdminClient(settings.kafka.confluent_config() | ({"error_cb": errors} if errors is not None else {}))


def _metadata(settings: Settings, timeout_s: float, topic: str | None = None) -> tuple[AdminClient, Any]:
    """An admin client and the cluster's metadata; a failure says whether credentials, TLS or the address is wrong."""
    errors = ErrorLog()
    admin = admin_client(settings, errors)
    try:
        return admin, admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as error:
        admin.poll(0.5)  # serve the error events that say why
        raise ServiceError(describe_failure(settings.kafka, error, errors)) from None


def create_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create the missing topics; returns each topic's outcome ('created' or 'exists')."""
    admin, metadata = _metadata(settings, timeout_s)
    existing = set(metadata.topics)
    outcome = {spec.name: "exists" for spec in topic_specs(settings) if spec.name in existing}
    new = [
        NewTopic(spec.name, num_partitions=spec.partitions,
                 replication_factor=settings.kafka.replication_factor,
                 config={"cleanup.policy": spec.cleanup_policy})
        for spec in topic_specs(settings) if spec.name not in existing
    ]
    for name, future in (admin.create_topics(new) if new else {}).items():
        try:
            future.result(timeout=timeout_s)
            outcome[name] = "created"
        except Exception as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise ServiceError(f"could not create topic {name}: {error}") from error
            outcome[name] = "exists"
    return outcome


def list_topics(settings: Settings, timeout_s: float = 30.0) -> list[TopicSpec]:
    """The broker's non-internal topics with partition count and cleanup policy."""
    admin, metadata = _metadata(settings, timeout_s)
    names = sorted(name for name in metadata.topics if not name.startswith("__"))
    if not names:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    policies = {
        resource.name: future.result(timeout=timeout_s)["cleanup.policy"].value
        for resource, future in admin.describe_configs(resources).items()
    }
    return [TopicSpec(name, len(metadata.topics[name].partitions), policies[name]) for name in names]


def read_records(settings: Settings, topic: str, last: int | None = None, timeout_s: float = 10.0) -> list[Record]:
    """The records now in `topic` (all, or the `last` per partition), read without joining a consumer group."""
    errors = ErrorLog()
    consumer = Consumer(settings.kafka.confluent_config() | {"error_cb": errors,
                        "group.id": f"lepton-reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    try:
        try:
            info = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException as error:
            consumer.poll(0.5)  # serve the error events that say why
            raise ServiceError(describe_failure(settings.kafka, error, errors)) from None
        if info is None or info.error is not None or not info.partitions:
            return []
        ends: dict[int, int] = {}
        assignment = []
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, low if last is None else max(low, high - last)))
        if not assignment:
            return []
        consumer.assign(assignment)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s + len(assignment)
        while ends and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            records.append(Record(message.topic(), message.partition(), message.offset(), message.key(),
                                  message.value()))
            if message.offset() + 1 >= ends.get(message.partition(), 0):
                ends.pop(message.partition(), None)
        return records
    finally:
        consumer.close()


def group_lag(settings: Settings, group: str, topics: list[str], timeout_s: float = 10.0) -> int:
    """Messages of `topics` that consumer group `group` has not committed yet, over every partition (read without
    joining the group: nothing is rebalanced)."""
    consumer = Consumer(settings.kafka.confluent_config() | {"group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=timeout_s).topics
        tps = [TopicPartition(topic, p) for topic in topics if topic in metadata for p in metadata[topic].partitions]
        committed = consumer.committed(tps, timeout=timeout_s) if tps else []
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout_s)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    finally:
        consumer.close()


def delete_run(s: Settings, run: str) -> None:
    """Delete every topic and consumer group of this run (isolated, scratch and the worker's internal ones)."""
    admin = admin_client(s)
    groups = [g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid if run in g.group_id]
    for future in (admin.delete_consumer_groups(groups) if groups else {}).values():
        future.result(timeout=30)
    names = [name for name in admin.list_topics(timeout=30).topics if run in name]
    for future in (admin.delete_topics(names) if names else {}).values():
        future.result(timeout=30)
