"""Evaluate the sentiment model on a labelled CSV, and time fp32 against the int8 CPU path."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from models.sentiment import SentimentModel
from models.sentiment_data import LabelledTexts
from models.sentiment_metrics import classification_metrics


def evaluate(
    model: SentimentModel, rows: LabelledTexts, batch_size: int = 64, advance: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, confusion matrix (rows true, columns predicted, order 0 bearish 1 bullish 2 neutral), n."""
    predicted: list[int] = []
    for start in range(0, len(rows.texts), batch_size):
        chunk = rows.texts[start : start + batch_size]
        predicted += model.probabilities(chunk).argmax(dim=-1).tolist()
        if advance:
            advance(len(chunk))
    return classification_metrics(rows.labels, predicted)


def throughput(model: SentimentModel, texts: list[str], batch_size: int = 32, repeats: int = 1) -> float:
    """Texts per second of `predict` at `batch_size`, after one warm-up batch."""
    model.predict(texts[:batch_size])
    started = time.perf_counter()
    done = 0
    for _ in range(repeats):
        for start in range(0, len(texts), batch_size):
            done += len(model.predict(texts[start : start + batch_size]))
    return done / (time.perf_counter() - started)
