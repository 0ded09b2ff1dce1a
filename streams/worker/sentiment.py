"""The news-sentiment pipeline's steps: score headlines (batched), index them, pass them on by ticker.

Every headline is a unit of its own; chunks of `max_batch_size` go to the batcher together (the model threads take
them side by side) and the micro-batch is indexed in one bulk request: fewer, larger requests cost the search
engine and the event loop less CPU per document, CPU the model shares. News is keyed by news id, so surges are
detected in a second stage keyed by ticker (surge.py): each ticker the batch's headlines name gets one message on
`news.by-ticker` with its headlines (id, event time, negative or not). The skeleton (pipeline.py) and the checkpoint
make the documents and those messages durable before the batch is acked.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from models.sentiment import SentimentResult
from models.surge import TickerMentions
from sinks import metrics
from sinks.search import Doc
from sinks.templates import monthly_index
from streams.core.decoding import Decoder
from streams.core.events import NewsEvent, SentimentDoc, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs
from streams.worker.pipeline import Pipeline

CASHTAG = re.compile(r"(?<![A-Za-z0-9$])\$([A-Za-z][A-Za-z0-9.]{0,9})\b")

Score = Callable[[list[str]], Awaitable[list[SentimentResult]]]


@dataclass(frozen=True)
class Headline:
    """One news event to score."""

    record: Record
    event: NewsEvent

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


def tickers_of(event: NewsEvent) -> list[str]:
    """The event's `tickers` field plus cashtags ($ACME) in the headline and body, de-duplicated in order."""
    text = f"{event.headline} {event.body or ''}"
    found = [*event.tickers, *(match.upper() for match in CASHTAG.findall(text))]
    return list(dict.fromkeys(found))


class SentimentPipeline(Pipeline[NewsEvent, Headline]):
    """Everything the sentiment agent does with a micro-batch."""

    event_model = NewsEvent
    index_kind = "news"

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, score: Score) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.news)
        self.model = score
        self.chunk_size = settings.batching.max_batch_size
        self.prefix = settings.search.index_prefix

    def prepare(self, events: list[tuple[Record, NewsEvent]]) -> list[Headline]:
        return [Headline(record, event) for record, event in events]

    async def score(self, units: list[Headline]) -> Sequence[SentimentResult]:
        return await self.model([unit.event.headline for unit in units])

    def outputs(self, scored: list[tuple[Headline, SentimentResult]]) -> Outputs:
        docs = [self._document(unit.record, unit.event, result) for unit, result in scored]
        for doc in docs:
            metrics.MODEL_SCORES.labels("sentiment").observe(doc.score)
        return Outputs(
            documents=[(Doc.of(monthly_index(self.prefix, "news", d.event_time), d.event_id, d),
                        unit.record) for d, (unit, _) in zip(docs, scored, strict=True)],
            messages=self._by_ticker(docs))

    def _by_ticker(self, docs: list[SentimentDoc]) -> list[Message]:
        """One message per ticker named in the batch, keyed by ticker: its headlines in event-time order."""
        mentions: dict[str, list[tuple[str, datetime, bool]]] = {}
        for doc in sorted(docs, key=lambda d: d.event_time):
            for ticker in doc.tickers:
                mentions.setdefault(ticker, []).append((doc.event_id, doc.event_time, doc.negative))
        if not mentions:
            return []
        topic, model = self.settings.topics.news_by_ticker, docs[0]
        return [Message(topic, ticker.encode(), TickerMentions.encode(ticker, model.model_name, model.model_version,
                                                                       items))
                for ticker, items in mentions.items()]

    def _document(self, record: Record, event: NewsEvent, result: SentimentResult) -> SentimentDoc:
        return SentimentDoc(
            event_id=event.id, event_time=event.published_at, processed_at=utc_now(),
            model_name=result.model, model_version=result.version,
            topic=record.topic, partition=record.partition, offset=record.offset,
            label=result.label, score=max(-1.0, min(1.0, result.score)), probabilities=result.probabilities,
            negative=result.negative, negative_threshold=result.negative_threshold,
            headline=event.headline, tickers=tickers_of(event), source=event.source,
        )
