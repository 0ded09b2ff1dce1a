"""The training loop the sentiment teacher and student share: dev split, length-bucketed batches, warm-up and linear
decay, a class-weighted soft cross-entropy, and keeping the epoch with the best dev macro-F1.

Both models train on the same stratified split of the training file (same seed, same fraction), so the dev fold
that picks epochs, hyper-parameters and the calibration is never seen by the teacher or the student.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from models.sentiment import LABELS

# (description, total) -> advance(n): lets the CLI draw progress bars without this module knowing rich.
ProgressFactory = Callable[[str, int], Callable[[int], None]]
NO_DECAY = ("bias", "LayerNorm.weight")


def no_progress(description: str, total: int) -> Callable[[int], None]:
    """A ProgressFactory that draws nothing."""
    return lambda n: None


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


def stratified_folds(labels: list[int], indices: list[int], folds: int, seed: int) -> list[list[int]]:
    """`indices` cut into `folds` disjoint parts, each label dealt out in turn after a seeded shuffle."""
    rng = random.Random(seed)
    parts: list[list[int]] = [[] for _ in range(folds)]
    for label in sorted({labels[i] for i in indices}):
        members = [i for i in indices if labels[i] == label]
        rng.shuffle(members)
        for position, index in enumerate(members):
            parts[position % folds].append(index)
    return [sorted(part) for part in parts]


def length_batches(lengths: list[int], indices: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length texts (less padding), in shuffled order."""
    shuffled = indices[:]
    rng.shuffle(shuffled)
    batches = []
    pool = size * 50
    for start in range(0, len(shuffled), pool):
        group = sorted(shuffled[start : start + pool], key=lengths.__getitem__)
        batches += [group[j : j + size] for j in range(0, len(group), size)]
    rng.shuffle(batches)
    return batches


def param_groups(module: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups for a module's trainable parameters: weight decay except on biases and LayerNorm weights."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if not n.endswith(NO_DECAY)], "lr": lr, "weight_decay": weight_decay},
        {"params": [p for n, p in named if n.endswith(NO_DECAY)], "lr": lr, "weight_decay": 0.0},
    ]


def class_weights(targets: torch.Tensor) -> torch.Tensor:
    """Per-class weights sqrt(total / class mass) normalised to mean 1, from [n, 3] (soft) targets."""
    mass = targets.sum(dim=0).clamp(min=1.0)
    weights = (mass.sum() / mass).sqrt()
    return weights / weights.mean()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy against probability targets; each row weighted by its target's class weight.

    With one-hot targets this is exactly `nn.CrossEntropyLoss(weight=weights)` (a weighted mean over the batch).
    """
    losses = -(targets * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1)
    if weights is None:
        return losses.mean()
    row_weights = targets @ weights
    return (losses * row_weights).sum() / row_weights.sum()


def one_hot(labels: Iterable[int]) -> torch.Tensor:
    """[n, 3] float one-hot targets from label ids."""
    return nn.functional.one_hot(torch.tensor(list(labels)), len(LABELS)).float()


@dataclass
class FitResult:
    """Best epoch by dev macro-F1, its dev metrics, and one row per epoch."""

    best_epoch: int
    dev_metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def fit(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[], list[list[int]]],
    loss_of: Callable[[list[int]], torch.Tensor],
    evaluate: Callable[[], dict[str, Any]],
    epochs: int,
    warmup_fraction: float,
    progress: ProgressFactory = no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    label: str = "epoch",
) -> FitResult:
    """Train `epochs` epochs (linear warm-up, then linear decay to 0); `module` ends with its best epoch's weights.

    `batches()` gives one epoch's batches of item indices, `loss_of(batch)` the loss of a batch, `evaluate()` the dev
    metrics (with `macro_f1`), which pick the epoch to keep.
    """
    first = batches()
    steps = epochs * len(first)
    warmup = max(1, int(steps * warmup_fraction))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    trainable = [p for p in module.parameters() if p.requires_grad]
    best: tuple[float, int, dict[str, Any], dict[str, torch.Tensor]] | None = None
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        epoch_batches = first if epoch == 1 else batches()
        items = sum(len(b) for b in epoch_batches)
        advance = progress(f"{label} {epoch}/{epochs}", items)
        module.train()
        total = 0.0
        for batch in epoch_batches:
            loss = loss_of(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
            advance(len(batch))
        module.eval()
        metrics = evaluate()
        history.append({"epoch": epoch, "train_loss": round(total / items, 4), **metrics})
        if on_epoch:
            on_epoch(history[-1])
        if best is None or metrics["macro_f1"] > best[0]:
            best = (metrics["macro_f1"], epoch, metrics, copy.deepcopy(module.state_dict()))
    assert best is not None
    module.load_state_dict(best[3])
    module.eval()
    return FitResult(best[1], best[2], history)
