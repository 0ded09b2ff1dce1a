"""`lepton bench fraud --steps`: the fraud stages' own work per payment, in one process, without broker or Faust.

The card stage and the merchant stage run their steps (decode, prepare, score, outputs, commit) on the bench's
generated transactions in micro-batches, the card stage's messages handed straight to the merchant stage, with the
shipped model (its thresholds) and plain dicts for their tables: what is left of a worker's CPU per payment is
Faust's, aiokafka's, the event loop's and the search client's. Each batch size is timed on fresh states, so a smaller
batch pays every per-batch cost (the model call above all) more often: the batches of a backlog are up to 512, at
half load about 25. One process on one core, so the figures are steadier than a live worker's (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch

from models.batcher import share_cpu_threads
from models.fraud import FraudModel, ScoreRequest
from models.fraud_features import FeatureConfig
from streams.core.decoding import Decoder
from streams.core.events import DeadLetter, utc_now
from streams.core.record import Record
from streams.core.settings import get_settings
from streams.tools.bench_fraud import transactions
from streams.worker.fraud import FraudPipeline
from streams.worker.fraud_cards import CardStage

STEPS = ("card decode", "card features and state", "card messages built", "card state written",
         "merchant decode", "merchant features and state", "model and reasons", "documents and alerts built",
         "merchant state written")


class StepClock:
    """Seconds per step, summed over every `with clock(step):`."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STEPS, 0.0)

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] += time.perf_counter() - started


def _stages(model: FraudModel) -> tuple[CardStage, FraudPipeline]:
    """Both stages on fresh, empty tables, scoring in this thread as a worker does (`fraud_model_threads` 0)."""
    settings = get_settings()
    decoder = Decoder(settings)
    config = FeatureConfig(model.delay_days, model.currency, settings.fraud.rates)

    async def score(requests: list[ScoreRequest]) -> Any:
        return model.score_batch(requests, explain_from=model.thresholds.review)

    # no checkpoint: only `process` uses it, and nothing here is made durable
    cards = CardStage(settings, decoder, None, {}, config)  # type: ignore[arg-type]
    merchants = FraudPipeline(settings, decoder, None, score, {}, config, model.thresholds)  # type: ignore[arg-type]
    return cards, merchants


def decoded(stage: CardStage | FraudPipeline, records: Sequence[Record]) -> list[tuple[Record, Any]]:
    """The records' events; a dead letter here is a bug in the generator or the stages (the bench's data is valid)."""
    events = [(record, stage.decode(record)) for record in records]
    letters = [event for _, event in events if isinstance(event, DeadLetter)]
    if letters:
        raise RuntimeError(f"{len(letters)} dead letters, the first: {letters[0].reason}")
    return events


async def _run(model: FraudModel, records: list[Record], batch: int, clock: StepClock) -> int:
    """Every record through both stages in batches of `batch`; returns the documents built."""
    cards, merchants = _stages(model)
    by_merchant, documents = cards.settings.topics.transactions_by_merchant, 0
    for start in range(0, len(records), batch):
        with clock("card decode"):
            events = decoded(cards, records[start:start + batch])
        with clock("card features and state"):
            steps = [(step, None) for step in cards.prepare(events)]
        with clock("card messages built"):
            messages = cards.outputs(steps).messages
        with clock("card state written"):
            cards.commit(steps)
        handed = [Record(by_merchant, 0, start + i, m.key, m.value) for i, m in enumerate(messages)]
        with clock("merchant decode"):
            events = decoded(merchants, handed)
        with clock("merchant features and state"):
            units = merchants.prepare(events)
        with clock("model and reasons"):
            scored = list(zip(units, await merchants.score(units), strict=True))
        with clock("documents and alerts built"):
            documents += len(merchants.outputs(scored).documents)
        with clock("merchant state written"):
            merchants.commit(scored)
    return documents


def run(count: int, batches: Sequence[int] = (512, 25)) -> dict[str, Any]:
    """Microseconds per payment by step on `count` generated transactions: one figure per batch size, in the order of
    `batch_sizes`. The model gets the torch threads a worker gives it, and start-up objects are kept out of the
    garbage collector's way as in a worker (runtime.py); both are undone on return."""
    settings = get_settings()
    model = FraudModel.load(None, "cpu")
    wire = transactions(count, utc_now() - timedelta(hours=6), 0.02)
    records = [Record(settings.topics.transactions, 0, offset, None, json.dumps(value).encode())
               for offset, value in enumerate(wire)]
    threads = torch.get_num_threads()
    share_cpu_threads(settings.batching.model_threads)
    try:
        asyncio.run(_run(model, records[:batches[0]], batches[0], StepClock()))  # torch's first calls: the warm-up
        gc.collect()
        gc.freeze()
        clocks = []
        for batch in batches:
            clocks.append(clock := StepClock())
            documents = asyncio.run(_run(model, records, batch, clock))
            if documents != count:
                raise RuntimeError(f"batch {batch}: {documents} documents for {count} transactions")
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)
    per_step = {f"{step} (us)": [round(clock.seconds[step] * 1e6 / count, 1) for clock in clocks] for step in STEPS}
    total = [round(sum(clock.seconds.values()) * 1e6 / count, 1) for clock in clocks]
    return {"transactions": count, "batch_sizes": list(batches), **per_step, "total_us_per_payment": total}
