"""A tiny deterministic stand-in for the MiniLM encoder: one direction per category, plus a little per-title noise."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import torch

from models.item_index import EMBEDDING_DIM
from streams.core.events import CatalogItem, ClickEvent
from streams.generators.shop import CATEGORIES

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class FakeEncoder:
    """Texts of one category point the same way (like MiniLM on this catalog), titles add small noise."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], normalize: bool = True) -> torch.Tensor:
        self.calls += 1
        rows = [category_vector(_category(text)) + 0.1 * _noise(text) for text in texts]
        out = torch.stack(rows) if rows else torch.empty(0, EMBEDDING_DIM)
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out


def _category(text: str) -> str:
    match = re.search(r"Category: ([^.]+)\.", text)
    return match.group(1) if match else ""


def category_vector(category: str) -> torch.Tensor:
    """A unit basis vector per category (index by position in the generator's category list)."""
    vector = torch.zeros(EMBEDDING_DIM)
    names = list(CATEGORIES)
    vector[names.index(category) if category in names else len(names)] = 1.0
    return vector


def _noise(text: str) -> torch.Tensor:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return torch.randn(EMBEDDING_DIM, generator=torch.Generator().manual_seed(seed)) / EMBEDDING_DIM**0.5


def item(item_id: str, category: str = "books", title: str | None = None) -> CatalogItem:
    """A live catalog item."""
    return CatalogItem(item_id=item_id, title=title or f"title of {item_id}", description="", category=category,
                       price=10.0)


def click(item_id: str, seconds: float = 0.0, action: str = "view", user: str = "user-1") -> ClickEvent:
    """A click `seconds` after T0."""
    return ClickEvent(id=f"clk-{item_id}-{seconds}-{action}", ts=T0 + timedelta(seconds=seconds), user_id=user,
                      session_id="sess-1", item_id=item_id, action=action)
