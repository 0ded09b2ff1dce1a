"""Fine-tune the sentiment head: frozen bottom layers are run once and cached, then the top layers train.

Method ("cached frozen bottom"): the shared MiniLM's layers [0, frozen_layers) never change, so their token
vectors for every training text are computed once (fp16, trimmed to each text's length). Only the top
layers (copies of the encoder's) and a linear head train, for several epochs, from that cache: each epoch
costs about a third of a full fine-tuning epoch, and the artifact holds only the top layers (fp16) and head.
The best epoch is chosen by macro-F1 on a stratified dev fold split off the training file.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.encoder import ENCODER_NAME, Encoder, get_encoder
from models.sentiment import LABELS, META_FILE, WEIGHTS_FILE, SentimentHead, new_head
from models.sentiment_data import read_labelled_csv, sha256_of
from models.sentiment_metrics import classification_metrics

MODEL_NAME = "lepton-sentiment-minilm"
MODEL_VERSION = "1.0.0"

# (description, total) -> advance(n): lets the CLI draw progress bars without this module knowing rich.
ProgressFactory = Callable[[str, int], Callable[[int], None]]


def _no_progress(description: str, total: int) -> Callable[[int], None]:
    return lambda n: None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (recorded in meta.json)."""

    seed: int = 13
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
    threads: int = 2


@dataclass
class TrainReport:
    """The trained head and how it got there."""

    head: SentimentHead
    config: TrainConfig
    best_epoch: int
    dev_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    cache_seconds: float = 0.0
    train_seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python and torch so a run can be repeated."""
    random.seed(seed)
    torch.manual_seed(seed)


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, dev indices), with each label's share kept in the dev fold."""
    rng = random.Random(seed)
    train, dev = [], []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        cut = round(len(members) * fraction)
        dev += members[:cut]
        train += members[cut:]
    return sorted(train), sorted(dev)


@torch.inference_mode()
def build_cache(
    encoder: Encoder, texts: list[str], frozen_layers: int, progress: ProgressFactory, batch_size: int = 64
) -> list[torch.Tensor]:
    """Per text, the fp16 token vectors [tokens, hidden] after the frozen layers (padding trimmed)."""
    lengths = [len(ids) for ids in encoder.tokenizer(texts, truncation=True, max_length=64)["input_ids"]]
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


def length_batches(cache: list[torch.Tensor], indices: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length texts (less padding), in shuffled order."""
    shuffled = indices[:]
    rng.shuffle(shuffled)
    batches = []
    pool = size * 50
    for start in range(0, len(shuffled), pool):
        group = sorted(shuffled[start : start + pool], key=lambda i: cache[i].shape[0])
        batches += [group[j : j + size] for j in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


@torch.inference_mode()
def predict_cached(head: SentimentHead, cache: list[torch.Tensor], indices: list[int]) -> list[int]:
    """Predicted label ids for cached texts."""
    head.eval()
    predicted: list[int] = []
    ordered = sorted(indices, key=lambda i: cache[i].shape[0])
    by_index: dict[int, int] = {}
    for start in range(0, len(ordered), 128):
        chunk = ordered[start : start + 128]
        logits = head(*collate(cache, chunk))
        by_index.update(zip(chunk, logits.argmax(dim=-1).tolist(), strict=True))
    predicted = [by_index[i] for i in indices]
    return predicted


def _optimizer(head: SentimentHead, config: TrainConfig) -> torch.optim.Optimizer:
    no_decay = ("bias", "LayerNorm.weight")
    groups: list[dict[str, Any]] = []
    for module, lr in ((head.layers, config.layer_lr), (head.classifier, config.head_lr)):
        named = list(module.named_parameters())
        groups.append(
            {"params": [p for n, p in named if not n.endswith(no_decay)], "lr": lr, "weight_decay": config.weight_decay}
        )
        groups.append({"params": [p for n, p in named if n.endswith(no_decay)], "lr": lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


def _class_weights(labels: list[int], indices: list[int]) -> torch.Tensor:
    counts = torch.bincount(torch.tensor([labels[i] for i in indices]), minlength=len(LABELS)).float()
    weights = (counts.sum() / counts).sqrt()
    return weights / weights.mean()


def train_head(
    cache: list[torch.Tensor],
    labels: list[int],
    train_idx: list[int],
    dev_idx: list[int],
    head: SentimentHead,
    config: TrainConfig,
    progress: ProgressFactory = _no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[SentimentHead, int, dict[str, Any], list[dict[str, Any]]]:
    """Train on the cache; returns (best head by dev macro-F1, best epoch, its dev metrics, per-epoch history)."""
    rng = random.Random(config.seed)
    optimizer = _optimizer(head, config)
    steps = config.epochs * -(-len(train_idx) // config.batch_size)
    warmup = max(1, int(steps * config.warmup_fraction))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    weights = _class_weights(labels, train_idx) if config.class_weighted else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    target = torch.tensor(labels)
    best: tuple[float, int, dict[str, Any], dict[str, torch.Tensor]] | None = None
    history = []
    for epoch in range(1, config.epochs + 1):
        head.train()
        advance = progress(f"epoch {epoch}/{config.epochs}", len(train_idx))
        total = 0.0
        for batch in length_batches(cache, train_idx, config.batch_size, rng):
            hidden, mask = collate(cache, batch)
            loss = loss_fn(head(hidden, mask), target[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            advance(len(batch))
        metrics = classification_metrics([labels[i] for i in dev_idx], predict_cached(head, cache, dev_idx))
        history.append({"epoch": epoch, "train_loss": round(total / len(train_idx), 4), **metrics})
        if on_epoch:
            on_epoch(history[-1])
        if best is None or metrics["macro_f1"] > best[0]:
            best = (metrics["macro_f1"], epoch, metrics, copy.deepcopy(head.state_dict()))
    assert best is not None
    head.load_state_dict(best[3])
    return head.eval(), best[1], best[2], history


def train(
    data: Path,
    config: TrainConfig,
    progress: ProgressFactory = _no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> TrainReport:
    """Read the CSV, split the dev fold, cache the frozen layers, train the top; CPU, `config.threads` threads."""
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    rows = read_labelled_csv(data)
    train_idx, dev_idx = stratified_split(rows.labels, config.dev_fraction, config.seed)
    encoder = get_encoder("cpu")
    started = time.monotonic()
    cache = build_cache(encoder, rows.texts, config.frozen_layers, progress)
    cached = time.monotonic()
    head = new_head(encoder, config.frozen_layers, config.dropout)
    head, best_epoch, dev_metrics, history = train_head(
        cache, rows.labels, train_idx, dev_idx, head, config, progress, on_epoch
    )
    return TrainReport(head, config, best_epoch, dev_metrics, history, cached - started, time.monotonic() - cached)


def save_artifact(report: TrainReport, data: Path, out: Path) -> dict[str, Any]:
    """Write weights.safetensors (top layers and head, fp16) and meta.json; returns the meta."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous() for key, value in report.head.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"model": MODEL_NAME, "version": MODEL_VERSION})
    meta = {
        "model_name": MODEL_NAME,
        "version": MODEL_VERSION,
        "encoder": ENCODER_NAME,
        "method": "cached frozen bottom: MiniLM layers [0, frozen_layers) frozen and shared with the encoder, "
        "top layers fine-tuned with a mean-pooled linear head; weights stored in fp16",
        "frozen_layers": report.config.frozen_layers,
        "trained_layers": len(report.head.layers),
        "dropout": report.config.dropout,
        "max_length": 64,
        "labels": {str(i): name for i, name in enumerate(LABELS)},
        "training": {
            **asdict(report.config),
            "data_file": data.name,
            "data_sha256": sha256_of(data),
            "best_epoch": report.best_epoch,
            "cache_seconds": round(report.cache_seconds, 1),
            "train_seconds": round(report.train_seconds, 1),
            "history": report.history,
        },
        "dev_metrics": report.dev_metrics,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta
