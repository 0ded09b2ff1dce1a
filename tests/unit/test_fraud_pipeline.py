"""The fraud pipeline's handling of a micro-batch, with a fake model, sink and publisher."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np

from models.fraud import FraudScore
from models.fraud_features import INDEX
from streams.core.decoding import Decoder
from streams.core.events import utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.generators.malformed import TEST_PAN, valid_transaction
from streams.worker.checkpoint import Checkpoint
from streams.worker.fraud import FraudPipeline
from tests.unit.test_sentiment_pipeline import FakeSink

KEY = b"k" * 32


async def fake_score(rows: list[np.ndarray]) -> list[FraudScore]:
    """Probability from the amount: 1,000 or more is certainly fraud, 500 is a coin toss."""
    return [FraudScore(min(1.0, float(row[INDEX["amount"]]) / 1000), ["amount far above the card's usual"],
                       ["amount_high"], "fake-fraud", "1") for row in rows]


def txn(offset: int, amount: float, minutes: int = 0, **changes: object) -> Record:
    record = valid_transaction(utc_now() - timedelta(hours=1) + timedelta(minutes=minutes), f"txn-{offset}")
    record.update(amount=amount, **changes)
    return Record("transactions", 0, offset, b"card", json.dumps(record).encode())


def make() -> tuple[FraudPipeline, FakeSink, list[tuple[str, bytes, bytes]], dict]:
    settings = Settings()
    sent: list[tuple[str, bytes, bytes]] = []
    states: dict = {}

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    sink = FakeSink()
    pipeline = FraudPipeline(settings, Decoder(settings, pii_key=KEY), Checkpoint(settings, sink, publish, KEY),
                             fake_score, states)
    return pipeline, sink, sent, states


async def test_decisions_documents_and_alerts() -> None:
    pipeline, sink, sent, states = make()
    outcome = await pipeline.process([txn(0, 40.0), txn(1, 600.0, 1), txn(2, 950.0, 2)])
    docs = {d.id: d.body for d in sink.written if "-transactions-" in d.index}
    assert [docs[f"txn-{i}"]["decision"] for i in range(3)] == ["approve", "review", "block"]
    assert [a.event_ids for a in outcome.alerts] == [["txn-1"], ["txn-2"]]
    alerts = [json.loads(v) for topic, _, v in sent if topic == "alerts.fraud"]
    assert [(a["alert_id"], a["severity"]) for a in alerts] == [("fraud-txn-1", "medium"), ("fraud-txn-2", "critical")]
    assert docs["txn-0"]["features"]["history_count"] == 0 and docs["txn-2"]["features"]["history_count"] == 2
    assert states["tok_0123456789abcdef01234567"]["offset"] == 2


async def test_card_numbers_never_leave_the_pipeline() -> None:
    pipeline, sink, sent, _ = make()
    record = valid_transaction(utc_now(), "txn-pan")
    del record["card_token"]
    record["card_number"] = TEST_PAN
    await pipeline.process([Record("transactions", 0, 0, b"k", json.dumps(record).encode()),
                            Record("transactions", 0, 1, b"k", json.dumps({**record, "amount": "x"}).encode())])
    written = json.dumps([d.body for d in sink.written]) + "".join(v.decode() for _, _, v in sent)
    assert TEST_PAN not in written
    assert sink.written[0].body["card_token"].startswith("tok_")


async def test_a_replayed_batch_is_not_absorbed_twice() -> None:
    pipeline, _, _, states = make()
    batch = [txn(0, 40.0), txn(1, 45.0, 1)]
    await pipeline.process(batch)
    before = json.dumps(states)
    outcome = await pipeline.process(batch)  # redelivered after a crash
    assert outcome.scored == 0 and json.dumps(states) == before


async def test_malformed_transaction_is_dead_lettered() -> None:
    pipeline, sink, sent, _ = make()
    outcome = await pipeline.process([Record("transactions", 0, 9, b"k", b'{"id": "t", "amount": NaN}')])
    assert outcome.dead_letters == 1 and sink.written == []
    assert json.loads(sent[0][2])["error_type"] in ("invalid_number", "invalid_json")
