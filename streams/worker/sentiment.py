"""The news-sentiment pipeline's steps: score headlines (batched), index them, detect surges, alert.

Every headline is a unit of its own; chunks of `max_batch_size` go to the batcher together (the model threads take
them side by side) and the micro-batch is indexed in one bulk request: fewer, larger requests cost the search
engine and the event loop less CPU per document, CPU the model shares. The skeleton (pipeline.py) and the
checkpoint make it durable.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from models.sentiment import SentimentResult
from models.surge import Surge, SurgeDetector
from sinks import metrics
from sinks.search import Doc
from sinks.templates import monthly_index
from streams.core.decoding import Decoder
from streams.core.events import Alert, NewsEvent, SentimentDoc, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Outputs
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

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, score: Score,
                 detector: SurgeDetector) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.news)
        self.model, self.detector = score, detector
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
        alerts = [self._alert(surge, docs) for surge in self._surges(docs)]
        return Outputs(
            documents=[(Doc(monthly_index(self.prefix, "news", d.event_time), d.event_id, d.model_dump(mode="json")),
                        unit.record) for d, (unit, _) in zip(docs, scored, strict=True)],
            alerts=alerts, alert_topic=self.settings.topics.alerts_sentiment)

    def _document(self, record: Record, event: NewsEvent, result: SentimentResult) -> SentimentDoc:
        return SentimentDoc(
            event_id=event.id, event_time=event.published_at, processed_at=utc_now(),
            model_name=result.model, model_version=result.version,
            topic=record.topic, partition=record.partition, offset=record.offset,
            label=result.label, score=max(-1.0, min(1.0, result.score)), probabilities=result.probabilities,
            negative=result.negative, negative_threshold=result.negative_threshold,
            headline=event.headline, tickers=tickers_of(event), source=event.source,
        )

    def _surges(self, docs: list[SentimentDoc]) -> list[Surge]:
        surges = []
        for doc in sorted(docs, key=lambda d: d.event_time):
            for ticker in doc.tickers:
                surge = self.detector.observe(ticker, doc.event_time, doc.negative, doc.event_id)
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
