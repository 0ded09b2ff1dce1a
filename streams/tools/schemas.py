"""JSON Schema files of the event contracts (`lepton schemas export` writes them to infra/schemas/).

Inputs are exported in validation mode (what producers may send), outputs in serialization mode (what
consumers of indices and topics read). A unit test keeps the checked-in files equal to the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from streams.core.events import (
    Alert,
    CatalogItem,
    ChargebackLabel,
    ClickEvent,
    DeadLetter,
    FraudDoc,
    NewsEvent,
    RecommendationDoc,
    SentimentDoc,
    Transaction,
)
from streams.core.settings import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "infra" / "schemas"
CONTRACTS: dict[str, tuple[type[BaseModel], Literal["validation", "serialization"]]] = {
    "news-event": (NewsEvent, "validation"),
    "transaction": (Transaction, "validation"),
    "click-event": (ClickEvent, "validation"),
    "catalog-item": (CatalogItem, "validation"),
    "chargeback-label": (ChargebackLabel, "validation"),
    "sentiment-doc": (SentimentDoc, "serialization"),
    "fraud-doc": (FraudDoc, "serialization"),
    "recommendation-doc": (RecommendationDoc, "serialization"),
    "alert": (Alert, "serialization"),
    "dead-letter": (DeadLetter, "serialization"),
}


def schema_of(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one contract."""
    model, mode = CONTRACTS[name]
    schema = model.model_json_schema(mode=mode)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"lepton-streams/{name}.json"} | schema


def render(name: str) -> str:
    """The file content for one contract: stable key order, trailing newline (diff-friendly)."""
    return json.dumps(schema_of(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    return [
        name
        for name in CONTRACTS
        if not (path := directory / f"{name}.json").exists() or path.read_text() != render(name)
    ]


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in CONTRACTS:
        path = directory / f"{name}.json"
        path.write_text(render(name))
        paths.append(path)
    return paths
