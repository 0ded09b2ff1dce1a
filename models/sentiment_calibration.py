"""Calibration of the sentiment probabilities: temperature scaling, reliability figures, the "negative" threshold.

Temperature scaling divides the logits by one number T fitted on the dev fold (least negative log-likelihood); it
leaves the top label, so every classification figure, unchanged and only makes the probabilities honest.
The pipeline's "negative" flag is calibrated P(bearish) >= a threshold: the one with the best F1 of bearish against
the rest on the dev fold (on a 0.01 grid, the lowest in case of a tie), so counting flagged items is the best
single-cut estimate of how many bearish items a ticker had.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from scipy.optimize import minimize_scalar

from models.sentiment import BEARISH, META_FILE, SentimentModel
from models.sentiment_data import LabelledTexts
from models.sentiment_fit import stratified_split

BINS = 10
GRID = [round(0.05 + 0.01 * i, 2) for i in range(91)]  # 0.05 .. 0.95


def fit_temperature(logits: torch.Tensor, labels: list[int]) -> float:
    """The T in [0.05, 20] that minimises the NLL of softmax(logits / T), rounded to 4 digits."""
    target = torch.tensor(labels)
    logits = logits.double()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / math.exp(log_t), target))

    result = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded", options={"xatol": 1e-5})
    return round(math.exp(result.x), 4)


def reliability(probs: torch.Tensor, labels: list[int], bins: int = BINS) -> list[dict[str, Any]]:
    """Top-label reliability: per confidence bin [lo, hi), how many texts, their mean confidence and accuracy."""
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == torch.tensor(labels)).float()
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (confidence >= lo) & ((confidence < hi) if b < bins - 1 else (confidence <= hi))
        n = int(inside.sum())
        if n:
            rows.append({
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": n,
                "confidence": round(float(confidence[inside].mean()), 4),
                "accuracy": round(float(correct[inside].mean()), 4),
            })
    return rows


def expected_calibration_error(probs: torch.Tensor, labels: list[int], bins: int = BINS) -> float:
    """Top-label ECE: the support-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    rows = reliability(probs, labels, bins)
    return round(sum(r["n"] / len(labels) * abs(r["accuracy"] - r["confidence"]) for r in rows), 4)


def negative_counts(p_bearish: torch.Tensor, is_bearish: torch.Tensor, threshold: float) -> dict[str, Any]:
    """Precision, recall and F1 of "negative" (P(bearish) >= threshold) against the true bearish texts."""
    flagged = p_bearish >= threshold
    tp = int((flagged & is_bearish).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(is_bearish.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": threshold,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "flagged": int(flagged.sum()),
        "bearish": int(is_bearish.sum()),
    }


def negative_threshold(probs: torch.Tensor, labels: list[int]) -> float:
    """The threshold on P(bearish) with the best bearish-vs-rest F1 (lowest on ties), on a 0.01 grid."""
    p_bearish, is_bearish = probs[:, BEARISH], torch.tensor(labels) == BEARISH
    scores = [(negative_counts(p_bearish, is_bearish, t)["f1"], -t) for t in GRID]
    return -max(scores)[1]


def calibration_report(probs: torch.Tensor, labels: list[int], threshold: float | None) -> dict[str, Any]:
    """ECE, NLL and multi-class Brier score of [n, 3] probabilities, the reliability bins and the negative flag."""
    target = torch.tensor(labels)
    one_hot = torch.nn.functional.one_hot(target, probs.shape[1]).float()
    report: dict[str, Any] = {
        "ece": expected_calibration_error(probs, labels),
        "nll": round(float(-probs.clamp(min=1e-12).log().gather(1, target[:, None]).mean()), 4),
        "brier": round(float(((probs - one_hot) ** 2).sum(dim=-1).mean()), 4),
        "reliability": reliability(probs, labels),
    }
    if threshold is not None:
        report["negative"] = negative_counts(probs[:, BEARISH], target == BEARISH, threshold)
    return report


def uncalibrated(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """The probabilities before temperature scaling: softmax(T * log p) undoes softmax(z / T)."""
    return torch.softmax(temperature * probs.clamp(min=1e-12).log(), dim=-1)


def calibrate(dev_logits: torch.Tensor, dev_labels: list[int]) -> dict[str, Any]:
    """Temperature and negative threshold fitted on the dev fold, with its figures before and after."""
    temperature = fit_temperature(dev_logits, dev_labels)
    calibrated = torch.softmax(dev_logits / temperature, dim=-1)
    threshold = negative_threshold(calibrated, dev_labels)
    return {
        "temperature": temperature,
        "negative_threshold": threshold,
        "method": "temperature scaling fitted on the dev fold (least NLL); negative = calibrated P(bearish) >= the "
        "threshold with the best bearish-vs-rest F1 on the dev fold (0.01 grid, lowest on ties)",
        "dev_before": calibration_report(torch.softmax(dev_logits, dim=-1), dev_labels, None),
        "dev_after": calibration_report(calibrated, dev_labels, threshold),
    }


def calibrate_artifact(path: Path, rows: LabelledTexts, recipe: str) -> dict[str, Any]:
    """Fit the temperature and the negative threshold of a trained artifact on its own dev fold and write them into
    its meta.json (for an artifact trained before calibration existed); returns the calibration.

    The dev fold is the one the artifact was trained beside (its recorded split seed and fraction, on the same
    file), so the fit never sees a text the model trained on, nor the validation file.
    """
    model = SentimentModel.load(path, device="cpu")
    training = model.meta["training"]
    split_seed = int(training.get("split_seed", training["seed"]))
    _, dev_idx = stratified_split(rows.labels, float(training["dev_fraction"]), split_seed)
    dev_labels = [rows.labels[i] for i in dev_idx]
    probs = torch.cat([model.probabilities([rows.texts[i] for i in dev_idx[s : s + 64]])
                       for s in range(0, len(dev_idx), 64)])
    logits = uncalibrated(probs, model.temperature).clamp(min=1e-12).log()  # logits up to a per-row constant
    calibration = calibrate(logits, dev_labels)
    meta_path = path / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["calibration"] = calibration
    meta["recipe"] = [*meta.get("recipe", []), recipe]
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return calibration
