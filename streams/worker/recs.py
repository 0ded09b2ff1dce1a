"""The recommendation pipelines' steps: catalog updates into the item index, clicks into users' sessions.

The catalog side embeds item text through the shared encoder's batcher and applies upserts and deletions (the
`deleted` flag or a Kafka tombstone) to the on-device item index; every worker feeds it the whole compacted catalog
topic (runtime.py). The clicks side folds each click into its user's state (a Faust table value, so it survives
restarts), sends what the click teaches about items to `item-deltas` (item_stats.py folds them), scores every
affected user against the whole index in one batched call from the shared item statistics, upserts one document per
user and publishes to `recommendations` at most once per user per interval. The skeleton (pipeline.py) and the
checkpoint make it durable.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field

import torch

from models.item_index import ItemIndex
from models.item_stats import Delta, ItemDeltas, merge
from models.recs import Scorer, UserState, click_deltas, due_for_publish, mark_published, recommendation_doc, update
from sinks import metrics
from sinks.search import Doc
from streams.core.decoding import Decoder
from streams.core.events import CatalogItem, ClickEvent, DeadLetter, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs
from streams.worker.pipeline import Pipeline

Embed = Callable[[list[CatalogItem]], Awaitable[list[torch.Tensor]]]


@dataclass(frozen=True)
class CatalogChange:
    """One catalog record: an item to embed and upsert, or a deletion."""

    record: Record
    item: CatalogItem

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


class CatalogPipeline(Pipeline[CatalogItem, CatalogChange]):
    """Keeps the item index in step with the catalog topic."""

    event_model = CatalogItem

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, embed: Embed,
                 index: ItemIndex) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.catalog)
        self.embed, self.index = embed, index

    def decode(self, record: Record) -> CatalogItem | DeadLetter:
        """A catalog record; a tombstone (no value, a key) is the deletion of that item."""
        if record.value is None and record.key:
            return CatalogItem.model_validate({"item_id": record.key.decode(errors="replace"), "deleted": True})
        return super().decode(record)

    def prepare(self, events: list[tuple[Record, CatalogItem]]) -> list[CatalogChange]:
        return [CatalogChange(record, item) for record, item in events]

    async def score(self, units: list[CatalogChange]) -> Sequence[torch.Tensor | None]:
        """The embedding of each live item (None for a deletion)."""
        live = [unit.item for unit in units if not unit.item.deleted]
        vectors = iter(await self.embed(live) if live else [])
        return [None if unit.item.deleted else next(vectors) for unit in units]

    def outputs(self, scored: list[tuple[CatalogChange, torch.Tensor | None]]) -> Outputs:
        return Outputs()

    def commit(self, scored: list[tuple[CatalogChange, torch.Tensor | None]]) -> None:
        """Upserts and deletions into the index, in order."""
        vectors = [vector for _, vector in scored if vector is not None]
        self.index.apply([unit.item for unit, _ in scored],
                         torch.stack(vectors) if vectors else torch.empty(0, self.index.dim))
        metrics.ITEM_INDEX_ITEMS.set(len(self.index))


@dataclass
class Shopper:
    """One user with clicks in the micro-batch: the state after them, the last click, whether to publish."""

    state: UserState
    click: ClickEvent
    record: Record
    records: list[Record] = field(default_factory=list)  # every click of the user in this batch
    deltas: list[Delta] = field(default_factory=list)  # what the clicks teach about items
    publish: bool = False


class ClicksPipeline(Pipeline[ClickEvent, Shopper]):
    """Folds clicks into per-user state, sends item deltas, refreshes the affected users' recommendations."""

    event_model = ClickEvent
    index_kind = "recommendations"

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, index: ItemIndex,
                 scorer: Scorer, states: MutableMapping[bytes, dict]) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.clicks)
        self.index, self.scorer, self.states = index, scorer, states
        self.index_name = f"{settings.search.index_prefix}-recommendations"

    def prepare(self, events: list[tuple[Record, ClickEvent]]) -> list[Shopper]:
        """Fold each click into its user's state, in order; skip clicks the stored state already absorbed."""
        recs, now = self.settings.recs, time.time()
        shoppers: dict[str, Shopper] = {}
        for record, click in events:
            shopper = shoppers.get(click.user_id)
            if shopper is None:
                previous, partition, offset = self._stored(click.user_id)
                if partition == record.partition and record.offset <= offset:
                    continue  # a replay of a click whose outputs and state were already written
            else:
                previous = shopper.state
            deltas = click_deltas(previous, click, record.partition, record.offset, recs)
            state = update(previous, click, self.index.vector(click.item_id), recs)
            records = [*shopper.records, record] if shopper else [record]
            shoppers[click.user_id] = Shopper(state, click, record, records, [*shopper.deltas, *deltas] if shopper
                                              else deltas)
        for shopper in shoppers.values():
            if due_for_publish(shopper.state, now, recs):
                shopper.state, shopper.publish = mark_published(shopper.state, now), True
        return list(shoppers.values())

    async def score(self, units: list[Shopper]) -> Sequence[list[tuple[str, float]]]:
        """Every affected user against the whole index in one batched call."""
        return self.scorer.recommend([unit.state for unit in units])

    def outputs(self, scored: list[tuple[Shopper, list[tuple[str, float]]]]) -> Outputs:
        processed_at, out = utc_now(), Outputs()
        for shopper, top in scored:
            r = shopper.record
            doc = recommendation_doc(shopper.state, top, shopper.click, topic=r.topic, partition=r.partition,
                                     offset=r.offset, processed_at=processed_at)
            out.documents.append((Doc.of(self.index_name, shopper.state.user_id, doc), r))
            if shopper.publish:
                out.messages.append(Message(self.settings.topics.recommendations, shopper.state.user_id.encode(),
                                            doc.model_dump_json().encode()))
        # in clicks order per partition: the item-stats stage skips a delta at or below the last offset it absorbed
        grouped = merge(sorted((delta for shopper, _ in scored for delta in shopper.deltas),
                               key=lambda delta: (delta.partition, delta.offset)))
        out.messages += [Message(self.settings.topics.item_deltas, item_id.encode(), ItemDeltas.encode(item_id, deltas))
                         for item_id, deltas in grouped.items()]
        return out

    def commit(self, scored: list[tuple[Shopper, list[tuple[str, float]]]]) -> None:
        """Each user's state, with the position it covers: a replay of this batch skips what it absorbed. Keyed by the
        clicks key's bytes, so the changelog record is in the user's clicks partition."""
        for shopper, _ in scored:
            self.states[shopper.state.user_id.encode()] = {"state": shopper.state.to_dict(),
                                                  "partition": shopper.record.partition,
                                                  "offset": shopper.record.offset}

    def _stored(self, user_id: str) -> tuple[UserState | None, int, int]:
        """The user's state and the (partition, offset) of the last click it absorbed."""
        stored = self.states.get(user_id.encode())
        if not stored:
            return None, -1, -1
        return UserState.from_dict(stored["state"]), stored["partition"], stored["offset"]
