"""The distillation teacher: an ensemble of fully fine-tuned MiniLM encoders, averaged in probability.

Several fully fine-tuned encoders, averaged, read the headlines better than one; they hand the student their
probabilities (soft labels) on the training headlines and on unlabelled ones (the shipped student, six layers
distilled from two members, ends up ahead of them: docs/models.md).

Members differ in seed (head initialisation, dropout, data order) and in layer-wise learning-rate decay: the top
layer learns at `lr`, each lower layer `decay` times slower, the embeddings slowest. All six transformer layers,
the position and type embeddings, the LayerNorms and a mean-pooled linear head train; the word-embedding table (half
of the 22.7M parameters) stays frozen: under the decay it would learn at a fraction of a percent of `lr` anyway,
and skipping its Adam updates makes a CPU step about 40% faster. Every member trains on the training part of the
student's stratified split and keeps its best epoch by dev macro-F1, so the dev fold stays unseen.

The members (their trained tensors only, fp32, about 45 MB each) and `teacher.json` go to an ignored folder; they are
reproduced by `lepton train sentiment-teacher`, not committed.

Cross-fitting (`folds` >= 2): the training part is cut into stratified folds and member k trains without fold
k % folds, so every training headline is labelled by members that never saw it (a member's probabilities on its own
training headlines are close to their labels and teach the student little beyond them). `Teacher.probabilities`
averages, for each text, the members that held it out, and every member for texts no member held out (the dev fold,
unlabelled headlines, or all texts without cross-fitting).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.encoder import ENCODER_NAME, MAX_LENGTH, Encoder, get_encoder, mean_pool
from models.sentiment import LABELS
from models.sentiment_data import LabelledTexts, sha256_of
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
    stratified_folds,
    stratified_split,
)
from models.sentiment_metrics import classification_metrics
from streams.core.errors import ModelArtifactError

TEACHER_FILE = "teacher.json"
FROZEN = ("embeddings.word_embeddings.weight",)
EVAL_BATCH = 128


@dataclass(frozen=True)
class TeacherConfig:
    """Everything that determines the ensemble (recorded in teacher.json); member k uses seed + k, decays[k % len]
    and, with `folds` >= 2, trains without fold k % folds of the training part (0: every member on all of it)."""

    members: int = 3
    split_seed: int = 13
    dev_fraction: float = 0.1
    seed: int = 101
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-4
    head_lr: float = 1e-3
    decays: tuple[float, ...] = (0.9, 0.8, 0.95)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    dropout: float = 0.1
    class_weighted: bool = True
    threads: int = 2
    folds: int = 0


class Member(nn.Module):
    """A whole BERT encoder, mean pooling, dropout and a linear layer to 3 logits."""

    def __init__(self, bert: nn.Module, dropout: float) -> None:
        super().__init__()
        self.bert = bert
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(bert.config.hidden_size, len(LABELS))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits [batch, 3]."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))


def new_member(pretrained: nn.Module, dropout: float) -> Member:
    """A member starting from a pre-trained BertModel (an fp32 CPU copy), everything but FROZEN trainable."""
    bert = copy.deepcopy(pretrained).to(device="cpu", dtype=torch.float32)
    member = Member(bert, dropout)
    for name, parameter in member.named_parameters():
        parameter.requires_grad_(not name.removeprefix("bert.").startswith(FROZEN))
    return member


def token_ids(encoder: Encoder, texts: list[str]) -> list[list[int]]:
    """Each text's token ids, truncated to MAX_LENGTH (unpadded)."""
    return encoder.tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]


def pad(ids: list[list[int]], indices: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, attention mask) of the given texts, padded to the longest."""
    width = max(len(ids[i]) for i in indices)
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, index in enumerate(indices):
        input_ids[row, : len(ids[index])] = torch.tensor(ids[index])
        mask[row, : len(ids[index])] = 1
    return input_ids, mask


@torch.inference_mode()
def member_probabilities(
    member: Member, ids: list[list[int]], indices: list[int], pad_id: int, advance: Callable[[int], None] | None = None
) -> torch.Tensor:
    """[len(indices), 3] probabilities, in the order of `indices` (batched by length)."""
    member.eval()
    ordered = sorted(range(len(indices)), key=lambda r: len(ids[indices[r]]))
    out = torch.empty(len(indices), len(LABELS))
    for start in range(0, len(ordered), EVAL_BATCH):
        rows = ordered[start : start + EVAL_BATCH]
        out[rows] = torch.softmax(member(*pad(ids, [indices[r] for r in rows], pad_id)), dim=-1)
        if advance:
            advance(len(rows))
    return out


def _optimizer(member: Member, config: TeacherConfig, decay: float) -> torch.optim.Optimizer:
    """AdamW with layer-wise decay: the top layer at lr, layer i at lr * decay**(top - i), the embeddings below."""
    layers = member.bert.encoder.layer
    top = len(layers) - 1
    groups = param_groups(member.classifier, config.head_lr, config.weight_decay)
    for i, layer in enumerate(layers):
        groups += param_groups(layer, config.lr * decay ** (top - i), config.weight_decay)
    groups += param_groups(member.bert.embeddings, config.lr * decay ** (top + 1), config.weight_decay)
    return torch.optim.AdamW([g for g in groups if g["params"]])


def train_member(
    encoder: Encoder,
    ids: list[list[int]],
    labels: list[int],
    split: tuple[list[int], list[int]],
    config: TeacherConfig,
    index: int,
    progress: ProgressFactory = no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Member, dict[str, Any]]:
    """Fine-tune member `index` on the split's training part; returns it (best dev epoch) and its record."""
    seed, decay = config.seed + index, config.decays[index % len(config.decays)]
    seed_everything(seed)
    train_idx, dev_idx = split
    member = new_member(encoder.model, config.dropout)
    pad_id = encoder.tokenizer.pad_token_id
    targets = one_hot(labels)
    weights = class_weights(targets[train_idx]) if config.class_weighted else None
    lengths = [len(x) for x in ids]
    rng = random.Random(seed)
    started = time.monotonic()

    def loss_of(batch: list[int]) -> torch.Tensor:
        return soft_cross_entropy(member(*pad(ids, batch, pad_id)), targets[batch], weights)

    def evaluate() -> dict[str, Any]:
        predicted = member_probabilities(member, ids, dev_idx, pad_id).argmax(dim=-1).tolist()
        return classification_metrics([labels[i] for i in dev_idx], predicted)

    result = fit(
        member,
        _optimizer(member, config, decay),
        lambda: length_batches(lengths, train_idx, config.batch_size, rng),
        loss_of,
        evaluate,
        config.epochs,
        config.warmup_fraction,
        progress,
        on_epoch,
        label=f"member {index + 1}/{config.members} epoch",
    )
    record = {
        "index": index,
        "seed": seed,
        "decay": decay,
        "best_epoch": result.best_epoch,
        "dev_metrics": result.dev_metrics,
        "history": result.history,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    return member, record


def _trained_state(member: Member) -> dict[str, torch.Tensor]:
    frozen = {f"bert.{name}" for name in FROZEN}
    return {k: v.detach().contiguous() for k, v in member.state_dict().items() if k not in frozen}


def train_teacher(
    data: Path,
    rows: LabelledTexts,
    config: TeacherConfig,
    out: Path,
    progress: ProgressFactory = no_progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train every member (each saved as soon as it is done), then score the ensemble on the dev fold.

    With `resume`, a member whose file is already in `out` (an interrupted run with the same config) is loaded and
    scored on the dev fold instead of trained again; its record says so and has no history or training time.
    Returns what it writes to teacher.json: the config, the split, each member's record and the ensemble's dev metrics.
    """
    from safetensors.torch import save_file

    torch.set_num_threads(config.threads)
    out.mkdir(parents=True, exist_ok=True)
    encoder = get_encoder("cpu")
    ids = token_ids(encoder, rows.texts)
    split = stratified_split(rows.labels, config.dev_fraction, config.split_seed)
    train_idx, dev_idx = split
    folds = stratified_folds(rows.labels, train_idx, config.folds, config.seed) if config.folds >= 2 else []
    records, dev_probabilities = [], []
    for index in range(config.members):
        held_out = folds[index % len(folds)] if folds else []
        member_split = (sorted(set(train_idx) - set(held_out)), dev_idx)
        file = out / f"member-{index}.safetensors"
        if resume and file.is_file():
            member = load_member(encoder, file, config.dropout)
            predicted = member_probabilities(member, ids, dev_idx, encoder.tokenizer.pad_token_id).argmax(dim=-1)
            record = {"index": index, "seed": config.seed + index, "decay": config.decays[index % len(config.decays)],
                      "best_epoch": None, "history": [], "train_seconds": None, "resumed_from": file.name,
                      "dev_metrics": classification_metrics([rows.labels[i] for i in dev_idx], predicted.tolist())}
        else:
            member, record = train_member(encoder, ids, rows.labels, member_split, config, index, progress, on_epoch)
            save_file(_trained_state(member), str(file))
        seen = {text_key(rows.texts[i]) for i in member_split[0]} if held_out else set()  # a repeated headline
        record["held_out_texts"] = sorted({text_key(rows.texts[i]) for i in held_out} - seen)  # may sit in both
        dev_probabilities.append(member_probabilities(member, ids, dev_idx, encoder.tokenizer.pad_token_id))
        records.append(record)
    ensemble = torch.stack(dev_probabilities).mean(dim=0).argmax(dim=-1).tolist()
    meta = {
        "encoder": ENCODER_NAME,
        "config": asdict(config),
        "data_file": data.name,
        "data_sha256": sha256_of(data),
        "dev_indices_sha256": indices_digest(dev_idx),
        "members": records,
        "dev_metrics": classification_metrics([rows.labels[i] for i in dev_idx], ensemble),
    }
    (out / TEACHER_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_member(encoder: Encoder, file: Path, dropout: float) -> Member:
    """A member from its file of trained tensors, on top of the pre-trained encoder (the frozen word embeddings)."""
    from safetensors.torch import load_file

    member = new_member(encoder.model, dropout)
    missing, unexpected = member.load_state_dict(load_file(str(file)), strict=False)
    if unexpected or set(missing) - {f"bert.{name}" for name in FROZEN}:
        raise ModelArtifactError(f"{file} does not match a member: missing {missing}, extra {unexpected}")
    return member


def text_key(text: str) -> str:
    """A short digest of a text: how teacher.json names the headlines a member held out."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def indices_digest(indices: list[int]) -> str:
    """A short digest of a fold's row indices: the student checks the teacher never saw its dev fold."""
    return hashlib.sha256(",".join(map(str, sorted(indices))).encode()).hexdigest()[:16]


class Teacher:
    """A trained ensemble on disk: `probabilities(texts)` averages its members' (one member in memory at a time)."""

    def __init__(self, path: Path) -> None:
        meta_path = path / TEACHER_FILE
        if not meta_path.is_file():
            raise ModelArtifactError(f"No teacher in {path}; run `lepton train sentiment-teacher --out {path}`.")
        self.path = path
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.files = [path / f"member-{m['index']}.safetensors" for m in self.meta["members"]]
        missing = [f.name for f in self.files if not f.is_file()]
        if missing:
            raise ModelArtifactError(f"The teacher in {path} lacks {missing}")

    def fingerprint(self) -> str:
        """sha256 of teacher.json and the member files: the key of cached soft labels."""
        digest = hashlib.sha256((self.path / TEACHER_FILE).read_bytes())
        for file in self.files:
            digest.update(sha256_of(file).encode())
        return digest.hexdigest()

    def cached_probabilities(self, texts: list[str], progress: ProgressFactory = no_progress) -> torch.Tensor:
        """`probabilities`, kept in the teacher's folder under a key of the teacher and the texts."""
        digest = hashlib.sha256(self.fingerprint().encode())
        for text in texts:
            digest.update(text.encode() + b"\0")
        file = self.path / f"soft-labels-{digest.hexdigest()[:16]}.pt"
        if file.is_file():
            return torch.load(file)
        probabilities = self.probabilities(texts, progress)
        torch.save(probabilities, file)
        return probabilities

    def probabilities(self, texts: list[str], progress: ProgressFactory = no_progress) -> torch.Tensor:
        """[n, 3] mean of the members' probabilities (dataset label order), on the CPU in fp32: for each text, of
        the members that held it out where any did (cross-fitting), else of all members."""
        stacked = torch.stack(self.member_probabilities(texts, progress))
        keys = [text_key(text) for text in texts]
        held_out = torch.tensor([[key in held for key in keys] for held in self.held_out()], dtype=stacked.dtype)
        weights = torch.where(held_out.sum(dim=0, keepdim=True) > 0, held_out, torch.ones_like(held_out))
        return (stacked * weights[..., None]).sum(dim=0) / weights.sum(dim=0)[:, None]

    def held_out(self) -> list[set[str]]:
        """Each member's held-out headlines (text keys); empty sets without cross-fitting."""
        return [set(m.get("held_out_texts", ())) for m in self.meta["members"]]

    def member_probabilities(self, texts: list[str], progress: ProgressFactory = no_progress) -> list[torch.Tensor]:
        """Each member's [n, 3] probabilities."""
        torch.set_num_threads(int(self.meta["config"]["threads"]))
        encoder = get_encoder("cpu")
        ids = token_ids(encoder, texts)
        dropout = float(self.meta["config"]["dropout"])
        results = []
        for number, file in enumerate(self.files, start=1):
            member = load_member(encoder, file, dropout)
            advance = progress(f"teacher member {number}/{len(self.files)}", len(texts))
            pad_id = encoder.tokenizer.pad_token_id
            results.append(member_probabilities(member, ids, list(range(len(texts))), pad_id, advance))
        return results
