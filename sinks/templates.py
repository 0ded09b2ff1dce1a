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
        "headline": {"type": "text"},
        "tickers": {"type": "keyword"},
        "source": {"type": "keyword"},
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


def templates(prefix: str) -> dict[str, dict[str, Any]]:
    """Template name -> body, for `<prefix>-<kind>-*`."""
    return {
        f"{prefix}-{kind}": {
            "index_patterns": [f"{prefix}-{kind}-*"],
            "priority": 100,
            "template": {
                "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
                "mappings": {"dynamic": True, "properties": properties},
            },
        }
        for kind, properties in MAPPINGS.items()
    }
