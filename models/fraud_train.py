"""Train the fraud MLP, its Platt calibration and the logistic-regression baseline on the same labelled rows.

Rows are split in time within every segment: the earlier 80% train the MLP (and the baseline), the later
20% are held out to fit the calibration and to report honest metrics. CPU-friendly: a few torch threads,
minutes at most for the default sizes.
"""

from __future__ import annotations

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

from models.fraud import COLUMNS, MODEL_NAME, WEIGHTS_FILE, FraudModel, FraudNet, transform
from models.fraud_data import LabelledData
from models.fraud_eval import LogisticBaseline, amount_rule_scores, metrics
from models.fraud_features import FEATURE_NAMES
from streams.core.errors import LeptonError

Progress = Callable[[str, int | None], Callable[[int], None]]


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training run (defaults give the committed artifact)."""

    seed: int = 7
    epochs: int = 10
    hidden: int = 64
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_pos_weight: float = 10.0
    calibration_share: float = 0.2
    threads: int = 1


@dataclass
class TrainReport:
    """What training produced: the calibrated model, the baseline, per-epoch history and held-out metrics."""

    model: FraudModel
    baseline: LogisticBaseline
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


def train(data: LabelledData, config: TrainConfig, progress: Progress | None = None) -> TrainReport:
    """Fit scaler, MLP, calibration and baseline; the held-out split scores all three methods."""
    started = time.monotonic()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    fit_rows, cal_rows = data.split(1 - config.calibration_share)
    y_fit, y_cal = data.y[fit_rows], data.y[cal_rows]
    if len(set(y_fit.tolist())) < 2 or len(set(y_cal.tolist())) < 2:
        raise LeptonError("both splits need fraudulent and legitimate rows: give more data")
    T = transform(data.X[fit_rows])
    mean, std = T.mean(0), T.std(0)
    legit = data.X[fit_rows][y_fit == 0]
    reference = np.median(legit, axis=0)
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
        cal_pr = metrics(y_cal, model.logits(data.X[cal_rows]))["pr_auc"]
        net.train()
        history.append({"epoch": epoch, "train_loss": round(total / len(Z), 5), "holdout_pr_auc": cal_pr})
    net.eval().requires_grad_(False)
    model.a, model.b = _platt(model.logits(data.X[cal_rows]), y_cal)
    baseline_fit = LogisticRegression(C=1.0, max_iter=2000).fit(model.standardize(data.X[fit_rows]), y_fit)
    baseline = LogisticBaseline(baseline_fit.coef_[0].astype(np.float64), float(baseline_fit.intercept_[0]))
    X_cal = data.X[cal_rows]
    holdout = {
        "model": metrics(y_cal, model.probabilities(X_cal)),
        "logistic_regression": metrics(y_cal, baseline.scores(model, X_cal)),
        "amount_rule": metrics(y_cal, amount_rule_scores(X_cal)),
    }
    rows = {
        "train": len(fit_rows),
        "calibration": len(cal_rows),
        "fraud_rate": round(data.fraud_rate, 5),
        "fraud_rows": int(data.y.sum()),
    }
    return TrainReport(model, baseline, history, holdout, time.monotonic() - started, rows)


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
            "skipped_lines": data.skipped,
            "unlabelled": data.unlabelled,
            "seconds": round(report.seconds, 1),
        },
        "calibration": "platt on the held-out (later) 20% of each segment",
        "holdout_metrics": report.holdout,
        "history": report.history,
    }
    report.model.save(folder, meta)
    digest = hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest()[:8]
    meta = report.model.save(folder, {"version": f"{created:%Y.%m.%d}-{digest}"})
    report.model.version = meta["version"]
    report.baseline.save(folder)
    return meta
