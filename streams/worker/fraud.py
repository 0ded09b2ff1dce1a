"""The fraud pipeline's steps: per-card features from table state, one batched model call, documents and alerts.

Transactions arrive keyed by card token (card numbers were replaced at the decoding boundary). Each one is folded
into its card's state in order (several of one card in a batch go one after another), the whole batch's feature
rows are scored in one call through the batcher, and every transaction gets a document in
`lepton-transactions-YYYY.MM` with its decision and reasons in words; review and block decisions also raise an
alert (stable `alert_id` = `fraud-<transaction id>`). The card state is written last (`commit`) and remembers the
offset it covers, so a batch replayed after a crash neither double-counts a transaction nor misses an output.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.fraud import FraudScore, decide
from models.fraud_features import FEATURE_NAMES, CardState, update
from sinks import metrics
from sinks.search import Doc
from sinks.templates import monthly_index
from streams.core.decoding import Decoder
from streams.core.events import Alert, FraudDoc, Transaction, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Outputs
from streams.worker.pipeline import Pipeline

Score = Callable[[list[np.ndarray]], Awaitable[list[FraudScore]]]
SEVERITY = {"review": "medium", "block": "critical"}


@dataclass(frozen=True)
class Payment:
    """One transaction, its features, and its card's state after it."""

    record: Record
    txn: Transaction
    features: np.ndarray
    state: CardState

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


class FraudPipeline(Pipeline[Transaction, Payment]):
    """Everything the fraud agent does with a micro-batch."""

    event_model = Transaction
    index_kind = "transactions"

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, score: Score,
                 states: MutableMapping[str, dict]) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.transactions)
        self.model, self.states = score, states
        self.prefix = settings.search.index_prefix

    def prepare(self, events: list[tuple[Record, Transaction]]) -> list[Payment]:
        """Fold each transaction into its card's state in order; skip those the stored state already absorbed."""
        payments: list[Payment] = []
        cards: dict[str, tuple[CardState | None, int, int]] = {}  # token -> (state, partition, offset) so far
        for record, txn in events:
            state, partition, offset = cards.get(txn.card_token) or self._stored(txn.card_token)
            if partition == record.partition and record.offset <= offset:
                continue  # a replay of a transaction whose outputs and state were already written
            state, features = update(state, txn)
            cards[txn.card_token] = (state, record.partition, record.offset)
            payments.append(Payment(record, txn, features, state))
        return payments

    async def score(self, units: list[Payment]) -> Sequence[FraudScore]:
        return await self.model([unit.features for unit in units])

    def outputs(self, scored: list[tuple[Payment, FraudScore]]) -> Outputs:
        docs = [self._document(p.record, p.txn, p.features, s) for p, s in scored]
        for doc in docs:
            metrics.MODEL_SCORES.labels("fraud").observe(doc.fraud_score)
        return Outputs(
            documents=[(Doc(monthly_index(self.prefix, "transactions", d.event_time), d.event_id,
                            d.model_dump(mode="json")), p.record) for d, (p, _) in zip(docs, scored, strict=True)],
            alerts=[self._alert(doc) for doc in docs if doc.flagged], alert_topic=self.settings.topics.alerts_fraud)

    def commit(self, scored: list[tuple[Payment, FraudScore]]) -> None:
        """Each card's latest state, with the position it covers: a replay of this batch skips what it absorbed."""
        latest = {p.txn.card_token: p for p, _ in scored}
        for token, p in latest.items():
            self.states[token] = {"state": p.state.to_dict(), "partition": p.record.partition,
                                  "offset": p.record.offset}

    def _stored(self, token: str) -> tuple[CardState | None, int, int]:
        """The card's state and the (partition, offset) of the last transaction it absorbed."""
        stored = self.states.get(token)
        if not stored:
            return None, -1, -1
        return CardState.from_dict(stored["state"]), stored["partition"], stored["offset"]

    def _document(self, record: Record, txn: Transaction, features: np.ndarray, score: FraudScore) -> FraudDoc:
        f = self.settings.fraud
        decision = decide(score.probability, f.review_threshold, f.block_threshold)
        return FraudDoc(
            event_id=txn.id, event_time=txn.ts, processed_at=utc_now(), model_name=score.model,
            model_version=score.version, topic=record.topic, partition=record.partition, offset=record.offset,
            card_token=txn.card_token, amount=txn.amount, currency=txn.currency, merchant_id=txn.merchant_id,
            mcc=txn.mcc, country=txn.country, channel=txn.channel, fraud_score=score.probability,
            decision=decision, flagged=decision != "approve", reasons=score.reasons[:3],
            features={name: round(float(value), 6) for name, value in zip(FEATURE_NAMES, features, strict=True)},
        )

    def _alert(self, doc: FraudDoc) -> Alert:
        reasons = "; ".join(doc.reasons) or "unusual pattern"
        return Alert(
            alert_id=f"fraud-{doc.event_id}", kind="fraud", severity=SEVERITY[doc.decision], created_at=utc_now(),
            subject=doc.card_token,
            summary=(f"{doc.decision.upper()}: {doc.amount:,.2f} {doc.currency} at merchant {doc.merchant_id} "
                     f"({doc.country}), fraud score {doc.fraud_score:.2f}: {reasons}"),
            evidence={"fraud_score": round(doc.fraud_score, 4), "decision": doc.decision, "amount": doc.amount,
                      "currency": doc.currency, "merchant_id": doc.merchant_id, "mcc": doc.mcc,
                      "country": doc.country, "channel": doc.channel, "reasons": reasons},
            event_ids=[doc.event_id], model_name=doc.model_name, model_version=doc.model_version,
        )
