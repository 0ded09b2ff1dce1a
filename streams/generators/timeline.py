"""The simulation clock shared by the generators: Poisson arrivals plus events scheduled ahead of time.

A generator implements `step(t)`: called at each arrival (seconds after `start`), it schedules one or more
events with `at(offset, record, truth)`. Iteration yields events in time order with their time field set,
so bursts and multi-step scenarios interleave naturally with background traffic. Deterministic per seed.
"""

from __future__ import annotations

import heapq
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

Record = dict[str, Any]


class Generated(NamedTuple):
    """One generated event (exactly what goes on the wire) and its ground truth (never sent)."""

    record: Record
    truth: Record | None


def iso(when: datetime) -> str:
    """UTC time as ISO-8601 with milliseconds and a Z suffix (what producers write)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Simulation(ABC):
    """Base of the generators: random source, clock, and a heap of scheduled events."""

    time_field = "ts"

    def __init__(self, *, seed: int, start: datetime, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.seed = seed
        self.rng = random.Random(seed)
        self.start = start.astimezone(UTC)
        self.rate_per_s = rate_per_s
        self._heap: list[tuple[float, int, Record, Record | None]] = []
        self._seq = 0

    def new_id(self, prefix: str) -> str:
        """A deterministic, unique-looking id such as `txn-3f9c0a12b4d5e6f7`."""
        return f"{prefix}-{self.rng.getrandbits(64):016x}"

    def at(self, offset_s: float, record: Record, truth: Record | None = None) -> None:
        """Schedule an event `offset_s` seconds after start (its time field is filled when it is emitted)."""
        self._seq += 1
        heapq.heappush(self._heap, (offset_s, self._seq, record, truth))

    def when(self, offset_s: float) -> datetime:
        """The absolute time of a simulation offset."""
        return self.start + timedelta(seconds=offset_s)

    def arrival_rate(self) -> float:
        """Arrivals (calls to `step`) per second; generators whose step makes several events lower it."""
        return self.rate_per_s

    @abstractmethod
    def step(self, t: float) -> None:
        """Schedule the event(s) of one arrival at offset t."""

    def __iter__(self) -> Iterator[Generated]:
        t = 0.0
        rate = self.arrival_rate()
        heap = self._heap
        while True:
            t += self.rng.expovariate(rate)
            self.step(t)
            while heap and heap[0][0] <= t:
                offset, _, record, truth = heapq.heappop(heap)
                record[self.time_field] = iso(self.start + timedelta(seconds=offset))
                yield Generated(record, truth)
