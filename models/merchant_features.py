"""Per-merchant fraud risk from confirmed outcomes: a small JSON-serialisable state per merchant (terminal).

The state counts the merchant's transactions per day of their event time, and keeps its confirmed frauds by
transaction id with the day of the transaction and the hour the confirmation became known (a later label for the
same transaction replaces the earlier one, so a repeated or reversed chargeback is not counted twice). At time t the
features read the windows of 1, 7 and 30 days that end `delay_days` before t's day (the book-keeping of the Fraud
Detection Handbook's terminal risk features): how many transactions the merchant had then, and which share of them
has been confirmed as fraud by time t. A confirmation counts from the first full hour after its `reported_at`, never
before, so no feature reads a label before it was known, in a replay as in the live pipeline. Days are UTC days of
the Unix time.

Memory is bounded per merchant: days older than the longest window are dropped as time moves on, and at most
`MAX_CONFIRMED` confirmed frauds are kept (the oldest transaction days go first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_S = 86_400.0
HOUR_S = 3_600.0
MAX_CONFIRMED = 5_000
WINDOWS = (1, 7, 30)
MERCHANT_FEATURES: list[str] = [
    *(f"merchant_count_{w}d" for w in WINDOWS),  # the merchant's transactions in the window
    *(f"merchant_fraud_rate_{w}d" for w in WINDOWS),  # the share of them confirmed as fraud by time t
    "merchant_frauds_30d",  # confirmed frauds in the 30-day window
]


def day_of(t: float) -> int:
    """The UTC day number of Unix time t."""
    return math.floor(t / DAY_S)


@dataclass
class MerchantState:
    """One merchant's transaction counts by day and confirmed frauds: transaction id -> (its day, hour known)."""

    counts: dict[int, int] = field(default_factory=dict)
    frauds: dict[str, tuple[int, int]] = field(default_factory=dict)
    newest_day: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (day keys become strings, pairs are written as arrays)."""
        return {"counts": {str(d): n for d, n in self.counts.items()},
                "frauds": dict(self.frauds), "newest_day": self.newest_day}

    def copy(self) -> MerchantState:
        """An independent copy (the update functions change a state in place)."""
        return MerchantState(dict(self.counts), dict(self.frauds), self.newest_day)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MerchantState:
        """Inverse of `to_dict`."""
        return cls({int(d): int(n) for d, n in data.get("counts", {}).items()},
                   {i: (int(d), int(h)) for i, (d, h) in data.get("frauds", {}).items()}, data.get("newest_day"))


def features(state: MerchantState | None, t: float, delay_days: int) -> np.ndarray:
    """The merchant's features for a transaction at Unix time t (the state is not changed)."""
    out = np.zeros(len(MERCHANT_FEATURES), dtype=np.float64)
    if state is None:
        return out
    end = day_of(t) - delay_days  # windows cover the days before `end`
    known_hour = math.floor(t / HOUR_S)  # confirmations from hours before this one are known at t
    frauds_by_day: dict[int, int] = {}
    for d, h in state.frauds.values():
        if h < known_hour and end - WINDOWS[-1] <= d < end:
            frauds_by_day[d] = frauds_by_day.get(d, 0) + 1
    for i, w in enumerate(WINDOWS):
        count = sum(state.counts.get(d, 0) for d in range(end - w, end))
        frauds = sum(n for d, n in frauds_by_day.items() if d >= end - w)
        out[i] = count
        out[len(WINDOWS) + i] = frauds / count if count else 0.0
    out[-1] = sum(frauds_by_day.values())
    return out


def _prune(state: MerchantState, delay_days: int) -> None:
    """Forget days no window can read any more (the newest day seen minus delay and the longest window), and keep
    at most MAX_CONFIRMED confirmed frauds (the latest transaction days)."""
    oldest = state.newest_day - delay_days - WINDOWS[-1] if state.newest_day is not None else None
    if oldest is not None and any(d < oldest for d in state.counts):
        state.counts = {d: n for d, n in state.counts.items() if d >= oldest}
    stale = oldest is not None and any(d < oldest for d, _ in state.frauds.values())
    if stale or len(state.frauds) > MAX_CONFIRMED:
        kept = sorted(((pair, i) for i, pair in state.frauds.items() if oldest is None or pair[0] >= oldest),
                      reverse=True)
        state.frauds = {i: pair for pair, i in kept[:MAX_CONFIRMED]}


def add_transaction(state: MerchantState | None, t: float, delay_days: int) -> MerchantState:
    """The state after one more transaction at Unix time t (changed in place when given)."""
    state = state or MerchantState()
    d = day_of(t)
    state.counts[d] = state.counts.get(d, 0) + 1
    if state.newest_day is None or d > state.newest_day:
        state.newest_day = d
        _prune(state, delay_days)
    return state


def add_label(state: MerchantState | None, transaction_id: str, transaction_t: float, reported_t: float, fraud: bool,
              delay_days: int) -> MerchantState:
    """The state after an outcome of transaction `transaction_id` (at `transaction_t`) known from `reported_t` on:
    a confirmed fraud is counted from the next full hour; a later "not fraud" for the same transaction withdraws it."""
    state = state or MerchantState()
    if fraud:
        state.frauds[transaction_id] = (day_of(transaction_t), math.floor(reported_t / HOUR_S))
        _prune(state, delay_days)
    else:
        state.frauds.pop(transaction_id, None)
    return state
