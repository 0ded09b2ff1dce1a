"""Labelled transactions for fraud training and evaluation, replayed point in time from a risk team's files (or from
generated streams with their truth).

- Transactions: JSONL in the `transactions` topic schema, replayed in file order (a stream is replayed as it came;
  lines earlier than a line before them are counted as `out_of_order`), validated through the same decoding
  boundary as the pipeline; invalid lines are skipped and counted with their first reasons.
- Feedback: JSONL in the `labels` topic schema (confirmed outcomes), merged into the replay by `reported_at`: each
  outcome is applied before the first transaction at or after that time, as the live pipeline would have it.
- Supervision: a CSV `transaction_id,is_fraud` (only its rows are trained on and scored), or else the feedback
  itself (a transaction is fraud when a fraud was confirmed for it, legitimate otherwise).
- Window: only rows whose event time lies in [since, until) are kept; the rows before build state only.
Card numbers are tokenised with a key made for the run (tokens only need to agree within it): nothing is written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.fraud_features import FEATURE_NAMES
from models.fraud_replay import Replay
from streams.core.decoding import Decoder
from streams.core.errors import LeptonError
from streams.core.events import ChargebackLabel, DeadLetter, InputEvent, Transaction
from streams.core.settings import get_settings

TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f"}
FIRST_REASONS = 5

Advance = Callable[[int], None]


class FraudDataError(LeptonError):
    """A transaction, feedback or label file cannot be used for training or evaluation."""


@dataclass
class Counts:
    """What a replay read and left out; `reasons` are the first few skipped lines and why."""

    lines: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    out_of_order: int = 0
    feedback: int = 0
    feedback_skipped: int = 0
    unmatched_labels: int = 0  # supervision or feedback labels whose id matched no transaction

    def skip(self, where: str, reason: str) -> None:
        """Count a skipped line, keeping the first reasons."""
        self.skipped += 1
        if len(self.reasons) < FIRST_REASONS:
            self.reasons.append(f"{where}: {reason}")


@dataclass
class LabelledData:
    """Features of the labelled transactions in the window, in replay order, with where they came from."""

    X: np.ndarray  # [n, len(FEATURE_NAMES)]
    y: np.ndarray  # [n] 0/1
    scenario: list[str]  # generator scenario ("legit" for legitimate), or "" for file data
    segment: np.ndarray  # [n] which independent stream a row came from (time splits happen per segment)
    cards: list[str]  # card token of each row
    ts: np.ndarray  # [n] event time (Unix seconds)
    ids: list[str]
    source: str
    counts: Counts = field(default_factory=Counts)
    unlabelled: int = 0  # transactions in the window replayed for state but without a label

    @property
    def fraud_rate(self) -> float:
        """Share of fraudulent rows."""
        return float(self.y.mean()) if len(self.y) else 0.0

    def subset(self, rows: np.ndarray) -> LabelledData:
        """The rows `rows` (indices) of this data."""
        return LabelledData(self.X[rows], self.y[rows], [self.scenario[i] for i in rows], self.segment[rows],
                            [self.cards[i] for i in rows], self.ts[rows], [self.ids[i] for i in rows], self.source,
                            self.counts, self.unlabelled)

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

    def split_days(self, days: float) -> tuple[np.ndarray, np.ndarray]:
        """Row indices before the last `days` of event time, and of those last days."""
        cut = float(self.ts.max()) - days * 86_400 if len(self.ts) else 0.0
        return np.flatnonzero(self.ts < cut), np.flatnonzero(self.ts >= cut)


class Collector:
    """Gathers the rows of a replay that are labelled and inside the window."""

    def __init__(self, labels: dict[str, int] | None, since: datetime | None, until: datetime | None,
                 scenarios: dict[str, str] | None = None) -> None:
        self.labels, self.since, self.until, self.scenarios = labels, since, until, scenarios or {}
        self.rows: list[np.ndarray] = []
        self.y: list[int] = []
        self.scenario: list[str] = []
        self.segment: list[int] = []
        self.cards: list[str] = []
        self.ts: list[float] = []
        self.ids: list[str] = []
        self.unlabelled = 0

    def add(self, txn: Transaction, row: np.ndarray, fraud: bool | None, scenario: str = "", segment: int = 0
            ) -> None:
        """Keep the row when it lies in the window and has a label (`fraud` None: look it up in the labels)."""
        if (self.since and txn.ts < self.since) or (self.until and txn.ts >= self.until):
            return
        if fraud is None:
            if self.labels is None:
                raise FraudDataError("no supervision: give --labels or --feedback")
            if txn.id not in self.labels:
                self.unlabelled += 1
                return
            fraud = bool(self.labels[txn.id])
            scenario = self.scenarios.get(txn.id, scenario)
        self.rows.append(row.astype(np.float32))
        self.y.append(int(fraud))
        self.scenario.append(scenario)
        self.segment.append(segment)
        self.cards.append(txn.card_token)
        self.ts.append(txn.ts.timestamp())
        self.ids.append(txn.id)

    def data(self, source: str, counts: Counts) -> LabelledData:
        """The collected rows."""
        return LabelledData(
            X=np.vstack(self.rows) if self.rows else np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32),
            y=np.asarray(self.y, dtype=np.int64), scenario=self.scenario,
            segment=np.asarray(self.segment, dtype=np.int64), cards=self.cards,
            ts=np.asarray(self.ts, dtype=np.float64), ids=self.ids, source=source, counts=counts,
            unlabelled=self.unlabelled)


def read_label_csv(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """transaction_id -> 0/1 from a CSV with the header `transaction_id,is_fraud` (and, optionally, `scenario`:
    transaction_id -> the kind of fraud or legitimate traffic, for recall per pattern)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"transaction_id", "is_fraud"} <= set(reader.fieldnames):
            raise FraudDataError(f"{path}: the header must name the columns transaction_id,is_fraud")
        labels: dict[str, int] = {}
        scenarios: dict[str, str] = {}
        for line, row in enumerate(reader, 2):
            word = (row["is_fraud"] or "").strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise FraudDataError(f"{path}:{line}: is_fraud must be 1/0 (or true/false), got {word!r}")
            key = (row["transaction_id"] or "").strip()
            labels[key] = int(word in TRUE_WORDS)
            if row.get("scenario"):
                scenarios[key] = row["scenario"].strip()
    if not labels:
        raise FraudDataError(f"{path}: no labels")
    return labels, scenarios


def offline_decoder() -> Decoder:
    """A decoder whose card tokens hold for one run only: offline commands write no key file."""
    return Decoder(get_settings(), pii_key=os.urandom(32))


def read_events(path: Path, topic: str, model: type[InputEvent], decoder: Decoder, counts: Counts
                ) -> Iterator[InputEvent]:
    """Valid events of a JSONL file, in file order; invalid lines are counted in `counts` with their reasons."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise FraudDataError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            counts.lines += 1
            event = decoder.decode(line.rstrip(b"\r\n"), topic=topic, model=model, origin=f"{path.name}:{number}")
            if isinstance(event, DeadLetter):
                counts.skip(f"{path.name}:{number}", f"{event.error_type}: {event.reason}")
            else:
                yield event


def read_feedback(path: Path, decoder: Decoder, counts: Counts) -> list[ChargebackLabel]:
    """The valid outcomes of a feedback file (the `labels` schema); invalid lines are counted apart."""
    found = Counts()
    labels = [e for e in read_events(path, "labels", ChargebackLabel, decoder, found)
              if isinstance(e, ChargebackLabel)]
    counts.feedback, counts.feedback_skipped = found.lines - found.skipped, found.skipped
    counts.reasons += found.reasons[: FIRST_REASONS - len(counts.reasons)]
    return labels


@dataclass(frozen=True)
class Part:
    """One file of transactions to replay, and which of its rows to keep: those labelled in `labels` (None: the
    feedback's outcomes) with event time in [since, until)."""

    data: Path
    labels: Path | None = None
    since: datetime | None = None
    until: datetime | None = None


def replay_files(parts: list[Part], feedback: Path | None, *, delay_days: int, advance: Advance | None = None
                 ) -> list[LabelledData]:
    """A risk team's history replayed point in time, the files one after the other through the same states (a
    validation file continues the training file); the labelled rows of each part's window."""
    from models.fraud_features import FeatureConfig

    decoder, counts = offline_decoder(), Counts()
    outcomes = read_feedback(feedback, decoder, counts) if feedback else []
    fraud = get_settings().fraud
    replay = Replay(FeatureConfig(delay_days, fraud.reference_currency, fraud.rates), outcomes)
    results: list[LabelledData] = []
    n = 0
    for part in parts:
        labels, scenarios = _supervision(part, outcomes, feedback)
        collector = Collector(labels, part.since, part.until, scenarios)
        newest, matched = None, set()
        for txn in read_events(part.data, "transactions", Transaction, decoder, counts):
            assert isinstance(txn, Transaction)
            n += 1
            if dict.__contains__(labels, txn.id):
                matched.add(txn.id)
            if newest is not None and txn.ts < newest:
                counts.out_of_order += 1
            newest = txn.ts if newest is None or txn.ts > newest else newest
            row = replay.features(txn, counts)
            if row is not None:
                collector.add(txn, row, None)
            if advance and n % 1000 == 0:
                advance(1000)
        counts.unmatched_labels += dict.__len__(labels) - len(matched)
        result = collector.data(f"{part.data.name} + {(part.labels or feedback).name}", counts)  # type: ignore
        if not len(result.y):
            raise FraudDataError(f"no labelled transaction of {part.data} in the window (ids must match, and event "
                                 "times fall inside --since/--until)")
        results.append(result)
    return results


def _supervision(part: Part, outcomes: list[ChargebackLabel], feedback: Path | None
                 ) -> tuple[dict[str, int], dict[str, str]]:
    """The labels of a part: its CSV, or else the feedback's outcomes (the latest per transaction)."""
    if part.labels is not None:
        return read_label_csv(part.labels)
    if feedback is None:
        raise FraudDataError("give --feedback (outcomes, also used as labels) or --labels with --data")
    latest = {label.transaction_id: label.fraud for label in sorted(outcomes, key=lambda x: x.reported_at)}
    return _FraudOrLegit(latest), {}


class _FraudOrLegit(dict[str, int]):
    """Labels from feedback: fraud where a fraud was confirmed, every other transaction legitimate."""

    def __init__(self, outcomes: dict[str, bool]) -> None:
        super().__init__({i: int(f) for i, f in outcomes.items()})

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> int:
        return super().get(key, 0)


def from_segments(segments: Iterable[Iterable[tuple[Transaction, dict[str, Any]]]], source: str, config: Any,
                  advance: Advance | None = None) -> LabelledData:
    """Labelled rows from independent streams of (transaction, truth) pairs, each replayed with states of its own;
    truth gives `is_fraud`, `scenario` and, for fraud with a delayed report, `reported_at` (then the outcome is
    fed back into the replay at that time, as a chargeback feed would)."""
    from models.fraud_replay import outcomes_of

    collector, counts = Collector(None, None, None), Counts()
    for index, stream in enumerate(segments):
        pairs = list(stream)
        replay = Replay(config, outcomes_of(pairs))
        for n, (txn, truth) in enumerate(pairs, 1):
            row = replay.features(txn, counts)
            if row is not None:
                collector.add(txn, row, bool(truth.get("is_fraud")), truth.get("scenario") or "legit", index)
            if advance and n % 1000 == 0:
                advance(1000)
    return collector.data(source, counts)
