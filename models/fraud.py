"""Fraud model: a small MLP over the card and merchant features, Platt-calibrated, with reason codes per score and
the review and block thresholds that meet the alert budget on validation data.

Pipeline per batch (one call, on the configured device): raw features -> fixed transform (log1p of
heavy-tailed counts and amounts, clipped z-score, hour as sin/cos) -> standardisation -> MLP logit ->
calibrated probability sigmoid(a * logit + b). Explanations are integrated gradients of the logit along
the straight path from a reference "typical legitimate transaction" (the training medians) to the input,
computed for the whole batch in the same call, summed back onto the raw features and worded by
models/fraud_reasons.py. The model runs in float32 on every device: it is tiny, so half precision gains
nothing, and attributions and calibrated tails need the precision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from models.fraud_features import FEATURE_NAMES, INDEX
from models.fraud_reasons import Wording, group_attributions, reasons_for
from streams.core.errors import ModelArtifactError

MODEL_NAME = "fraud-mlp"
WEIGHTS_FILE = "weights.safetensors"
SCALER_FILE = "scaler.json"
CALIBRATION_FILE = "calibration.json"
META_FILE = "meta.json"
IG_STEPS = 8
LOG1P = {
    "amount", "history_count", "count_1h", "sum_1h", "count_24h", "sum_24h", "seconds_since_prev",
    "distance_km", "speed_kmh", "location_gap_min", "km_from_known_places", "device_uses",
    "count_7d", "mean_amount_7d", "count_30d", "mean_amount_30d",
    "merchant_count_1d", "merchant_count_7d", "merchant_count_30d", "merchant_frauds_30d",
}  # fmt: skip
Z_CLIP = 10.0
Decision = Literal["approve", "review", "block"]


def _columns() -> list[tuple[str, str]]:
    """(source feature, transform) for every model input column; local_hour becomes two columns."""
    columns: list[tuple[str, str]] = []
    for name in FEATURE_NAMES:
        if name == "local_hour":
            columns += [(name, "sin"), (name, "cos")]
        elif name == "amount_ratio":
            columns.append((name, "log"))
        elif name in ("amount_z", "amount_z_category"):
            columns.append((name, "clip"))
        else:
            columns.append((name, "log1p" if name in LOG1P else "identity"))
    return columns


COLUMNS = _columns()
# [model inputs, raw features]: 1 where an input column comes from a raw feature (attributions flow back)
SOURCE = np.zeros((len(COLUMNS), len(FEATURE_NAMES)), dtype=np.float32)
for _col, (_name, _) in enumerate(COLUMNS):
    SOURCE[_col, INDEX[_name]] = 1.0


def transform(X: np.ndarray) -> np.ndarray:
    """Raw features [n, len(FEATURE_NAMES)] -> model inputs [n, len(COLUMNS)] (before standardisation)."""
    X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
    out = np.empty((X.shape[0], len(COLUMNS)), dtype=np.float64)
    for col, (name, kind) in enumerate(COLUMNS):
        x = X[:, INDEX[name]]
        if kind == "log1p":
            out[:, col] = np.log1p(np.maximum(x, 0.0))
        elif kind == "log":
            out[:, col] = np.log(np.maximum(x, 1e-6))
        elif kind == "clip":
            out[:, col] = np.clip(x, -Z_CLIP, Z_CLIP)
        elif kind == "sin":
            out[:, col] = np.sin(2 * math.pi * x / 24.0)
        elif kind == "cos":
            out[:, col] = np.cos(2 * math.pi * x / 24.0)
        else:
            out[:, col] = x
    return out


class FraudNet(nn.Module):
    """Two hidden SiLU layers to one logit (smooth, so gradients make sensible attributions)."""

    def __init__(self, inputs: int = len(COLUMNS), hidden: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden // 2), nn.SiLU(), nn.Linear(hidden // 2, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n] for standardised inputs [n, inputs]."""
        return self.layers(x).squeeze(-1)


@dataclass(frozen=True)
class ScoreRequest:
    """One transaction to score: its features, and its amount as paid when that differs from the reference
    currency (shown in the reasons beside the converted amount, e.g. "795.29 KRW")."""

    features: np.ndarray
    paid: str | None = None


@dataclass(frozen=True)
class FraudScore:
    """One scored transaction: calibrated probability, up to three reasons (code and words), the model."""

    probability: float
    reasons: list[str]
    reason_codes: list[str]
    model: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Thresholds:
    """Where decisions change: review from `review`, block from `block` (calibrated probabilities)."""

    review: float = 0.5
    block: float = 0.9

    def decide(self, probability: float) -> Decision:
        """approve below review, block at or above block, review in between."""
        return decide(probability, self.review, self.block)


def decide(probability: float, review_threshold: float, block_threshold: float) -> Decision:
    """approve below review_threshold, block at or above block_threshold, review in between."""
    if probability >= block_threshold:
        return "block"
    return "review" if probability >= review_threshold else "approve"


def default_artifact_dir() -> Path:
    """models/artifacts/fraud under the configured models dir."""
    from streams.core.settings import get_settings

    return get_settings().models.dir / "fraud"


class FraudModel:
    """The calibrated MLP plus its scaler and reference; `score_batch` is the DynamicBatcher function."""

    def __init__(
        self,
        net: FraudNet,
        mean: np.ndarray,
        std: np.ndarray,
        reference: np.ndarray,
        calibration: tuple[float, float],
        meta: dict[str, Any] | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or torch.device("cpu")
        self.net = net.to(self.device, torch.float32).eval().requires_grad_(False)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.where(np.asarray(std, dtype=np.float64) > 1e-9, std, 1.0)
        self.reference = np.asarray(reference, dtype=np.float64)
        self.a, self.b = calibration
        self.meta = meta or {}
        self.name = str(self.meta.get("model_name", MODEL_NAME))
        self.version = str(self.meta.get("version", "untrained"))
        limits = self.meta.get("thresholds", {})
        self.thresholds = Thresholds(float(limits.get("review", 0.5)), float(limits.get("block", 0.9)))
        self.delay_days = int(self.meta.get("label_delay_days", 7))
        self.currency = str(self.meta.get("reference_currency", "EUR"))
        self._source = torch.from_numpy(SOURCE).to(self.device)
        self._reference = self._tensor(self.standardize(self.reference[None, :]))[0]

    @classmethod
    def load(cls, path: Path | None = None, device: str | None = None) -> FraudModel:
        """Load an artifact folder (weights.safetensors, scaler.json, calibration.json, meta.json)."""
        from safetensors.torch import load_file

        from models.batcher import resolve_device
        from streams.core.settings import get_settings

        folder = path or default_artifact_dir()
        try:
            meta = json.loads((folder / META_FILE).read_text())
            scaler = json.loads((folder / SCALER_FILE).read_text())
            calibration = json.loads((folder / CALIBRATION_FILE).read_text())
            state = load_file(str(folder / WEIGHTS_FILE))
        except (OSError, ValueError) as error:
            message = f"cannot read the fraud artifact in {folder}: {error}; run `lepton train fraud`"
            raise ModelArtifactError(message) from error
        if meta.get("features") != FEATURE_NAMES or len(scaler["mean"]) != len(COLUMNS):
            raise ModelArtifactError(f"{folder} was trained on other features than this code computes; retrain it")
        net = FraudNet(hidden=int(meta.get("hidden", 64)))
        net.load_state_dict({key: value.float() for key, value in state.items()})
        resolved = resolve_device(device or get_settings().models.device)
        reference = np.asarray(scaler["reference"], dtype=np.float64)
        ab = (float(calibration["a"]), float(calibration["b"]))
        return cls(net, np.asarray(scaler["mean"]), np.asarray(scaler["std"]), reference, ab, meta, resolved)

    def save(self, folder: Path, extra_meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the artifact files; returns meta."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().cpu().contiguous() for key, value in self.net.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        scaler = {"columns": [f"{n}:{k}" for n, k in COLUMNS], "mean": self.mean.tolist(), "std": self.std.tolist()}
        scaler["reference"] = self.reference.tolist()
        (folder / SCALER_FILE).write_text(json.dumps(scaler, indent=1) + "\n")
        calibration = {"method": "platt", "formula": "sigmoid(a * logit + b)", "a": self.a, "b": self.b}
        (folder / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=1) + "\n")
        self.meta = {**self.meta, **(extra_meta or {})}
        (folder / META_FILE).write_text(json.dumps(self.meta, indent=1) + "\n")
        return self.meta

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """Raw features -> standardised model inputs."""
        return (transform(X) - self.mean) / self.std

    def _tensor(self, Z: np.ndarray) -> torch.Tensor:
        from models.batcher import to_device

        return to_device(torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32)), self.device)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated logits for raw features (no attributions; for training and evaluation)."""
        with torch.inference_mode():
            return self.net(self._tensor(self.standardize(X))).double().cpu().numpy()

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Platt scaling: logits -> calibrated probabilities."""
        return 1.0 / (1.0 + np.exp(-(self.a * np.asarray(logits, dtype=np.float64) + self.b)))

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for raw features [n, features]."""
        return self.calibrate(self.logits(X))

    def attributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits [n] and integrated-gradient attributions [n, raw features] of the logit, in one device pass."""
        with torch.inference_mode(False), torch.enable_grad():
            z = self._tensor(self.standardize(X))
            ref = self._reference.clone()
            alphas = (torch.arange(IG_STEPS, device=self.device, dtype=torch.float32) + 0.5) / IG_STEPS
            path = (ref + alphas[:, None, None] * (z - ref)[None]).reshape(-1, z.shape[1]).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.net(path).sum(), path)
            ig = grad.reshape(IG_STEPS, *z.shape).mean(0) * (z - ref)
            with torch.no_grad():
                logits = self.net(z)
        return logits.double().cpu().numpy(), (ig @ self._source).double().cpu().numpy()

    def score(self, X: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """Calibrated probabilities [n] and up to three reasons (words) per row."""
        rows = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURE_NAMES))
        scores = self.score_batch([ScoreRequest(row) for row in rows])
        return np.asarray([s.probability for s in scores]), [s.reasons for s in scores]

    def score_batch(self, requests: Sequence[ScoreRequest], explain_from: float = 0.0) -> list[FraudScore]:
        """Score transactions in one batch (the DynamicBatcher function; the worker's batcher runs it in the event
        loop, see `fraud_model_threads`). Rows with a probability of at least `explain_from` get their reasons
        (integrated gradients, most of the model's cost); the worker passes its review threshold, so flagged payments
        are explained and approved ones are not."""
        if not requests:
            return []
        X = np.vstack([np.asarray(r.features, dtype=np.float64).reshape(1, -1) for r in requests])
        probabilities = self.calibrate(self.logits(X))
        explained = np.flatnonzero(probabilities >= explain_from)
        reasons: dict[int, list[tuple[str, str]]] = {}
        if explained.size:
            _, attributions = self.attributions(X[explained])
            grouped = group_attributions(attributions)[1]
            typical = float(self.reference[INDEX["amount"]])
            for j, i in enumerate(explained.tolist()):
                words = Wording(typical, self.currency, requests[i].paid, self.delay_days)
                reasons[i] = reasons_for(X[i], attributions[j], words, grouped=grouped[j])
        return [FraudScore(probability=float(p), reasons=[text for _, text in reasons.get(i, [])],
                           reason_codes=[code for code, _ in reasons.get(i, [])], model=self.name,
                           version=self.version)
                for i, p in enumerate(probabilities.tolist())]
