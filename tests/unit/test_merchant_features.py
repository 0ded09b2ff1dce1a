"""Merchant risk on hand-made sequences: the windows end the label delay before t, an outcome counts only from the
first full hour after it was reported, repeats and reversals, bounded memory."""

from __future__ import annotations

import json

import pytest

from models.merchant_features import (
    MAX_CONFIRMED,
    MERCHANT_FEATURES,
    MerchantState,
    add_label,
    add_transaction,
    day_of,
    features,
)

DAY, HOUR = 86_400.0, 3_600.0
T0 = 20_000 * DAY  # midnight UTC of day 20,000
DELAY = 7


def named(state: MerchantState | None, t: float, delay: int = DELAY) -> dict[str, float]:
    return dict(zip(MERCHANT_FEATURES, features(state, t, delay).tolist(), strict=True))


def with_days(counts: dict[int, int]) -> MerchantState:
    state = None
    for day, n in counts.items():
        for i in range(n):
            state = add_transaction(state, T0 + day * DAY + i, DELAY)
    assert state is not None
    return state


def test_a_merchant_never_seen_has_zero_features() -> None:
    assert set(named(None, T0).values()) == {0.0}


def test_windows_of_1_7_and_30_days_end_the_label_delay_before_t() -> None:
    state = with_days({0: 4, 1: 2, 5: 3, 9: 5})
    # at day 13 the windows end before day 13 - 7 = 6: 1 day = day 5, 7 days = days -1..5, 30 days = -24..5
    f = named(state, T0 + 13 * DAY + 10 * HOUR)
    assert (f["merchant_count_1d"], f["merchant_count_7d"], f["merchant_count_30d"]) == (3, 9, 9)
    # day 16: windows end before day 9 (day 9 not counted yet); the 7 days are 2..8, so days 0 and 1 fell out
    f = named(state, T0 + 16 * DAY)
    assert (f["merchant_count_1d"], f["merchant_count_7d"], f["merchant_count_30d"]) == (0, 3, 9)
    assert named(state, T0 + 17 * DAY)["merchant_count_1d"] == 5


def test_fraud_rates_read_only_outcomes_known_before_the_current_hour() -> None:
    state = with_days({0: 4, 1: 2, 5: 3})
    reported = T0 + 12 * DAY + 9 * HOUR + 30 * 60  # day 12, 09:30
    for i, day in enumerate((0, 1, 5)):
        state = add_label(state, f"txn-{i}", T0 + day * DAY, reported, True, DELAY)
    before = named(state, T0 + 12 * DAY + 9 * HOUR + 45 * 60)  # 09:45, the same hour: not known yet
    assert before["merchant_frauds_30d"] == 0 and before["merchant_fraud_rate_7d"] == 0
    after = named(state, T0 + 12 * DAY + 10 * HOUR)  # 10:00
    # windows end before day 5: the day-5 fraud is outside the 1- and 7-day windows; days 0 and 1 are inside
    assert after["merchant_count_7d"] == 6 and after["merchant_fraud_rate_7d"] == pytest.approx(2 / 6)
    assert after["merchant_count_1d"] == 0 and after["merchant_fraud_rate_1d"] == 0
    assert after["merchant_frauds_30d"] == 2
    day13 = named(state, T0 + 13 * DAY)  # windows end before day 6: all three frauds
    assert day13["merchant_frauds_30d"] == 3 and day13["merchant_fraud_rate_1d"] == pytest.approx(1 / 3)


def test_a_repeated_outcome_counts_once_and_a_reversal_withdraws_it() -> None:
    state = with_days({0: 2})
    later = T0 + 9 * DAY
    state = add_label(state, "txn-a", T0, T0 + DAY, True, DELAY)
    state = add_label(state, "txn-a", T0, T0 + 2 * DAY, True, DELAY)
    assert named(state, later)["merchant_frauds_30d"] == 1
    state = add_label(state, "txn-a", T0, T0 + 3 * DAY, False, DELAY)
    assert named(state, later)["merchant_frauds_30d"] == 0


def test_old_days_are_forgotten_and_confirmed_frauds_are_capped() -> None:
    state = with_days({0: 1, 10: 1, 50: 1})
    assert sorted(state.counts) == [day_of(T0) + 50]  # 50 - 7 - 30 = 13: days 0 and 10 no longer readable
    many = MerchantState()
    for i in range(MAX_CONFIRMED + 10):
        many = add_label(many, f"t{i}", T0 + (i % 5) * DAY, T0 + 6 * DAY, True, DELAY)
    assert len(many.frauds) == MAX_CONFIRMED
    assert min(d for d, _ in many.frauds.values()) == day_of(T0) + 0  # some of the oldest day kept, not all
    assert sum(d == day_of(T0) for d, _ in many.frauds.values()) < (MAX_CONFIRMED + 10) // 5


def test_state_round_trips_through_json() -> None:
    state = add_label(with_days({0: 3, 2: 1}), "txn-1", T0, T0 + 8 * DAY, True, DELAY)
    restored = MerchantState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state and restored.copy() == state and restored.copy() is not restored
