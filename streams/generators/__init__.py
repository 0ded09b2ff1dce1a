"""Deterministic event generators for demos, tests, training and benchmarks (all text written here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.generators.news import NewsGenerator
from streams.generators.shop import CatalogGenerator, ClickGenerator, build_catalog
from streams.generators.timeline import Generated, Simulation
from streams.generators.transactions import TransactionGenerator

GENERATORS: dict[str, type[Simulation]] = {
    "news": NewsGenerator,
    "transactions": TransactionGenerator,
    "clicks": ClickGenerator,
    "catalog": CatalogGenerator,
}
DEFAULT_RATES = {"news": 2.0, "transactions": 50.0, "clicks": 50.0, "catalog": 100.0}


def make_generator(
    kind: str, *, seed: int, start: datetime, rate_per_s: float | None = None, **options: Any
) -> Simulation:
    """The generator of one input kind; `rate_per_s` is simulated events per second (default per kind)."""
    return GENERATORS[kind](seed=seed, start=start, rate_per_s=rate_per_s or DEFAULT_RATES[kind], **options)


__all__ = [
    "DEFAULT_RATES",
    "GENERATORS",
    "CatalogGenerator",
    "ClickGenerator",
    "Generated",
    "NewsGenerator",
    "Simulation",
    "TransactionGenerator",
    "build_catalog",
    "make_generator",
]
