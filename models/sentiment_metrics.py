"""Classification metrics in dataset label order (0 bearish, 1 bullish, 2 neutral), computed from the confusion matrix.

The figures are the ones published comparisons use: accuracy, macro-F1 (every class counts the same: the minority
classes matter to a trader) and weighted F1 (classes weighted by their support, the figure the published fine-tuned
models on this data report), with precision, recall, F1 and support per class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

LABEL_NAMES = ("bearish", "bullish", "neutral")  # the order of models.sentiment.LABELS, without importing torch


def confusion_of(truth: Sequence[int], predicted: Sequence[int], classes: int = len(LABEL_NAMES)) -> list[list[int]]:
    """Counts [true][predicted]."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} labels against {len(predicted)} predictions")
    matrix = [[0] * classes for _ in range(classes)]
    for t, p in zip(truth, predicted, strict=True):
        matrix[t][p] += 1
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def metrics_from_confusion(confusion: list[list[int]], digits: int = 4) -> dict[str, Any]:
    """accuracy, macro_f1, weighted_f1, per_class {name: precision, recall, f1, support}, confusion, n.

    A class never predicted has precision 0 and a class absent from the truth has recall 0 (scikit-learn's
    `zero_division=0`); weighted F1 weights each class's F1 by its support.
    """
    n = sum(map(sum, confusion))
    classes = range(len(confusion))
    per_class: dict[str, dict[str, float | int]] = {}
    f1s, supports = [], []
    for k in classes:
        tp = confusion[k][k]
        support = sum(confusion[k])
        predicted = sum(row[k] for row in confusion)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        f1s.append(f1)
        supports.append(support)
        per_class[LABEL_NAMES[k]] = {
            "precision": round(precision, digits),
            "recall": round(recall, digits),
            "f1": round(f1, digits),
            "support": support,
        }
    return {
        "accuracy": round(_ratio(sum(confusion[k][k] for k in classes), n), digits),
        "macro_f1": round(sum(f1s) / len(f1s), digits),
        "weighted_f1": round(_ratio(sum(f * s for f, s in zip(f1s, supports, strict=True)), n), digits),
        "per_class": per_class,
        "confusion": [list(row) for row in confusion],
        "n": n,
    }


def classification_metrics(truth: Sequence[int], predicted: Sequence[int]) -> dict[str, Any]:
    """`metrics_from_confusion` of the labels and predictions (confusion rows true, columns predicted)."""
    return metrics_from_confusion(confusion_of(truth, predicted))
