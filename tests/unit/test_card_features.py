"""Per-card fraud features on hand-made sequences: exact values, window boundaries, bounded memory, travel, the
7- and 30-day windows, and a confirmed fraud that counts only once it was known."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import faust.utils.json as faust_json
import numpy as np
import pytest

from models.card_features import (
    CARD_FEATURES,
    MAX_COUNTRIES,
    MAX_DEVICES,
    MAX_GAP_S,
    MAX_MERCHANTS,
    MAX_PLACES,
    MAX_WINDOW,
    CardState,
    haversine_km,
    mark_fraud,
)
from models.card_features import update as card_update
from streams.core.events import Transaction

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BERLIN = (52.52, 13.40)
PARIS = (48.86, 2.35)


def txn(seconds: float = 0, amount: float = 10.0, **fields: Any) -> Transaction:
    """A transaction `seconds` after T0 on one card, card-present in Berlin unless told otherwise."""
    values: dict[str, Any] = {
        "id": f"txn-{seconds}-{amount}",
        "ts": T0 + timedelta(seconds=seconds),
        "card_token": "tok_testcard0001",
        "amount": amount,
        "currency": "EUR",
        "merchant_id": "m-1",
        "mcc": "5411",
        "country": "DE",
        "channel": "pos",
        "lat": BERLIN[0],
        "lon": BERLIN[1],
    } | fields
    return Transaction.model_validate(values)


def named(row: np.ndarray) -> dict[str, float]:
    return dict(zip(CARD_FEATURES, row.tolist(), strict=True))


def update(state: CardState | None, event: Transaction) -> tuple[CardState, np.ndarray]:
    """The card step with the amount as given (these tests use one currency)."""
    return card_update(state, event, event.amount)


def replay(*events: Transaction) -> tuple[CardState, list[dict[str, float]]]:
    state: CardState | None = None
    rows = []
    for event in events:
        state, row = update(state, event)
        rows.append(named(row))
    assert state is not None
    return state, rows


def test_first_transaction_of_a_card_has_documented_values() -> None:
    state, f = update(None, txn(amount=25.0, device_id="dev-1"))
    assert named(f) == {
        "amount": 25.0,
        "amount_z": 0.0,
        "amount_z_category": 0.0,
        "amount_ratio": 1.0,
        "history_count": 0.0,
        "count_1h": 0.0,
        "sum_1h": 0.0,
        "count_24h": 0.0,
        "sum_24h": 0.0,
        "seconds_since_prev": MAX_GAP_S,
        "distance_km": 0.0,
        "speed_kmh": 0.0,
        "location_gap_min": 0.0,
        "km_from_known_places": 0.0,
        "merchant_new": 1.0,
        "mcc_new": 1.0,
        "country_new": 1.0,
        "device_new": 1.0,
        "device_uses": 0.0,
        "devices_known": 0.0,
        "channel_online": 0.0,
        "channel_changed": 0.0,
        "local_hour": pytest.approx(12 + 13.40 / 15),
        "night": 0.0,
        "count_7d": 0.0,
        "mean_amount_7d": 0.0,
        "count_30d": 0.0,
        "mean_amount_30d": 0.0,
        "card_known_fraud": 0.0,
    }
    assert state.n == 1 and state.mean_log == pytest.approx(math.log(25.0)) and state.m2_log == 0.0
    assert state.devices == (("dev-1", 1),) and state.window == ((T0.timestamp(), 25.0),)


def test_second_transaction_compares_with_the_first() -> None:
    _, (_, f) = replay(txn(0, 10.0), txn(600, 40.0, merchant_id="m-2", channel="contactless"))
    # n = 1: spread is the prior, sqrt((0 + 2 * 0.5**2) / (0 + 2)) = 0.5
    assert f["amount_z"] == pytest.approx(math.log(4.0) / 0.5)
    assert f["amount_ratio"] == pytest.approx(4.0)
    assert f["amount_z_category"] == pytest.approx(f["amount_z"])  # one earlier purchase, in the same category
    assert (f["history_count"], f["count_1h"], f["sum_1h"], f["count_24h"], f["sum_24h"]) == (1, 1, 10, 1, 10)
    assert f["seconds_since_prev"] == 600
    assert (f["merchant_new"], f["mcc_new"], f["country_new"], f["channel_changed"]) == (1, 0, 0, 1)
    assert f["distance_km"] == 0.0 and f["location_gap_min"] == 10.0


def test_welford_matches_numpy_on_log_amounts() -> None:
    amounts = [12.0, 30.0, 7.5, 99.0, 41.0]
    state, rows = replay(*(txn(60 * i, a) for i, a in enumerate(amounts)))
    logs = np.log(amounts)
    assert state.mean_log == pytest.approx(logs.mean())
    assert state.m2_log == pytest.approx(((logs - logs.mean()) ** 2).sum())
    prior = logs[:4]
    spread = math.sqrt((((prior - prior.mean()) ** 2).sum() + 2 * 0.25) / (3 + 2))
    assert rows[4]["amount_z"] == pytest.approx((math.log(41.0) - prior.mean()) / spread)
    assert rows[4]["amount_ratio"] == pytest.approx(41.0 / math.exp(prior.mean()))


def test_one_hour_window_expires_exactly_at_the_boundary() -> None:
    _, rows = replay(txn(0, 5.0), txn(3599, 7.0), txn(3600, 11.0), txn(7199.5, 13.0))
    assert (rows[1]["count_1h"], rows[1]["sum_1h"]) == (1, 5.0)  # 3,599 s old: inside
    assert (rows[2]["count_1h"], rows[2]["sum_1h"]) == (1, 7.0)  # exactly 1 h old: expired
    assert (rows[3]["count_1h"], rows[3]["sum_1h"]) == (1, 11.0)
    assert (rows[3]["count_24h"], rows[3]["sum_24h"]) == (3, 23.0)


def test_24h_window_expires_and_is_pruned_from_state() -> None:
    day = 86_400
    state, rows = replay(txn(0, 5.0), txn(day - 1, 7.0), txn(day, 11.0))
    assert (rows[1]["count_24h"], rows[1]["sum_24h"]) == (1, 5.0)
    assert (rows[2]["count_24h"], rows[2]["sum_24h"]) == (1, 7.0)
    assert [amount for _, amount in state.window] == [7.0, 11.0]
    assert rows[2]["seconds_since_prev"] == 1


def test_window_memory_is_capped_and_counts_saturate() -> None:
    state, rows = replay(*(txn(i, 1.0) for i in range(MAX_WINDOW + 20)))
    assert len(state.window) == MAX_WINDOW
    assert rows[-1]["count_1h"] == MAX_WINDOW and rows[-1]["history_count"] == MAX_WINDOW + 19


def test_novelty_sets_are_bounded_and_least_recently_used_is_forgotten() -> None:
    events = [txn(i, merchant_id=f"m-{i}", country=f"C{chr(65 + i % 26)}") for i in range(40)]
    state, _ = replay(*events)
    assert len(state.merchants) == MAX_MERCHANTS and len(state.countries) == MAX_COUNTRIES
    assert state.merchants[0] == "m-8" and state.merchants[-1] == "m-39"
    _, again = update(state, txn(100, merchant_id="m-0"))
    _, recent = update(state, txn(100, merchant_id="m-39"))
    assert named(again)["merchant_new"] == 1 and named(recent)["merchant_new"] == 0
    # touching an old merchant makes it recent again, so it survives the next evictions
    kept, _ = replay(*events[:10], txn(50, merchant_id="m-0"), *(txn(60 + i, merchant_id=f"x-{i}") for i in range(31)))
    assert "m-0" in kept.merchants and "m-1" not in kept.merchants


def test_devices_are_counted_capped_and_flagged_when_new() -> None:
    online = {"channel": "online", "lat": None, "lon": None}
    state, rows = replay(
        txn(0, device_id="d-home", **online),
        txn(10, device_id="d-home", **online),
        txn(20, device_id="d-new", **online),
        *(txn(30 + i, device_id=f"d-{i}", **online) for i in range(4)),
    )
    assert (rows[1]["device_new"], rows[1]["device_uses"], rows[1]["devices_known"]) == (0, 1, 1)
    assert (rows[2]["device_new"], rows[2]["device_uses"], rows[2]["devices_known"]) == (1, 0, 1)
    assert rows[1]["channel_online"] == 1 and len(state.devices) == MAX_DEVICES
    assert "d-home" not in dict(state.devices)


def test_distance_and_speed_from_the_previous_located_transaction() -> None:
    km = haversine_km(*BERLIN, *PARIS)
    assert 870 < km < 885  # Berlin-Paris is about 878 km
    _, rows = replay(
        txn(0),
        txn(600, channel="online", lat=None, lon=None, device_id="d-1"),  # no location: not a waypoint
        txn(1800, lat=PARIS[0], lon=PARIS[1], country="FR"),
    )
    assert rows[1]["distance_km"] == 0.0 and rows[1]["speed_kmh"] == 0.0
    assert rows[2]["distance_km"] == pytest.approx(km)
    assert rows[2]["location_gap_min"] == 30.0
    assert rows[2]["speed_kmh"] == pytest.approx(km * 2)
    assert rows[2]["country_new"] == 1


def test_distance_from_known_places_ignores_the_return_trip_home() -> None:
    home = [txn(60 * i, lat=BERLIN[0] + 0.01 * i) for i in range(3)]
    state, rows = replay(*home, txn(600, lat=PARIS[0], lon=PARIS[1]), txn(1200))
    assert rows[1]["km_from_known_places"] == pytest.approx(haversine_km(52.5, 13.4, BERLIN[0] + 0.01, BERLIN[1]))
    assert rows[3]["km_from_known_places"] == pytest.approx(haversine_km(52.5, 13.4, *PARIS))
    back = rows[4]  # far from the previous (Paris) transaction, but home is a known place
    assert back["distance_km"] > 800 and back["km_from_known_places"] < 5
    assert state.places[-1] == (52.5, 13.4) and len(state.places) == 2
    many, _ = replay(*(txn(i, lat=10.0 + i, lon=20.0) for i in range(12)))
    assert len(many.places) == MAX_PLACES and many.places[0] == (14.0, 20.0)


def test_speed_divides_by_at_least_a_minute() -> None:
    _, rows = replay(txn(0), txn(10, lat=BERLIN[0] + 0.01))
    assert rows[1]["speed_kmh"] == pytest.approx(rows[1]["distance_km"] * 60)


def test_local_hour_and_night_use_longitude() -> None:
    night = T0.replace(hour=2, minute=30)
    _, f = update(None, txn(0, ts=night, lon=15.0))
    assert named(f)["local_hour"] == pytest.approx(3.5) and named(f)["night"] == 1
    state, _ = update(None, txn(0, ts=night, lon=90.0))  # 08:30 local
    _, online = update(state, txn(60, ts=night + timedelta(minutes=1), channel="online", lat=None, lon=None))
    assert named(online)["local_hour"] == pytest.approx(8.5 + 1 / 60) and named(online)["night"] == 0
    _, unknown = update(None, txn(0, ts=night, channel="online", lat=None, lon=None))
    assert named(unknown)["local_hour"] == pytest.approx(2.5)  # no location at all: UTC


def test_late_event_gets_zero_gap_and_state_keeps_newest_time() -> None:
    state, rows = replay(txn(1000, 5.0), txn(400, 6.0))
    assert rows[1]["seconds_since_prev"] == 0 and rows[1]["count_1h"] == 0
    assert state.last_ts == (T0 + timedelta(seconds=1000)).timestamp()
    assert [a for _, a in state.window] == [6.0, 5.0]


def test_state_round_trips_through_json_and_stays_small() -> None:
    events = [
        txn(30 * i, 1.0 + i % 50, merchant_id=f"m-{i}", device_id=f"d-{i % 7}", mcc=f"{5000 + i % 40}")
        for i in range(1000)
    ]
    state, _ = replay(*events)
    assert set(state.to_dict()) == {field.name for field in dataclasses.fields(CardState)}  # none forgotten
    encoded = json.dumps(state.to_dict())
    assert len(encoded) < 12_000
    restored = CardState.from_dict(json.loads(encoded))
    assert restored == state
    # the card table's own codec (Faust's "json", which uses orjson when it is installed, as the project installs it)
    assert faust_json.orjson is not None
    assert CardState.from_dict(faust_json.loads(faust_json.dumps(state.to_dict()))) == state
    _, a = update(state, txn(40_000, 3.0))
    _, b = update(restored, txn(40_000, 3.0))
    np.testing.assert_array_equal(a, b)


def test_the_category_z_score_compares_with_the_cards_purchases_in_that_category() -> None:
    groceries = [txn(60 * i, 40.0 + i, mcc="5411") for i in range(5)]
    cash = [txn(600 + 60 * i, 200.0, mcc="6011") for i in range(3)]
    _, rows = replay(*groceries, *cash, txn(2000, 210.0, mcc="6011"), txn(2100, 210.0, mcc="5411"),
                     txn(2200, 20.0, mcc="5999"))
    atm, big_basket, new_category = rows[-3], rows[-2], rows[-1]
    assert abs(atm["amount_z_category"]) < 0.2 < atm["amount_z"]  # usual for cash, unusual for the card overall
    assert big_basket["amount_z_category"] > 3  # five times the card's groceries
    assert new_category["amount_z_category"] == 0.0


def test_7_and_30_day_windows_count_whole_days_and_forget_older_ones() -> None:
    day = 86_400
    state, rows = replay(txn(0, 10.0), txn(day, 20.0), txn(6 * day, 30.0), txn(7 * day, 40.0), txn(30 * day, 50.0))
    assert (rows[2]["count_7d"], rows[2]["mean_amount_7d"]) == (2, 15.0)  # days 0 and 1 are within 7 days of day 6
    assert (rows[3]["count_7d"], rows[3]["mean_amount_7d"]) == (2, 25.0)  # day 0 left the 7-day window on day 7
    assert (rows[3]["count_30d"], rows[3]["mean_amount_30d"]) == (3, 20.0)
    assert (rows[4]["count_30d"], rows[4]["mean_amount_30d"]) == (3, 30.0)  # day 0 is 30 days before day 30: out
    assert [d for d, _, _ in state.days] == [d for d, _, _ in state.days if d > state.days[-1][0] - 30]
    assert len(state.days) == 4


def test_a_confirmed_fraud_counts_from_the_next_full_hour_after_it_was_reported() -> None:
    reported = (T0 + timedelta(minutes=20)).timestamp()  # 12:20
    state = mark_fraud(update(None, txn(0))[0], reported)
    assert named(update(state, txn(30 * 60))[1])["card_known_fraud"] == 0  # 12:30: not yet known
    assert named(update(state, txn(59 * 60))[1])["card_known_fraud"] == 0
    assert named(update(state, txn(60 * 60))[1])["card_known_fraud"] == 1  # 13:00
    earlier = mark_fraud(state, reported - 3600)
    assert earlier.fraud_known_at == T0.timestamp() and mark_fraud(earlier, reported) == earlier
