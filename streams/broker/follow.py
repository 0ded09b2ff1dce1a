"""Read a (compacted) topic in full on every process: all partitions, no consumer group, from the beginning, then on.

The recommendation workers each need all of the catalog and all of the item statistics, while a consumer group
would give each worker only its partitions. A `TopicFollower` assigns itself every partition from the earliest
offset and never commits; `caught_up` says when it has read what the topic held when it started (the high
watermarks then), so a worker can rebuild its view before serving. Blocking calls: run them in a thread.
"""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams.broker.failures import ErrorLog, describe_failure
from streams.core.errors import ServiceError
from streams.core.record import Record
from streams.core.settings import Settings


class TopicFollower:
    """Every partition of one topic, from the beginning, without a group (nothing is committed)."""

    def __init__(self, settings: Settings, topic: str, timeout_s: float = 30.0) -> None:
        self.topic = topic
        errors = ErrorLog()
        self._consumer = Consumer(settings.kafka.confluent_config() | {
            "error_cb": errors, "group.id": f"lepton-follower-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "auto.offset.reset": "earliest"})
        try:
            info = self._consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        except KafkaException as error:
            self._consumer.poll(0.5)  # serve the error events that say why
            self._consumer.close()
            raise ServiceError(describe_failure(settings.kafka, error, errors)) from None
        if info is None or info.error is not None or not info.partitions:
            self._consumer.close()
            raise ServiceError(f"topic {topic} does not exist: create the topics first (`lepton topics create`)")
        self._ends: dict[int, int] = {}
        assignment = []
        for partition in sorted(info.partitions):
            low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                self._ends[partition] = high
            assignment.append(TopicPartition(topic, partition, low))
        self._consumer.assign(assignment)

    @property
    def caught_up(self) -> bool:
        """True once every record the topic held at the start was read."""
        return not self._ends

    def poll(self, max_records: int = 500, timeout_s: float = 0.5) -> list[Record]:
        """The next records (possibly none), in order per partition."""
        records = []
        for message in self._consumer.consume(max_records, timeout_s):
            if message.error() is not None:
                continue
            partition, offset = message.partition(), message.offset()
            records.append(Record(message.topic(), partition, offset, message.key(), message.value()))
            if offset + 1 >= self._ends.get(partition, 0):
                self._ends.pop(partition, None)
        return records

    def close(self) -> None:
        self._consumer.close()
