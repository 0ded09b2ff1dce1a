"""Train the shipped sentiment student: the frozen bottom is run once and cached, then the layers above it train.

Method ("cached frozen bottom"): the shared MiniLM's embeddings and layers [0, frozen_layers) never change, so their
token vectors for every training text are computed once (fp16, trimmed to each text's length). Only the layers above
(copies of the encoder's) and a linear head train, for several epochs, from that cache, and the artifact holds only
those layers (fp16) and the head. With four frozen layers an epoch costs about a third of a full fine-tuning epoch;
the shipped v2 student freezes none (`--frozen-layers 0`: the embeddings only).

Distillation (with a teacher): each labelled headline's target is `hard_weight` x its label + the rest x the
teacher's probabilities (softened by `soft_temperature`), and unlabelled headlines (generated ones, passed in by
the caller) are trained on the teacher's probabilities alone. The best epoch is chosen by macro-F1 on the
stratified dev fold of the training file, which also fits the temperature and the "negative" threshold
(`models/sentiment_calibration.py`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.encoder import ENCODER_NAME, MAX_LENGTH, Encoder, get_encoder
from models.sentiment import LABELS, META_FILE, WEIGHTS_FILE, SentimentHead, new_head
from models.sentiment_calibration import calibrate
from models.sentiment_data import read_labelled_csv, sha256_of
from models.sentiment_fit import (
    ProgressFactory,
    class_weights,
    fit,
    length_batches,
    no_progress,
    one_hot,
    param_groups,
    seed_everything,
    soft_cross_entropy,
    stratified_split,
)
from models.sentiment_metrics import classification_metrics
from models.sentiment_teacher import indices_digest
from streams.core.errors import ConfigurationError

MODEL_NAME = "lepton-sentiment-minilm"
MODEL_VERSION = "2.0.0"
EVAL_BATCH = 128

# Texts -> [n, 3] teacher probabilities; None trains on the labels alone.
SoftLabels = Callable[[list[str]], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in meta.json)."""

    seed: int = 13
    split_seed: int = 13
    epochs: int = 5
    frozen_layers: int = 4
    batch_size: int = 32
    layer_lr: float = 2e-4
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    dev_fraction: float = 0.1
    class_weighted: bool = True
    hard_weight: float = 0.5
    soft_temperature: float = 1.0
    threads: int = 2


@dataclass
class TrainReport:
    """The trained head and how it got there."""

    head: SentimentHead
    config: TrainConfig
    best_epoch: int
    dev_metrics: dict[str, Any]
    calibration: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    labelled: int = 0
    unlabelled: int = 0
    cache_seconds: float = 0.0
    train_seconds: float = 0.0


@torch.inference_mode()
def build_cache(
    encoder: Encoder, texts: list[str], frozen_layers: int, progress: ProgressFactory, batch_size: int = 64
) -> list[torch.Tensor]:
    """Per text, the fp16 token vectors [tokens, hidden] after the frozen layers (padding trimmed)."""
    lengths = [len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    cache: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    advance = progress("cache frozen layers", len(texts))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = encoder.tokenize([texts[i] for i in chunk])
        hidden = encoder.hidden_states(batch, stop=frozen_layers).to(torch.float16).cpu()
        for row, index in enumerate(chunk):
            cache[index] = hidden[row, : lengths[index]].clone()
        advance(len(chunk))
    return cache


def collate(cache: list[torch.Tensor], indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad cached token vectors into (hidden [b, t, h] float32, attention mask [b, t])."""
    width = max(cache[i].shape[0] for i in indices)
    hidden = torch.zeros(len(indices), width, cache[indices[0]].shape[1])
    mask = torch.zeros(len(indices), width, dtype=torch.long)
    for row, index in enumerate(indices):
        n = cache[index].shape[0]
        hidden[row, :n] = cache[index].float()
        mask[row, :n] = 1
    return hidden, mask


@torch.inference_mode()
def logits_cached(head: SentimentHead, cache: list[torch.Tensor], indices: list[int]) -> torch.Tensor:
    """[len(indices), 3] logits for cached texts, in the order of `indices`."""
    head.eval()
    ordered = sorted(range(len(indices)), key=lambda r: cache[indices[r]].shape[0])
    out = torch.empty(len(indices), len(LABELS))
    for start in range(0, len(ordered), EVAL_BATCH):
        rows = ordered[start : start + EVAL_BATCH]
        out[rows] = head(*collate(cache, [indices[r] for r in rows])).float()
    return out


def _optimizer(head: SentimentHead, config: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(head.layers, config.layer_lr, config.weight_decay)
    groups += param_groups(head.classifier, config.head_lr, config.weight_decay)
    return torch.optim.AdamW(groups)


def soften(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's probabilities with their logits divided by `temperature` (> 1: flatter, so the student also
    learns how the teacher ranks the classes it did not pick; 1: unchanged)."""
    if temperature == 1.0:
        return probabilities
    return torch.softmax(torch.log(probabilities.clamp_min(1e-12)) / temperature, dim=-1)


def targets_for(
    labels: list[int], train_idx: list[int], unlabelled: list[str], texts: list[str], config: TrainConfig,
    soft_labels: SoftLabels | None,
) -> torch.Tensor:
    """[len(texts), 3] targets: one-hot labels, mixed with the teacher's probabilities where there is a teacher.

    `texts` is the labelled file's texts followed by `unlabelled`; rows outside `train_idx` (the dev fold) keep
    their one-hot label and are never trained on.
    """
    hard = one_hot(labels)
    if soft_labels is None:
        return hard
    taught = [texts[i] for i in train_idx] + unlabelled
    soft = soften(soft_labels(taught), config.soft_temperature)
    targets = torch.cat([hard, torch.zeros(len(unlabelled), len(LABELS))])
    targets[train_idx] = config.hard_weight * hard[train_idx] + (1 - config.hard_weight) * soft[: len(train_idx)]
    targets[len(labels) :] = soft[len(train_idx) :]
    return targets


def train(
    data: Path,
    config: TrainConfig,
    progress: ProgressFactory = no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    soft_labels: SoftLabels | None = None,
    unlabelled: list[str] | None = None,
) -> TrainReport:
    """Read the CSV, split the dev fold, cache the frozen layers, train the top, calibrate; CPU, `config.threads`."""
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    rows = read_labelled_csv(data)
    train_idx, dev_idx = stratified_split(rows.labels, config.dev_fraction, config.split_seed)
    known = set(rows.texts)
    extra = list(dict.fromkeys(t for t in (unlabelled or []) if t not in known)) if soft_labels else []
    texts = rows.texts + extra
    targets = targets_for(rows.labels, train_idx, extra, texts, config, soft_labels)
    taught = train_idx + list(range(len(rows.texts), len(texts)))
    encoder = get_encoder("cpu")
    started = time.monotonic()
    cache = build_cache(encoder, texts, config.frozen_layers, progress)
    cached = time.monotonic()
    head = new_head(encoder, config.frozen_layers, config.dropout)
    weights = class_weights(targets[taught]) if config.class_weighted else None
    lengths = [c.shape[0] for c in cache]
    rng = random.Random(config.seed)
    dev_labels = [rows.labels[i] for i in dev_idx]

    def loss_of(batch: list[int]) -> torch.Tensor:
        return soft_cross_entropy(head(*collate(cache, batch)), targets[batch], weights)

    def evaluate() -> dict[str, Any]:
        return classification_metrics(dev_labels, logits_cached(head, cache, dev_idx).argmax(dim=-1).tolist())

    result = fit(
        head,
        _optimizer(head, config),
        lambda: length_batches(lengths, taught, config.batch_size, rng),
        loss_of,
        evaluate,
        config.epochs,
        config.warmup_fraction,
        progress,
        on_epoch,
    )
    trained = time.monotonic()
    calibration = calibrate(logits_cached(head, cache, dev_idx), dev_labels)
    return TrainReport(head, config, result.best_epoch, result.dev_metrics, calibration, result.history,
                       len(train_idx), len(extra), cached - started, trained - cached)


def check_teacher(teacher_meta: dict[str, Any], data: Path, config: TrainConfig) -> None:
    """Refuse a teacher trained on another file or another split: it would have seen the student's dev fold."""
    rows = read_labelled_csv(data)
    _, dev_idx = stratified_split(rows.labels, config.dev_fraction, config.split_seed)
    if teacher_meta["data_sha256"] != sha256_of(data) or teacher_meta["dev_indices_sha256"] != indices_digest(dev_idx):
        raise ConfigurationError(
            "The teacher was trained on another file or split; its dev fold must be the student's "
            "(same --data, --split-seed and --dev-fraction)."
        )


def save_artifact(
    report: TrainReport, data: Path, out: Path, recipe: list[str], teacher: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write weights.safetensors (top layers and head, fp16) and meta.json; returns the meta.

    `recipe` is the commands that reproduce the artifact; `teacher` the teacher's configuration and dev figures.
    """
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous() for key, value in report.head.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"model": MODEL_NAME, "version": MODEL_VERSION})
    meta = {
        "model_name": MODEL_NAME,
        "version": MODEL_VERSION,
        "encoder": ENCODER_NAME,
        "method": "cached frozen bottom: MiniLM layers [0, frozen_layers) frozen and shared with the encoder, "
        "top layers fine-tuned with a mean-pooled linear head"
        + (", distilled from an ensemble of fully fine-tuned MiniLM encoders" if teacher else "")
        + "; weights stored in fp16",
        "recipe": recipe,
        "frozen_layers": report.config.frozen_layers,
        "trained_layers": len(report.head.layers),
        "dropout": report.config.dropout,
        "max_length": MAX_LENGTH,
        "labels": {str(i): name for i, name in enumerate(LABELS)},
        "calibration": report.calibration,
        "training": {
            **asdict(report.config),
            "data_file": data.name,
            "data_sha256": sha256_of(data),
            "labelled_texts": report.labelled,
            "unlabelled_texts": report.unlabelled,
            "best_epoch": report.best_epoch,
            "cache_seconds": round(report.cache_seconds, 1),
            "train_seconds": round(report.train_seconds, 1),
            "history": report.history,
        },
        "dev_metrics": report.dev_metrics,
    }
    if teacher:
        meta["teacher"] = teacher
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta
