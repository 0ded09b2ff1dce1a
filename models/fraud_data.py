"""Labelled transaction streams for fraud training and evaluation: the generator, or a risk team's own files.

Generator source: a seed expands into `SEGMENTS`, independent generator runs with different traffic densities
(events per card per hour) and start times of day, so the model sees sparse and busy cards at every hour.
Labels come from the generator's truth.

File source (`--data FILE.jsonl --labels FILE.csv`): one transaction per line in our schema (the
`transactions` topic contract, infra/schemas/transaction.json: `card_number` or `card_token`), validated
through the same decoding boundary as the pipeline; rows that fail are skipped and counted. Lines are
replayed in event-time order (a stable sort, so a time-ordered file is kept as is). The label file is a CSV
with a header `transaction_id,is_fraud`; is_fraud is 1/0 (also true/false, yes/no). Transactions without a
label still update their card's state but are left out of training and metrics.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from models.fraud_features import FEATURE_NAMES, CardState, update
from streams.errors import LeptonError
from streams.events import Transaction

# (simulated events per second, cards, share of the requested count)
SEGMENTS: list[tuple[float, int, float]] = [(50.0, 2000, 0.4), (2.0, 1000, 0.3), (0.2, 300, 0.3)]
GENERATOR_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
GENERATOR_KEY = b"lepton-fraud-training-key-not-secret"  # tokens only need to be stable within a run
TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f"}

Advance = Callable[[int], None]


class FraudDataError(LeptonError):
    """A transaction or label file cannot be used for training or evaluation."""


@dataclass
class LabelledData:
    """Features of the labelled transactions, in replay order, with where they came from."""

    X: np.ndarray  # [n, len(FEATURE_NAMES)]
    y: np.ndarray  # [n] 0/1
    scenario: list[str]  # generator scenario ("legit" for legitimate), or "" for file data
    segment: np.ndarray  # [n] which independent stream a row came from (time splits happen per segment)
    source: str
    skipped: int = 0  # invalid lines (file source)
    unlabelled: int = 0  # transactions replayed for state but without a label

    @property
    def fraud_rate(self) -> float:
        """Share of fraudulent rows."""
        return float(self.y.mean()) if len(self.y) else 0.0

    def split(self, share: float) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the first `share` of every segment (earlier in time) and of the rest."""
        head: list[np.ndarray] = []
        tail: list[np.ndarray] = []
        for seg in np.unique(self.segment):
            rows = np.flatnonzero(self.segment == seg)
            cut = int(len(rows) * share)
            head.append(rows[:cut])
            tail.append(rows[cut:])
        return np.concatenate(head), np.concatenate(tail)


def _segment_stream(seed: int, index: int, count: int, fraud_rate: float) -> Iterator[tuple[Transaction, dict]]:
    """`count` validated transactions and their truth from one generator run."""
    from streams.generators import TransactionGenerator

    rate, cards, _ = SEGMENTS[index]
    rng = random.Random(seed * 1000 + index)
    start = GENERATOR_EPOCH + timedelta(days=7 * index, hours=rng.uniform(0, 24))
    gen = TransactionGenerator(
        seed=seed * 1000 + index, start=start, rate_per_s=rate, fraud_rate=fraud_rate, n_cards=cards
    )
    for i, item in enumerate(gen):
        if i >= count:
            return
        txn = Transaction.model_validate(item.record, context={"pii_key": GENERATOR_KEY})
        yield txn, item.truth or {}


def from_generator(seed: int, count: int, fraud_rate: float = 0.02, advance: Advance | None = None) -> LabelledData:
    """`count` generated transactions (split over SEGMENTS) replayed through the per-card feature code."""
    rows: list[np.ndarray] = []
    labels: list[int] = []
    scenarios: list[str] = []
    segments: list[int] = []
    sizes = [int(count * share) for _, _, share in SEGMENTS]
    sizes[0] += count - sum(sizes)
    for index, size in enumerate(sizes):
        states: dict[str, CardState] = {}
        for n, (txn, truth) in enumerate(_segment_stream(seed, index, size, fraud_rate), 1):
            states[txn.card_token], row = update(states.get(txn.card_token), txn)
            rows.append(row)
            labels.append(int(bool(truth.get("is_fraud"))))
            scenarios.append(truth.get("scenario") or "legit")
            segments.append(index)
            if advance and n % 1000 == 0:
                advance(1000)
        if advance:
            advance(size % 1000)
    return LabelledData(
        X=np.vstack(rows) if rows else np.zeros((0, len(FEATURE_NAMES))),
        y=np.asarray(labels, dtype=np.int64),
        scenario=scenarios,
        segment=np.asarray(segments, dtype=np.int64),
        source=f"generator seed={seed} count={count} fraud_rate={fraud_rate}",
    )


def read_labels(path: Path) -> dict[str, int]:
    """transaction_id -> 0/1 from a CSV with the header `transaction_id,is_fraud`."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"transaction_id", "is_fraud"} <= set(reader.fieldnames):
            raise FraudDataError(f"{path}: the header must name the columns transaction_id,is_fraud")
        labels: dict[str, int] = {}
        for line, row in enumerate(reader, 2):
            word = (row["is_fraud"] or "").strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise FraudDataError(f"{path}:{line}: is_fraud must be 1/0 (or true/false), got {word!r}")
            labels[(row["transaction_id"] or "").strip()] = int(word in TRUE_WORDS)
    if not labels:
        raise FraudDataError(f"{path}: no labels")
    return labels


def read_transactions(path: Path) -> tuple[list[Transaction], int]:
    """Valid transactions of a JSONL file sorted by event time (stable), and the number of invalid lines."""
    from streams.decoding import Decoder
    from streams.settings import get_settings

    decoder = Decoder(get_settings())
    events: list[Transaction] = []
    skipped = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            result = decoder.decode(
                line.rstrip(b"\r\n"), topic="transactions", model=Transaction, origin=f"{path.name}:{number}"
            )
            if isinstance(result, Transaction):
                events.append(result)
            else:
                skipped += 1
    events.sort(key=lambda txn: txn.ts)
    return events, skipped


def from_files(data: Path, labels_path: Path, advance: Advance | None = None) -> LabelledData:
    """A risk team's history (JSONL + label CSV) replayed through the per-card feature code."""
    labels = read_labels(labels_path)
    events, skipped = read_transactions(data)
    states: dict[str, CardState] = {}
    rows: list[np.ndarray] = []
    y: list[int] = []
    unlabelled = 0
    for n, txn in enumerate(events, 1):
        states[txn.card_token], row = update(states.get(txn.card_token), txn)
        if txn.id in labels:
            rows.append(row)
            y.append(labels[txn.id])
        else:
            unlabelled += 1
        if advance and n % 1000 == 0:
            advance(1000)
    if not rows:
        raise FraudDataError(f"no transaction of {data} has a label in {labels_path} (ids must match)")
    if len(set(y)) < 2:
        raise FraudDataError(f"{labels_path}: need both fraudulent and legitimate labelled transactions")
    return LabelledData(
        X=np.vstack(rows),
        y=np.asarray(y, dtype=np.int64),
        scenario=[""] * len(y),
        segment=np.zeros(len(y), dtype=np.int64),
        source=f"{data.name} + {labels_path.name}",
        skipped=skipped,
        unlabelled=unlabelled,
    )
