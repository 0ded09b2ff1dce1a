"""News sentiment: the shared MiniLM's embeddings and frozen bottom layers (none in the shipped v2 artifact), our
fine-tuned layers above them and a 3-way linear head.

Output per text: bearish / neutral / bullish, the three calibrated probabilities (the logits divided by the
artifact's temperature), score = P(bullish) - P(bearish), and `negative`: P(bearish) at or above the artifact's
calibrated threshold (what the surge detector counts).

Inference runs a TorchScript trace of the whole forward pass (`Scorer`), which executes without holding Python's
GIL: in the worker the model threads share the interpreter with the event loop, and eager PyTorch takes the GIL
back between operators. With a thread busy in pure Python 10% of the time beside two model threads, the eager
model scored 218-228 headlines/s and the traced one 257-268/s on 2 cores (249-254/s and 234-263/s with no such
thread). The trace takes any batch shape (it records sizes, not constants) and gives the eager results exactly.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.encoder import Batch, Encoder, additive_mask, get_encoder, mean_pool, run_layers
from streams.core.errors import ConfigurationError, ModelArtifactError

# Logit order is the dataset's label ids: 0 bearish, 1 bullish, 2 neutral.
LABELS: tuple[str, str, str] = ("bearish", "bullish", "neutral")
BEARISH, BULLISH, NEUTRAL = 0, 1, 2
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "meta.json"
PREDICT_CHUNK = 128
TRACE_TEXTS = ["Lender slides", "A longer headline, so that the traced batch has padding and a mask to apply"]
WARMUP_TEXT = "Shares of a mid-cap lender slide after it cuts its full-year outlook"  # headline-sized, for warm-ups


def default_artifact_dir() -> Path:
    """models/artifacts/sentiment under the configured models dir."""
    from streams.core.settings import get_settings

    return get_settings().models.dir / "sentiment"


@dataclass(frozen=True)
class SentimentResult:
    """One scored text: the label, its calibrated probabilities, a score in [-1, 1], whether it counts as negative
    (P(bearish) >= negative_threshold; the top label when the artifact has no calibration: threshold None), and the
    model that said so."""

    label: str
    probabilities: dict[str, float]
    score: float
    model: str
    version: str
    negative: bool
    negative_threshold: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


class SentimentHead(nn.Module):
    """Top transformer layers (trainable copies), mean pooling, dropout and a linear layer to 3 logits."""

    def __init__(self, top_layers: list[nn.Module], hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(top_layers)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, len(LABELS))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits [batch, 3] from the frozen layers' token vectors and the 0/1 attention mask."""
        hidden = run_layers(self.layers, hidden, additive_mask(attention_mask, hidden.dtype))
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))


def new_head(encoder: Encoder, frozen_layers: int, dropout: float = 0.1) -> SentimentHead:
    """A head whose top layers start as copies of the encoder's layers [frozen_layers, end)."""
    if not 0 <= frozen_layers < encoder.num_layers:
        raise ConfigurationError(f"frozen_layers must be in [0, {encoder.num_layers - 1}], got {frozen_layers}")
    top = [copy.deepcopy(layer) for layer in encoder.layers[frozen_layers:]]
    head = SentimentHead(top, encoder.model.config.hidden_size, dropout)
    head.requires_grad_(True)  # the copies inherit the frozen encoder's requires_grad=False
    return head.to(device=encoder.device, dtype=torch.float32)


class Scorer(nn.Module):
    """Token ids and attention mask to [n, 3] probabilities: the bottom layers, the head, softmax(logits / T)."""

    def __init__(self, bottom: nn.Module, head: SentimentHead, frozen_layers: int, temperature: float = 1.0) -> None:
        super().__init__()
        self.embeddings = bottom.embeddings
        self.layers = nn.ModuleList(list(bottom.encoder.layer)[:frozen_layers])
        self.head = head
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embeddings(input_ids=input_ids)
        hidden = run_layers(self.layers, hidden, additive_mask(attention_mask, hidden.dtype))
        return torch.softmax(self.head(hidden, attention_mask).float() / self.temperature, dim=-1)


def traced(scorer: Scorer, example: Batch) -> torch.jit.ScriptModule:
    """`scorer` as TorchScript, traced on `example` (a padded batch, so the mask path is recorded)."""
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer warns that SDPA's `is_causal` becomes a constant: it is False for every shape here (BERT is
        # bidirectional and always gets a mask). torch.jit is deprecated in favour of torch.compile, which on the
        # CPU compiles with a C++ toolchain for minutes and still runs Python guards under the GIL.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.trace(scorer, (example.input_ids, example.attention_mask), check_trace=False)


def results_from_probabilities(
    probs: torch.Tensor, model: str, version: str, negative_threshold: float | None = None
) -> list[SentimentResult]:
    """Turn [n, 3] probabilities (dataset label order) into results; the score is clipped to [-1, 1].

    `negative` is P(bearish) >= negative_threshold, or the top label being bearish when there is no threshold.
    """
    rows = probs.detach().float().cpu().tolist()
    results = []
    for row in rows:
        best = max(range(len(LABELS)), key=row.__getitem__)
        score = min(1.0, max(-1.0, row[BULLISH] - row[BEARISH]))
        probabilities = {name: row[i] for i, name in enumerate(LABELS)}
        negative = best == BEARISH if negative_threshold is None else row[BEARISH] >= negative_threshold
        results.append(SentimentResult(LABELS[best], probabilities, score, model, version, negative,
                                       negative_threshold))
    return results


class SentimentModel:
    """Synchronous, thread-safe scorer: `predict(texts)` is what the dynamic batcher calls from its thread."""

    def __init__(self, encoder: Encoder, head: SentimentHead, meta: dict[str, Any], quantize: bool = False) -> None:
        self.encoder = encoder
        self.meta = meta
        self.name: str = meta["model_name"]
        self.version: str = meta["version"]
        self.frozen_layers: int = int(meta["frozen_layers"])
        self.quantized = quantize
        calibration = meta.get("calibration") or {}
        self.temperature = float(calibration.get("temperature", 1.0))
        threshold = calibration.get("negative_threshold")
        self.negative_threshold: float | None = None if threshold is None else float(threshold)
        bottom: nn.Module = encoder.model
        head = head.to(device=encoder.device, dtype=encoder.dtype).eval().requires_grad_(False)  # inference only
        if quantize:
            if encoder.device.type != "cpu":
                raise ConfigurationError("The int8 path is CPU-only; set LEPTON_MODELS__DEVICE=cpu.")
            # quantize_dynamic copies: the shared encoder itself stays fp32 for its other users.
            with warnings.catch_warnings():  # torch marks its quantised tensors deprecated; the path still works
                warnings.simplefilter("ignore")
                bottom = torch.ao.quantization.quantize_dynamic(encoder.model, {nn.Linear}, dtype=torch.qint8)
                head = torch.ao.quantization.quantize_dynamic(head, {nn.Linear}, dtype=torch.qint8)
        self.head = head  # the eager module the trace was made from (tests compare the two)
        scorer = Scorer(bottom, head, self.frozen_layers, self.temperature)
        self.scorer = traced(scorer, encoder.tokenize(TRACE_TEXTS))

    @classmethod
    def load(cls, path: Path | None = None, device: str | None = None, quantize: bool = False) -> SentimentModel:
        """Load the artifact folder (weights.safetensors + meta.json) on top of the shared encoder."""
        from safetensors.torch import load_file

        path = path or default_artifact_dir()
        meta_path, weights_path = path / META_FILE, path / WEIGHTS_FILE
        if not meta_path.is_file() or not weights_path.is_file():
            raise ModelArtifactError(
                f"No sentiment artifact in {path}; run `lepton train sentiment --data tfns_train.csv`."
            )
        meta = json.loads(meta_path.read_text())
        encoder = get_encoder("cpu" if quantize and device in (None, "auto") else device)
        head = new_head(encoder, int(meta["frozen_layers"]), float(meta.get("dropout", 0.1)))
        state = {key: value.float() for key, value in load_file(str(weights_path)).items()}
        missing, unexpected = head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelArtifactError(f"{weights_path} does not match the model: missing {missing}, extra {unexpected}")
        return cls(encoder, head, meta, quantize=quantize)

    @property
    def version_tag(self) -> str:
        """The version, with `+int8` when the quantised path is active."""
        return f"{self.version}+int8" if self.quantized else self.version

    @torch.inference_mode()
    def _probabilities(self, batch: Batch) -> torch.Tensor:
        return self.scorer(batch.input_ids, batch.attention_mask)

    def probabilities(self, texts: list[str]) -> torch.Tensor:
        """[n, 3] calibrated float32 probabilities on the CPU, in dataset label order (bearish, bullish, neutral)."""
        if not texts:
            return torch.empty((0, len(LABELS)))
        parts = []
        for start in range(0, len(texts), PREDICT_CHUNK):
            batch = self.encoder.tokenize(texts[start : start + PREDICT_CHUNK])
            parts.append(self._probabilities(batch).cpu())
        return torch.cat(parts)

    def predict(self, texts: list[str]) -> list[SentimentResult]:
        """Score a list of texts, results in input order."""
        return results_from_probabilities(
            self.probabilities(list(texts)), self.name, self.version_tag, self.negative_threshold
        )
