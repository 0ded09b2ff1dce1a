"""What every pipeline shares around a micro-batch: the consumed record, publishing, and dead letters."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sinks import metrics
from sinks.search import BulkItemError, Doc
from sinks.search_sink import SearchSink
from sinks.templates import monthly_index
from streams.decoding import dead_letter
from streams.events import Alert, DeadLetter

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value); returns once acknowledged
# This process's latest published alerts per kind, newest last (the live console shows them).
RECENT_ALERTS: defaultdict[str, deque[Alert]] = defaultdict(lambda: deque(maxlen=100))


@dataclass(frozen=True)
class Record:
    """One consumed Kafka message, as an agent hands it over."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def processing_letter(record: Record, reason: str, pii_key: bytes) -> DeadLetter:
    """A dead letter for a valid event that a later stage (model, search engine) could not process."""
    return dead_letter(record.value, error_type="processing", reason=reason, topic=record.topic,
                       partition=record.partition, offset=record.offset, message_key=record.key, stage="process",
                       key=pii_key)


def refused_letters(refused: Sequence[BulkItemError], records: Mapping[str, Record],
                    pii_key: bytes) -> list[DeadLetter]:
    """Dead letters for the documents the search engine refused for good (records keyed by document id)."""
    return [processing_letter(records[error.doc_id], f"search engine refused the document: {error.reason}", pii_key)
            for error in refused if error.doc_id in records]


async def emit_letters(publish: Publish, topic: str, letters: Sequence[DeadLetter]) -> None:
    """Publish dead letters (keyed by source topic) and count them."""
    # Sent together and awaited together: one round trip to the broker, not one per letter.
    await asyncio.gather(*(publish(topic, letter.source_topic.encode(),
                                   letter.model_dump_json(exclude_none=True).encode()) for letter in letters))
    for letter in letters:
        metrics.EVENTS_DEADLETTERED.labels(letter.source_topic, letter.error_type).inc()


async def emit_alerts(publish: Publish, sink: SearchSink, topic: str, prefix: str, alerts: Sequence[Alert]) -> None:
    """Alerts go to their topic (keyed by alert_id) and to the alerts index (id = alert_id: repeats overwrite)."""
    if not alerts:
        return
    await asyncio.gather(*(publish(topic, alert.alert_id.encode(), alert.model_dump_json(exclude_none=True).encode())
                           for alert in alerts))
    for alert in alerts:
        metrics.ALERTS.labels(alert.kind, alert.severity).inc()
        RECENT_ALERTS[alert.kind].append(alert)
        log.warning("ALERT %s %s: %s", alert.kind, alert.subject, alert.summary)
    sink.add([Doc(monthly_index(prefix, "alerts", a.created_at), a.alert_id, a.model_dump(mode="json"))
              for a in alerts])
    for refused in await sink.flush():
        log.error("alert %s refused by the search engine: %s", refused.doc_id, refused.reason)
