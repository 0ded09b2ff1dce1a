"""Accuracy, macro-F1 and the confusion matrix in dataset label order (0 bearish, 1 bullish, 2 neutral)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

LABEL_IDS = [0, 1, 2]


def classification_metrics(truth: Sequence[int], predicted: Sequence[int]) -> dict[str, Any]:
    """{"accuracy", "macro_f1", "confusion_matrix" (rows true, columns predicted), "n"}."""
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=LABEL_IDS, average="macro", zero_division=0)), 4),
        "confusion_matrix": confusion_matrix(truth, predicted, labels=LABEL_IDS).tolist(),
        "n": len(truth),
    }
