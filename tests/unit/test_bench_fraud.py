"""The pure parts of `lepton bench fraud`: alert parsing, latency matching, percentiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np

from streams.generators.transactions import TransactionGenerator
from streams.tools.bench_fraud import (
    CARDS,
    SEED,
    alert_event_id,
    alert_times,
    latency_parts,
    match_latencies,
    percentile,
    stage_message_id,
    transactions,
)


def test_alert_event_id_is_the_first_event_id() -> None:
    assert alert_event_id(json.dumps({"alert_id": "fraud-a", "event_ids": ["txn-1", "txn-2"]}).encode()) == "txn-1"
    assert alert_event_id(b"not json") is None
    assert alert_event_id(b"[1, 2]") is None
    assert alert_event_id(json.dumps({"event_ids": []}).encode()) is None
    assert alert_event_id(None) is None


def test_latencies_match_alerts_to_their_own_transactions_only() -> None:
    sent = {"txn-1": 10.0, "txn-2": 11.0, "txn-3": 12.0}
    arrived = {"txn-2": 11.25, "txn-3": 12.5, "txn-from-before": 3.0}
    assert match_latencies(sent, arrived) == [0.25, 0.5]


def test_percentile_interpolates_like_numpy() -> None:
    values = [0.4, 0.1, 0.3, 0.2, 1.0]
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == np.percentile(values, q)
    assert percentile([2.0], 99) == 2.0
    assert percentile([], 50) is None


def test_second_run_of_transactions_keeps_the_cards_and_gets_unique_ids() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    first = transactions(300, start, fraud_rate=0.02)
    second = transactions(300, start, fraud_rate=0.2, suffix="-l")
    cards = {card.number for card in TransactionGenerator(seed=SEED, start=start, n_cards=CARDS).cards}
    assert {r["card_number"] for r in first + second} <= cards
    assert not {r["id"] for r in first} & {r["id"] for r in second}
    assert all(r["id"].endswith("-l") for r in second)


def test_alert_times_read_the_payment_and_when_the_alert_was_built() -> None:
    value = json.dumps({"event_ids": ["txn-1"], "created_at": "2026-12-07T22:00:00.250000Z"}).encode()
    assert alert_times(value) == ("txn-1", datetime(2026, 12, 7, 22, 0, 0, 250000, tzinfo=UTC).timestamp())
    assert alert_times(json.dumps({"event_ids": ["txn-1"]}).encode()) is None
    assert alert_times(json.dumps({"event_ids": ["txn-1"], "created_at": "yesterday"}).encode()) is None
    assert alert_times(b"not json") is None


def test_stage_message_id_is_the_transaction_of_a_card_stage_message() -> None:
    assert stage_message_id(json.dumps({"transaction": {"id": "txn-7"}, "features": [1.0]}).encode()) == "txn-7"
    assert stage_message_id(json.dumps({"features": [1.0]}).encode()) is None
    assert stage_message_id(b"[]") is None
    assert stage_message_id(None) is None


def test_latency_parts_split_each_alert_at_the_card_stage_and_the_alert() -> None:
    sent = {"a": 0.0, "b": 1.0, "c": 2.0}
    left_cards = {"a": 0.1, "b": 1.3}  # c's card stage message was not seen: c is left out
    alerted = {"a": 0.5, "b": 1.4, "c": 2.2}
    arrived = {"a": 0.55, "b": 1.6, "c": 2.3}
    parts = latency_parts(sent, left_cards, alerted, arrived)
    assert parts["card_stage"] == {"p50": 0.2, "p99": round(percentile([0.1, 0.3], 99), 4)}
    assert parts["merchant_stage"]["p50"] == 0.25
    assert parts["delivery"]["p50"] == 0.125
    assert latency_parts({}, {}, {}, {})["delivery"] == {"p50": None, "p99": None}
