"""Fraud metrics and the two baselines every evaluation reports next to the model.

PR-AUC is average precision (sklearn's step-wise area, no interpolation); recall at 1% FPR is the highest
true-positive rate among thresholds whose false-positive rate is at most 1%; card precision at 100 is, per day of
event time, the share of the 100 cards with the highest score that day (a card's score is its highest) that had a
fraud that day, averaged over the days (the Fraud Detection Handbook's CP@k: what a team checking 100 cards a day
finds). Baselines: logistic regression on
the same standardised features, trained on the same rows as the model (saved with the artifact), and the
amount rule, which ranks transactions by how far the amount lies above the card's usual range (`amount_z`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from models.fraud import FraudModel
from models.fraud_data import LabelledData
from models.fraud_features import INDEX
from streams.core.errors import ModelArtifactError

BASELINE_FILE = "baseline_lr.json"
METHODS = ("model", "logistic_regression", "amount_rule")
MAX_FPR = 0.01


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    """Highest recall reachable with a false-positive rate of at most `max_fpr`."""
    fpr, tpr, _ = roc_curve(y, scores)
    return float(tpr[fpr <= max_fpr].max())


def metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """PR-AUC, ROC-AUC and recall at 1% FPR, rounded to 4 decimals."""
    return {
        "pr_auc": round(float(average_precision_score(y, scores)), 4),
        "roc_auc": round(float(roc_auc_score(y, scores)), 4),
        "recall_at_1pct_fpr": round(recall_at_fpr(y, scores), 4),
    }


def card_precision_at_k(y: np.ndarray, scores: np.ndarray, cards: list[str], ts: np.ndarray, k: int = 100) -> float:
    """Per day, the share of the k highest-scored cards that had a fraud that day, averaged over the days."""
    days = np.floor(np.asarray(ts) / 86_400).astype(np.int64)
    best: dict[tuple[int, str], tuple[float, int]] = {}
    for day, card, score, fraud in zip(days.tolist(), cards, np.asarray(scores).tolist(), y.tolist(), strict=True):
        top, hit = best.get((day, card), (-np.inf, 0))
        best[(day, card)] = (max(top, score), hit | fraud)
    by_day: dict[int, list[tuple[float, int]]] = {}
    for (day, _), pair in best.items():
        by_day.setdefault(day, []).append(pair)
    precisions = [sum(hit for _, hit in sorted(pairs, reverse=True)[:k]) / k for pairs in by_day.values()]
    return round(float(np.mean(precisions)), 4) if precisions else 0.0


def amount_rule_scores(X: np.ndarray) -> np.ndarray:
    """The rule's score: the z-score of log(amount) against the card's history (higher = further above usual)."""
    return X[:, INDEX["amount_z"]]


@dataclass(frozen=True)
class LogisticBaseline:
    """Logistic regression on the model's standardised inputs."""

    coef: np.ndarray
    intercept: float

    def scores(self, model: FraudModel, X: np.ndarray) -> np.ndarray:
        """Decision values (a monotone function of its probability, enough for ranking metrics)."""
        return model.standardize(X) @ self.coef + self.intercept

    def save(self, folder: Path) -> None:
        """baseline_lr.json next to the model it was trained with."""
        data = {"coef": self.coef.tolist(), "intercept": self.intercept, "inputs": "the model's standardised inputs"}
        (folder / BASELINE_FILE).write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> LogisticBaseline:
        """Read baseline_lr.json."""
        try:
            data = json.loads((folder / BASELINE_FILE).read_text())
        except (OSError, ValueError) as error:
            raise ModelArtifactError(f"no logistic-regression baseline in {folder}: {error}") from error
        return cls(np.asarray(data["coef"], dtype=np.float64), float(data["intercept"]))


def method_scores(model: FraudModel, baseline: LogisticBaseline, X: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of the model and of both baselines on the same rows."""
    return {
        "model": model.probabilities(X),
        "logistic_regression": baseline.scores(model, X),
        "amount_rule": amount_rule_scores(X),
    }


def evaluate(model: FraudModel, baseline: LogisticBaseline, data: LabelledData) -> dict[str, dict[str, float]]:
    """The three methods' metrics on the same labelled rows."""
    return {name: {**metrics(data.y, s), "card_precision_at_100": card_precision_at_k(data.y, s, data.cards, data.ts)}
            for name, s in method_scores(model, baseline, data.X).items()}


def scenario_recall(data: LabelledData, probabilities: np.ndarray, threshold: float) -> dict[str, dict[str, Any]]:
    """Per generator scenario: rows and the share scored at or above `threshold` (flag rate for legit rows)."""
    names = np.asarray(data.scenario)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(data.scenario) - {""}):
        rows = names == name
        out[name] = {"rows": int(rows.sum()), "flagged": round(float((probabilities[rows] >= threshold).mean()), 4)}
    return out
