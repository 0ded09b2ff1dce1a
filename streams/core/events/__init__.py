"""Event contracts: the input events producers send and the documents, alerts and dead letters we write."""

from streams.core.events.base import EARLIEST, MAX_AHEAD, InputEvent, OutputDoc, utc_now
from streams.core.events.inputs import (
    INPUT_MODELS,
    CardFeatures,
    CatalogItem,
    ChargebackLabel,
    ClickEvent,
    NewsEvent,
    Transaction,
)
from streams.core.events.outputs import (
    Alert,
    DeadLetter,
    ErrorType,
    FraudDoc,
    Recommendation,
    RecommendationDoc,
    ScoredDoc,
    SentimentDoc,
)

__all__ = [
    "EARLIEST",
    "INPUT_MODELS",
    "MAX_AHEAD",
    "Alert",
    "CardFeatures",
    "CatalogItem",
    "ChargebackLabel",
    "ClickEvent",
    "DeadLetter",
    "ErrorType",
    "FraudDoc",
    "InputEvent",
    "NewsEvent",
    "OutputDoc",
    "Recommendation",
    "RecommendationDoc",
    "ScoredDoc",
    "SentimentDoc",
    "Transaction",
    "utc_now",
]
