"""Small producer API: an idempotent confluent-kafka producer that keys events as the contracts say.

Keys: news by `id`, transactions by card token (a card number is tokenized for the key, never sent as one),
labels by `merchant_id`, clicks by `user_id`, catalog by `item_id`, dead letters by their source topic. Delivery
reports are counted in `stats`; `flush` waits for them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Message, Producer

from streams.broker.failures import ErrorLog, describe_failure
from streams.core import pii
from streams.core.errors import ProduceError
from streams.core.events import DeadLetter, InputEvent
from streams.core.settings import Settings, get_settings

Kind = Literal["news", "transactions", "clicks", "catalog", "labels"]
KINDS: tuple[Kind, ...] = ("news", "transactions", "clicks", "catalog", "labels")


@dataclass
class DeliveryStats:
    """What the broker acknowledged so far (filled by delivery reports)."""

    sent: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the producer was created."""
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Acknowledged events per second."""
        return self.sent / self.elapsed_s


def key_for(kind: Kind, record: dict[str, Any], pii_key: bytes) -> bytes | None:
    """The Kafka key of a wire record (docs/architecture.md, contracts); None when the record lacks the key field."""
    if kind == "transactions":
        number = record.get("card_number")
        if isinstance(number, str):
            digits = pii.normalize_card_number(number)
            return pii.tokenize(digits, pii_key).encode() if digits else None
        value = record.get("card_token")
    else:
        value = record.get({"news": "id", "clicks": "user_id", "catalog": "item_id", "labels": "merchant_id"}[kind])
    return str(value).encode() if isinstance(value, str | int) else None


class EventProducer:
    """Publishes events, raw bytes and dead letters with an idempotent producer (acks=all)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pii_key: bytes | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.pii_key = pii_key or pii.resolve_key(self.settings)
        self.stats = DeliveryStats()
        self.errors = ErrorLog()  # broker-level errors (a refused password, a failed TLS handshake)
        base: dict[str, Any] = {
            **self.settings.kafka.confluent_config(),
            "error_cb": self.errors,
            "enable.idempotence": True,
            "acks": "all",
            # Java-compatible key hashing, as the workers' Kafka client uses: a key's partition is the same
            # for the input topic and the workers' table changelogs, so per-key state stays with its worker.
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 30_000,
        }
        self._producer = Producer(base | (config or {}))

    def check_connection(self, timeout_s: float = 5.0) -> None:
        """Fail fast with a readable error (wrong credentials, TLS, address) when the broker cannot be reached."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException as error:
            self._producer.poll(0.5)  # serve the error events that say why
            raise ProduceError(describe_failure(self.settings.kafka, error, self.errors)) from None

    def topic_for(self, kind: Kind) -> str:
        """The configured topic name of an input kind."""
        return str(getattr(self.settings.topics, kind))

    def _report(self, error: RdKafkaError | None, _message: Message) -> None:
        """Delivery report callback: count acknowledgements and failures."""
        if error is None:
            self.stats.sent += 1
        else:
            self.stats.failed += 1
            self.stats.errors[error.str()] += 1

    def send_raw(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        """Queue bytes as they are (malformed ones included); waits when the local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._report)
                break
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as error:  # e.g. message larger than message.max.bytes
                self.stats.failed += 1
                self.stats.errors[str(error.args[0])] += 1
                return
        self._producer.poll(0)

    def send_record(self, kind: Kind, record: dict[str, Any], topic: str | None = None) -> None:
        """Send a wire record (a dict as producers write it), keyed for its kind."""
        value = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        self.send_raw(topic or self.topic_for(kind), value, key_for(kind, record, self.pii_key))

    def send_event(self, kind: Kind, event: InputEvent, topic: str | None = None) -> None:
        """Send a validated event model (card numbers are already tokens by then)."""
        self.send_record(kind, event.model_dump(mode="json", exclude_none=True), topic)

    def send_dead_letter(self, letter: DeadLetter, topic: str | None = None) -> None:
        """Publish a dead letter to the dead-letter topic, keyed by its source topic."""
        value = letter.model_dump_json(exclude_none=True).encode()
        self.send_raw(topic or self.settings.topics.deadletter, value, letter.source_topic.encode())

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding deliveries; returns how many are still unacknowledged."""
        return int(self._producer.flush(timeout_s))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.flush()
