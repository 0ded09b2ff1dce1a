"""The item index: catalog embeddings as one matrix on the device, with an id map, for batched top-K scoring.

Rows [0, len) are always the live items: a deletion moves the last row into the freed slot (swap-remove), so
scoring never sees holes and needs no mask. Capacity grows by doubling. Not thread-safe: one owner (the
catalog agent's event loop) changes it, and scoring reads it from the same loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import torch

from models.batcher import inference_dtype, to_device
from streams.core.events import CatalogItem

EMBEDDING_DIM = 384


class TextEncoder(Protocol):
    """What `embed_items` needs from the shared encoder (models/encoder.py); tests pass a small fake."""

    def encode(self, texts: list[str], normalize: bool = True) -> torch.Tensor: ...


def item_text(item: CatalogItem) -> str:
    """The text an item is embedded from: title, description and category."""
    parts = [item.title or "", item.description, f"Category: {item.category}." if item.category else ""]
    return " ".join(part.strip() for part in parts if part and part.strip())


def embed_items(items: Sequence[CatalogItem], encoder: TextEncoder) -> torch.Tensor:
    """L2-normalised embeddings [n, dim] (float32, CPU) of live items; the batcher calls this per device batch."""
    if not items:
        return torch.empty(0, EMBEDDING_DIM)
    return encoder.encode([item_text(item) for item in items], normalize=True)


class ItemIndex:
    """Item embeddings [n, dim] on the device (fp16 on CUDA) and the id <-> row maps."""

    def __init__(self, device: torch.device | str = "cpu", dim: int = EMBEDDING_DIM, capacity: int = 1024) -> None:
        self.device = torch.device(device)
        self.dtype = inference_dtype(self.device)
        self.dim = dim
        self._matrix = torch.zeros(max(capacity, 1), dim, dtype=self.dtype, device=self.device)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self.version = 0  # bumped on every change, so callers can cache anything aligned to the rows

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def ids(self) -> list[str]:
        """Item id of each live row, in row order (a copy)."""
        return list(self._ids)

    @property
    def matrix(self) -> torch.Tensor:
        """The live rows [len, dim] on the device (a view: do not keep it across changes)."""
        return self._matrix[: len(self._ids)]

    def row(self, item_id: str) -> int | None:
        """The row of `item_id`, or None when it is not in the index."""
        return self._rows.get(item_id)

    def rows(self, item_ids: Iterable[str]) -> list[int]:
        """Rows of the ids that are in the index (unknown or deleted ids are skipped)."""
        return [row for row in map(self._rows.get, item_ids) if row is not None]

    def vector(self, item_id: str) -> torch.Tensor | None:
        """The item's embedding as float32 on the CPU, or None when it is not in the index."""
        row = self._rows.get(item_id)
        return None if row is None else self._matrix[row].to("cpu", torch.float32, copy=True)

    def upsert(self, item_ids: Sequence[str], embeddings: torch.Tensor) -> None:
        """Insert new items and overwrite existing ones (the latest record of an id wins)."""
        if embeddings.ndim != 2 or embeddings.shape != (len(item_ids), self.dim):
            shape = tuple(embeddings.shape)
            raise ValueError(f"expected embeddings of shape ({len(item_ids)}, {self.dim}), got {shape}")
        if not item_ids:
            return
        last: dict[int, int] = {}  # row -> position of the id's last occurrence (a repeated id keeps its last)
        for position, item_id in enumerate(item_ids):
            row = self._rows.get(item_id)
            if row is None:
                row = len(self._ids)
                self._rows[item_id] = row
                self._ids.append(item_id)
            last[row] = position
        self._reserve(len(self._ids))
        values = to_device(embeddings.detach()[list(last.values())].to(self.dtype), self.device)
        self._matrix[torch.tensor(list(last), device=self.device)] = values
        self.version += 1

    def delete(self, item_ids: Iterable[str]) -> int:
        """Remove items (a deleted catalog record or a tombstone); unknown ids are ignored. Returns how many."""
        removed = 0
        for item_id in item_ids:
            row = self._rows.pop(item_id, None)
            if row is None:
                continue
            last = len(self._ids) - 1
            if row != last:
                moved = self._ids[last]
                self._matrix[row] = self._matrix[last]
                self._ids[row] = moved
                self._rows[moved] = row
            self._ids.pop()
            removed += 1
        if removed:
            self.version += 1
        return removed

    def apply(self, items: Sequence[CatalogItem], embeddings: torch.Tensor) -> None:
        """Apply a micro-batch of catalog records in order: deletions drop, live items upsert.

        `embeddings` holds one row per live item (`embed_items` of `[i for i in items if not i.deleted]`).
        """
        live = [item for item in items if not item.deleted]
        if embeddings.shape[0] != len(live):
            raise ValueError(f"{len(live)} live items but {embeddings.shape[0]} embeddings")
        position = 0
        run: list[str] = []  # consecutive live items, upserted together
        for item in items:  # record order matters: a delete then a re-create of the same id must end live
            if not item.deleted:
                run.append(item.item_id)
                continue
            self.upsert(run, embeddings[position : position + len(run)])
            position += len(run)
            run = []
            self.delete([item.item_id])
        self.upsert(run, embeddings[position : position + len(run)])

    def _reserve(self, size: int) -> None:
        """Grow the matrix (doubling) so it holds at least `size` rows."""
        capacity = self._matrix.shape[0]
        if size <= capacity:
            return
        while capacity < size:
            capacity *= 2
        grown = torch.zeros(capacity, self.dim, dtype=self.dtype, device=self.device)
        grown[: self._matrix.shape[0]] = self._matrix
        self._matrix = grown
