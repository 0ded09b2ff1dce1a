"""`lepton score fraud`: a risk team's transaction file scored line by line, as the pipeline would have scored it.

The file is streamed: its transactions are replayed point in time (with the feedback's outcomes merged in by
`reported_at`) and scored in batches, and each result is written as soon as its batch is done, so memory holds the
card and merchant states and one batch, not the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from models.fraud import FraudModel, ScoreRequest
from models.fraud_data import Counts, offline_decoder, read_events, read_feedback
from models.fraud_features import FeatureConfig
from models.fraud_replay import Replay
from streams.core.events import Transaction
from streams.core.settings import get_settings


def paid(txn: Transaction, reference: str) -> str | None:
    """The amount as paid, for the reasons, when it is not in the reference currency."""
    return None if txn.currency == reference else f"{txn.amount:,.2f} {txn.currency}"


def score_file(model: FraudModel, data: Path, feedback: Path | None, batch: int, out: TextIO,
               advance: Callable[[int], None] | None = None) -> Counts:
    """Write one JSON line per scorable transaction of `data`; returns what was read and skipped."""
    decoder, counts, fraud = offline_decoder(), Counts(), get_settings().fraud
    outcomes = read_feedback(feedback, decoder, counts) if feedback else []
    replay = Replay(FeatureConfig(model.delay_days, model.currency, fraud.rates), outcomes)
    pending: list[tuple[Transaction, ScoreRequest]] = []

    def flush() -> None:
        scores = model.score_batch([request for _, request in pending])
        for (txn, _), score in zip(pending, scores, strict=True):
            out.write(json.dumps({"id": txn.id, "score": round(score.probability, 6),
                                  "decision": model.thresholds.decide(score.probability), "reasons": score.reasons,
                                  "reason_codes": score.reason_codes}) + "\n")
        if advance:
            advance(len(pending))
        pending.clear()

    newest = None
    for txn in read_events(data, "transactions", Transaction, decoder, counts):
        assert isinstance(txn, Transaction)
        if newest is not None and txn.ts < newest:
            counts.out_of_order += 1
        newest = txn.ts if newest is None or txn.ts > newest else newest
        row = replay.features(txn, counts)
        if row is not None:
            pending.append((txn, ScoreRequest(np.asarray(row), paid(txn, model.currency))))
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    out.flush()
    return counts
