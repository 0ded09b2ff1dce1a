"""Card transaction generator: cardholders with home cities, habits and hours, merchants with MCCs, and fraud.

Legitimate traffic: each card has a home city, a few habitual categories with favourite merchants, a spending
level and a daily rhythm by local hour; some cardholders are night owls or shift workers, and late at night people
go to bars, restaurants, 24-hour stores, fuel stations, ATMs, take taxis and shop online, so night hours alone do
not mean fraud. Occasional big-ticket purchases (a TV, furniture, jewellery, a flight, a hotel, a package holiday,
crypto) make large amounts legitimate too; a flight may be followed by a trip abroad (card present elsewhere for days).
Amounts are drawn in euros and converted into the merchant's currency by `DEFAULT_RATES`, rounded to the minor unit.

Fraud (streams/generators/fraud_scenarios.py), shaped after published descriptions of real card fraud (the Fraud
Detection Handbook's simulator, Le Borgne et al. 2022; card schemes' and issuers' descriptions of skimming, card
testing and account takeover):
- compromised_merchant: a terminal is compromised (skimmer, breach, collusion) for 7-28 days (onsets per simulated
  day scale with the merchants and `fraud_rate`: about 0.6 at 2%); cloned cards of local cardholders are run
  through it, making 13-50% of its card-present payments, at amounts ordinary for it. Only the merchant's
  confirmed-fraud rate gives it away. Cards paying there leak.
- compromised_card: a card (often one that leaked) is spent by a fraudster for 1-10 days at 3-8 times its usual
  amounts, card present in its home city (counterfeit) or online on the fraudster's device.
- card_testing: a bot tries 3-8 stolen cards at one online merchant, 1-3 tiny payments each, seconds apart.
- account_takeover: a new device makes 2-4 large online purchases of resellable goods, minutes apart.
- large_amount: one purchase of thousands of euros, in categories where big legitimate purchases happen too.
- impossible_travel: a card-present purchase over 5,000 km from the cardholder's purchase minutes before.
Fraud follows the local hours of shops (card present) or a flatter curve (online); bots work at any hour.

Truth (never on the wire) has `id`, `is_fraud`, `scenario` (None when legitimate), `card_ref` and `merchant_id`;
fraud also has `reported_at`, when its chargeback became known: at least 2 days later, median about a week, a tail
of several weeks (the Handbook's feedback delay; scheme rules give cardholders months to dispute). Events carry
test card numbers (Luhn-valid, fictional); truth carries a card reference, never the number. `rate_per_s` is the
rate of all events; `fraud_rate` about the share of fraudulent ones. Deterministic per seed.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.core.events.inputs import MAX_AMOUNT
from streams.core.settings import DEFAULT_RATES
from streams.generators.fraud_scenarios import DAY_S, FraudScenarios, chargeback_delay_s
from streams.generators.timeline import iso

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
# mcc: (median amount in EUR, log-sigma, channels, outlets: share of a city's merchants)
MCCS: dict[str, tuple[float, float, tuple[str, ...], int]] = {
    "5411": (40, 0.6, ("pos", "contactless"), 6),  # groceries
    "5499": (12, 0.5, ("contactless", "pos"), 3),  # convenience, 24-hour stores
    "5812": (35, 0.5, ("pos", "contactless"), 6),  # restaurants
    "5813": (28, 0.6, ("contactless", "pos"), 3),  # bars
    "5814": (11, 0.4, ("contactless", "pos"), 4),  # fast food
    "5541": (55, 0.35, ("pos",), 2),  # fuel
    "5912": (20, 0.6, ("pos", "contactless"), 2),  # pharmacies
    "5311": (70, 0.7, ("pos", "online"), 2),  # department stores
    "5651": (60, 0.6, ("pos", "online"), 3),  # clothing
    "4121": (18, 0.5, ("online", "contactless"), 1),  # taxis, ride hailing
    "5999": (30, 0.8, ("pos", "online"), 2),  # other retail
    "6011": (120, 0.5, ("atm",), 2),  # cash
    "5818": (9, 0.7, ("online",), 1),  # digital goods
    "4814": (40, 0.3, ("online",), 1),  # telecom
    "8398": (25, 0.6, ("online",), 1),  # donations
    "5732": (250, 0.8, ("pos", "online"), 1),  # electronics
    "5712": (450, 0.7, ("pos", "online"), 1),  # furniture
    "5944": (400, 0.8, ("pos", "online"), 1),  # jewellery
    "4511": (350, 0.6, ("online",), 1),  # airlines
    "7011": (180, 0.6, ("online", "pos"), 1),  # hotels
    "4722": (900, 0.7, ("online", "pos"), 1),  # travel agencies, package holidays
    "6051": (300, 0.8, ("online",), 1),  # crypto, quasi-cash
}
EVERYDAY = ["5411", "5499", "5812", "5813", "5814", "5541", "5912", "5311", "5651", "4121", "5999", "6011", "5818",
            "4814", "8398"]
NIGHT = ["5812", "5813", "5499", "5814", "4121", "5541", "6011", "5818", "5311"]  # open (or online) late
BIG_TICKET = ["5732", "5712", "5944", "4511", "7011", "4722", "6051"]
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4})
# relative activity per local hour (most people sleep at night, not all)
HOURLY = [0.22, 0.14, 0.09, 0.07, 0.08, 0.14, 0.3, 0.6, 0.9, 1, 1, 1.1, 1.3, 1.2, 1, 1, 1.1, 1.3, 1.4, 1.3, 1.1, 0.9,
          0.65, 0.4]
CURVES = {"shop": HOURLY, "online": [h**0.5 for h in HOURLY]}  # online fraud is less tied to the day
ZERO_DECIMAL = frozenset({"JPY", "KRW"})
NIGHT_OWLS, SHIFT_WORKERS = 0.12, 0.04  # cards whose day starts 2-4 / 8-12 hours later
FAVOURITE = 0.7  # share of a habitual category's purchases at the card's favourite merchant
BIG_TICKET_P, NIGHT_MIX, TRIP_P, NEW_DEVICE_P = 0.012, 0.5, 0.6, 0.003
FAR_KM = 5000


@dataclass(frozen=True)
class Card:
    """A cardholder: test card number, home city, habits, spending level, usual device and daily rhythm."""

    index: int
    ref: str
    number: str
    home: int
    habits: tuple[str, ...]
    habit_cum: tuple[float, ...]
    spend: float
    device: str
    shift: int  # hours their day starts later than most people's
    favourite: int  # picks the favourite merchant of each category


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


def local_amount(eur: float, currency: str) -> float:
    """`eur` euros in `currency` (EUR per unit from `DEFAULT_RATES`), rounded to its minor unit (none for JPY, KRW)."""
    digits = 0 if currency in ZERO_DECIMAL else 2
    return max(round(eur / DEFAULT_RATES[currency], digits), 10.0**-digits)


def _city_point(city: int) -> tuple[float, float]:
    return CITIES[city][2], CITIES[city][3]


class TransactionGenerator(FraudScenarios):
    """Legitimate card traffic with fraud scenarios mixed in: `rate_per_s` events in all, `fraud_rate` of them fraud."""

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
        self.fraud_rate = fraud_rate
        rng = self.rng
        self.city_weights = list(itertools.accumulate(city[6] for city in CITIES))
        self.cards = []
        for index in range(n_cards):
            habits = tuple(rng.sample(EVERYDAY, rng.randint(3, 6)))
            cum = tuple(itertools.accumulate(rng.uniform(0.2, 1.0) for _ in habits))
            prefix = rng.choice(["4", "51", "52", "53", "54", "55", "22"])
            number = _luhn_complete(prefix + "".join(str(rng.randint(0, 9)) for _ in range(15 - len(prefix))))
            home, spend, device = self._random_city(), rng.lognormvariate(0, 0.5), self.new_id("dev")
            rhythm, shift = rng.random(), 0
            if rhythm < NIGHT_OWLS + SHIFT_WORKERS:
                shift = rng.randint(2, 4) if rhythm < NIGHT_OWLS else rng.randint(8, 12)
            self.cards.append(Card(index, f"card-{index:06d}", number, home, habits, cum, spend, device, shift,
                                   rng.randrange(1 << 20)))
        self.activity = list(itertools.accumulate(rng.paretovariate(2.5) for _ in self.cards))
        self.devices = [[card.device] for card in self.cards]
        self.cards_by_city = [[card for card in self.cards if card.home == city] for city in range(len(CITIES))]
        self.merchants, self.merchant_info = {}, {}
        outlets = sum(spec[3] for spec in MCCS.values())
        for city_index, city in enumerate(CITIES):
            slug = city[0].lower().replace(" ", "")
            for mcc, spec in MCCS.items():
                group = []
                for n in range(max(1, round(merchants_per_city * spec[3] / outlets))):
                    merchant = f"m-{city[1].lower()}-{slug}-{mcc}-{n:03d}"
                    lat, lon = round(city[2] + rng.gauss(0, 0.05), 5), round(city[3] + rng.gauss(0, 0.05), 5)
                    group.append((merchant, lat, lon))
                    self.merchant_info[merchant] = (city_index, mcc, lat, lon)
                self.merchants[(city_index, mcc)] = group
        self.far = [[j for j in range(len(CITIES)) if distance_km(_city_point(i), _city_point(j)) > FAR_KM]
                    for i in range(len(CITIES))]
        self.trips: dict[int, tuple[int, float, float, float]] = {}  # card: city, departure, return, flight (s)
        self.leaked = deque(maxlen=2000)
        self.acceptance = {name: sum(curve) / len(curve) / max(curve) for name, curve in CURVES.items()}
        self._epoch_h = self.start.timestamp() / 3600
        self._setup_fraud(fraud_rate)

    def arrival_rate(self) -> float:
        """Legitimate arrivals; fraud comes on top, so that all events together come at `rate_per_s`."""
        return self.rate_per_s * (1 - self.fraud_rate)

    def _hour(self, t: float, city: int) -> int:
        return int(self._epoch_h + t / 3600 + CITIES[city][4]) % 24

    def _accept(self, t: float, city: int, curve: str) -> bool:
        values = CURVES[curve]
        return self.rng.random() * max(values) < values[self._hour(t, city)]

    def _random_city(self) -> int:
        return bisect.bisect(self.city_weights, self.rng.uniform(0, self.city_weights[-1]))

    def _weighted_card(self) -> Card:
        return self.cards[bisect.bisect(self.activity, self.rng.uniform(0, self.activity[-1]))]

    def _pick_card(self, t: float) -> Card:
        """An active cardholder, more likely during their own day (night owls and shift workers later)."""
        for _ in range(8):
            card = self._weighted_card()
            if self.rng.random() * 1.4 < HOURLY[(self._hour(t, card.home) - card.shift) % 24]:
                return card
        return card

    def _card_present(self, mcc: str) -> list[str]:
        return [channel for channel in MCCS[mcc][2] if channel != "online"]

    def _amount(self, mcc: str, card: Card) -> float:
        return self.rng.lognormvariate(math.log(self._median(mcc, card)), MCCS[mcc][1])

    def _median(self, mcc: str, card: Card) -> float:
        return MCCS[mcc][0] * card.spend

    def _favourite(self, card: Card, mcc: str, size: int) -> int:
        return (card.favourite + int(mcc) * 7919) % size

    def _merchant_weights(self) -> dict[str, float]:
        """Per merchant: the expected share of arrivals that are card-present payments there (habits, favourites)."""
        weights = dict.fromkeys(self.merchant_info, 0.0)
        total, before = self.activity[-1], 0.0
        for card, cumulative in zip(self.cards, self.activity, strict=True):
            share, before = (cumulative - before) / total, cumulative
            for mcc, habit, previous in zip(card.habits, card.habit_cum, (0.0, *card.habit_cum), strict=False):
                present = len(self._card_present(mcc)) / len(MCCS[mcc][2])
                group = self.merchants[(card.home, mcc)]
                p = share * (habit - previous) / card.habit_cum[-1] * present
                favourite = self._favourite(card, mcc, len(group))
                for n, (merchant, _, _) in enumerate(group):
                    weights[merchant] += p * ((1 - FAVOURITE) / len(group) + (FAVOURITE if n == favourite else 0))
        return weights

    def _current_city(self, card: Card, t: float) -> int | None:
        """Home, or the city of a trip under way; None while flying."""
        trip = self.trips.get(card.index)
        if trip is None:
            return card.home
        city, departure, back, flight = trip
        if t >= back + flight:
            del self.trips[card.index]
        if t < departure or t >= back + flight:
            return card.home
        return city if departure + flight <= t < back else None

    def _plan_trip(self, t: float, card: Card) -> None:
        """After booking a flight: a trip of 2-12 days to another city, 2-30 days later."""
        rng = self.rng
        city = self._random_city()
        if city == card.home or card.index in self.trips:
            return
        departure = t + DAY_S * rng.uniform(2, 30)
        flight = 3600 * (2 + distance_km(_city_point(card.home), _city_point(city)) / 800)
        self.trips[card.index] = (city, departure, departure + flight + DAY_S * rng.uniform(2, 12), flight)

    def _device(self, card: Card) -> str:
        """The device of an online purchase: one of the card's, now and then a new one (a new phone)."""
        devices = self.devices[card.index]
        if self.rng.random() < NEW_DEVICE_P:
            devices.append(self.new_id("dev"))
        return devices[-1] if len(devices) == 1 or self.rng.random() < 0.8 else self.rng.choice(devices)

    def _txn(
        self,
        t: float,
        card: Card,
        mcc: str,
        eur: float,
        *,
        city: int | None = None,
        channel: str | None = None,
        device: str | None = None,
        merchant: str | None = None,
        scenario: str | None = None,
        reported: float | None = None,
    ) -> str:
        """Schedule one transaction of `eur` euros at `merchant`, or else at a merchant of `mcc` in `city` (default:
        the card's home; its favourite there, usually); fraud when `scenario` is given, confirmed at offset
        `reported` (default: after a drawn chargeback delay). Returns the merchant id."""
        rng = self.rng
        if merchant is None:
            city = card.home if city is None else city
            group = self.merchants[(city, mcc)]
            favourite = city == card.home and rng.random() < FAVOURITE
            merchant, lat, lon = group[self._favourite(card, mcc, len(group))] if favourite else rng.choice(group)
        else:
            city, mcc, lat, lon = self.merchant_info[merchant]
        channel = channel or rng.choice(MCCS[mcc][2])
        currency = CITIES[city][5]
        amount = local_amount(eur, currency)
        if mcc == "6011":  # cash comes in round amounts: multiples of about 10 EUR in local units (10, 100, 1000...)
            step = 10 ** round(math.log10(10 / DEFAULT_RATES[currency]))
            amount = float(max(1, round(amount / step)) * step)
        amount = min(amount, MAX_AMOUNT)  # the schema's cap, in major units of any currency
        record: dict[str, Any] = {
            "id": self.new_id("txn"),
            "ts": None,
            "card_number": card.number,
            "amount": amount,
            "currency": currency,
            "merchant_id": merchant,
            "mcc": mcc,
            "country": CITIES[city][1],
            "channel": channel,
        }
        if channel == "online":
            record["device_id"] = device or self._device(card)
        else:
            record["lat"], record["lon"] = lat, lon
        truth: dict[str, Any] = {"id": record["id"], "is_fraud": scenario is not None, "scenario": scenario,
                                 "card_ref": card.ref, "merchant_id": merchant}
        if t < 0:
            return merchant  # a burst under way at the start: only its later events are in the stream
        if scenario is not None:
            truth["reported_at"] = iso(self.when(t + chargeback_delay_s(rng) if reported is None else reported))
        self.at(t, record, truth)
        return merchant

    def _legit(self, t: float, card: Card) -> None:
        """One purchase of the cardholder where they are: habitual, late-night, or now and then a big ticket."""
        rng = self.rng
        city = self._current_city(card, t)
        if city is None:
            return
        if rng.random() < BIG_TICKET_P:
            mcc = rng.choice(BIG_TICKET)
        elif self._hour(t, city) in NIGHT_HOURS and rng.random() < NIGHT_MIX:
            mcc = rng.choice(NIGHT)
        else:
            mcc = card.habits[bisect.bisect(card.habit_cum, rng.uniform(0, card.habit_cum[-1]))]
        channel = rng.choice(MCCS[mcc][2])
        merchant = self._txn(t, card, mcc, self._amount(mcc, card), city=card.home if channel == "online" else city,
                             channel=channel)
        hot = self.hot_merchants.get(merchant)
        if hot is not None and channel != "online" and t < hot.until:
            self.leaked.append(card.index)  # skimmed
        if mcc == "4511" and rng.random() < TRIP_P:
            self._plan_trip(t, card)

    def step(self, t: float) -> None:
        """Compromise events due by now, one legitimate purchase, and sometimes the start of a fraud burst."""
        self._run_agenda(t)
        self._legit(t, self._pick_card(t))
        if self.rng.random() < self.burst_total:
            self._burst(t)
