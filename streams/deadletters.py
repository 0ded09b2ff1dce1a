"""Reading and replaying the dead-letter topic (the logic behind `lepton deadletter tail|replay`)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from streams.decoding import Decoder
from streams.errors import ProduceError
from streams.events import DeadLetter
from streams.producer import EventProducer
from streams.settings import Settings, get_settings


def read_topic(settings: Settings, topic: str, last: int | None = None, timeout_s: float = 10.0) -> list[bytes]:
    """Values currently in `topic` (all, or the `last` per partition), read without a consumer group commit."""
    consumer = Consumer(
        settings.kafka.confluent_config()
        | {"group.id": f"lepton-deadletter-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout_s)
        except KafkaException as error:
            raise ProduceError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {error.args[0]}") from None
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            return []
        ends: dict[int, int] = {}
        assignment = []
        for partition in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            if high > low:
                start = low if last is None else max(low, high - last)
                ends[partition] = high
                assignment.append(TopicPartition(topic, partition, start))
        if not assignment:
            return []
        consumer.assign(assignment)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            values.append(message.value() or b"")
            if message.offset() + 1 >= ends.get(message.partition(), 0):
                ends.pop(message.partition(), None)
        return values
    finally:
        consumer.close()


def parse_letters(values: list[bytes]) -> tuple[list[DeadLetter], int]:
    """Dead letters parsed from raw values, oldest first, and how many values were not dead letters at all."""
    letters, unreadable = [], 0
    for value in values:
        try:
            letters.append(DeadLetter.model_validate_json(value))
        except ValidationError:
            unreadable += 1
    letters.sort(key=lambda letter: letter.received_at)
    return letters, unreadable


@dataclass
class ReplayReport:
    """What `replay` did with each selected dead letter."""

    replayed: int = 0
    truncated: int = 0
    still_invalid: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def replay(
    letters: list[DeadLetter],
    *,
    settings: Settings | None = None,
    target: str | None = None,
    only_valid: bool = False,
    dry_run: bool = False,
    producer: EventProducer | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Re-publish the original bytes of dead letters to their source topic (or `target`), with their keys.

    Truncated originals cannot be restored and are skipped; `only_valid` replays only those that the
    current decoder now accepts (after a fix), so the rest do not come straight back.
    """
    settings = settings or get_settings()
    report, seen = ReplayReport(), set()
    decoder = Decoder(settings) if only_valid else None
    producer = producer or (None if dry_run else EventProducer(settings))
    for index, letter in enumerate(letters):
        if progress:
            progress(index)
        if letter.id in seen:
            report.duplicates += 1
            continue
        seen.add(letter.id)
        if letter.original_truncated:
            report.truncated += 1
            continue
        original = base64.b64decode(letter.original_b64)
        key = base64.b64decode(letter.key_b64) if letter.key_b64 else None
        if decoder is not None and isinstance(decoder.decode(original, topic=letter.source_topic), DeadLetter):
            report.still_invalid += 1
            continue
        if producer is not None:
            producer.send_raw(target or letter.source_topic, original, key)
        report.replayed += 1
    if producer is not None:
        producer.flush()
        report.failed = producer.stats.failed
        report.replayed -= producer.stats.failed
        report.errors = list(producer.stats.errors)
    return report
