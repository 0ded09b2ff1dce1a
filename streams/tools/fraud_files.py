"""Labelled card-transaction files from a simulator: what a risk team would hand over, in the input schemas.

`write_files` writes, into one folder, `transactions.jsonl` (the `transactions` topic schema, in time order),
`feedback.jsonl` (the `labels` topic schema: one confirmed fraud per fraudulent transaction, at the time its
chargeback was reported, in that order) and `labels.csv` (`transaction_id,is_fraud,scenario`: the truth of every
transaction, for evaluation).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from streams.generators.timeline import Generated

FILES = ("transactions.jsonl", "feedback.jsonl", "labels.csv")


@dataclass(frozen=True)
class Written:
    """What `write_files` wrote."""

    transactions: int
    frauds: int
    first_ts: str
    last_ts: str


def write_files(events: Iterable[Generated], folder: Path, advance: Callable[[int], None] | None = None) -> Written:
    """Write the three files of a simulated stream (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    chargebacks: list[dict[str, object]] = []
    count, first, last = 0, "", ""
    with (folder / FILES[0]).open("w") as transactions, (folder / FILES[2]).open("w", newline="") as labels:
        truth_writer = csv.writer(labels)
        truth_writer.writerow(["transaction_id", "is_fraud", "scenario"])
        for record, truth in events:
            truth = truth or {}
            transactions.write(json.dumps(record, separators=(",", ":")) + "\n")
            truth_writer.writerow([record["id"], int(bool(truth.get("is_fraud"))), truth.get("scenario") or "legit"])
            if truth.get("is_fraud") and truth.get("reported_at"):
                label: dict[str, object] = {
                    "transaction_id": record["id"], "merchant_id": record["merchant_id"],
                    "transaction_ts": record["ts"], "fraud": True, "reported_at": truth["reported_at"]}
                for field in ("card_token", "card_number"):
                    if field in record:
                        label[field] = record[field]
                chargebacks.append(label)
            count += 1
            first, last = first or str(record["ts"]), str(record["ts"])
            if advance and count % 1000 == 0:
                advance(1000)
    chargebacks.sort(key=lambda label: str(label["reported_at"]))
    with (folder / FILES[1]).open("w") as feedback:
        for label in chargebacks:
            feedback.write(json.dumps(label, separators=(",", ":")) + "\n")
    return Written(count, len(chargebacks), first, last)
