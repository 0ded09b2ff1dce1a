"""Against the real broker: a mix of valid and malformed events goes through the decoding boundary, and every
malformed one is found in the dead-letter topic with its reason (none lost, none extra), then replayed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streams.broker.producer import EventProducer
from streams.core.decoding import Decoder
from streams.core.events import INPUT_MODELS, DeadLetter
from streams.core.settings import Settings
from streams.generators import make_generator
from streams.generators.malformed import TEST_PAN, corpus
from streams.tools.deadletters import parse_letters, read_topic, replay

pytestmark = pytest.mark.integration
KEY = b"integration-key-0123456789abcdef"
KINDS = list(INPUT_MODELS)


@pytest.fixture(scope="module")
def topics(settings: Settings) -> Iterator[dict[str, str]]:
    """Fresh topics for this run: one per input kind (allowing 3 MB messages), a dead-letter and a replay topic."""
    run = uuid.uuid4().hex[:8]
    names = {kind: f"it-{run}-{kind}" for kind in [*KINDS, "deadletter", "replay"]}
    admin = AdminClient(settings.kafka.confluent_config())
    big = {"max.message.bytes": str(3 * 1024 * 1024)}
    new = [NewTopic(name, num_partitions=2, replication_factor=1, config=big) for name in names.values()]
    for future in admin.create_topics(new).values():
        future.result(timeout=30)
    yield names
    for future in admin.delete_topics(list(names.values())).values():
        future.exception(timeout=30)


def _produce_all(settings: Settings, items: list[tuple[str, str, bytes]]) -> dict[tuple[str, int, int], str]:
    """Produce (name, topic, payload) raw; return where each landed: (topic, partition, offset) -> name."""
    producer = Producer(settings.kafka.confluent_config() | {"message.max.bytes": 4 * 1024 * 1024})
    landed: dict[tuple[str, int, int], str] = {}
    failures: list[str] = []

    def report(name: str) -> Any:
        def callback(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(f"{name}: {error}")
            else:
                landed[(message.topic(), message.partition(), message.offset())] = name

        return callback

    for index, (name, topic, payload) in enumerate(items):
        producer.produce(topic, value=payload, key=str(index).encode(), on_delivery=report(name))
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not failures, failures
    return landed


def _consume_and_decode(settings: Settings, topics: dict[str, str], expected: int) -> tuple[int, int]:
    """What an agent does: consume, decode at the boundary, publish dead letters. Returns (valid, dead)."""
    consumer = Consumer(
        settings.kafka.confluent_config()
        | {"group.id": f"it-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topics[kind] for kind in KINDS])
    decoder = Decoder(settings, pii_key=KEY, models={topics[kind]: INPUT_MODELS[kind] for kind in KINDS})
    dead_letters = EventProducer(settings, pii_key=KEY)
    valid = dead = 0
    deadline = time.monotonic() + 90
    try:
        while valid + dead < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            result = decoder.decode(
                message.value(),
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                key=message.key(),
            )
            if isinstance(result, DeadLetter):
                dead_letters.send_dead_letter(result, topic=topics["deadletter"])
                dead += 1
            else:
                valid += 1
    finally:
        consumer.close()
    assert dead_letters.flush(60) == 0 and dead_letters.stats.failed == 0, dead_letters.stats.errors
    return valid, dead


def test_every_malformed_event_reaches_the_deadletter_topic_with_its_reason(
    settings: Settings, topics: dict[str, str]
) -> None:
    samples = {sample.name: sample for sample in corpus()}
    items = [(name, topics[sample.kind], sample.payload) for name, sample in samples.items()]
    start = time.time() - 600
    from datetime import UTC, datetime

    for kind in KINDS:
        if kind == "labels":  # outcomes come from a chargeback system, not from a generator
            for index in range(25):
                label = {"transaction_id": f"txn-{index}", "merchant_id": "m-1", "fraud": index % 2 == 0,
                         "transaction_ts": datetime.fromtimestamp(start, UTC).isoformat(),
                         "reported_at": datetime.fromtimestamp(start + 60, UTC).isoformat()}
                items.append((f"valid-label-{index}", topics[kind], json.dumps(label).encode()))
            continue
        generator = make_generator(kind, seed=5, start=datetime.fromtimestamp(start, UTC))
        for index, generated in zip(range(25), generator, strict=False):
            items.append((f"generated-{kind}-{index}", topics[kind], json.dumps(generated.record).encode()))
    landed = _produce_all(settings, items)
    assert len(landed) == len(items)

    valid, dead = _consume_and_decode(settings, topics, expected=len(items))
    malformed = {where: name for where, name in landed.items() if name in samples and samples[name].expected != "valid"}
    assert dead == len(malformed) and valid == len(items) - len(malformed)

    raw = read_topic(settings, topics["deadletter"])
    letters, unreadable = parse_letters(raw)
    assert unreadable == 0
    by_id = {letter.id: letter for letter in letters}
    assert len(by_id) == len(letters) == len(malformed)  # none lost, none extra
    for (topic, partition, offset), name in malformed.items():
        letter = by_id[f"{topic}:{partition}:{offset}"]
        assert letter.error_type == samples[name].expected, (name, letter.reason)
        assert letter.reason and letter.source_topic == topic and letter.source_offset == offset
        if not letter.redacted and not letter.original_truncated:
            assert base64.b64decode(letter.original_b64) == samples[name].payload
    assert not any(TEST_PAN.encode() in value for value in raw)  # card numbers never written


def test_tail_shows_reasons_and_replay_republishes_originals(settings: Settings, topics: dict[str, str]) -> None:
    letters, _ = parse_letters(read_topic(settings, topics["deadletter"]))
    assert letters, "run after the dead-letter test"
    env = os.environ | {"COLUMNS": "200"}
    shown = subprocess.run(
        [
            str(Path(sys.executable).parent / "lepton"),
            "deadletter",
            "tail",
            "--topic",
            topics["deadletter"],
            "-n",
            "100",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    assert "invalid_number" in shown and "too_deep" in shown and "more than one day in the future" in shown

    report = replay(letters, settings=settings, target=topics["replay"])
    truncated = sum(letter.original_truncated for letter in letters)
    assert report.replayed == len(letters) - truncated and report.truncated == truncated and report.failed == 0
    replayed = read_topic(settings, topics["replay"])
    originals = {base64.b64decode(letter.original_b64) for letter in letters if not letter.original_truncated}
    assert len(replayed) == report.replayed and set(replayed) == originals
