"""The fraud model's features for one transaction: its card's (card_features.py) and its merchant's
(merchant_features.py), in that order, each against the state before the transaction.

The live pipeline computes the two halves in two stages (the card stage keyed by card, the merchant stage keyed by
merchant); a replay of files computes both in one process with the same steps, so training, evaluation and the
pipeline see the same numbers. Amounts are converted to the reference currency first (`FeatureConfig`); a
currency without a rate is an error that names the setting to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.card_features import CARD_FEATURES, CardState, mark_fraud, update
from models.merchant_features import MERCHANT_FEATURES, MerchantState, add_label, add_transaction, features
from streams.core.errors import ConfigurationError
from streams.core.events import ChargebackLabel, Transaction

FEATURE_NAMES: list[str] = [*CARD_FEATURES, *MERCHANT_FEATURES]
INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
CARD_PART = slice(0, len(CARD_FEATURES))
MERCHANT_PART = slice(len(CARD_FEATURES), len(FEATURE_NAMES))


class UnknownCurrencyError(ConfigurationError):
    """A transaction's currency has no rate to the reference currency."""


@dataclass(frozen=True)
class FeatureConfig:
    """What the features depend on besides the events: the label delay and the currency rates."""

    delay_days: int = 7
    reference_currency: str = "EUR"
    rates: Mapping[str, float] | None = None  # units of the reference currency per unit of each currency

    def to_reference(self, amount: float, currency: str) -> float:
        """`amount` of `currency` in the reference currency."""
        if currency == self.reference_currency:
            return amount
        rate = (self.rates or {}).get(currency)
        if rate is None:
            raise UnknownCurrencyError(
                f"no exchange rate for {currency} to {self.reference_currency}: add it to LEPTON_FRAUD__RATES "
                f'(JSON, for example {{"{currency}": 0.5}}: {self.reference_currency} per {currency})')
        return amount * rate


def card_step(state: CardState | None, txn: Transaction, config: FeatureConfig) -> tuple[CardState, np.ndarray]:
    """The card half of the features and the card's state after the transaction."""
    return update(state, txn, config.to_reference(txn.amount, txn.currency))


def merchant_step(state: MerchantState | None, txn: Transaction, config: FeatureConfig
                  ) -> tuple[MerchantState, np.ndarray]:
    """The merchant half of the features and the merchant's state after the transaction (a new state)."""
    t = txn.ts.timestamp()
    row = features(state, t, config.delay_days)
    return add_transaction(state.copy() if state else None, t, config.delay_days), row


def label_merchant(state: MerchantState | None, label: ChargebackLabel, config: FeatureConfig) -> MerchantState:
    """The merchant's state after an outcome of one of its transactions (a new state)."""
    return add_label(state.copy() if state else None, label.transaction_id, label.transaction_ts.timestamp(),
                     label.reported_at.timestamp(), label.fraud, config.delay_days)


def label_card(state: CardState | None, label: ChargebackLabel) -> CardState | None:
    """The card's state after a confirmed fraud on it (unchanged for a legitimate outcome)."""
    return mark_fraud(state, label.reported_at.timestamp()) if label.fraud else state
