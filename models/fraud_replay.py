"""Point-in-time replay of the fraud features: transactions in order, confirmed outcomes applied by `reported_at`.

Each outcome is applied before the first transaction at or after its `reported_at`, which is when the live
pipeline, reading the `labels` topic as outcomes are reported, would have it; the feature code itself never reads
an outcome before that time either. Card and merchant states live in dictionaries here; in the pipeline they are
the card and merchant tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from models.card_features import CardState
from models.fraud_features import (
    FeatureConfig,
    UnknownCurrencyError,
    card_step,
    label_card,
    label_merchant,
    merchant_step,
)
from models.merchant_features import MerchantState
from streams.core.events import ChargebackLabel, Transaction


class Skips(Protocol):
    """Where skipped transactions are counted (fraud_data.Counts)."""

    def skip(self, where: str, reason: str) -> None: ...


class Replay:
    """The features of each transaction as the pipeline would compute them at its time."""

    def __init__(self, config: FeatureConfig, outcomes: Iterable[ChargebackLabel] = ()) -> None:
        self.config = config
        self.outcomes: Sequence[ChargebackLabel] = sorted(outcomes, key=lambda label: label.reported_at)
        self.applied = 0
        self.cards: dict[str, CardState] = {}
        self.merchants: dict[str, MerchantState] = {}

    def apply_outcomes(self, until: Any) -> None:
        """Apply every outcome reported at or before `until` (a datetime) not applied yet."""
        while self.applied < len(self.outcomes) and self.outcomes[self.applied].reported_at <= until:
            label = self.outcomes[self.applied]
            self.applied += 1
            self.merchants[label.merchant_id] = label_merchant(self.merchants.get(label.merchant_id), label,
                                                               self.config)
            if label.card_token:
                card = label_card(self.cards.get(label.card_token), label)
                if card is not None:
                    self.cards[label.card_token] = card

    def features(self, txn: Transaction, skips: Skips) -> np.ndarray | None:
        """The transaction's feature vector (card then merchant), or None when it cannot be scored (counted)."""
        self.apply_outcomes(txn.ts)
        try:
            card, card_row = card_step(self.cards.get(txn.card_token), txn, self.config)
        except UnknownCurrencyError as error:
            skips.skip(txn.id, str(error))
            return None
        self.cards[txn.card_token] = card
        self.merchants[txn.merchant_id], merchant_row = merchant_step(self.merchants.get(txn.merchant_id), txn,
                                                                      self.config)
        return np.concatenate([card_row, merchant_row])


def outcomes_of(pairs: Iterable[tuple[Transaction, dict[str, Any]]]) -> list[ChargebackLabel]:
    """The chargeback feed of a generated stream: one confirmed fraud per fraudulent transaction whose truth says
    when it was reported (`reported_at`)."""
    return [ChargebackLabel(transaction_id=txn.id, merchant_id=txn.merchant_id, transaction_ts=txn.ts, fraud=True,
                            reported_at=truth["reported_at"], card_token=txn.card_token)
            for txn, truth in pairs if truth.get("is_fraud") and truth.get("reported_at")]
