"""The checkpoint: a micro-batch's offsets are acked only once everything it produced is durable.

This is the pipeline's central promise and this module is the one place that keeps it.
- `Outputs` is what one micro-batch produced: documents (each with the record it came from), alerts, other
  messages (recommendations) and dead letters.
- `Checkpoint.make_durable` writes them and returns when they are durable: documents (and the alerts' own
  documents) flushed to the search engine, whose sink retries while the engine is down, so consumption waits;
  alerts and messages published and acknowledged by the broker (acks=all) while that flush runs; documents the
  engine refused for good turned into dead letters; dead letters acknowledged by the broker.
- `consume` is the Faust side. It reads an agent's stream in micro-batches (`take_adaptive`), runs each through its
  pipeline, several at once where the agent allows, and acks a batch's events only once its pipeline returned, that
  is after `make_durable`, in the order the batches came. Faust commits a partition only up to its oldest unacked
  message (fix 3 in faust_fixes.py closes a hole it left), so no offset passes an unfinished batch. A batch whose
  pipeline fails with an unexpected error is dead-lettered whole; if even that fails, the process exits before
  anything is acked.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sinks import metrics
from sinks.search import Doc
from sinks.search_sink import SearchSink
from sinks.templates import monthly_index
from streams.core.decoding import dead_letter
from streams.core.events import Alert, DeadLetter
from streams.core.record import Record
from streams.core.settings import Settings

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bytes], Awaitable[None]]  # (topic, key, value); returns once acknowledged
Process = Callable[[list[Record]], Awaitable[Any]]  # a pipeline's work on one micro-batch
# This process's latest published alerts per kind, newest last (the live console shows them).
RECENT_ALERTS: defaultdict[str, deque[Alert]] = defaultdict(lambda: deque(maxlen=100))


@dataclass(frozen=True)
class Message:
    """One message for a downstream topic other than alerts and dead letters."""

    topic: str
    key: bytes
    value: bytes


@dataclass
class Outputs:
    """Everything one micro-batch produced."""

    documents: list[tuple[Doc, Record]] = field(default_factory=list)  # each with the record it came from
    alerts: list[Alert] = field(default_factory=list)
    alert_topic: str = ""
    messages: list[Message] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)


def processing_letter(record: Record, reason: str, pii_key: bytes) -> DeadLetter:
    """A dead letter for a valid event that a later stage (model, search engine) could not process."""
    return dead_letter(record.value, error_type="processing", reason=reason, topic=record.topic,
                       partition=record.partition, offset=record.offset, message_key=record.key, stage="process",
                       key=pii_key)


class Checkpoint:
    """Makes a micro-batch's outputs durable, then lets its offsets be acked; one per worker, shared by agents."""

    def __init__(self, settings: Settings, sink: SearchSink, publish: Publish, pii_key: bytes,
                 before_state_write: Callable[[], Awaitable[None]] | None = None) -> None:
        self.settings, self.sink, self.publish, self.pii_key = settings, sink, publish, pii_key
        self.prefix = settings.search.index_prefix
        self._before_state_write = before_state_write

    async def before_state_write(self) -> None:
        """What must happen before a durable batch writes its state (the producer learns the changelog topics)."""
        if self._before_state_write is not None:
            await self._before_state_write()

    async def make_durable(self, outputs: Outputs) -> int:
        """Write every output of one micro-batch; returns how many documents the search engine refused for good
        (each became a dead letter). Returns only when everything is durable."""
        alert_docs = [Doc.of(monthly_index(self.prefix, "alerts", a.created_at), a.alert_id, a)
                      for a in outputs.alerts]
        # add and flush with no await between: concurrent batches share the sink, and a flush takes what was added.
        self.sink.add([doc for doc, _ in outputs.documents] + alert_docs)
        flushed = asyncio.ensure_future(self.sink.flush())
        try:
            await self._publish_alerts(outputs.alerts, outputs.alert_topic)
            await asyncio.gather(*(self.publish(m.topic, m.key, m.value) for m in outputs.messages))
        finally:
            refused = await flushed
        records = {doc.id: record for doc, record in outputs.documents}
        letters = list(outputs.letters)
        for error in refused:
            if error.doc_id in records:
                letters.append(processing_letter(records[error.doc_id],
                                                 f"search engine refused the document: {error.reason}", self.pii_key))
            else:
                log.error("alert %s refused by the search engine: %s", error.doc_id, error.reason)
        await self.emit_letters(letters)
        return sum(error.doc_id in records for error in refused)

    async def _publish_alerts(self, alerts: Sequence[Alert], topic: str) -> None:
        """Alerts go to their topic keyed by alert_id (repeats overwrite downstream, as in the index)."""
        await asyncio.gather(*(self.publish(topic, a.alert_id.encode(), a.model_dump_json(exclude_none=True).encode())
                               for a in alerts))
        for alert in alerts:
            metrics.ALERTS.labels(alert.kind, alert.severity).inc()
            RECENT_ALERTS[alert.kind].append(alert)
            log.warning("ALERT %s %s: %s", alert.kind, alert.subject, alert.summary)

    async def emit_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Publish dead letters (keyed by source topic) together, one round trip, and count them."""
        topic = self.settings.topics.deadletter
        await asyncio.gather(*(self.publish(topic, letter.source_topic.encode(),
                                            letter.model_dump_json(exclude_none=True).encode()) for letter in letters))
        for letter in letters:
            metrics.EVENTS_DEADLETTERED.labels(letter.source_topic, letter.error_type).inc()

    async def run(self, name: str, process: Process, records: list[Record]) -> None:
        """One micro-batch through its pipeline; a failure dead-letters the batch instead of letting it be acked."""
        try:
            await process(records)
        except Exception as error:  # noqa: BLE001 - a bug must not let Faust ack the batch unprocessed
            await self.quarantine(name, records, error)

    async def quarantine(self, name: str, records: list[Record], error: Exception) -> None:
        """Dead-letter a whole batch a pipeline failed on; if even that fails, die before anything is acked."""
        log.exception("%s pipeline failed on a batch of %d; dead-lettering it", name, len(records))
        reason = f"{name} pipeline failed: {type(error).__name__}: {error}"
        try:
            await self.emit_letters([processing_letter(record, reason, self.pii_key) for record in records])
        except Exception:  # noqa: BLE001 - any failure here means the batch could be lost
            log.critical("could not dead-letter the failed batch; exiting without committing its offsets")
            os._exit(70)


async def consume(stream: Any, take_max: int, within_s: float, run: Callable[[list[Record]], Awaitable[None]],
                  in_flight: int = 1, quiet_in_flight: int = 0) -> None:
    """An agent's loop: micro-batches of a Faust stream through `run`, up to `in_flight` of them at once. A batch's
    events are acked as soon as its `run` has returned (everything durable) and every batch before it was acked, so
    Faust commits no offset past an unfinished batch. A batch closes when full, when `within_s` passed, or when no
    event came for a couple of milliseconds (faust_fixes.py, fix 5): a backlog fills it, a lone event does not wait.
    With `quiet_in_flight`, only that many are in flight after a batch that came in short of `take_max` (no backlog:
    the next events wait for a slot and come together, instead of as many small batches, each with its own
    requests); a full batch opens all `in_flight` slots."""
    pending: set[asyncio.Future[None]] = set()
    latest: asyncio.Future[None] | None = None

    async def finish(records: list[Record], events: Sequence[Any], before: asyncio.Future[None] | None) -> None:
        await run(records)
        if before is not None:
            await asyncio.wait([before])  # acks in the order the batches came
        for event in events:
            await stream.ack(event)

    try:
        async for events in stream.take_adaptive(take_max, within=within_s):
            records = [Record(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                       for e in events]
            latest = asyncio.ensure_future(finish(records, events, latest))
            pending.add(latest)
            latest.add_done_callback(pending.discard)
            limit = in_flight if not quiet_in_flight or len(events) >= take_max else min(quiet_in_flight, in_flight)
            while len(pending) >= limit:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)  # cancelling this cancels no batch
    finally:
        if pending:  # stopping: finish what was taken, so nothing is acked that was not made durable
            await asyncio.shield(asyncio.gather(*pending))
