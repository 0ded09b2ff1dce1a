"""The demo's traffic: generated events produced in background threads at a steady wall-clock rate.

Event times are simulated (back-dated so they end about now), so windows and per-card histories look like
real traffic even though the demo produces hours of events in seconds. Card traffic starts with two weeks of
history (produced at once, unpaced), then the chargebacks reported so far for its frauds, then the live traffic,
in which one merchant compromised in the history keeps taking fraudulent payments: the fraud model scores them
with that merchant's confirmed-fraud rate.
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
from streams.generators.timeline import Generated, iso
from streams.generators.transactions import TransactionGenerator

NEWS_RATE, TXN_RATE = 2.0, 2.0  # simulated events per second of event time
CLICK_RATE = 0.02  # a shop's clicks: 2,000 span about a day, sessions of one user hours apart
HISTORY_DAYS, HISTORY_RATE = 14, 0.004  # card traffic before the live part (about 4,800 payments)
SKIMMED_EVERY = 100  # live payments between two at the compromised merchant
SHOP_ITEMS = 300


class Feed(threading.Thread):
    """Produces `count` records of one kind at `rate` per second, with a few malformed messages mixed in; `before`
    are records (of any kind) produced first, unpaced (history, chargebacks)."""

    def __init__(self, settings: Settings, kind: Kind, records: Iterable[dict[str, Any]], count: int,
                 rate: float, malformed_every: int = 0, before: Iterable[tuple[Kind, dict[str, Any]]] = ()) -> None:
        super().__init__(daemon=True, name=f"feed-{kind}")
        self.settings, self.kind, self.count, self.rate = settings, kind, count, rate
        self.records = islice(records, count)
        self.before = list(before)
        self.bad = [s.payload for s in malformed() if s.kind == kind and len(s.payload) < 100_000]
        self.malformed_every = malformed_every
        self.producer = EventProducer(settings)
        self.done = threading.Event()
        self.other = 0  # records of other kinds among `before`

    @property
    def sent(self) -> int:
        """Messages of this feed's kind the broker acknowledged (the others are not counted)."""
        return self.producer.stats.sent - self.other

    def run(self) -> None:
        for kind, record in self.before:
            self.producer.send_record(kind, record)
            self.other += kind != self.kind
        self.producer.flush()
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
    """Card traffic (300 cards with two weeks of history, and the chargebacks reported so far) with 3% fraud
    scenarios mixed in, and payments at a merchant compromised in the history."""
    live_start = utc_now() - timedelta(seconds=count / TXN_RATE + 60)
    history = list(_until(TransactionGenerator(seed=seed, start=live_start - timedelta(days=HISTORY_DAYS),
                                               rate_per_s=HISTORY_RATE, fraud_rate=0.03, n_cards=300), live_start))
    chargebacks = sorted((label for g in history if (label := chargeback_of(g)) and label["reported_at"] < iso(
        live_start)), key=lambda label: label["reported_at"])
    before: list[tuple[Kind, dict[str, Any]]] = [("transactions", g.record) for g in history]
    before += [("labels", label) for label in chargebacks]
    live = TransactionGenerator(seed=seed + 1, start=live_start, rate_per_s=TXN_RATE, fraud_rate=0.03, n_cards=300)
    records = _with_skimmed(_records(live), history, {label["merchant_id"] for label in chargebacks})
    return Feed(settings, "transactions", records, count, rate, malformed_every=max(1, count // 5), before=before)


def chargeback_of(generated: Generated) -> dict[str, Any] | None:
    """The chargeback a generated fraud leads to (the `labels` topic schema), None for a legitimate payment."""
    truth, record = generated.truth or {}, generated.record
    if not truth.get("is_fraud") or not truth.get("reported_at"):
        return None
    return {"transaction_id": record["id"], "merchant_id": record["merchant_id"], "transaction_ts": record["ts"],
            "fraud": True, "reported_at": truth["reported_at"], "card_number": record["card_number"]}


def _until(generator: Iterable[Generated], end: Any) -> Iterator[Generated]:
    """The generated events before `end`."""
    for generated in generator:
        if generated.record["ts"] >= iso(end):
            return
        yield generated


def _with_skimmed(records: Iterator[dict[str, Any]], history: list[Generated], confirmed: set[str]
                  ) -> Iterator[dict[str, Any]]:
    """The live records with, every SKIMMED_EVERY, a payment at the compromised merchant of the history with the
    most confirmed frauds, by a card that paid there before: the compromise goes on."""
    frauds = [g.record for g in history if (g.truth or {}).get("scenario") == "compromised_merchant"
              and g.record["merchant_id"] in confirmed]
    if not frauds:
        yield from records
        return
    merchant = max({r["merchant_id"] for r in frauds}, key=lambda m: sum(r["merchant_id"] == m for r in frauds))
    templates = [r for r in frauds if r["merchant_id"] == merchant]
    for i, record in enumerate(records):
        yield record
        if i % SKIMMED_EVERY == SKIMMED_EVERY - 1:
            template = templates[(i // SKIMMED_EVERY) % len(templates)]
            yield template | {"id": f"{record['id']}-skim", "ts": record["ts"]}


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
