"""The fraud pipeline's two stages on micro-batches, with a fake model, sink and publisher: the card stage forwards
each transaction with its card features keyed by merchant; the scoring stage adds merchant risk from confirmed
outcomes, decides by the model's thresholds, writes documents and alerts, and sends confirmed card frauds back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from models.fraud import FraudScore, ScoreRequest, Thresholds
from models.fraud_features import INDEX, FeatureConfig
from streams.core.decoding import Decoder
from streams.core.record import Record
from streams.core.settings import Settings
from streams.generators.malformed import TEST_PAN, valid_transaction
from streams.worker.checkpoint import Checkpoint
from streams.worker.fraud import FraudPipeline
from streams.worker.fraud_cards import CardStage
from tests.unit.test_sentiment_pipeline import FakeSink

KEY = b"k" * 32
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CARD = "tok_0123456789abcdef01234567"
CONFIG = FeatureConfig(7, "EUR", {"EUR": 1.0, "KRW": 0.00068})
S = Settings()
TOPICS = S.topics


async def fake_score(requests: list[ScoreRequest]) -> list[FraudScore]:
    """Probability from the amount (1,000 EUR or more is certainly fraud), plus the merchant's fraud rate."""
    return [FraudScore(min(1.0, float(r.features[INDEX["amount"]]) / 1000
                           + float(r.features[INDEX["merchant_fraud_rate_7d"]])),
                       ["amount far above the card's usual"], ["amount"], "fake-fraud", "1") for r in requests]


def record(topic: str, offset: int, value: dict[str, Any], key: bytes = b"k") -> Record:
    return Record(topic, 0, offset, key, json.dumps(value).encode())


def txn(offset: int, amount: float, when: datetime = T0, **changes: object) -> Record:
    value = valid_transaction(when, f"txn-{offset}") | {"amount": amount} | changes
    return record(TOPICS.transactions, offset, value)


class Stages:
    """Both stages sharing one fake sink and publisher, and tables as dicts."""

    def __init__(self) -> None:
        self.sink, self.sent, self.offset = FakeSink(), [], 1000
        self.cards: dict[bytes, Any] = {}
        self.merchants: dict[bytes, Any] = {}

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            self.sent.append((topic, key, value))

        decoder, point = Decoder(S, pii_key=KEY), Checkpoint(S, self.sink, publish, KEY)
        self.card = CardStage(S, decoder, point, self.cards, CONFIG)
        self.scoring = FraudPipeline(S, decoder, point, fake_score, self.merchants, CONFIG, Thresholds(0.5, 0.9))

    def forwarded(self, topic: str) -> list[Record]:
        """What went to `topic` so far, as records the next stage reads (and forget it)."""
        found = [(key, value) for t, key, value in self.sent if t == topic]
        self.sent = [item for item in self.sent if item[0] != topic]
        self.offset += len(found)
        return [Record(topic, 0, self.offset - len(found) + i, key, value) for i, (key, value) in enumerate(found)]

    async def run(self, records: list[Record]) -> Any:
        await self.card.process(records)
        return await self.scoring.process(self.forwarded(TOPICS.transactions_by_merchant))


async def test_decisions_documents_and_alerts() -> None:
    stages = Stages()
    outcome = await stages.run([txn(0, 40.0), txn(1, 600.0, T0 + timedelta(minutes=1)),
                                txn(2, 950.0, T0 + timedelta(minutes=2))])
    docs = {d.id: d.body for d in stages.sink.written if "-transactions-" in d.index}
    assert [docs[f"txn-{i}"]["decision"] for i in range(3)] == ["approve", "review", "block"]
    assert [a.event_ids for a in outcome.alerts] == [["txn-1"], ["txn-2"]]
    alerts = [json.loads(v) for topic, _, v in stages.sent if topic == TOPICS.alerts_fraud]
    assert [(a["alert_id"], a["severity"]) for a in alerts] == [("fraud-txn-1", "medium"), ("fraud-txn-2", "critical")]
    assert docs["txn-0"]["features"]["history_count"] == 0 and docs["txn-2"]["features"]["history_count"] == 2
    assert (docs["txn-1"]["topic"], docs["txn-1"]["offset"]) == (TOPICS.transactions, 1)  # where it was produced
    assert stages.cards[CARD.encode()]["positions"][TOPICS.transactions] == [0, 2]
    assert stages.merchants[b"m-100"]["state"]["counts"] == {str(int(T0.timestamp() // 86400)): 3}


async def test_amounts_are_compared_in_the_reference_currency_and_shown_as_paid() -> None:
    stages = Stages()
    await stages.run([txn(0, 795.29, currency="KRW")])
    doc = stages.sink.written[0].body
    assert doc["amount"] == 795.29 and doc["currency"] == "KRW"
    assert doc["amount_reference"] == round(795.29 * 0.00068, 2) and doc["decision"] == "approve"


async def test_a_currency_without_a_rate_is_dead_lettered_naming_the_setting() -> None:
    stages = Stages()
    await stages.card.process([txn(0, 10.0, currency="XAU")])
    letters = [json.loads(v) for topic, _, v in stages.sent if topic == TOPICS.deadletter]
    assert len(letters) == 1 and "LEPTON_FRAUD__RATES" in letters[0]["reason"] and "XAU" in letters[0]["reason"]
    assert stages.forwarded(TOPICS.transactions_by_merchant) == []


async def test_a_merchants_confirmed_frauds_raise_its_later_scores_never_its_earlier_ones() -> None:
    stages = Stages()
    day = timedelta(days=1)
    history = [txn(i, 40.0, T0 + i * timedelta(minutes=10), card_token=f"tok_card{i:08d}") for i in range(4)]
    await stages.run(history)
    reported = T0 + 8 * day
    labels = [record(TOPICS.labels, i, {"transaction_id": f"txn-{i}", "merchant_id": "m-100",
                                        "transaction_ts": (T0 + i * timedelta(minutes=10)).isoformat(),
                                        "fraud": True, "reported_at": reported.isoformat(),
                                        "card_token": f"tok_card{i:08d}"}) for i in range(2)]
    before = txn(10, 40.0, reported - timedelta(minutes=5), card_token="tok_cardlater1")
    after = txn(11, 40.0, reported + timedelta(hours=1), card_token="tok_cardlater2")
    await stages.card.process([before, after])
    forwarded = stages.forwarded(TOPICS.transactions_by_merchant)
    await stages.scoring.process([forwarded[0], *labels, forwarded[1]])
    docs = {d.id: d.body for d in stages.sink.written if "-transactions-" in d.index}
    assert docs["txn-10"]["features"]["merchant_fraud_rate_7d"] == 0.0  # reported after it
    assert docs["txn-11"]["features"]["merchant_fraud_rate_7d"] == 0.5  # 2 of the 4 payments 8 days before
    assert docs["txn-11"]["decision"] == "review"
    back = stages.forwarded(TOPICS.labels_by_card)
    assert sorted(r.key for r in back) == [b"tok_card00000000", b"tok_card00000001"]
    await stages.card.process(back)
    assert stages.cards[b"tok_card00000000"]["state"]["fraud_known_at"] == (reported + timedelta(hours=1)).timestamp()


async def test_card_numbers_never_leave_the_pipeline() -> None:
    stages = Stages()
    value = valid_transaction(T0, "txn-pan")
    del value["card_token"]
    value["card_number"] = TEST_PAN
    await stages.run([record(TOPICS.transactions, 0, value), record(TOPICS.transactions, 1, {**value, "amount": "x"})])
    written = json.dumps([d.body for d in stages.sink.written]) + "".join(v.decode() for _, _, v in stages.sent)
    assert TEST_PAN not in written
    assert stages.sink.written[0].body["card_token"].startswith("tok_")


async def test_a_replayed_batch_is_not_absorbed_twice() -> None:
    stages = Stages()
    batch = [txn(0, 40.0), txn(1, 45.0, T0 + timedelta(minutes=1))]
    await stages.card.process(batch)
    forwarded = stages.forwarded(TOPICS.transactions_by_merchant)
    await stages.scoring.process(forwarded)
    cards, merchants = repr(stages.cards), repr(stages.merchants)
    await stages.card.process(batch)  # redelivered after a crash
    assert stages.forwarded(TOPICS.transactions_by_merchant) == [] and repr(stages.cards) == cards
    outcome = await stages.scoring.process(forwarded)
    assert outcome.scored == 0 and repr(stages.merchants) == merchants


async def test_malformed_messages_of_either_stage_are_dead_lettered() -> None:
    stages = Stages()
    await stages.card.process([Record(TOPICS.transactions, 0, 9, b"k", b'{"id": "t", "amount": NaN}')])
    outcome = await stages.scoring.process([Record(TOPICS.labels, 0, 3, b"m", b'{"transaction_id": "x"}')])
    letters = [json.loads(v) for topic, _, v in stages.sent if topic == TOPICS.deadletter]
    assert [(letter["source_topic"], letter["error_type"]) for letter in letters] == [
        (TOPICS.transactions, "invalid_number"), (TOPICS.labels, "validation")]
    assert outcome.dead_letters == 1 and stages.sink.written == []


async def test_two_batches_in_flight_build_on_each_other_and_write_state_in_order() -> None:
    first, second = [txn(0, 40.0)], [txn(1, 45.0, T0 + timedelta(minutes=1))]
    sequential = Stages()
    await sequential.card.process(first)
    await sequential.card.process(second)

    stages, gate = Stages(), asyncio.Event()
    publish = stages.card.checkpoint.publish

    async def slow_first(topic: str, key: bytes, value: bytes) -> None:
        if b"txn-0" in value:
            await gate.wait()  # the first batch's message is slow to be acknowledged
        await publish(topic, key, value)

    stages.card.checkpoint.publish = slow_first  # type: ignore[method-assign]
    one = asyncio.ensure_future(stages.card.process(first))
    await asyncio.sleep(0)
    two = asyncio.ensure_future(stages.card.process(second))
    await asyncio.sleep(0.01)
    # the second is prepared from the card state the first staged and durable, but writes no state before the first
    assert not two.done() and stages.cards == {}
    assert [json.loads(v)["features"] for _, _, v in stages.sent] == [
        json.loads(v)["features"] for _, _, v in sequential.sent if b"txn-1" in v]
    gate.set()
    await asyncio.gather(one, two)
    assert repr(stages.cards) == repr(sequential.cards)


async def test_a_batch_the_model_failed_on_leaves_no_staged_state_behind() -> None:
    stages = Stages()
    await stages.card.process([txn(0, 40.0)])
    forwarded = stages.forwarded(TOPICS.transactions_by_merchant)

    async def model_down(requests: list[ScoreRequest]) -> list[FraudScore]:
        raise RuntimeError("model down")

    stages.scoring.model = model_down
    outcome = await stages.scoring.process(forwarded)
    assert outcome.dead_letters == 1 and stages.merchants == {}
    stages.scoring.model = fake_score
    outcome = await stages.scoring.process(forwarded)  # replayed from the dead letter: not taken for absorbed
    assert outcome.scored == 1 and len(stages.merchants) == 1
