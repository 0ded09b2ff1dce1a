"""One consumed Kafka message, as the worker's agents and the topic readers hand it over."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """A message's coordinates, key and value (None for a tombstone)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
