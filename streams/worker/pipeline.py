"""The one pipeline skeleton: decode, prepare, score in batches, outputs, durable (the checkpoint), then state.

The sentiment, fraud, clicks and catalog pipelines fill in their own steps; `process` runs them in this order for
one micro-batch and returns only once every output is durable, so the caller may ack the batch's offsets:
1. `decode` each record into a validated event, or a dead letter (the foundation's decoder);
2. `prepare` the events into units of work (an event, a card's feature row, a user's state), skipping replays of
   events a stateful pipeline already absorbed;
3. `score` the units, in chunks sent to the batcher together; a chunk the model fails on is dead-lettered;
4. `outputs`: the documents, alerts and messages of the scored units;
5. the checkpoint makes the outputs and the dead letters durable;
6. `commit` the state the batch changed (written last, so a batch replayed after a crash is neither counted twice
   nor missing outputs).
It never raises for bad data: a bad event, a failed model call or a refused document becomes a dead letter.

Several micro-batches of one stage may be in flight (checkpoint.consume): each is decoded and prepared as soon as
it arrives, in arrival order (no await comes before `prepare`), and a stateful pipeline stages the states it
prepared, so the next batch builds on them while this one is scored and written; the commits then follow in arrival
order, each after its own batch is durable. What a batch staged and did not store is then unstaged (`unstage`).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from sinks import metrics
from streams.core.decoding import Decoder
from streams.core.events import Alert, DeadLetter, InputEvent
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Outputs, processing_letter

log = logging.getLogger(__name__)


class Unit(Protocol):
    """What a pipeline scores; `records` are the records behind it, dead-lettered if its scoring fails."""

    @property
    def records(self) -> Sequence[Record]: ...


E = TypeVar("E", bound=InputEvent)
U = TypeVar("U", bound=Unit)


@dataclass(frozen=True)
class BatchOutcome:
    """What one micro-batch produced (for progress reports and tests)."""

    scored: int  # events scored (clicks: folded into their users' recommendations)
    dead_letters: int
    alerts: list[Alert] = field(default_factory=list)
    published: int = 0  # messages other than alerts and dead letters


class Pipeline(ABC, Generic[E, U]):
    """The steps of one pipeline around the skeleton in `process`."""

    event_model: type[E]
    index_kind: str = ""  # the documents' index kind (metrics label); "" when the pipeline writes none
    chunk_size: int = 0  # units per model call (sent together); 0: one call per micro-batch
    scored_stream: str = ""  # the stream scored events are counted under, when not the one consumed

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, stream: str) -> None:
        self.settings, self.decoder, self.checkpoint, self.stream = settings, decoder, checkpoint, stream
        self._last_commit: asyncio.Future[None] | None = None  # set once the latest batch to arrive has committed

    def decode(self, record: Record) -> E | DeadLetter:
        """The record's validated event, or its dead letter."""
        return self.decoder.decode(record.value, topic=record.topic, partition=record.partition,  # type: ignore
                                   offset=record.offset, key=record.key, model=self.event_model)

    @abstractmethod
    def prepare(self, events: list[tuple[Record, E]]) -> list[U]:
        """The units to score, in order."""

    @abstractmethod
    async def score(self, units: list[U]) -> Sequence[Any]:
        """One result per unit, in order (one batched model call)."""

    @abstractmethod
    def outputs(self, scored: list[tuple[U, Any]]) -> Outputs:
        """Documents, alerts and messages of the scored units."""

    def commit(self, scored: list[tuple[U, Any]]) -> None:
        """Write the state the batch changed, once its outputs are durable (stateless pipelines write none)."""

    def unstage(self, units: list[U]) -> None:
        """Forget the states this batch staged in `prepare` and did not store: all of them when it failed, those of
        units whose model call failed otherwise (stateless pipelines staged none)."""

    @staticmethod
    def events_in(scored: list[tuple[U, Any]]) -> int:
        """How many events the scored units stand for."""
        return sum(len(unit.records) for unit, _ in scored)

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Decode, prepare, score, output, make durable, commit state (after the batch before this one); durable when
        it returns."""
        previous, committed = self._last_commit, asyncio.get_running_loop().create_future()
        self._last_commit = committed
        units: list[U] = []
        try:
            metrics.EVENTS_CONSUMED.labels(self.stream).inc(len(records))
            letters: list[DeadLetter] = []
            events: list[tuple[Record, E]] = []
            for record in records:
                decoded = self.decode(record)
                if isinstance(decoded, DeadLetter):
                    letters.append(decoded)
                else:
                    events.append((record, decoded))
            units = self.prepare(events)
            scored, failed = await self._score(units)
            letters += failed
            out = self.outputs(scored)
            out.letters = letters + out.letters
            refused = await self.checkpoint.make_durable(out)
            if previous is not None:
                await previous
            await self.checkpoint.before_state_write()
            self.commit(scored)
        finally:
            self.unstage(units)
            committed.set_result(None)
        metrics.EVENTS_SCORED.labels(self.scored_stream or self.stream).inc(self.events_in(scored))
        if self.index_kind:
            metrics.DOCS_INDEXED.labels(self.index_kind).inc(len(out.documents) - refused)
        return BatchOutcome(scored=self.events_in(scored), dead_letters=len(out.letters) + refused,
                            alerts=out.alerts, published=len(out.messages))

    async def _score(self, units: list[U]) -> tuple[list[tuple[U, Any]], list[DeadLetter]]:
        """Every chunk goes to the batcher at once (the model threads take them side by side); a failed chunk's
        units are dead-lettered, the others kept."""
        if not units:
            return [], []
        size = self.chunk_size or len(units)
        chunks = [units[start:start + size] for start in range(0, len(units), size)]
        outcomes = await asyncio.gather(*(self.score(chunk) for chunk in chunks), return_exceptions=True)
        scored: list[tuple[U, Any]] = []
        letters: list[DeadLetter] = []
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error("%s model failed on a batch of %d", self.stream, len(chunk), exc_info=outcome)
                reason = f"model failed: {type(outcome).__name__}: {outcome}"
                letters += [processing_letter(record, reason, self.decoder.pii_key)
                            for unit in chunk for record in unit.records]
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                scored += zip(chunk, outcome, strict=True)
        return scored, letters
