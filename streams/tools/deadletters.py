"""Reading and replaying the dead-letter topic (the logic behind `lepton deadletter tail|replay`)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from streams.broker.producer import EventProducer
from streams.broker.topics import read_records
from streams.core.decoding import Decoder
from streams.core.events import DeadLetter
from streams.core.settings import Settings, get_settings


def read_topic(settings: Settings, topic: str, last: int | None = None, timeout_s: float = 10.0) -> list[bytes]:
    """Values currently in `topic` (all, or the `last` per partition), read without a consumer group commit."""
    return [record.value or b"" for record in read_records(settings, topic, last, timeout_s)]


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
