"""One key's state in a Faust table, with the Kafka positions it covers, so a replayed batch is not absorbed twice.

A table value is `{"state": ..., "positions": {topic: [partition, offset]}}`: for every source topic, the last
record of the key it absorbed. A key's records of one topic all live in one partition (the topic is keyed by it),
so a record at or below the stored offset of its topic was absorbed before a crash: its outputs were written and
its state committed, and it is skipped when it comes again.
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


def load(table: MutableMapping[bytes, dict[str, Any]], key: str, parse: Callable[[Any], S]) -> Keyed[S]:
    """The key's stored state, or an empty one (tables are keyed by the source key's bytes)."""
    value = table.get(key.encode())
    if not value:
        return Keyed()
    positions = {topic: (int(p), int(o)) for topic, (p, o) in value.get("positions", {}).items()}
    return Keyed(parse(value["state"]) if value.get("state") is not None else None, positions)


def store(table: MutableMapping[bytes, dict[str, Any]], key: str, keyed: Keyed[S], dump: Callable[[S], Any]
          ) -> None:
    """Write the key's state with its positions."""
    table[key.encode()] = {"state": dump(keyed.state) if keyed.state is not None else None,
                  "positions": {topic: list(position) for topic, position in keyed.positions.items()}}
