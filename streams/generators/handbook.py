"""An independent card-fraud simulator, written from the published description of the transaction data simulator of
the Fraud Detection Handbook (Le Borgne, Siblini, Lebichot, Bontempi: "Reproducible Machine Learning for Credit Card
Fraud Detection - Practical Handbook", Université Libre de Bruxelles and Worldline, 2022; chapter 3.2, "Transaction
data simulator"), not from this project's own generator. It is the kind of data the published baselines of that
book are measured on (logistic regression, random forests and boosting reach 0.6-0.7 average precision there).

As described there:
- customers and terminals (merchants) sit at uniform random points of a 100 x 100 grid; a customer pays at the
  terminals within `radius` of home, uniformly;
- each customer has a mean amount U(5, 100) (standard deviation half of it) and a mean number of transactions per
  day U(0, 4); a day's count is Poisson, the time of day normal around noon (standard deviation 20,000 s) and the
  amount normal (a negative draw becomes uniform on (0, 2 x mean));
- three fraud scenarios: (1) every amount above 220 is fraud; (2) each day `terminals_per_day` terminals are
  compromised and every transaction on them for the next 28 days is fraud; (3) each day `cards_per_day` customers
  are compromised and a third of their transactions over the next 14 days have 5 times the amount and are fraud.
Confirmed fraud is reported `label_delay_days` later (plus up to a day), the book's feedback delay.

Mapped onto this project's `transactions` schema: card tokens `tok_hb…`, merchant ids `term-…`, one currency (EUR),
card-present payments (`pos`) at a location derived from the grid (one unit is about 1 km). Truth carries
`is_fraud`, `scenario` and, for fraud, `reported_at`. Deterministic per seed; events come in time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from scipy.spatial import cKDTree

from streams.generators.timeline import Generated, iso

DAY_S = 86_400
MCCS = ("5411", "5812", "5912", "5999", "5541", "5311", "5651", "5814")


@dataclass(frozen=True)
class HandbookConfig:
    """The simulator's parameters (the book's defaults, except the start date)."""

    seed: int = 0
    days: int = 70
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    customers: int = 5000
    terminals: int = 10000
    radius: float = 5.0
    terminals_per_day: int = 2
    cards_per_day: int = 3
    large_amount: float = 220.0
    label_delay_days: float = 7.0


class HandbookSimulator:
    """Iterate `Generated(record, truth)` in time order, day by day."""

    def __init__(self, config: HandbookConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        c = config
        self.home = self.rng.uniform(0, 100, size=(c.customers, 2))
        self.mean_amount = self.rng.uniform(5, 100, size=c.customers)
        self.per_day = self.rng.uniform(0, 4, size=c.customers)
        self.terminal_at = self.rng.uniform(0, 100, size=(c.terminals, 2))
        self.terminal_mcc = self.rng.integers(0, len(MCCS), size=c.terminals)
        tree = cKDTree(self.terminal_at)
        self.reachable = [np.asarray(found, dtype=np.int64) for found in tree.query_ball_point(self.home, c.radius)]
        self.terminal_until = np.full(c.terminals, -1)  # last day a compromised terminal stays compromised
        self.card_until = np.full(c.customers, -1)

    def __iter__(self) -> Iterator[Generated]:
        for day in range(self.config.days):
            yield from self._day(day)

    def _day(self, day: int) -> Iterator[Generated]:
        c, rng = self.config, self.rng
        counts = rng.poisson(self.per_day)
        customers = np.repeat(np.arange(c.customers), counts)
        customers = customers[np.fromiter((len(self.reachable[i]) > 0 for i in customers), bool, len(customers))]
        seconds = rng.normal(DAY_S / 2, 20_000, size=len(customers))
        keep = (seconds > 0) & (seconds < DAY_S)
        customers, seconds = customers[keep], seconds[keep]
        mean = self.mean_amount[customers]
        amounts = rng.normal(mean, mean / 2)
        negative = amounts < 0
        amounts[negative] = rng.uniform(0, 2 * mean[negative])
        amounts = np.maximum(np.round(amounts, 2), 0.01)
        terminals = np.fromiter((rng.choice(self.reachable[i]) for i in customers), np.int64, len(customers))
        # the day's compromises take effect from this day on (the book draws them per day)
        self.terminal_until[rng.choice(c.terminals, c.terminals_per_day, replace=False)] = day + 27
        self.card_until[rng.choice(c.customers, c.cards_per_day, replace=False)] = day + 13
        scenario = np.zeros(len(customers), dtype=np.int64)
        scenario[amounts > c.large_amount] = 1
        scenario[self.terminal_until[terminals] >= day] = 2
        card_hit = (self.card_until[customers] >= day) & (rng.uniform(size=len(customers)) < 1 / 3)
        amounts[card_hit] = np.round(amounts[card_hit] * 5, 2)
        scenario[card_hit] = 3
        order = np.argsort(seconds, kind="stable")
        delays = rng.uniform(0, DAY_S, size=len(customers))
        for i in order:
            yield self._event(day, customers[i], terminals[i], seconds[i], amounts[i], scenario[i], delays[i])

    def _event(self, day: int, customer: int, terminal: int, second: float, amount: float, scenario: int,
               delay_s: float) -> Generated:
        c = self.config
        when = c.start + timedelta(days=day, seconds=float(second))
        x, y = self.terminal_at[terminal]
        record = {
            "id": f"hb{c.seed}-{day:03d}-{int(second * 1000):08d}-{customer:05d}",
            "ts": iso(when),
            "card_token": f"tok_hb{c.seed}c{customer:05d}",
            "amount": float(amount),
            "currency": "EUR",
            "merchant_id": f"term-{terminal:05d}",
            "mcc": MCCS[self.terminal_mcc[terminal]],
            "country": "BE",
            "lat": round(50.3 + y / 111.0, 5),
            "lon": round(4.0 + x / 71.0, 5),
            "channel": "pos",
        }
        truth: dict[str, object] = {"id": record["id"], "is_fraud": scenario > 0,
                                    "scenario": ("legit", "large_amount", "compromised_terminal",
                                                 "compromised_card")[scenario]}
        if scenario:
            reported = when + timedelta(days=c.label_delay_days, seconds=float(delay_s))
            truth["reported_at"] = iso(reported)
        return Generated(record, truth)
