"""Point-in-time replay of the fraud features: an outcome is applied when it was reported, the same numbers as the
pipeline's two stages, and a file replay that counts what it read and skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from models.card_features import CardState
from models.fraud_data import Counts, Part, replay_files
from models.fraud_features import INDEX, FeatureConfig, card_step, merchant_step
from models.fraud_replay import Replay, outcomes_of
from models.merchant_features import MerchantState
from streams.core.events import ChargebackLabel, Transaction

T0 = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)
CONFIG = FeatureConfig(7, "EUR", {"EUR": 1.0, "USD": 0.9})


def txn(i: int, when: datetime, merchant: str = "m-1", card: str = "tok_cardaaaa", currency: str = "EUR"
        ) -> Transaction:
    return Transaction.model_validate({"id": f"t{i}", "ts": when.isoformat(), "card_token": card, "amount": 20.0 + i,
                                       "currency": currency, "merchant_id": merchant, "mcc": "5411",
                                       "country": "DE", "channel": "pos"})


def label(i: int, when: datetime, reported: datetime, merchant: str = "m-1") -> ChargebackLabel:
    return ChargebackLabel.model_validate({"transaction_id": f"t{i}", "merchant_id": merchant,
                                           "transaction_ts": when.isoformat(), "fraud": True,
                                           "reported_at": reported.isoformat(), "card_token": "tok_cardaaaa"})


def test_an_outcome_is_seen_only_by_transactions_after_its_report() -> None:
    early = [txn(i, T0 + timedelta(minutes=i)) for i in range(4)]
    reported = T0 + timedelta(days=9, hours=3)
    replay = Replay(CONFIG, [label(0, early[0].ts, reported), label(1, early[1].ts, reported)])
    counts = Counts()
    for event in early:
        replay.features(event, counts)
    before = replay.features(txn(10, reported - timedelta(minutes=1)), counts)
    same_hour = replay.features(txn(11, reported + timedelta(minutes=30)), counts)
    after = replay.features(txn(12, reported + timedelta(hours=1)), counts)
    assert before is not None and same_hour is not None and after is not None
    assert before[INDEX["merchant_fraud_rate_7d"]] == 0 and before[INDEX["card_known_fraud"]] == 0
    assert same_hour[INDEX["merchant_fraud_rate_7d"]] == 0  # known from the next full hour on
    assert after[INDEX["merchant_fraud_rate_7d"]] == 0.5 and after[INDEX["card_known_fraud"]] == 1
    assert counts.skipped == 0


def test_the_replay_computes_what_the_two_pipeline_stages_compute() -> None:
    events = [txn(i, T0 + timedelta(hours=7 * i), merchant=f"m-{i % 3}", card=f"tok_card{i % 4:04d}",
                  currency="USD" if i % 5 == 0 else "EUR") for i in range(40)]
    replay, counts = Replay(CONFIG), Counts()
    cards: dict[str, CardState] = {}
    merchants: dict[str, MerchantState] = {}
    for event in events:
        cards[event.card_token], card_row = card_step(cards.get(event.card_token), event, CONFIG)
        merchants[event.merchant_id], merchant_row = merchant_step(merchants.get(event.merchant_id), event, CONFIG)
        expected = np.concatenate([card_row, merchant_row])
        np.testing.assert_array_equal(replay.features(event, counts), expected)
    assert replay.features(events[5], counts) is not None  # USD has a rate: converted, not skipped


def test_a_currency_without_a_rate_is_skipped_with_the_fix_in_the_reason() -> None:
    counts = Counts()
    assert Replay(CONFIG).features(txn(1, T0, currency="JPY"), counts) is None
    assert counts.skipped == 1 and "LEPTON_FRAUD__RATES" in counts.reasons[0]


def test_outcomes_of_a_generated_stream_are_its_reported_frauds() -> None:
    events = [txn(i, T0 + timedelta(minutes=i)) for i in range(3)]
    truths = [{"is_fraud": False}, {"is_fraud": True, "reported_at": (T0 + timedelta(days=8)).isoformat()},
              {"is_fraud": True}]
    found = outcomes_of(zip(events, truths, strict=True))
    assert [(o.transaction_id, o.merchant_id, o.fraud) for o in found] == [("t1", "m-1", True)]


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    data, feedback, labels = tmp_path / "t.jsonl", tmp_path / "f.jsonl", tmp_path / "l.csv"
    events = [txn(i, T0 + timedelta(hours=i)) for i in range(30)]
    lines = [e.model_dump_json() for e in events]
    lines.insert(5, '{"id": "broken"}')
    lines.append(events[2].model_dump_json())  # out of time order
    data.write_text("\n".join(lines) + "\n")
    feedback.write_text(label(3, events[3].ts, T0 + timedelta(days=9)).model_dump_json() + "\n"
                        + json.dumps({"transaction_id": "t9"}) + "\n"
                        + label(99, T0, T0 + timedelta(days=8)).model_dump_json() + "\n")
    labels.write_text("transaction_id,is_fraud,scenario\n" + "".join(f"t{i},{int(i == 3)},x\n" for i in range(28))
                      + "t-missing,0,x\n")
    return data, feedback, labels


def test_a_file_replay_counts_what_it_read_skipped_and_could_not_match(files: tuple[Path, Path, Path]) -> None:
    data, feedback, labels = files
    (found,) = replay_files([Part(data, labels, since=T0 + timedelta(hours=2))], feedback, delay_days=7)
    c = found.counts
    assert (c.lines, c.skipped, c.out_of_order, c.feedback, c.feedback_skipped) == (32, 1, 1, 2, 1)
    assert [r.split(": ")[0] for r in c.reasons] == ["f.jsonl:2", "t.jsonl:6"]
    assert c.unmatched_labels == 1  # t-missing
    assert found.ids[:2] == ["t2", "t3"] and found.ids[-1] == "t2" and int(found.y.sum()) == 1  # t2 again: late
    assert found.scenario[0] == "x" and found.unlabelled == 2  # t28, t29: in the window without a label


def test_without_labels_the_feedback_is_the_supervision(files: tuple[Path, Path, Path]) -> None:
    data, feedback, _ = files
    (found,) = replay_files([Part(data)], feedback, delay_days=7)
    assert len(found.y) == 31 and found.ids[found.y.tolist().index(1)] == "t3"
    assert found.counts.unmatched_labels == 1  # the outcome of t99, a transaction the file does not hold
