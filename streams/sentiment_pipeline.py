"""The news-sentiment slice, one micro-batch at a time: decode, score (batched), index, detect surges, alert.

`process` returns only when every output of the batch is durable (documents flushed, alerts and dead letters
acknowledged by Kafka), so the caller may then commit the batch's offsets. It never raises for bad data:
a bad event, or a document the search engine refuses for good, becomes a dead letter.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from models.sentiment import SentimentResult
from sinks import metrics
from sinks.search import Doc
from sinks.search_sink import SearchSink
from sinks.templates import monthly_index
from streams.batch_io import Publish, Record, emit_alerts, emit_letters, processing_letter, refused_letters
from streams.decoding import Decoder
from streams.events import Alert, DeadLetter, NewsEvent, SentimentDoc, utc_now
from streams.settings import Settings
from streams.surge import Surge, SurgeDetector

log = logging.getLogger(__name__)
CASHTAG = re.compile(r"(?<![A-Za-z0-9$])\$([A-Za-z][A-Za-z0-9.]{0,9})\b")

Score = Callable[[list[str]], Awaitable[list[SentimentResult]]]


@dataclass(frozen=True)
class BatchOutcome:
    """What one micro-batch produced (for progress reports and tests)."""

    scored: int
    dead_letters: int
    alerts: list[Alert]


def tickers_of(event: NewsEvent) -> list[str]:
    """The event's `tickers` field plus cashtags ($ACME) in the headline and body, de-duplicated in order."""
    text = f"{event.headline} {event.body or ''}"
    found = [*event.tickers, *(match.upper() for match in CASHTAG.findall(text))]
    return list(dict.fromkeys(found))


class SentimentPipeline:
    """Everything the sentiment agent does with a micro-batch."""

    def __init__(self, settings: Settings, decoder: Decoder, score: Score, sink: SearchSink,
                 publish: Publish, detector: SurgeDetector) -> None:
        self.settings = settings
        self.decoder = decoder
        self.score = score
        self.sink = sink
        self.publish = publish
        self.detector = detector
        self.prefix = settings.search.index_prefix

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Score, index and alert one micro-batch; durable when it returns."""
        stream = self.settings.topics.news
        metrics.EVENTS_CONSUMED.labels(stream).inc(len(records))
        events: list[tuple[Record, NewsEvent]] = []
        letters: list[DeadLetter] = []
        for record in records:
            decoded = self.decoder.decode(record.value, topic=record.topic, partition=record.partition,
                                          offset=record.offset, key=record.key, model=NewsEvent)
            if isinstance(decoded, DeadLetter):
                letters.append(decoded)
            else:
                events.append((record, decoded))  # type: ignore[arg-type]

        # Every chunk goes to the batcher at once (the model threads take them side by side, so they finish
        # together); the micro-batch is then indexed in one bulk request, not one per chunk: fewer, larger
        # requests cost the search engine and the event loop less CPU per document, CPU the model shares.
        size = self.settings.batching.max_batch_size
        chunks = [events[start:start + size] for start in range(0, len(events), size)]
        outcomes = await asyncio.gather(*(self.score([event.headline for _, event in chunk]) for chunk in chunks),
                                        return_exceptions=True)
        scored: list[tuple[Record, NewsEvent, SentimentResult]] = []
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, Exception):  # a failed chunk is dead-lettered, not lost
                log.error("sentiment model failed on a batch of %d", len(chunk), exc_info=outcome)
                letters += [processing_letter(record, f"model failed: {type(outcome).__name__}: {outcome}",
                                              self.decoder.pii_key) for record, _ in chunk]
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                scored += [(record, event, result) for (record, event), result in zip(chunk, outcome, strict=True)]
        docs, refused = await self._index(scored)
        letters += refused
        alerts = [self._alert(surge, docs) for surge in self._surges(docs)]
        await emit_alerts(self.publish, self.sink, self.settings.topics.alerts_sentiment, self.prefix, alerts)
        await emit_letters(self.publish, self.settings.topics.deadletter, letters)
        return BatchOutcome(scored=len(docs), dead_letters=len(letters), alerts=alerts)

    async def _index(self, scored: list[tuple[Record, NewsEvent, SentimentResult]]
                     ) -> tuple[list[SentimentDoc], list[DeadLetter]]:
        """Documents of the scored events, flushed to the search engine; dead letters for those it refused."""
        docs = [self._document(record, event, result) for record, event, result in scored]
        self.sink.add([Doc(monthly_index(self.prefix, "news", d.event_time), d.event_id, d.model_dump(mode="json"))
                       for d in docs])
        refused = await self.sink.flush()
        metrics.EVENTS_SCORED.labels(self.settings.topics.news).inc(len(docs))
        for doc in docs:
            metrics.MODEL_SCORES.labels("sentiment").observe(doc.score)
        metrics.DOCS_INDEXED.labels("news").inc(len(docs) - len(refused))
        records = {event.id: record for record, event, _ in scored}
        return docs, refused_letters(refused, records, self.decoder.pii_key)

    def _document(self, record: Record, event: NewsEvent, result: SentimentResult) -> SentimentDoc:
        return SentimentDoc(
            event_id=event.id, event_time=event.published_at, processed_at=utc_now(),
            model_name=result.model, model_version=result.version,
            topic=record.topic, partition=record.partition, offset=record.offset,
            label=result.label, score=max(-1.0, min(1.0, result.score)), probabilities=result.probabilities,
            headline=event.headline, tickers=tickers_of(event), source=event.source,
        )

    def _surges(self, docs: list[SentimentDoc]) -> list[Surge]:
        surges = []
        for doc in sorted(docs, key=lambda d: d.event_time):
            for ticker in doc.tickers:
                surge = self.detector.observe(ticker, doc.event_time, doc.label == "bearish", doc.event_id)
                if surge:
                    surges.append(surge)
        return surges

    def _alert(self, surge: Surge, docs: list[SentimentDoc]) -> Alert:
        model = docs[0] if docs else None
        severity = "critical" if surge.share >= 0.9 else "high" if surge.share >= 0.75 else "medium"
        return Alert(
            alert_id=surge.alert_id, kind="sentiment", severity=severity, created_at=utc_now(),
            subject=surge.ticker,
            summary=(f"Negative news surge for {surge.ticker}: {surge.negative} of {surge.items} items negative "
                     f"in the last {self.settings.surge.window_s // 60} min, against a baseline share of "
                     f"{surge.baseline_share:.0%} (p = {surge.p_value:.1e})"),
            evidence={"negative": surge.negative, "items": surge.items, "share": surge.share,
                      "baseline_share": surge.baseline_share, "p_value": surge.p_value,
                      "window_s": self.settings.surge.window_s, "started_at": surge.started_at.isoformat()},
            event_ids=surge.event_ids,
            model_name=model.model_name if model else None, model_version=model.model_version if model else None,
        )
