"""Item statistics: what sessions say about each item, learned from clicks and kept keyed by item.

A click produces deltas (`session_deltas`): a popularity increment for its item, sequential-rule transitions from
the items viewed just before it in its session (1/gap for gaps up to `sequence_gap`), and session co-occurrence with
the session's other items. Deltas are keyed by the item they update, so one owner folds them (`fold`, the
item-stats stage) and publishes each changed item's compact statistics (`ItemStats.to_dict`) to a compacted topic;
every worker scores from the same statistics. Weights decay in event time (recency-weighted), neighbour lists are
pruned to the strongest `neighbours`, and each delta names the click it came from (source partition and offset), so a
replayed click is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field

from streams.core.events import InputEvent
from streams.core.events.base import Identifier
from streams.core.settings import RecsSettings

Weight = Annotated[float, Field(ge=0)]


def decay(elapsed_s: float, half_life_s: float) -> float:
    """2 ** (-elapsed / half_life): what one unit is worth `elapsed_s` later."""
    return 0.5 ** (elapsed_s / half_life_s)


@dataclass(frozen=True)
class Delta:
    """One click's contribution to one item's statistics, stamped with the click's position in `clicks`."""

    item_id: str
    ts: float  # event time of the click (Unix seconds)
    partition: int
    offset: int
    pop: float = 0.0
    next: dict[str, float] = field(default_factory=dict)  # item -> transition weight from this item to it
    co: dict[str, float] = field(default_factory=dict)  # item -> co-occurrence weight

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the item id (the message key carries it)."""
        return {"ts": self.ts, "p": self.partition, "o": self.offset, "pop": self.pop, "next": self.next, "co": self.co}



class DeltaEntry(InputEvent):
    """One click's contribution, as it travels on the item-deltas topic."""

    ts: float
    p: Annotated[int, Field(ge=0)]
    o: Annotated[int, Field(ge=0)]
    pop: Weight = 0.0
    next: dict[Identifier, Weight] = Field(default_factory=dict)
    co: dict[Identifier, Weight] = Field(default_factory=dict)


class ItemDeltas(InputEvent):
    """A message of the item-deltas topic (keyed by `item_id`): the deltas of one micro-batch of clicks, in order."""

    item_id: Identifier
    deltas: Annotated[list[DeltaEntry], Field(min_length=1)]

    def entries(self) -> list[Delta]:
        return [Delta(self.item_id, e.ts, e.p, e.o, e.pop, dict(e.next), dict(e.co)) for e in self.deltas]

    @staticmethod
    def encode(item_id: str, deltas: Sequence[Delta]) -> bytes:
        """The message value for `deltas` of one item."""
        import json

        return json.dumps({"item_id": item_id, "deltas": [d.to_dict() for d in deltas]},
                          separators=(",", ":")).encode()


def session_deltas(session: Sequence[str], item_id: str, ts: float, partition: int, offset: int,
                   settings: RecsSettings) -> list[Delta]:
    """The deltas of a click on `item_id`, given the session's items before it (most recent last, repeats in a row
    collapsed): popularity for the item, transitions into it from the last `sequence_gap` items, co-occurrence with
    the session's other items when the item is new to the session."""
    deltas = [Delta(item_id, ts, partition, offset, pop=1.0)]
    if session and session[-1] == item_id:
        return deltas  # a second action on the item in view: no move in the sequence
    for gap, before in enumerate(reversed(session[-settings.sequence_gap:]), 1):
        if before != item_id:
            deltas.append(Delta(before, ts, partition, offset, next={item_id: 1.0 / gap}))
    if item_id not in session:
        others = list(dict.fromkeys(i for i in session if i != item_id))
        deltas.extend(Delta(other, ts, partition, offset, co={item_id: 1.0}) for other in others)
        if others:
            deltas.append(Delta(item_id, ts, partition, offset, co=dict.fromkeys(others, 1.0)))
    return deltas


def merge(deltas: Iterable[Delta]) -> dict[str, list[Delta]]:
    """Deltas grouped by the item they update, in order (one message per item and micro-batch)."""
    grouped: dict[str, list[Delta]] = {}
    for delta in deltas:
        grouped.setdefault(delta.item_id, []).append(delta)
    return grouped


@dataclass
class ItemStats:
    """One item's statistics, decayed to event time `at`; `sources` maps a clicks partition to its last offset."""

    item_id: str
    at: float = 0.0
    pop: float = 0.0
    next: dict[str, float] = field(default_factory=dict)
    co: dict[str, float] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)

    def to_dict(self, sources: bool = True) -> dict[str, Any]:
        """JSON-ready: with `sources` for the owner's table, without for the published compact record."""
        data: dict[str, Any] = {"item_id": self.item_id, "at": self.at, "pop": round(self.pop, 6),
                                "next": {k: round(v, 6) for k, v in self.next.items()},
                                "co": {k: round(v, 6) for k, v in self.co.items()}}
        return data | {"sources": self.sources} if sources else data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemStats:
        return cls(str(data["item_id"]), float(data["at"]), float(data["pop"]),
                   {k: float(v) for k, v in data["next"].items()}, {k: float(v) for k, v in data["co"].items()},
                   {k: int(v) for k, v in data.get("sources", {}).items()})


def _prune(weights: dict[str, float], keep: int) -> dict[str, float]:
    """The `keep` strongest entries (ties by id), once the dict holds twice that many."""
    if len(weights) <= 2 * keep:
        return weights
    return dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:keep])


def fold(stats: ItemStats | None, item_id: str, deltas: Iterable[Delta], settings: RecsSettings
         ) -> tuple[ItemStats, int]:
    """The item's statistics after `deltas` (all for `item_id`, in order) and how many were new; a delta whose click
    the statistics already absorbed (offset at or below the source partition's last) is skipped."""
    stats = ItemStats(item_id) if stats is None else ItemStats(stats.item_id, stats.at, stats.pop, dict(stats.next),
                                                                 dict(stats.co), dict(stats.sources))
    absorbed = 0
    for delta in deltas:
        source = str(delta.partition)
        if delta.offset <= stats.sources.get(source, -1):
            continue
        absorbed += 1
        stats.sources[source] = delta.offset
        if delta.ts > stats.at:
            pop_factor = decay(delta.ts - stats.at, settings.popularity_half_life_s)
            factor = decay(delta.ts - stats.at, settings.neighbour_half_life_s)
            stats.pop *= pop_factor
            stats.next = {k: v * factor for k, v in stats.next.items()}
            stats.co = {k: v * factor for k, v in stats.co.items()}
            stats.at = delta.ts
        late = stats.at - delta.ts
        stats.pop += delta.pop * decay(late, settings.popularity_half_life_s)
        weight = decay(late, settings.neighbour_half_life_s)
        for target, mine in ((stats.next, delta.next), (stats.co, delta.co)):
            for other, value in mine.items():
                target[other] = target.get(other, 0.0) + value * weight
        stats.next = _prune(stats.next, settings.neighbours)
        stats.co = _prune(stats.co, settings.neighbours)
    return stats, absorbed


def compact(stats: ItemStats, settings: RecsSettings) -> ItemStats:
    """What is published: the strongest `neighbours` of each kind, no source offsets."""
    def top(weights: dict[str, float]) -> dict[str, float]:
        return dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:settings.neighbours])

    return ItemStats(stats.item_id, stats.at, stats.pop, top(stats.next), top(stats.co))


class StatsView:
    """Every item's published statistics as one process reads them (the compacted topic, in full); tracks which
    items changed since the scorer last looked, so it can refresh only those."""

    def __init__(self) -> None:
        self.items: dict[str, ItemStats] = {}
        self.dirty: set[str] = set()

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> ItemStats | None:
        return self.items.get(item_id)

    def put(self, stats: ItemStats) -> None:
        """The latest statistics of an item (an older record of the same item is replaced)."""
        self.items[stats.item_id] = stats
        self.dirty.add(stats.item_id)

    def take_dirty(self) -> set[str]:
        """Items changed since the last call (and forget them)."""
        dirty, self.dirty = self.dirty, set()
        return dirty
