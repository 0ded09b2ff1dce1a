"""Index templates for every index the pipeline writes; installed by the sink at start.

Index names carry the event month (`lepton-news-2026.11`) so a replay lands in the same index, and
document ids are event ids, so a replay overwrites instead of duplicating.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

KAFKA_COORDINATES = {"topic": {"type": "keyword"}, "partition": {"type": "integer"}, "offset": {"type": "long"}}
SCORED = {
    "event_id": {"type": "keyword"},
    "event_time": {"type": "date"},
    "processed_at": {"type": "date"},
    "model_name": {"type": "keyword"},
    "model_version": {"type": "keyword"},
    **KAFKA_COORDINATES,
}

MAPPINGS: dict[str, dict[str, Any]] = {
    "news": {
        **SCORED,
        "label": {"type": "keyword"},
        "score": {"type": "float"},
        "probabilities": {"properties": {k: {"type": "float"} for k in ("bearish", "neutral", "bullish")}},
        "negative": {"type": "boolean"},
        "negative_threshold": {"type": "float"},
        "headline": {"type": "text"},
        "tickers": {"type": "keyword"},
        "source": {"type": "keyword"},
    },
    "transactions": {
        **SCORED,
        "card_token": {"type": "keyword"},
        "amount": {"type": "float"},
        "currency": {"type": "keyword"},
        "merchant_id": {"type": "keyword"},
        "mcc": {"type": "keyword"},
        "country": {"type": "keyword"},
        "channel": {"type": "keyword"},
        "fraud_score": {"type": "float"},
        "decision": {"type": "keyword"},
        "reasons": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
        "features": {"type": "object", "dynamic": True},
    },
    "recommendations": {
        **SCORED,
        "user_id": {"type": "keyword"},
        "session_id": {"type": "keyword"},
        "trigger_item_id": {"type": "keyword"},
        "items": {"properties": {"item_id": {"type": "keyword"}, "score": {"type": "float"},
                                 "rank": {"type": "integer"}}},
        "updated_at": {"type": "date"},
    },
    "alerts": {
        "alert_id": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "severity": {"type": "keyword"},
        "created_at": {"type": "date"},
        "subject": {"type": "keyword"},
        "summary": {"type": "text"},
        "evidence": {"type": "object", "dynamic": True},
        "event_ids": {"type": "keyword"},
        "model_name": {"type": "keyword"},
        "model_version": {"type": "keyword"},
    },
}


def monthly_index(prefix: str, kind: str, when: datetime) -> str:
    """`<prefix>-<kind>-YYYY.MM` from the event time."""
    return f"{prefix}-{kind}-{when:%Y.%m}"


UNDATED = {"recommendations"}  # one document per user, upserted: a single index, not one per month


def templates(prefix: str, refresh_interval_s: float) -> dict[str, dict[str, Any]]:
    """Template name -> body, for `<prefix>-<kind>-*` (monthly) or `<prefix>-<kind>` (undated); new documents in
    their indices become searchable within `refresh_interval_s` (settings.search.refresh_interval_s)."""
    refresh = f"{round(refresh_interval_s * 1000)}ms"
    settings = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": refresh}
    return {
        f"{prefix}-{kind}": {
            "index_patterns": [f"{prefix}-{kind}" if kind in UNDATED else f"{prefix}-{kind}-*"],
            "priority": 100,
            "template": {
                "settings": settings,
                "mappings": {"dynamic": True, "properties": properties},
            },
        }
        for kind, properties in MAPPINGS.items()
    }
