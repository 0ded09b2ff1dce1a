"""Readable connection failures for confluent-kafka clients: say whether the credentials, TLS or the address is wrong.

librdkafka reports a rejected password or certificate as an error event (`error_cb`), while the call that
failed only says "Broker transport failure". `ErrorLog` keeps those events so the failure can name the fix.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

from streams.core.settings import KafkaSettings

# Authentication and TLS failures say more than "transport failure" or "all brokers down".
_TELLING = (KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED)


class ErrorLog:
    """An `error_cb` for confluent-kafka clients that remembers the last few broker-level errors."""

    def __init__(self, keep: int = 10) -> None:
        self.keep = keep
        self.errors: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        self.errors = [*self.errors, error][-self.keep:]

    def most_telling(self) -> KafkaError | None:
        """The latest authentication or TLS error, else the latest error of any kind."""
        telling = [error for error in self.errors if error.code() in _TELLING]
        return (telling or self.errors or [None])[-1]


def _text(failure: object) -> str:
    first = failure.args[0] if isinstance(failure, Exception) and failure.args else failure
    return first.str() if isinstance(first, KafkaError) else str(first)


def describe_failure(kafka: KafkaSettings, failure: object, log: ErrorLog | None = None) -> str:
    """`cannot reach Kafka at …: <what went wrong>; <what to check>` (the logged cause wins over the failure)."""
    cause = log.most_telling() if log is not None else None
    detail = cause.str() if cause is not None else _text(failure)
    return f"cannot reach Kafka at {kafka.bootstrap_servers}: {detail}; {kafka.failure_hint(detail)}"
