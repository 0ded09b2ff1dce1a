"""Offline scoring of a .csv/.jsonl file through the same dynamic batcher the pipeline uses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.batcher import DynamicBatcher
from models.sentiment import SentimentModel, SentimentResult
from models.sentiment_data import iter_records

CHUNK = 64  # texts per submission, like an agent's micro-batch
IN_FLIGHT = 8  # submissions awaiting results at once: enough to keep device batches full


def output_record(index: int, record: dict[str, Any], text: str, result: SentimentResult) -> dict[str, Any]:
    """One output line: the input's position and id (when it has one), the text, and the result."""
    line: dict[str, Any] = {"index": index}
    if "id" in record:
        line["id"] = record["id"]
    return {**line, "text": text, **result.to_dict()}


async def score_file(
    model: SentimentModel,
    source: Path,
    target: Path,
    max_batch_size: int,
    max_wait_ms: float,
    advance: Callable[[int], None] | None = None,
) -> int:
    """Score every record of `source` into `target` (JSONL, input order); returns how many were scored."""
    batcher: DynamicBatcher[str, SentimentResult] = DynamicBatcher(
        model.predict, name="sentiment", max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
    )
    await batcher.start()
    pending: list[tuple[list[tuple[dict[str, Any], str]], asyncio.Task[list[SentimentResult]]]] = []
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("w", encoding="utf-8") as out:

            async def drain(keep: int) -> None:
                nonlocal written
                while len(pending) > keep:
                    chunk, task = pending.pop(0)
                    for (record, text), result in zip(chunk, await task, strict=True):
                        out.write(json.dumps(output_record(written, record, text, result)) + "\n")
                        written += 1
                    if advance:
                        advance(len(chunk))

            chunk: list[tuple[dict[str, Any], str]] = []
            for pair in iter_records(source):
                chunk.append(pair)
                if len(chunk) == CHUNK:
                    pending.append((chunk, asyncio.create_task(batcher.submit([t for _, t in chunk]))))
                    chunk = []
                    await drain(IN_FLIGHT)
            if chunk:
                pending.append((chunk, asyncio.create_task(batcher.submit([t for _, t in chunk]))))
            await drain(0)
    finally:
        for _, task in pending:
            task.cancel()
        await batcher.stop()
    return written
