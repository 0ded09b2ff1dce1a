"""Labelled transaction streams for fraud training and evaluation: a risk team's own files, or streams with truth.

Streams with truth (`from_segments`) are what the generator gives (streams/tools/generated_data.py): independent
runs, each replayed with card states of its own, labels from the generator's truth.

File source (`--data FILE.jsonl --labels FILE.csv`): one transaction per line in our schema (the
`transactions` topic contract, infra/schemas/transaction.json: `card_number` or `card_token`), validated
through the same decoding boundary as the pipeline; rows that fail are skipped and counted. Lines are
replayed in event-time order (a stable sort, so a time-ordered file is kept as is). The label file is a CSV
with a header `transaction_id,is_fraud`; is_fraud is 1/0 (also true/false, yes/no). Transactions without a
label still update their card's state but are left out of training and metrics.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.fraud_features import FEATURE_NAMES, CardState, update
from streams.core.errors import LeptonError
from streams.core.events import Transaction

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


def from_segments(segments: Iterable[Iterable[tuple[Transaction, dict]]], source: str,
                  advance: Advance | None = None) -> LabelledData:
    """Labelled rows from independent streams of (transaction, truth) pairs, each replayed through the per-card
    feature code with a state of its own; truth says `is_fraud` and `scenario` (a generator's ground truth)."""
    rows: list[np.ndarray] = []
    labels: list[int] = []
    scenarios: list[str] = []
    segment_of: list[int] = []
    for index, stream in enumerate(segments):
        states: dict[str, CardState] = {}
        n = 0
        for n, (txn, truth) in enumerate(stream, 1):
            states[txn.card_token], row = update(states.get(txn.card_token), txn)
            rows.append(row)
            labels.append(int(bool(truth.get("is_fraud"))))
            scenarios.append(truth.get("scenario") or "legit")
            segment_of.append(index)
            if advance and n % 1000 == 0:
                advance(1000)
        if advance:
            advance(n % 1000)
    return LabelledData(
        X=np.vstack(rows) if rows else np.zeros((0, len(FEATURE_NAMES))),
        y=np.asarray(labels, dtype=np.int64),
        scenario=scenarios,
        segment=np.asarray(segment_of, dtype=np.int64),
        source=source,
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
    from streams.core.decoding import Decoder
    from streams.core.settings import get_settings

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
