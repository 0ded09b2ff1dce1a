"""Data from the generators, for `train`/`eval` when no file is given: card transactions with their truth (fraud),
a shop's catalog with click sessions (recommendations), and unlabelled finance-style headlines (for distillation)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from models.fraud_data import Advance, LabelledData, from_segments
from models.fraud_features import FeatureConfig
from streams.core.events import CatalogItem, ClickEvent, Transaction
from streams.core.settings import get_settings
from streams.generators import TransactionGenerator
from streams.generators.news import NewsGenerator
from streams.generators.session_shop import SessionShopSimulator, catalog_records
from streams.generators.shop import ClickGenerator, build_catalog

# Fraud: a seed expands into independent generator runs with different traffic densities (events per card per day)
# and start times of day, so the model sees sparse and busy cards at every hour. The two long ones span weeks of
# simulated time, so that chargebacks (reported days later) reach the merchant-risk features as they would live.
# (simulated events per second, cards, share of the requested count)
SEGMENTS: list[tuple[float, int, float]] = [(0.04, 2000, 0.55), (0.015, 800, 0.3), (0.5, 3000, 0.15)]
GENERATOR_EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
GENERATOR_KEY = b"lepton-fraud-training-key-not-secret"  # tokens only need to be stable within a run
SHOP_START = datetime(2024, 1, 1, tzinfo=UTC)  # fixed, so a seed means the same clicks on any day
NEWS_START = datetime(2024, 1, 1, tzinfo=UTC)
SHOP_RATE = 0.022  # simulated clicks per second: 40,000 clicks span about three weeks


def _segment_stream(seed: int, index: int, count: int, fraud_rate: float) -> Iterator[tuple[Transaction, dict]]:
    """`count` validated transactions and their truth from one generator run."""
    rate, cards, _ = SEGMENTS[index]
    rng = random.Random(seed * 1000 + index)
    start = GENERATOR_EPOCH + timedelta(days=60 * index, hours=rng.uniform(0, 24))
    generator = TransactionGenerator(
        seed=seed * 1000 + index, start=start, rate_per_s=rate, fraud_rate=fraud_rate, n_cards=cards
    )
    for item in itertools.islice(generator, count):
        yield Transaction.model_validate(item.record, context={"pii_key": GENERATOR_KEY}), item.truth or {}


def fraud_from_generator(seed: int, count: int, fraud_rate: float = 0.02, delay_days: int = 7,
                         advance: Advance | None = None) -> LabelledData:
    """`count` generated transactions (split over SEGMENTS), each segment replayed point in time with its own
    chargeback feed (the truth's `reported_at`), as the pipeline would see it."""
    sizes = [int(count * share) for _, _, share in SEGMENTS]
    sizes[0] += count - sum(sizes)
    streams = (_segment_stream(seed, index, size, fraud_rate) for index, size in enumerate(sizes))
    fraud = get_settings().fraud
    config = FeatureConfig(delay_days, fraud.reference_currency, fraud.rates)
    return from_segments(streams, f"generator seed={seed} count={count} fraud_rate={fraud_rate}", config, advance)


def shop_data(seed: int, items: int | None = None, users: int | None = None, events: int = 40_000,
              simulator: str = "shop") -> tuple[list[CatalogItem], Iterator[ClickEvent]]:
    """A catalog and a click stream from this project's shop generator (`shop`, about three weeks of clicks at the
    default size) or the independent session simulator (`sessions`), validated through the event models."""
    if simulator == "sessions":
        sim = SessionShopSimulator(seed=seed, start=SHOP_START, n_items=items or 2000, n_users=users or 3000)
        catalog = [CatalogItem.model_validate(record) for record in catalog_records(sim.items, SHOP_START)]
        generator: ClickGenerator | SessionShopSimulator = sim
    elif simulator == "shop":
        catalog = [CatalogItem(item_id=i.item_id, title=i.title, description=i.description, category=i.category,
                               price=i.price) for i in build_catalog(seed, items or 500)]
        generator = ClickGenerator(seed=seed, start=SHOP_START, rate_per_s=SHOP_RATE, n_users=users or 1000,
                                   n_items=items or 500)
    else:
        raise ValueError(f"unknown simulator {simulator!r} (shop or sessions)")
    clicks = (ClickEvent.model_validate(record) for record, _ in itertools.islice(generator, events))
    return catalog, clicks


def news_headlines(seed: int, count: int) -> list[str]:
    """`count` distinct headlines from the news generator (its labels are dropped: a teacher labels them), in order.

    The generator repeats a template now and then; duplicates are skipped, and the run stops after 50 x count items
    should the templates run out of distinct fillings.
    """
    found: dict[str, None] = {}
    for item in itertools.islice(NewsGenerator(seed=seed, start=NEWS_START), 50 * count):
        found[str(item.record["headline"])] = None
        if len(found) == count:
            break
    return list(found)
