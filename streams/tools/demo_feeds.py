"""The demo's traffic: generated events produced in background threads at a steady wall-clock rate.

Event times are simulated (back-dated so they end about now), so windows and per-card histories look like
real traffic even though the demo produces hours of events in seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from itertools import islice
from typing import Any

from streams.broker.producer import EventProducer, Kind
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.malformed import malformed
from streams.generators.news import NewsGenerator
from streams.generators.shop import CatalogGenerator, ClickGenerator
from streams.generators.transactions import TransactionGenerator

NEWS_RATE, TXN_RATE = 2.0, 2.0  # simulated events per second of event time
CLICK_RATE = 0.02  # a shop's clicks: 2,000 span about a day, sessions of one user hours apart
SHOP_ITEMS = 300


class Feed(threading.Thread):
    """Produces `count` records of one kind at `rate` per second, with a few malformed messages mixed in."""

    def __init__(self, settings: Settings, kind: Kind, records: Iterable[dict[str, Any]], count: int,
                 rate: float, malformed_every: int = 0) -> None:
        super().__init__(daemon=True, name=f"feed-{kind}")
        self.settings, self.kind, self.count, self.rate = settings, kind, count, rate
        self.records = islice(records, count)
        self.bad = [s.payload for s in malformed() if s.kind == kind and len(s.payload) < 100_000]
        self.malformed_every = malformed_every
        self.producer = EventProducer(settings)
        self.done = threading.Event()

    @property
    def sent(self) -> int:
        return self.producer.stats.sent

    def run(self) -> None:
        started = time.monotonic()
        for i, record in enumerate(self.records):
            self.producer.send_record(self.kind, record)
            if self.malformed_every and i % self.malformed_every == self.malformed_every - 1 and self.bad:
                self.producer.send_raw(getattr(self.settings.topics, self.kind), self.bad.pop())
            pause = started + (i + 1) / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.producer.flush()
        self.done.set()


def _records(generator: Iterable[Any]) -> Iterator[dict[str, Any]]:
    return (generated.record for generated in generator)


def news_feed(settings: Settings, count: int, rate: float, seed: int, surge_ticker: str) -> Feed:
    """Headlines over count / NEWS_RATE seconds of event time, a negative surge at 60% of it."""
    span = count / NEWS_RATE
    generator = NewsGenerator(seed=seed, start=utc_now() - timedelta(seconds=span), rate_per_s=NEWS_RATE,
                              surge_ticker=surge_ticker, surge_at_s=span * 0.6, surge_duration_s=60,
                              surge_count=max(80, count // 20))
    return Feed(settings, "news", _records(generator), count, rate, malformed_every=max(1, count // 8))


def transactions_feed(settings: Settings, count: int, rate: float, seed: int) -> Feed:
    """Card traffic (300 cards with histories) with 3% fraud scenarios mixed in."""
    span = count / TXN_RATE
    generator = TransactionGenerator(seed=seed, start=utc_now() - timedelta(seconds=span + 60),
                                     rate_per_s=TXN_RATE, fraud_rate=0.03, n_cards=300)
    return Feed(settings, "transactions", _records(generator), count, rate, malformed_every=max(1, count // 5))


def catalog_feed(settings: Settings, seed: int) -> Feed:
    """Every catalog item once (the compacted topic keeps the latest record per item)."""
    generator = CatalogGenerator(seed=seed, start=utc_now() - timedelta(hours=2), n_items=SHOP_ITEMS)
    return Feed(settings, "catalog", _records(generator), SHOP_ITEMS, rate=1000.0)


def clicks_feed(settings: Settings, count: int, rate: float, seed: int) -> Feed:
    """Shopping sessions of 300 users over the demo catalog, over days of event time ending about now."""
    span = count / CLICK_RATE
    generator = ClickGenerator(seed=seed, start=utc_now() - timedelta(seconds=span + 60), rate_per_s=CLICK_RATE,
                               n_users=300, n_items=SHOP_ITEMS, catalog_seed=seed)
    return Feed(settings, "clicks", _records(generator), count, rate)
