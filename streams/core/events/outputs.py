"""What the pipeline writes: score documents (search indices), alerts and dead letters.

Outputs forbid unknown fields (our own code builds them). Every score document carries the event id (also
its document id, so a replay overwrites), event time, processing time, model name/version, the scores and
the Kafka topic/partition/offset it came from (docs/architecture.md, contracts).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from streams.core.events.base import Identifier, OutputDoc, Probability, UtcTime

ErrorType = Literal[
    "empty",  # no bytes at all (or a Kafka tombstone)
    "oversized",  # more than MAX_MESSAGE_BYTES
    "not_utf8",  # bytes that are not UTF-8 text
    "invalid_json",  # text that is not JSON
    "invalid_number",  # NaN, Infinity, or a number too large to be finite
    "duplicate_key",  # the same key twice in one JSON object (ambiguous)
    "too_deep",  # nesting deeper than MAX_DEPTH
    "not_object",  # valid JSON, but not an object
    "validation",  # a JSON object that breaks the schema (reason lists the fields)
    "unknown_topic",  # no schema is known for the source topic
    "processing",  # a valid event that a later stage could not process
    "internal",  # a bug in the decoder itself; the event is kept rather than lost
]


class ScoredDoc(OutputDoc):
    """Fields shared by every score document."""

    event_id: Identifier
    event_time: UtcTime
    processed_at: UtcTime
    model_name: str
    model_version: str
    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class SentimentDoc(ScoredDoc):
    """Sentiment of one news item: label, signed score in [-1, 1], calibrated class probabilities, and whether it
    counts as negative news (what the surge detector counts)."""

    label: Literal["bearish", "neutral", "bullish"]
    score: Annotated[float, Field(ge=-1.0, le=1.0, description="P(bullish) - P(bearish)")]
    probabilities: dict[Literal["bearish", "neutral", "bullish"], Probability]
    negative: bool = Field(description="calibrated P(bearish) >= negative_threshold (the top label is bearish when "
                                       "the model has no calibrated threshold)")
    negative_threshold: Probability | None = Field(
        None, description="the model's calibrated threshold on P(bearish); null when it has none")
    headline: str
    tickers: list[str] = Field(default_factory=list)
    source: str


class FraudDoc(ScoredDoc):
    """Fraud score of one transaction (card token only: card numbers are never written).

    `decision` follows the model's thresholds (set by training to meet the alert budget; settings.fraud may
    override them); `flagged` is true exactly when the decision is review or block (then an alert is raised). A
    caller that gives only `flagged` gets review or approve.
    """

    card_token: str
    amount: float
    currency: str
    amount_reference: float | None = Field(None, description="the amount in the reference currency (the features')")
    reference_currency: str | None = None
    merchant_id: str
    mcc: str
    country: str
    channel: str
    fraud_score: Probability
    decision: Literal["approve", "review", "block"] = Field(
        description="approve below the review threshold, block at or above the block threshold, else review"
    )
    flagged: bool = Field(description="decision is review or block (an alert was raised)")
    reasons: Annotated[list[str], Field(max_length=3)] = Field(
        default_factory=list, description="up to three reasons in words, strongest first"
    )
    features: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _decision_from_flag(cls, data: Any) -> Any:
        """Older callers set only `flagged`: derive the decision from it."""
        if isinstance(data, dict) and "decision" not in data and "flagged" in data:
            data = {**data, "decision": "review" if data["flagged"] else "approve"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """`flagged` and `decision` never disagree."""
        if self.flagged != (self.decision != "approve"):
            raise ValueError("flagged must be true exactly when decision is review or block")
        return self


class Recommendation(OutputDoc):
    """One recommended item with its rank (1 = best) and score."""

    item_id: Identifier
    score: float
    rank: Annotated[int, Field(ge=1)]


class RecommendationDoc(ScoredDoc):
    """A user's current top-K, upserted under the user's id: one document per user.

    The event fields (event_id, event_time, topic/partition/offset) name the click that last refreshed it.
    """

    user_id: Identifier
    session_id: Identifier
    trigger_item_id: Identifier
    items: list[Recommendation]
    updated_at: UtcTime = Field(description="when these recommendations were computed")


class Alert(OutputDoc):
    """A downstream alert; `alert_id` is stable so consumers can de-duplicate repeats."""

    alert_id: Identifier
    kind: Literal["sentiment", "fraud"]
    severity: Literal["low", "medium", "high", "critical"]
    created_at: UtcTime
    subject: str = Field(description="what the alert is about: a ticker, a card token")
    summary: str
    evidence: dict[str, float | int | str | bool] = Field(default_factory=dict)
    event_ids: Annotated[list[Identifier], Field(min_length=1)]
    model_name: str | None = None
    model_version: str | None = None


class DeadLetter(OutputDoc):
    """An event the pipeline could not use, kept with its original bytes and the reason, never dropped.

    `original_b64` holds the original value (base64), except that card numbers are replaced (by their token
    when the payload is a JSON object with `card_number`, else by a marker) and `redacted` says so; payloads
    over MAX_KEPT_BYTES are cut (`original_truncated`), and such letters cannot be replayed.
    """

    id: str = Field(description="topic:partition:offset, or a content hash when there is no position")
    source_topic: str
    source_partition: int | None = None
    source_offset: int | None = None
    key_b64: str | None = None
    original_b64: str
    original_size: Annotated[int, Field(ge=0)]
    original_truncated: bool = False
    redacted: bool = False
    error_type: ErrorType
    reason: Annotated[str, StringConstraints(max_length=1000)]
    stage: Literal["decode", "produce", "process"] = "decode"
    origin: str | None = Field(None, description="where it came from outside Kafka, e.g. events.jsonl:17")
    received_at: UtcTime
