"""One key's state in a Faust table, with the Kafka positions it covers, so a replayed batch is not absorbed twice.

A table value is `{"state": ..., "positions": {topic: [partition, offset]}}`: for every source topic, the last
record of the key it absorbed. A key's records of one topic all live in one partition (the topic is keyed by it),
so a record at or below the stored offset of its topic was absorbed before a crash: its outputs were written and
its state committed, and it is skipped when it comes again.

With several micro-batches of a stage in flight, a batch's new states are *staged* when it is prepared (the next
batch reads them) and *stored* in the table once its outputs are durable, in batch order (pipeline.py).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from streams.core.record import Record

S = TypeVar("S")


@dataclass
class Keyed(Generic[S]):
    """A key's state (None: never seen) and the position it covers per source topic."""

    state: S | None = None
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def absorbed(self, record: Record) -> bool:
        """Whether the state already covers `record` (a replay after a crash)."""
        position = self.positions.get(record.topic)
        return position is not None and position[0] == record.partition and record.offset <= position[1]

    def advanced(self, state: S, record: Record) -> Keyed[S]:
        """The state after `record`, covering it."""
        return Keyed(state, {**self.positions, record.topic: (record.partition, record.offset)})


class KeyedTable(Generic[S]):
    """A Faust table of `Keyed` states, keyed by the source key's bytes; a state is parsed from its JSON value once
    and kept beside it, so the next batch of the same key does not parse it again (the table holds the value object
    this wrote until a recovery replaces it, and a replaced value is parsed afresh). States staged by a batch still
    in flight come before the table's."""

    def __init__(self, table: MutableMapping[bytes, dict[str, Any]], parse: Callable[[Any], S],
                 dump: Callable[[S], Any], cache_size: int = 200_000) -> None:
        self.table, self.parse, self.dump, self.cache_size = table, parse, dump, cache_size
        self._parsed: dict[bytes, tuple[dict[str, Any], Keyed[S]]] = {}
        self._staged: dict[bytes, Keyed[S]] = {}

    def load(self, key: str) -> Keyed[S]:
        """The key's latest state: staged by a batch in flight, else stored, else an empty one."""
        raw = key.encode()
        staged = self._staged.get(raw)
        if staged is not None:
            return staged
        value = self.table.get(raw)
        if not value:
            return Keyed()
        cached = self._parsed.get(raw)
        if cached is not None and cached[0] is value:
            return cached[1]
        positions = {topic: (int(p), int(o)) for topic, (p, o) in value.get("positions", {}).items()}
        keyed = Keyed(self.parse(value["state"]) if value.get("state") is not None else None, positions)
        self._remember(raw, value, keyed)
        return keyed

    def stage(self, latest: dict[str, Keyed[S]]) -> None:
        """Make a prepared batch's latest states what `load` returns until they are stored or unstaged."""
        self._staged.update((key.encode(), keyed) for key, keyed in latest.items())

    def unstage(self, latest: dict[str, Keyed[S]]) -> None:
        """Forget a batch's staged states that are still the latest (not stored, not replaced by a later batch)."""
        for key, keyed in latest.items():
            if self._staged.get(raw := key.encode()) is keyed:
                del self._staged[raw]

    def store(self, key: str, keyed: Keyed[S]) -> None:
        """Write the key's state with its positions (and drop it from the staged states if it is the latest)."""
        raw = key.encode()
        if self._staged.get(raw) is keyed:
            del self._staged[raw]
        value = {"state": self.dump(keyed.state) if keyed.state is not None else None,
                 "positions": {topic: list(position) for topic, position in keyed.positions.items()}}
        self.table[raw] = value
        self._remember(raw, value, keyed)

    def _remember(self, raw: bytes, value: dict[str, Any], keyed: Keyed[S]) -> None:
        if self.cache_size <= 0:
            return
        if len(self._parsed) >= self.cache_size and raw not in self._parsed:
            self._parsed.pop(next(iter(self._parsed)))  # the oldest entry
        self._parsed[raw] = (value, keyed)
