"""Card transaction generator: cardholders with home cities and habits, merchants with MCCs, and fraud.

Fraud scenarios are mixed in at `fraud_rate` (share of all events): card testing (bursts of tiny online
amounts), account takeover (new device, large amounts at unusual merchants), impossible travel (a
card-present purchase far from a purchase minutes before) and night-time sprees (card-present spending while
the cardholder's city sleeps). Events carry test card numbers (Luhn-valid, fictional); truth carries the
fraud label, the scenario and a card reference, never the number.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from streams.generators.timeline import Simulation

# name, country, lat, lon, UTC offset (hours, standard time), currency, weight
CITIES: list[tuple[str, str, float, float, float, str, float]] = [
    ("Berlin", "DE", 52.52, 13.40, 1, "EUR", 3),
    ("Paris", "FR", 48.86, 2.35, 1, "EUR", 3),
    ("Madrid", "ES", 40.42, -3.70, 1, "EUR", 2),
    ("London", "GB", 51.51, -0.13, 0, "GBP", 3),
    ("Dublin", "IE", 53.35, -6.26, 0, "EUR", 1),
    ("Stockholm", "SE", 59.33, 18.07, 1, "SEK", 1),
    ("Warsaw", "PL", 52.23, 21.01, 1, "PLN", 1),
    ("New York", "US", 40.71, -74.01, -5, "USD", 4),
    ("Chicago", "US", 41.88, -87.63, -6, "USD", 2),
    ("Los Angeles", "US", 34.05, -118.24, -8, "USD", 3),
    ("Toronto", "CA", 43.65, -79.38, -5, "CAD", 2),
    ("Mexico City", "MX", 19.43, -99.13, -6, "MXN", 2),
    ("Sao Paulo", "BR", -23.55, -46.63, -3, "BRL", 2),
    ("Tokyo", "JP", 35.68, 139.69, 9, "JPY", 3),
    ("Seoul", "KR", 37.57, 126.98, 9, "KRW", 2),
    ("Singapore", "SG", 1.35, 103.82, 8, "SGD", 1),
    ("Sydney", "AU", -33.87, 151.21, 10, "AUD", 2),
    ("Mumbai", "IN", 19.08, 72.88, 5.5, "INR", 2),
    ("Johannesburg", "ZA", -26.20, 28.05, 2, "ZAR", 1),
    ("Dubai", "AE", 25.20, 55.27, 4, "AED", 1),
]
# mcc: (median amount, log-sigma, channels); online-only categories have no location
MCCS: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "5411": (45, 0.6, ("pos", "contactless")),
    "5812": (38, 0.5, ("pos", "contactless")),
    "5814": (11, 0.4, ("contactless", "pos")),
    "5541": (55, 0.4, ("pos",)),
    "5912": (22, 0.6, ("pos", "contactless")),
    "5311": (85, 0.7, ("pos", "online")),
    "5651": (70, 0.6, ("pos", "online")),
    "4121": (19, 0.5, ("online", "contactless")),
    "5999": (30, 0.8, ("pos", "online")),
    "6011": (120, 0.5, ("atm",)),
    "5818": (9, 0.7, ("online",)),
    "4814": (45, 0.3, ("online",)),
    "5732": (320, 0.6, ("pos", "online")),
    "5944": (650, 0.7, ("pos", "online")),
    "4511": (380, 0.5, ("online",)),
    "7011": (210, 0.5, ("online", "pos")),
    "6051": (400, 0.6, ("online",)),
}
EVERYDAY = ["5411", "5812", "5814", "5541", "5912", "5311", "5651", "4121", "5999", "6011", "5818", "4814"]
RISKY = ["5732", "5944", "6051", "4511"]
SPREE = ["5813", "5944", "5732", "6011"]
MCCS["5813"] = (60, 0.5, ("pos", "contactless"))  # bars: in spree merchants only
SCENARIOS = {"card_testing": 9.0, "account_takeover": 3.0, "impossible_travel": 1.0, "night_spree": 6.0}
# relative activity per local hour (people sleep at night)
HOURLY = [
    0.15,
    0.08,
    0.05,
    0.04,
    0.05,
    0.1,
    0.3,
    0.6,
    0.9,
    1,
    1,
    1.1,
    1.3,
    1.2,
    1,
    1,
    1.1,
    1.3,
    1.4,
    1.3,
    1.1,
    0.9,
    0.6,
    0.3,
]


@dataclass(frozen=True)
class Card:
    """A cardholder: test card number, home city, habits and usual device."""

    ref: str
    number: str
    home: int
    habits: tuple[str, ...]
    habit_cum: tuple[float, ...]
    spend: float
    device: str


def _luhn_complete(partial: str) -> str:
    """Append the check digit that makes `partial` Luhn-valid."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        value = int(char)
        if index % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return partial + str((10 - total % 10) % 10)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 12_742 * math.asin(math.sqrt(h))


class TransactionGenerator(Simulation):
    """Legitimate card traffic at `rate_per_s` with fraud scenarios mixed in at `fraud_rate`."""

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        rate_per_s: float = 50.0,
        fraud_rate: float = 0.02,
        n_cards: int = 2000,
        merchants_per_city: int = 40,
    ) -> None:
        super().__init__(seed=seed, start=start, rate_per_s=rate_per_s)
        if not 0 <= fraud_rate < 0.5:
            raise ValueError("fraud_rate must be in [0, 0.5)")
        rng = self.rng
        weights = list(itertools.accumulate(city[6] for city in CITIES))
        self.cards: list[Card] = []
        for index in range(n_cards):
            habits = tuple(rng.sample(EVERYDAY, rng.randint(3, 6)))
            cum = tuple(itertools.accumulate(rng.uniform(0.2, 1.0) for _ in habits))
            prefix = rng.choice(["4", "51", "52", "53", "54", "55", "22"])
            number = _luhn_complete(prefix + "".join(str(rng.randint(0, 9)) for _ in range(15 - len(prefix))))
            home = bisect.bisect(weights, rng.uniform(0, weights[-1]))
            self.cards.append(
                Card(f"card-{index:06d}", number, home, habits, cum, rng.lognormvariate(0, 0.5), self.new_id("dev"))
            )
        self.activity = list(itertools.accumulate(rng.paretovariate(2.5) for _ in self.cards))
        self.merchants: dict[tuple[int, str], list[tuple[str, float, float]]] = {}
        for city_index, city in enumerate(CITIES):
            for mcc in MCCS:
                self.merchants[(city_index, mcc)] = [
                    (f"m-{city[1].lower()}-{mcc}-{n:03d}", city[2] + rng.gauss(0, 0.05), city[3] + rng.gauss(0, 0.05))
                    for n in range(max(1, merchants_per_city // len(EVERYDAY)))
                ]
        mean_size = sum(SCENARIOS.values()) / len(SCENARIOS)
        self.scenario_start_p = fraud_rate / (mean_size * (1 - fraud_rate))

    def _local_hour(self, card: Card, t: float) -> int:
        return int((self.when(t) + timedelta(hours=CITIES[card.home][4])).hour)

    def _pick_card(self, t: float) -> Card:
        """An active cardholder, more likely during their local daytime."""
        for _ in range(8):
            card = self.cards[bisect.bisect(self.activity, self.rng.uniform(0, self.activity[-1]))]
            if self.rng.random() < HOURLY[self._local_hour(card, t)] / 1.4:
                return card
        return card

    def _txn(
        self,
        t: float,
        card: Card,
        mcc: str,
        amount: float,
        *,
        city: int | None = None,
        channel: str | None = None,
        device: str | None = None,
        fraud: bool = False,
        scenario: str | None = None,
    ) -> None:
        """Build and schedule one transaction at a merchant of `mcc` in `city` (default: the card's home)."""
        rng = self.rng
        city_index = card.home if city is None else city
        merchant, lat, lon = rng.choice(self.merchants[(city_index, mcc)])
        channel = channel or rng.choice(MCCS[mcc][2])
        record: dict[str, Any] = {
            "id": self.new_id("txn"),
            "ts": None,
            "card_number": card.number,
            "amount": round(max(amount, 0.01), 2),
            "currency": CITIES[city_index][5],
            "merchant_id": merchant,
            "mcc": mcc,
            "country": CITIES[city_index][1],
            "channel": channel,
        }
        if channel == "online":
            record["device_id"] = device or card.device
        else:
            record["lat"], record["lon"] = round(lat, 5), round(lon, 5)
        truth = {"id": record["id"], "is_fraud": fraud, "scenario": scenario, "card_ref": card.ref}
        self.at(t, record, truth)

    def _amount(self, mcc: str, card: Card) -> float:
        median, sigma, _ = MCCS[mcc]
        return self.rng.lognormvariate(math.log(median * card.spend), sigma)

    def step(self, t: float) -> None:
        """One legitimate purchase; sometimes the start of a fraud scenario."""
        rng = self.rng
        card = self._pick_card(t)
        mcc = card.habits[bisect.bisect(card.habit_cum, rng.uniform(0, card.habit_cum[-1]))]
        amount = self._amount(mcc, card) * (rng.uniform(3, 6) if rng.random() < 0.01 else 1)
        self._txn(t, card, mcc, amount)
        if rng.random() < self.scenario_start_p:
            getattr(self, "_" + rng.choice(list(SCENARIOS)))(t + rng.uniform(0.5, 5))

    def _card_testing(self, t: float) -> None:
        rng = self.rng
        card, city, device = rng.choice(self.cards), rng.randrange(len(CITIES)), self.new_id("dev")
        for _ in range(rng.randint(6, 12)):
            t += rng.uniform(1, 8)
            amount = rng.choice([1.0, 0.5, 2.0]) if rng.random() < 0.5 else rng.uniform(0.3, 2.99)
            self._txn(
                t, card, "5818", amount, city=city, channel="online", device=device, fraud=True, scenario="card_testing"
            )

    def _account_takeover(self, t: float) -> None:
        rng = self.rng
        card, device = rng.choice(self.cards), self.new_id("dev")
        for _ in range(rng.randint(2, 4)):
            t += rng.uniform(20, 180)
            self._txn(
                t,
                card,
                rng.choice(RISKY),
                rng.uniform(800, 5000),
                channel="online",
                device=device,
                fraud=True,
                scenario="account_takeover",
            )

    def _impossible_travel(self, t: float) -> None:
        rng = self.rng
        card = rng.choice(self.cards)
        home = (CITIES[card.home][2], CITIES[card.home][3])
        far = [i for i, c in enumerate(CITIES) if distance_km(home, (c[2], c[3])) > 5000]
        self._txn(t, card, "5411", self._amount("5411", card), channel="pos")
        self._txn(
            t + rng.uniform(120, 900),
            card,
            rng.choice(["5944", "5732", "6011"]),
            rng.uniform(200, 1500),
            city=rng.choice(far),
            channel="pos",
            fraud=True,
            scenario="impossible_travel",
        )

    def _night_spree(self, t: float) -> None:
        rng = self.rng
        sleepers = [card for card in rng.sample(self.cards, 60) if self._local_hour(card, t) in range(0, 5)]
        if not sleepers:
            self._card_testing(t)
            return
        card = sleepers[0]
        for _ in range(rng.randint(4, 8)):
            t += rng.uniform(30, 240)
            self._txn(
                t, card, rng.choice(SPREE), rng.uniform(90, 900), channel="pos", fraud=True, scenario="night_spree"
            )
