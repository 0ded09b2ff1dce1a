"""Train the fraud MLP, its Platt calibration, its alert-budget thresholds and the logistic-regression baseline.

Three disjoint sets, in time order: the training rows fit the MLP (and the baseline) except their latest
`early_stop_share`, which picks the epoch to keep (early stopping); the validation rows (given apart, or the latest
part of the data) fit the calibration and set the thresholds: review from the score that at most `alert_budget` of
the legitimate validation rows reach, block from `block_budget`. Held-out metrics are those of the validation rows.
CPU-friendly: a few torch threads, minutes at most for the default sizes.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from models.fraud import COLUMNS, MODEL_NAME, WEIGHTS_FILE, FraudModel, FraudNet, Thresholds, transform
from models.fraud_data import LabelledData
from models.fraud_eval import LogisticBaseline, amount_rule_scores, metrics
from models.fraud_features import FEATURE_NAMES
from streams.core.errors import LeptonError

Progress = Callable[[str, int | None], Callable[[int], None]]


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training run (defaults give the committed artifact)."""

    seed: int = 7
    epochs: int = 12
    hidden: int = 64
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_pos_weight: float = 10.0
    validation_share: float = 0.2  # of each segment, when no validation data is given
    early_stop_share: float = 0.15  # of the training rows (the latest), to pick the epoch
    alert_budget: float = 0.005
    block_budget: float = 0.001
    delay_days: int = 7
    reference_currency: str = "EUR"
    threads: int = 1


@dataclass
class TrainReport:
    """What training produced: the calibrated model, the baseline, per-epoch history and held-out metrics."""

    model: FraudModel
    baseline: LogisticBaseline
    thresholds: Thresholds
    history: list[dict[str, float]] = field(default_factory=list)
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    rows: dict[str, Any] = field(default_factory=dict)


def _platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit sigmoid(a * logit + b) on held-out rows (almost unregularised logistic regression on one input)."""
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logits.reshape(-1, 1), y)
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if a <= 0:
        raise LeptonError("calibration failed: the model's scores do not increase with fraud; train longer")
    return a, b


def budget_threshold(legit_scores: np.ndarray, budget: float) -> float:
    """The lowest score that at most `budget` of the legitimate scores reach (just above the one that would
    exceed it)."""
    ranked = np.sort(np.asarray(legit_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(budget * len(ranked)))
    if allowed >= len(ranked):
        return float(ranked[-1])
    return float(min(np.nextafter(ranked[allowed], np.inf), 1.0))


def train(data: LabelledData, config: TrainConfig, progress: Progress | None = None,
          validation: LabelledData | None = None) -> TrainReport:
    """Fit scaler, MLP (early-stopped), calibration, thresholds and baseline; the validation rows score all three
    methods."""
    started = time.monotonic()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if validation is None:
        head, tail = data.split(1 - config.validation_share)
        data, validation = data.subset(head), data.subset(tail)
    fit_rows, stop_rows = data.split(1 - config.early_stop_share)
    y_fit, y_stop, y_val = data.y[fit_rows], data.y[stop_rows], validation.y
    for name, y in (("training", y_fit), ("early-stopping", y_stop), ("validation", y_val)):
        if len(set(y.tolist())) < 2:
            raise LeptonError(f"the {name} rows need fraudulent and legitimate transactions: give more data")
    X_fit = data.X[fit_rows]
    T = transform(X_fit)
    mean, std = T.mean(0), T.std(0)
    reference = np.median(X_fit[y_fit == 0], axis=0)
    model = FraudModel(FraudNet(len(COLUMNS), config.hidden), mean, std, reference, (1.0, 0.0))
    net = model.net.train().requires_grad_(True)
    Z = torch.from_numpy(((T - mean) / model.std).astype(np.float32))
    Y = torch.from_numpy(y_fit.astype(np.float32))
    pos_weight = min(float((Y == 0).sum() / max((Y == 1).sum(), 1)), config.max_pos_weight)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = (len(Z) + config.batch_size - 1) // config.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=steps * config.epochs)
    advance = progress("train fraud MLP (batches)", steps * config.epochs) if progress else None
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    for epoch in range(1, config.epochs + 1):
        order = torch.from_numpy(rng.permutation(len(Z)))
        total = 0.0
        for start in range(0, len(Z), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_fn(net(Z[batch]), Y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            total += loss.item() * len(batch)
            if advance:
                advance(1)
        net.eval()
        stop_pr = metrics(y_stop, model.logits(data.X[stop_rows]))["pr_auc"]
        net.train()
        history.append({"epoch": epoch, "train_loss": round(total / len(Z), 5), "early_stop_pr_auc": stop_pr})
        if best is None or stop_pr > best[0]:
            best = (stop_pr, copy.deepcopy(net.state_dict()))
    assert best is not None
    net.load_state_dict(best[1])
    net.eval().requires_grad_(False)
    model.a, model.b = _platt(model.logits(validation.X), y_val)
    probabilities = model.probabilities(validation.X)
    review = budget_threshold(probabilities[y_val == 0], config.alert_budget)
    thresholds = Thresholds(review, max(review, budget_threshold(probabilities[y_val == 0], config.block_budget)))
    model.thresholds = thresholds
    baseline_fit = LogisticRegression(C=1.0, max_iter=2000).fit(model.standardize(X_fit), y_fit)
    baseline = LogisticBaseline(baseline_fit.coef_[0].astype(np.float64), float(baseline_fit.intercept_[0]))
    holdout = {
        "model": metrics(y_val, probabilities),
        "logistic_regression": metrics(y_val, baseline.scores(model, validation.X)),
        "amount_rule": metrics(y_val, amount_rule_scores(validation.X)),
    }
    rows = {
        "train": len(fit_rows), "early_stop": len(stop_rows), "validation": len(y_val),
        "fraud_rate": round(data.fraud_rate, 5), "fraud_rows": int(data.y.sum()),
        "best_epoch": int(np.argmax([h["early_stop_pr_auc"] for h in history]) + 1),
    }
    return TrainReport(model, baseline, thresholds, history, holdout, time.monotonic() - started, rows)


def save_artifact(report: TrainReport, data: LabelledData, config: TrainConfig, folder: Path) -> dict[str, Any]:
    """Write model, calibration, scaler, baseline and meta.json (version, seed, features, metrics)."""
    created = datetime.now(UTC)
    meta: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "created": created.isoformat(timespec="seconds"),
        "features": FEATURE_NAMES,
        "inputs": [f"{name}:{kind}" for name, kind in COLUMNS],
        "hidden": config.hidden,
        "training": {
            "source": data.source,
            "seed": config.seed,
            "epochs": config.epochs,
            "rows": report.rows,
            "skipped_lines": data.counts.skipped,
            "unlabelled": data.unlabelled,
            "seconds": round(report.seconds, 1),
        },
        "calibration": "platt on the validation rows (apart from the training and early-stopping rows)",
        "thresholds": {"review": report.thresholds.review, "block": report.thresholds.block,
                       "alert_budget": config.alert_budget, "block_budget": config.block_budget},
        "label_delay_days": config.delay_days,
        "reference_currency": config.reference_currency,
        "holdout_metrics": report.holdout,
        "history": report.history,
    }
    report.model.save(folder, meta)
    digest = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()[:8]
    meta = report.model.save(folder, {"version": f"{created:%Y.%m.%d}-{digest}"})
    report.model.version = meta["version"]
    report.baseline.save(folder)
    return meta
