"""The fraud pipeline's second stage, keyed by merchant: merchant risk, one batched model call, documents, alerts.

It reads `transactions.by-merchant` (each transaction with its card features, from the card stage) and `labels`
(confirmed outcomes, keyed by merchant), so one merchant's transactions and outcomes meet on one worker. An
outcome updates the merchant's state (and a confirmed fraud naming a card goes back to the card stage on
`labels.by-card`); a transaction gets the merchant features against the state before it (the fraud rate of the
merchant's transactions in windows that end the label delay before it, counting only outcomes already known),
the whole batch is scored in one call through the batcher, and every transaction gets a document in
`lepton-transactions-YYYY.MM` with its decision (the model's thresholds, set by training to meet the alert
budget) and reasons in words; review and block raise an alert (`alert_id` = `fraud-<transaction id>`). The
merchant table is written last (`commit`), with the positions it covers per topic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from models.fraud import FraudScore, ScoreRequest, Thresholds
from models.fraud_features import FEATURE_NAMES, FeatureConfig, label_merchant, merchant_step
from models.merchant_features import MerchantState
from sinks import metrics
from sinks.search import Doc
from sinks.templates import monthly_index
from streams.core.decoding import Decoder
from streams.core.events import Alert, CardFeatures, ChargebackLabel, DeadLetter, FraudDoc, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs
from streams.worker.keyed_state import Keyed, KeyedTable
from streams.worker.pipeline import Pipeline

Score = Callable[[list[ScoreRequest]], Awaitable[list[FraudScore]]]
SEVERITY = {"review": "medium", "block": "critical"}
MerchantEvent = CardFeatures | ChargebackLabel
AMOUNT = FEATURE_NAMES.index("amount")
EVIDENCE = ("amount_z", "amount_ratio", "count_1h", "count_24h", "merchant_count_7d", "merchant_fraud_rate_1d",
            "merchant_fraud_rate_7d", "merchant_fraud_rate_30d", "merchant_frauds_30d", "card_known_fraud")


@dataclass(frozen=True)
class MerchantStep:
    """One event of a merchant: the merchant's state after it, and for a transaction what the model scores."""

    record: Record
    event: MerchantEvent
    keyed: Keyed[MerchantState]
    request: ScoreRequest | None = None

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


def merchant_of(event: MerchantEvent) -> str:
    """The merchant an event belongs to."""
    return event.transaction.merchant_id if isinstance(event, CardFeatures) else event.merchant_id


def latest_of(steps: Iterable[MerchantStep]) -> dict[str, Keyed[MerchantState]]:
    """Each merchant's state after the last of its steps."""
    return {merchant_of(step.event): step.keyed for step in steps}


class FraudPipeline(Pipeline[MerchantEvent, MerchantStep]):  # type: ignore[type-var]
    """Everything the scoring (merchant) stage does with a micro-batch."""

    index_kind = "transactions"

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint, score: Score,
                 states: MutableMapping[bytes, dict], config: FeatureConfig, thresholds: Thresholds) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.transactions_by_merchant)
        self.model, self.config = score, config
        self.states = KeyedTable(states, MerchantState.from_dict, MerchantState.to_dict)
        self.thresholds = thresholds  # the artifact's, or the settings' overrides (runtime.py)
        self.scored_stream = settings.topics.transactions  # metrics count scored transactions under their topic
        self.models = {settings.topics.transactions_by_merchant: CardFeatures, settings.topics.labels: ChargebackLabel}
        self.prefix = settings.search.index_prefix

    def decode(self, record: Record) -> MerchantEvent | DeadLetter:
        """An outcome, or a transaction with its card features. The card stage's messages are parsed by pydantic
        directly (they are ours, already checked at the boundary); one that fails goes through the decoder, which
        says why in its dead letter."""
        model = self.models.get(record.topic, CardFeatures)
        if model is CardFeatures and record.value:
            try:
                return CardFeatures.model_validate_json(record.value, context={"pii_key": self.decoder.pii_key})
            except ValidationError:
                pass
        return self.decoder.decode(record.value, topic=record.topic, partition=record.partition,  # type: ignore
                                   offset=record.offset, key=record.key, model=model)

    def prepare(self, events: list[tuple[Record, MerchantEvent]]) -> list[MerchantStep]:
        """Fold outcomes and transactions into their merchant's state in order; a transaction's merchant features
        come from the state before it. Records the stored state already absorbed are skipped."""
        steps: list[MerchantStep] = []
        merchants: dict[str, Keyed[MerchantState]] = {}
        for record, event in events:
            merchant = merchant_of(event)
            keyed = merchants.get(merchant) or self.states.load(merchant)
            if keyed.absorbed(record):
                continue
            request = None
            if isinstance(event, ChargebackLabel):
                state = label_merchant(keyed.state, event, self.config)
            else:
                txn = event.transaction
                state, merchant_row = merchant_step(keyed.state, txn, self.config)
                paid = None if txn.currency == self.config.reference_currency else f"{txn.amount:,.2f} {txn.currency}"
                request = ScoreRequest(np.concatenate([np.asarray(event.features), merchant_row]), paid)
            merchants[merchant] = keyed = keyed.advanced(state, record)
            steps.append(MerchantStep(record, event, keyed, request))
        self.states.stage(merchants)
        return steps

    async def score(self, units: list[MerchantStep]) -> Sequence[FraudScore | None]:
        """The transactions of the batch in one model call; outcomes have no score."""
        requests = [unit.request for unit in units if unit.request is not None]
        scores = iter(await self.model(requests) if requests else [])
        return [next(scores) if unit.request is not None else None for unit in units]

    def outputs(self, scored: list[tuple[MerchantStep, FraudScore | None]]) -> Outputs:
        out = Outputs(alert_topic=self.settings.topics.alerts_fraud)
        requests = [step.request for step, _ in scored if step.request is not None]
        # the batch's features rounded for the documents in one array operation, not one float at a time
        rounded = iter(np.round(np.stack([r.features for r in requests]), 6).tolist() if requests else [])
        for step, score in scored:
            if isinstance(step.event, ChargebackLabel):
                if step.event.fraud and step.event.card_token:  # the card stage marks the card
                    out.messages.append(Message(self.settings.topics.labels_by_card, step.event.card_token.encode(),
                                                step.event.model_dump_json(exclude_none=True).encode()))
                continue
            assert score is not None and step.request is not None
            doc = self._document(step.event, step.request, next(rounded), score)
            metrics.MODEL_SCORES.labels("fraud").observe(doc.fraud_score)
            out.documents.append((Doc.of(monthly_index(self.prefix, "transactions", doc.event_time), doc.event_id, doc),
                                  step.record))
            if doc.flagged:
                out.alerts.append(self._alert(doc))
        return out

    def commit(self, scored: list[tuple[MerchantStep, FraudScore | None]]) -> None:
        """Each merchant's latest state with the positions it covers."""
        for merchant, keyed in latest_of(step for step, _ in scored).items():
            self.states.store(merchant, keyed)

    def unstage(self, units: list[MerchantStep]) -> None:
        self.states.unstage(latest_of(units))

    @staticmethod
    def events_in(scored: list[tuple[MerchantStep, FraudScore | None]]) -> int:
        """The transactions scored (outcomes are not)."""
        return sum(score is not None for _, score in scored)

    def _document(self, event: CardFeatures, request: ScoreRequest, rounded: list[float], score: FraudScore
                  ) -> FraudDoc:
        """The transaction's document; `rounded` is the request's features rounded to 6 decimals."""
        txn = event.transaction
        decision = self.thresholds.decide(score.probability)
        return FraudDoc(
            event_id=txn.id, event_time=txn.ts, processed_at=utc_now(), model_name=score.model,
            model_version=score.version, topic=event.topic, partition=event.partition, offset=event.offset,
            card_token=txn.card_token, amount=txn.amount, currency=txn.currency,
            amount_reference=round(float(request.features[AMOUNT]), 2),
            reference_currency=self.config.reference_currency, merchant_id=txn.merchant_id, mcc=txn.mcc,
            country=txn.country, channel=txn.channel, fraud_score=score.probability, decision=decision,
            flagged=decision != "approve", reasons=score.reasons[:3],
            features=dict(zip(FEATURE_NAMES, rounded, strict=True)),
        )

    def _alert(self, doc: FraudDoc) -> Alert:
        reasons = "; ".join(doc.reasons) or "unusual pattern"
        converted = "" if doc.currency == doc.reference_currency else f" ({doc.amount_reference:,.2f} " \
            f"{doc.reference_currency})"
        return Alert(
            alert_id=f"fraud-{doc.event_id}", kind="fraud", severity=SEVERITY[doc.decision], created_at=utc_now(),
            subject=doc.card_token,
            summary=(f"{doc.decision.upper()}: {doc.amount:,.2f} {doc.currency}{converted} at merchant "
                     f"{doc.merchant_id} ({doc.country}), fraud score {doc.fraud_score:.2f}: {reasons}"),
            evidence={"fraud_score": round(doc.fraud_score, 4), "decision": doc.decision, "amount": doc.amount,
                      "currency": doc.currency, "amount_reference": doc.amount_reference,
                      "reference_currency": doc.reference_currency, "merchant_id": doc.merchant_id, "mcc": doc.mcc,
                      "country": doc.country, "channel": doc.channel, "reasons": reasons,
                      **{name: doc.features[name] for name in EVIDENCE}},
            event_ids=[doc.event_id], model_name=doc.model_name, model_version=doc.model_version,
        )
