"""Recommendations, one micro-batch at a time: catalog updates into the item index, clicks into interests.

The catalog side embeds item text through the shared encoder's batcher and applies upserts and deletions
(the `deleted` flag or a Kafka tombstone) to the on-device item index. The clicks side folds each click into
its user's interest (a Faust table value, so it survives restarts), then scores every affected user against
the whole index in one batched product, upserts one document per user and publishes to `recommendations`
at most once per user per interval. Like the other pipelines, `process` returns only when outputs are
durable and never raises for bad data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass

import torch

from models.item_index import ItemIndex
from models.recs import Popularity, UserState, due_for_publish, mark_published, recommend, recommendation_doc, update
from sinks import metrics
from sinks.search import Doc
from sinks.search_sink import SearchSink
from streams.batch_io import Publish, Record, emit_letters, refused_letters
from streams.decoding import Decoder
from streams.events import CatalogItem, ClickEvent, DeadLetter, utc_now
from streams.settings import Settings

log = logging.getLogger(__name__)
Embed = Callable[[list[CatalogItem]], Awaitable[list[torch.Tensor]]]


@dataclass(frozen=True)
class RecsOutcome:
    """What one micro-batch produced (for progress reports and tests)."""

    processed: int
    dead_letters: int
    published: int = 0


def decode_catalog(decoder: Decoder, record: Record) -> CatalogItem | DeadLetter:
    """A catalog record; a tombstone (no value, a key) is the deletion of that item."""
    if record.value is None and record.key:
        return CatalogItem.model_validate({"item_id": record.key.decode(errors="replace"), "deleted": True})
    return decoder.decode(record.value, topic=record.topic, partition=record.partition, offset=record.offset,
                          key=record.key, model=CatalogItem)  # type: ignore[return-value]


class CatalogPipeline:
    """Keeps the item index in step with the catalog topic."""

    def __init__(self, settings: Settings, decoder: Decoder, embed: Embed, index: ItemIndex,
                 publish: Publish) -> None:
        self.settings, self.decoder, self.embed, self.index, self.publish = settings, decoder, embed, index, publish

    async def process(self, records: Sequence[Record]) -> RecsOutcome:
        """Embed the live items of the batch and apply upserts and deletions in order."""
        stream = self.settings.topics.catalog
        metrics.EVENTS_CONSUMED.labels(stream).inc(len(records))
        items, letters = [], []
        for record in records:
            decoded = decode_catalog(self.decoder, record)
            (letters if isinstance(decoded, DeadLetter) else items).append(decoded)
        live = [item for item in items if not item.deleted]
        vectors = await self.embed(live) if live else []
        self.index.apply(items, torch.stack(vectors) if vectors else torch.empty(0, self.index.dim))
        metrics.ITEM_INDEX_ITEMS.set(len(self.index))
        metrics.EVENTS_SCORED.labels(stream).inc(len(live))
        await emit_letters(self.publish, self.settings.topics.deadletter, letters)
        return RecsOutcome(processed=len(items), dead_letters=len(letters))


class ClicksPipeline:
    """Folds clicks into per-user interest and refreshes the affected users' recommendations."""

    def __init__(self, settings: Settings, decoder: Decoder, index: ItemIndex, popularity: Popularity,
                 states: MutableMapping[str, dict], sink: SearchSink, publish: Publish) -> None:
        self.settings, self.decoder, self.index, self.popularity = settings, decoder, index, popularity
        self.states, self.sink, self.publish = states, sink, publish
        self.index_name = f"{settings.search.index_prefix}-recommendations"

    async def process(self, records: Sequence[Record]) -> RecsOutcome:
        """Update interests, score affected users in one product, index and publish."""
        stream, recs = self.settings.topics.clicks, self.settings.recs
        metrics.EVENTS_CONSUMED.labels(stream).inc(len(records))
        letters: list[DeadLetter] = []
        latest: dict[str, tuple[UserState, ClickEvent, Record]] = {}
        for record in records:
            click = self.decoder.decode(record.value, topic=record.topic, partition=record.partition,
                                        offset=record.offset, key=record.key, model=ClickEvent)
            if isinstance(click, DeadLetter):
                letters.append(click)
                continue
            assert isinstance(click, ClickEvent)
            if click.user_id in latest:
                previous = latest[click.user_id][0]
            else:
                previous, partition, offset = self._stored(click.user_id)
                if partition == record.partition and record.offset <= offset:
                    continue  # a replay of a click whose outputs and state were already written
            latest[click.user_id] = (update(previous, click, self.index.vector(click.item_id), recs), click, record)
            self.popularity.add(click.item_id, click.ts.timestamp(), recs.action_weight(click.action))

        published = 0
        if latest:
            users = list(latest.values())
            ranked = recommend([state for state, _, _ in users], self.index, self.popularity, settings=recs)
            now, processed_at = time.time(), utc_now()
            docs, messages = [], []
            for (state, click, record), top in zip(users, ranked, strict=True):
                doc = recommendation_doc(state, top, click, topic=record.topic, partition=record.partition,
                                         offset=record.offset, processed_at=processed_at)
                docs.append(Doc(self.index_name, state.user_id, doc.model_dump(mode="json")))
                if due_for_publish(state, now, recs):
                    messages.append((state.user_id.encode(), doc.model_dump_json().encode()))
                    latest[state.user_id] = (mark_published(state, now), click, record)
            self.sink.add(docs)
            letters += refused_letters(await self.sink.flush(), {s.user_id: r for s, _, r in users},
                                       self.decoder.pii_key)
            for key, value in messages:
                await self.publish(self.settings.topics.recommendations, key, value)
            published = len(messages)
            metrics.EVENTS_SCORED.labels(stream).inc(len(records) - len(letters))
            metrics.DOCS_INDEXED.labels("recommendations").inc(len(docs))
        await emit_letters(self.publish, self.settings.topics.deadletter, letters)
        # State last, with the position it covers: a replay of this batch after a crash skips what it absorbed.
        for user_id, (state, _, record) in latest.items():
            self.states[user_id] = {"state": state.to_dict(), "partition": record.partition, "offset": record.offset}
        return RecsOutcome(processed=len(records) - len(letters), dead_letters=len(letters), published=published)

    def _stored(self, user_id: str) -> tuple[UserState | None, int, int]:
        """The user's state and the (partition, offset) of the last click it absorbed."""
        stored = self.states.get(user_id)
        if not stored:
            return None, -1, -1
        return UserState.from_dict(stored["state"]), stored["partition"], stored["offset"]
