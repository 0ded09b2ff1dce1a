"""Evaluate the sentiment model on a labelled CSV (the figures published comparisons use, and calibration), and time
its `predict`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from models.sentiment import META_FILE, SentimentModel
from models.sentiment_calibration import calibration_report, uncalibrated
from models.sentiment_data import LabelledTexts, sha256_of
from models.sentiment_metrics import classification_metrics


def evaluate(
    model: SentimentModel, rows: LabelledTexts, batch_size: int = 64, advance: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """accuracy, macro_f1, weighted_f1, per_class, confusion (rows true, columns predicted, order 0 bearish 1 bullish
    2 neutral), n, and calibration: the model's calibrated probabilities (ECE, NLL, Brier, reliability bins, the
    negative flag at its threshold) and the same figures before temperature scaling."""
    parts = []
    for start in range(0, len(rows.texts), batch_size):
        chunk = rows.texts[start : start + batch_size]
        parts.append(model.probabilities(chunk))
        if advance:
            advance(len(chunk))
    probs = torch.cat(parts)
    metrics = classification_metrics(rows.labels, probs.argmax(dim=-1).tolist())
    before = calibration_report(uncalibrated(probs, model.temperature), rows.labels, None)
    metrics["calibration"] = {
        "temperature": model.temperature,
        **calibration_report(probs, rows.labels, model.negative_threshold),
        "before": {key: before[key] for key in ("ece", "nll", "brier")},
    }
    return metrics


def record_eval(artifact: Path, data: Path, path: str, metrics: dict[str, Any]) -> None:
    """Keep `metrics` in the artifact's meta.json under eval[path] (fp32 or int8), with the file's name and sha256.

    The figures the docs report come from here; a test re-evaluates the artifact and compares.
    """
    meta_path = artifact / META_FILE
    meta = json.loads(meta_path.read_text())
    section = meta.setdefault("eval", {})
    if section.get("data_sha256") not in (None, sha256_of(data)):
        section.clear()  # figures on another file: start over
    section.update({
        "data_file": data.name,
        "data_sha256": sha256_of(data),
        "note": "held out: never used for training or selection; confusion rows true, columns predicted",
        path: metrics,
    })
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")


def throughput(model: SentimentModel, texts: list[str], batch_size: int = 32, repeats: int = 1) -> float:
    """Texts per second of `predict` at `batch_size`, after one warm-up batch."""
    model.predict(texts[:batch_size])
    started = time.perf_counter()
    done = 0
    for _ in range(repeats):
        for start in range(0, len(texts), batch_size):
            done += len(model.predict(texts[start : start + batch_size]))
    return done / (time.perf_counter() - started)


def interleaved_throughput(
    models: dict[str, SentimentModel], texts: list[str], batch_size: int = 32, rounds: int = 3
) -> dict[str, list[float]]:
    """Each model's `throughput` over `rounds` rounds, taking turns within every round, so that a shared, noisy CPU
    slows them alike: {name: [texts/s per round]}."""
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            rates[name].append(round(throughput(model, texts, batch_size), 1))
    return rates

