"""Kafka: 1,000 keyed messages produced with confluent-kafka come back, all of them, through aiokafka."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.core.settings import Settings

COUNT = 1000


async def test_thousand_keyed_messages_round_trip(settings: Settings, unique: str) -> None:
    topic = f"it-roundtrip-{unique}"
    admin = AdminClient(settings.kafka.confluent_config())
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)

    producer = Producer({**settings.kafka.confluent_config(), "enable.idempotence": True})
    failures: list[str] = []
    for i in range(COUNT):
        producer.produce(topic, key=f"card-{i % 50}", value=f"event-{i}",
                         on_delivery=lambda err, _msg: failures.append(str(err)) if err else None)
    assert producer.flush(30) == 0
    assert failures == []

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap_servers,
                                auto_offset_reset="earliest", group_id=f"it-{unique}")
    await consumer.start()
    seen: dict[str, str] = {}
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    try:
        async with asyncio.timeout(60):
            while len(seen) < COUNT:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        seen[record.value.decode()] = record.key.decode()
                        partitions_of_key[record.key.decode()].add(tp.partition)
    finally:
        await consumer.stop()
        for future in admin.delete_topics([topic]).values():
            future.result(timeout=30)  # an unawaited delete can be dropped with the client

    assert set(seen) == {f"event-{i}" for i in range(COUNT)}
    assert all(seen[f"event-{i}"] == f"card-{i % 50}" for i in range(COUNT))
    # one key, one partition: per-card order is preserved
    assert all(len(parts) == 1 for parts in partitions_of_key.values())
    assert len({p for parts in partitions_of_key.values() for p in parts}) == 3
