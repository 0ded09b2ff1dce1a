"""The item-statistics stage: item-deltas (keyed by item) folded into a table, each changed item published compacted.

Clicks are keyed by user, but what they teach about items (popularity, transitions, co-occurrence) is global. The
clicks pipeline sends each click's deltas to `item-deltas`, keyed by the item they update; this pipeline, the one
owner of an item's partition, folds them into the `item-stats` table (changelog-backed, so a restart restores it),
skipping deltas of clicks it already absorbed (each item remembers the last clicks offset per clicks partition), and
publishes the item's compact statistics to the compacted `item-stats` topic, which every worker reads in full
(`StatsFeed`), so every worker recommends from the same statistics within the time a micro-batch takes.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field

from models.item_stats import ItemDeltas, ItemStats, StatsView, compact, fold
from sinks import metrics
from streams.core.decoding import Decoder
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs
from streams.worker.pipeline import Pipeline


@dataclass
class ItemUpdate:
    """One item's statistics after this micro-batch's deltas, and the records they came in."""

    stats: ItemStats
    records: list[Record] = field(default_factory=list)


class ItemStatsPipeline(Pipeline[ItemDeltas, ItemUpdate]):
    """Folds item deltas into the item's table value and publishes the compact statistics."""

    event_model = ItemDeltas

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint,
                 table: MutableMapping[bytes, dict]) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.item_deltas)
        self.table = table

    def prepare(self, events: list[tuple[Record, ItemDeltas]]) -> list[ItemUpdate]:
        """Each item's statistics after its deltas, in order; an item none of whose deltas are new is left out."""
        updates: dict[str, ItemUpdate] = {}
        for record, event in events:
            update = updates.get(event.item_id)
            if update is None:
                stored = self.table.get(event.item_id.encode())
                update = ItemUpdate(ItemStats.from_dict(stored) if stored else ItemStats(event.item_id))
            update.stats, absorbed = fold(update.stats, event.item_id, event.entries(), self.settings.recs)
            if absorbed:
                update.records.append(record)
                updates[event.item_id] = update
        return list(updates.values())

    async def score(self, units: list[ItemUpdate]) -> Sequence[None]:
        return [None] * len(units)  # nothing to score: the statistics are the output

    def outputs(self, scored: list[tuple[ItemUpdate, None]]) -> Outputs:
        topic, recs = self.settings.topics.item_stats, self.settings.recs
        return Outputs(messages=[
            Message(topic, unit.stats.item_id.encode(),
                    json.dumps(compact(unit.stats, recs).to_dict(sources=False), separators=(",", ":")).encode())
            for unit, _ in scored])

    def commit(self, scored: list[tuple[ItemUpdate, None]]) -> None:
        """Each item's statistics with the clicks offsets they cover (a replayed delta is skipped by those); keyed by
        the item-deltas key's bytes, so the changelog record is in the item's partition."""
        for unit, _ in scored:
            self.table[unit.stats.item_id.encode()] = unit.stats.to_dict()


class StatsFeed:
    """Applies records of the compacted item-stats topic to a worker's view (a tombstone forgets the item)."""

    def __init__(self, view: StatsView) -> None:
        self.view = view
        self.invalid = 0

    def apply(self, records: Sequence[Record]) -> None:
        for record in records:
            if record.value is None:
                if record.key:
                    self.view.items.pop(record.key.decode(errors="replace"), None)
                continue
            try:
                self.view.put(ItemStats.from_dict(json.loads(record.value)))
            except (ValueError, KeyError, TypeError, AttributeError):
                self.invalid += 1  # written by our own stage; counted, not fatal
        metrics.ITEM_STATS_ITEMS.set(len(self.view))
        metrics.ITEM_STATS_READ.inc(len(records))
