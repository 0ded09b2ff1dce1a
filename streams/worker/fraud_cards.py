"""The fraud pipeline's first stage, keyed by card: the card half of each transaction's features.

It reads `transactions` (keyed by card token) and `labels.by-card` (confirmed frauds that name a card, forwarded
by the merchant stage). A confirmed fraud marks its card; a transaction gets the card features against its card's
state before it (amounts converted to the reference currency) and goes on to the merchant stage on
`transactions.by-merchant`, keyed by merchant, with those features and the coordinates it was read at. A currency
without a rate is dead-lettered with the fix in its reason. The card table is written last (`commit`), with the
positions it covers per topic, so a batch replayed after a crash is not absorbed twice.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.card_features import CardState
from models.fraud_features import FeatureConfig, UnknownCurrencyError, card_step, label_card
from streams.core.decoding import Decoder
from streams.core.events import CardFeatures, ChargebackLabel, DeadLetter, Transaction
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs, processing_letter
from streams.worker.keyed_state import Keyed, KeyedTable
from streams.worker.pipeline import Pipeline

CardEvent = Transaction | ChargebackLabel


@dataclass(frozen=True)
class CardStep:
    """One event of a card: its card's state after it, and the card features of a transaction."""

    record: Record
    event: CardEvent
    keyed: Keyed[CardState]
    features: np.ndarray | None = None

    @property
    def records(self) -> tuple[Record]:
        return (self.record,)


def latest_of(steps: Iterable[CardStep]) -> dict[str, Keyed[CardState]]:
    """Each card's state after the last of its steps."""
    return {step.event.card_token: step.keyed for step in steps if step.event.card_token is not None}


class CardStage(Pipeline[CardEvent, CardStep]):  # type: ignore[type-var]
    """Everything the card stage does with a micro-batch."""

    def __init__(self, settings: Settings, decoder: Decoder, checkpoint: Checkpoint,
                 states: MutableMapping[bytes, dict], config: FeatureConfig) -> None:
        super().__init__(settings, decoder, checkpoint, settings.topics.transactions)
        self.states, self.config = KeyedTable(states, CardState.from_dict, CardState.to_dict), config
        self.models = {settings.topics.transactions: Transaction, settings.topics.labels_by_card: ChargebackLabel}

    def decode(self, record: Record) -> CardEvent | DeadLetter:
        """A transaction or a forwarded label; a currency with no rate is refused here, naming the setting."""
        model = self.models.get(record.topic, Transaction)
        event = self.decoder.decode(record.value, topic=record.topic, partition=record.partition,
                                    offset=record.offset, key=record.key, model=model)
        if isinstance(event, Transaction):
            try:
                self.config.to_reference(event.amount, event.currency)
            except UnknownCurrencyError as error:
                return processing_letter(record, str(error), self.decoder.pii_key)
        return event  # type: ignore[return-value]

    def prepare(self, events: list[tuple[Record, CardEvent]]) -> list[CardStep]:
        """Fold each event into its card's state in order; skip those the stored state already absorbed."""
        steps: list[CardStep] = []
        cards: dict[str, Keyed[CardState]] = {}
        for record, event in events:
            token = event.card_token
            if token is None:
                continue  # a forwarded label always names its card; nothing to do without one
            keyed = cards.get(token) or self.states.load(token)
            if keyed.absorbed(record):
                continue
            if isinstance(event, ChargebackLabel):
                state, features = label_card(keyed.state, event) or CardState(), None
            else:
                state, features = card_step(keyed.state, event, self.config)
            cards[token] = keyed = keyed.advanced(state, record)
            steps.append(CardStep(record, event, keyed, features))
        self.states.stage(cards)
        return steps

    async def score(self, units: list[CardStep]) -> Sequence[None]:
        """No model here: the merchant stage scores."""
        return [None] * len(units)

    def outputs(self, scored: list[tuple[CardStep, None]]) -> Outputs:
        """Each transaction with its card features, on to the merchant stage (keyed by merchant)."""
        topic, out = self.settings.topics.transactions_by_merchant, Outputs()
        for step, _ in scored:
            if isinstance(step.event, Transaction) and step.features is not None:
                message = CardFeatures(transaction=step.event, features=step.features.tolist(),
                                       topic=step.record.topic, partition=step.record.partition,
                                       offset=step.record.offset)
                out.messages.append(Message(topic, step.event.merchant_id.encode(),
                                            message.model_dump_json(exclude_none=True).encode()))
        return out

    def commit(self, scored: list[tuple[CardStep, None]]) -> None:
        """Each card's latest state with the positions it covers."""
        for token, keyed in latest_of(step for step, _ in scored).items():
            self.states.store(token, keyed)

    def unstage(self, units: list[CardStep]) -> None:
        self.states.unstage(latest_of(units))

    @staticmethod
    def events_in(scored: list[tuple[CardStep, None]]) -> int:
        """Nothing is scored here: the merchant stage counts the scored transactions."""
        return 0
