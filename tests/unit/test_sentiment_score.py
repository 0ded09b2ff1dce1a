"""Offline scoring through the real dynamic batcher, with a stub model: order, ids and counts survive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch

from models.sentiment import SentimentModel, SentimentResult, results_from_probabilities
from models.sentiment_score import score_file


class StubModel:
    """Bullish when the text says 'up', bearish otherwise; records batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, texts: list[str]) -> list[SentimentResult]:
        self.batches.append(len(texts))
        probs = torch.tensor([[0.0, 1.0, 0.0] if "up" in t else [1.0, 0.0, 0.0] for t in texts])
        return results_from_probabilities(probs, "stub", "0")


async def test_score_file_keeps_input_order(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [{"id": f"e{i}", "text": f"{'up' if i % 3 == 0 else 'down'} {i}"} for i in range(300)]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    target = tmp_path / "out" / "scores.jsonl"
    stub = StubModel()
    count = await score_file(cast(SentimentModel, stub), source, target, max_batch_size=32, max_wait_ms=5)
    out: list[dict[str, Any]] = [json.loads(line) for line in target.read_text().splitlines()]
    assert count == len(out) == 300
    assert [o["id"] for o in out] == [f"e{i}" for i in range(300)]
    assert [o["index"] for o in out] == list(range(300))
    assert all((o["label"] == "bullish") == (i % 3 == 0) for i, o in enumerate(out))
    assert max(stub.batches) <= 32 and sum(stub.batches) == 300
