"""Fraud scoring, one micro-batch at a time: per-card features from table state, one batched model call.

Transactions arrive keyed by card token (card numbers were replaced at the decoding boundary). Each one is
folded into its card's state in order (several of one card in a batch go one after another), the whole
batch's feature rows are scored in one call through the batcher, and every transaction gets a document in
`lepton-transactions-YYYY.MM` with its decision and reasons in words; review and block decisions also raise
an alert (stable `alert_id` = `fraud-<transaction id>`). Durable when `process` returns; never raises for
bad data. The card state is written last and remembers the offset it covers, so a batch replayed after a
crash neither double-counts a transaction nor misses an output.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.fraud import FraudScore, decide
from models.fraud_features import FEATURE_NAMES, CardState, update
from sinks import metrics
from sinks.search import Doc
from sinks.search_sink import SearchSink
from sinks.templates import monthly_index
from streams.batch_io import Publish, Record, emit_alerts, emit_letters, processing_letter, refused_letters
from streams.decoding import Decoder
from streams.events import Alert, DeadLetter, FraudDoc, Transaction, utc_now
from streams.settings import Settings

log = logging.getLogger(__name__)
Score = Callable[[list[np.ndarray]], Awaitable[list[FraudScore]]]
SEVERITY = {"review": "medium", "block": "critical"}


@dataclass(frozen=True)
class FraudOutcome:
    """What one micro-batch produced (for progress reports and tests)."""

    scored: int
    dead_letters: int
    alerts: list[Alert]


class FraudPipeline:
    """Everything the fraud agent does with a micro-batch."""

    def __init__(self, settings: Settings, decoder: Decoder, score: Score, sink: SearchSink, publish: Publish,
                 states: MutableMapping[str, dict]) -> None:
        self.settings, self.decoder, self.score, self.sink = settings, decoder, score, sink
        self.publish, self.states = publish, states
        self.prefix = settings.search.index_prefix

    async def process(self, records: Sequence[Record]) -> FraudOutcome:
        """Features, one batched score, documents, alerts; durable when it returns."""
        stream = self.settings.topics.transactions
        metrics.EVENTS_CONSUMED.labels(stream).inc(len(records))
        letters: list[DeadLetter] = []
        rows: list[tuple[Record, Transaction, np.ndarray]] = []
        cards: dict[str, tuple[CardState, int, int]] = {}  # token -> (state, partition, offset) after this batch
        for record in records:
            txn = self.decoder.decode(record.value, topic=record.topic, partition=record.partition,
                                      offset=record.offset, key=record.key, model=Transaction)
            if isinstance(txn, DeadLetter):
                letters.append(txn)
                continue
            assert isinstance(txn, Transaction)
            state, partition, offset = cards.get(txn.card_token) or self._stored(txn.card_token)
            if partition == record.partition and record.offset <= offset:
                continue  # a replay of a transaction whose outputs and state were already written
            state, features = update(state, txn)
            cards[txn.card_token] = (state, record.partition, record.offset)
            rows.append((record, txn, features))

        docs: list[FraudDoc] = []
        if rows:
            try:
                scores = await self.score([features for _, _, features in rows])
            except Exception as error:  # a failed batch is dead-lettered (state untouched), not lost
                log.exception("fraud model failed on a batch of %d", len(rows))
                key = self.decoder.pii_key
                letters += [processing_letter(r, f"model failed: {type(error).__name__}: {error}", key)
                            for r, _, _ in rows]
                rows, scores, cards = [], [], {}
            docs = [self._document(r, t, x, s) for (r, t, x), s in zip(rows, scores, strict=True)]
            self.sink.add([Doc(monthly_index(self.prefix, "transactions", d.event_time), d.event_id,
                               d.model_dump(mode="json")) for d in docs])
            refused = await self.sink.flush()
            letters += refused_letters(refused, {t.id: r for r, t, _ in rows}, self.decoder.pii_key)
            metrics.EVENTS_SCORED.labels(stream).inc(len(docs))
            metrics.DOCS_INDEXED.labels("transactions").inc(len(docs) - len(refused))
            for doc in docs:
                metrics.MODEL_SCORES.labels("fraud").observe(doc.fraud_score)

        alerts = [self._alert(doc) for doc in docs if doc.flagged]
        await emit_alerts(self.publish, self.sink, self.settings.topics.alerts_fraud, self.prefix, alerts)
        await emit_letters(self.publish, self.settings.topics.deadletter, letters)
        # State last, with the position it covers: a replay of this batch after a crash skips what it absorbed.
        for token, (state, partition, offset) in cards.items():
            self.states[token] = {"state": state.to_dict(), "partition": partition, "offset": offset}
        return FraudOutcome(scored=len(docs), dead_letters=len(letters), alerts=alerts)

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
