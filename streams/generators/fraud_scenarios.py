"""The fraud of the card-transaction generator, the base class of `TransactionGenerator` (which provides the world:
cards, merchants, cities, hours); the shapes of the scenarios are described in that module's docstring.

Compromised merchants and cards are states in simulated time: onsets come as a Poisson process (so the number of
compromises per simulated day does not depend on the traffic rate), a compromise lasts days, and meanwhile its
fraud comes as a Poisson process in simulated time, thinned by the local hour (shops open by day). The other
scenarios are short bursts started at traffic arrivals. The stream starts in a steady state: compromises begun up
to four weeks before `start`, and bursts begun up to two hours before, are under way. Each scenario gets a fixed
share of the fraud budget (`SHARES`), so that `fraud_rate` is about the share of fraudulent events over any span.
"""

from __future__ import annotations

import heapq
import math
import random
from abc import abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.generators.timeline import Simulation

if TYPE_CHECKING:
    from streams.generators.transactions import Card

DAY_S = 86_400.0
# share of the fraudulent events per scenario
SHARES = {
    "compromised_merchant": 0.30,
    "compromised_card": 0.25,
    "card_testing": 0.20,
    "account_takeover": 0.12,
    "large_amount": 0.08,
    "impossible_travel": 0.05,
}
BURST_SIZES = {"card_testing": 11.0, "account_takeover": 3.0, "large_amount": 1.0, "impossible_travel": 1.0}
BURST_SPAN_S = 7200.0  # the longest a burst lasts (account takeover)
MERCHANT_DAYS = (10.0, 60.0)  # how long a terminal stays compromised (a skimmer for weeks, a colluding shop for months)
MERCHANT_SHARE = (0.2, 4.0)  # fraudulent per legitimate card-present payment there (17-80% of its payments)
CARD_DAYS = (1.0, 10.0)  # how long a compromised card is used before it is blocked
CARD_PACE = (0.5, 2.0)  # fraud events on it, in units of an average card's purchases
CARD_JUMP = (3.0, 8.0)  # its fraudulent amounts, in units of the card's usual amount for the category
FROM_LEAKED = 0.6  # share of compromised cards taken from cards seen at compromised merchants or in card testing
TESTING_MCCS = ("5818", "8398")  # digital goods, donations: tiny online payments
TAKEOVER_MCCS = ("5732", "5944", "6051", "4511")  # electronics, jewellery, crypto, flights: resellable
LARGE_MCCS = ("5944", "5732", "6051", "5712", "4511")
SPREE_PRESENT = ("5732", "5944", "6011", "5813", "5311", "5541", "5651")
SPREE_ONLINE = ("5732", "5944", "5311", "5651", "4511", "6051", "5818")
TRAVEL_MCCS = ("5944", "5732", "6011")


def chargeback_delay_s(rng: random.Random) -> float:
    """Seconds from a fraud to its confirmation: at least 2 days, median about 7, a tail of several weeks (cap 90)."""
    return DAY_S * min(2.0 + rng.lognormvariate(math.log(5.0), 0.75), 90.0)


def _mean(bounds: tuple[float, float]) -> float:
    return (bounds[0] + bounds[1]) / 2


@dataclass
class Compromise:
    """A compromised merchant (key: its id) or card (key: its index) until `until`, with its fraud process."""

    key: Any
    until: float
    rate: float  # fraud events per second before thinning by the local hour
    curve: str  # "shop" (card present) or "online"
    jump: float = 1.0
    device: str = ""


class FraudScenarios(Simulation):
    """Fraud scenarios mixed into the legitimate traffic of the subclass, which provides the world below."""

    cards: list[Card]
    cards_by_city: list[list[Card]]
    merchants: dict[tuple[int, str], list[tuple[str, float, float]]]
    merchant_info: dict[str, tuple[int, str, float, float]]  # id: city, mcc, lat, lon
    far: list[list[int]]  # per city: the cities over 5,000 km away
    acceptance: dict[str, float]  # per hourly curve: the mean share of times `_accept` lets through
    leaked: deque[int]  # cards seen at compromised merchants or in card testing

    @abstractmethod
    def _txn(self, t: float, card: Card, mcc: str, eur: float, **how: Any) -> str:
        """Schedule one transaction of `eur` euros (fraud when `scenario` is given); its merchant id."""

    @abstractmethod
    def _amount(self, mcc: str, card: Card) -> float:
        """The card's usual amount (EUR) for a category."""

    @abstractmethod
    def _median(self, mcc: str, card: Card) -> float:
        """The card's median amount (EUR) in a category."""

    @abstractmethod
    def _accept(self, t: float, city: int, curve: str) -> bool:
        """Whether to keep an event at `t` in `city`, by the local hour on an hourly activity curve."""

    @abstractmethod
    def _weighted_card(self) -> Card:
        """A card, more likely the more active it is."""

    @abstractmethod
    def _pick_card(self, t: float) -> Card:
        """An active card, more likely during its local daytime."""

    @abstractmethod
    def _current_city(self, card: Card, t: float) -> int | None:
        """Where the cardholder is at `t` (None while flying)."""

    @abstractmethod
    def _random_city(self) -> int:
        """A city, weighted by population."""

    @abstractmethod
    def _card_present(self, mcc: str) -> list[str]:
        """The card-present channels of a category."""

    @abstractmethod
    def _merchant_weights(self) -> dict[str, float]:
        """Per merchant: the expected share of legitimate arrivals that are card-present payments there."""

    def _setup_fraud(self, fraud_rate: float) -> None:
        """Budget the scenarios for `fraud_rate` and put the stream in a steady state of compromises."""
        rng, odds = self.rng, fraud_rate / (1 - fraud_rate)
        self.hot_merchants: dict[str, Compromise] = {}
        self.hot_cards: dict[int, Compromise] = {}
        self._agenda: list[tuple[float, int, str, Any]] = []
        self._agenda_seq = 0
        self.weights = self._merchant_weights()
        self.candidates = sorted(m for m, w in self.weights.items() if w > 0)
        mean_weight = sum(self.weights.values()) / max(1, len(self.candidates))
        merchants = SHARES["compromised_merchant"] * odds / (mean_weight * _mean(MERCHANT_SHARE)) if mean_weight else 0
        cards = SHARES["compromised_card"] * odds * len(self.cards) / _mean(CARD_PACE)
        # compromises at once, over their mean duration: onsets per second
        self.onset_rate = {"merchant": merchants / (_mean(MERCHANT_DAYS) * DAY_S),
                           "card": cards / (_mean(CARD_DAYS) * DAY_S)}
        acceptance = self.acceptance
        accepted = {"card_testing": 1.0, "account_takeover": acceptance["online"],
                    "large_amount": (acceptance["online"] + acceptance["shop"]) / 2,
                    "impossible_travel": acceptance["shop"]}
        self.burst_p = {name: SHARES[name] * odds / (size * accepted[name]) for name, size in BURST_SIZES.items()}
        self.burst_total = sum(self.burst_p.values())
        burst_rate = self.arrival_rate() * self.burst_total
        if burst_rate > 0:  # bursts under way at the start (their events before it are dropped)
            start = -BURST_SPAN_S + rng.expovariate(burst_rate)
            while start < 0:
                self._burst(start)
                start += rng.expovariate(burst_rate)
        for kind, days in (("merchant", MERCHANT_DAYS), ("card", CARD_DAYS)):
            if self.onset_rate[kind] > 0:
                onset = -days[1] * DAY_S + rng.expovariate(self.onset_rate[kind])
                while onset < 0:
                    self._onset(kind, onset)
                    onset += rng.expovariate(self.onset_rate[kind])
                self._push(onset, kind, None)

    def _push(self, t: float, kind: str, key: Any) -> None:
        self._agenda_seq += 1
        heapq.heappush(self._agenda, (t, self._agenda_seq, kind, key))

    def _run_agenda(self, t: float) -> None:
        """Onsets and compromise frauds due by `t` (all later than the previous arrival, so events stay in order)."""
        agenda = self._agenda
        while agenda and agenda[0][0] <= t:
            when, _, kind, key = heapq.heappop(agenda)
            if kind in ("merchant", "card"):
                self._onset(kind, when)
                self._push(when + self.rng.expovariate(self.onset_rate[kind]), kind, None)
                continue
            hot = self.hot_merchants if kind == "m" else self.hot_cards
            state = hot.get(key)
            if state is None or when >= state.until:
                hot.pop(key, None)
                continue
            if kind == "m":
                self._merchant_fraud(when, state)
            else:
                self._card_fraud(when, state)
            self._push(when + self.rng.expovariate(state.rate), kind, key)

    def _onset(self, kind: str, start: float) -> None:
        """Compromise a merchant (skimmer, breached terminal) or a card from `start` (may be before the stream)."""
        rng = self.rng
        arrivals, acceptance = self.arrival_rate(), self.acceptance
        if kind == "merchant":
            if not self.candidates:
                return
            merchant = rng.choice(self.candidates)
            until = start + DAY_S * rng.uniform(*MERCHANT_DAYS)
            rate = rng.uniform(*MERCHANT_SHARE) * self.weights[merchant] * arrivals / acceptance["shop"]
            if until > 0 and merchant not in self.hot_merchants:
                self.hot_merchants[merchant] = Compromise(merchant, until, rate, "shop")
                self._push(max(start, 0.0) + rng.expovariate(rate), "m", merchant)
            return
        leaked = self.leaked
        card = self.cards[rng.choice(leaked)] if leaked and rng.random() < FROM_LEAKED else self._weighted_card()
        until = start + DAY_S * rng.uniform(*CARD_DAYS)
        curve = "online" if rng.random() < 0.5 else "shop"
        rate = rng.uniform(*CARD_PACE) * arrivals / len(self.cards) / acceptance[curve]
        state = Compromise(card.index, until, rate, curve, rng.uniform(*CARD_JUMP), self.new_id("dev"))
        if until > 0 and card.index not in self.hot_cards:
            self.hot_cards[card.index] = state
            self._push(max(start, 0.0) + rng.expovariate(rate), "c", card.index)

    def _merchant_fraud(self, t: float, state: Compromise) -> None:
        """Cloned local cards run through the compromised terminal, at amounts ordinary for it."""
        city, mcc, _, _ = self.merchant_info[state.key]
        if not self._accept(t, city, "shop"):
            return
        card = self.rng.choice(self.cards_by_city[city])
        channel = "pos" if "pos" in self._card_present(mcc) else self._card_present(mcc)[0]
        self._txn(t, card, mcc, self._amount(mcc, card), merchant=state.key, channel=channel,
                  scenario="compromised_merchant")

    def _card_fraud(self, t: float, state: Compromise) -> None:
        """A compromised card spent at several times its usual amounts, card present (counterfeit) or online."""
        rng, card = self.rng, self.cards[state.key]
        if not self._accept(t, card.home, state.curve):
            return
        if state.curve == "online":
            mcc, channel = rng.choice(SPREE_ONLINE), "online"
        else:
            mcc = rng.choice(SPREE_PRESENT if rng.random() < 0.5 else card.habits)
            present = self._card_present(mcc)
            if not present:
                mcc, present = "5732", ["pos"]
            channel = rng.choice(present)
        # several times what the card usually spends on anything (fraudsters max a card out), not just in this
        # category: a jump over the card's own history, which is what a card-level detector can see
        eur = max(self._amount(mcc, card), self._typical(card)) * state.jump * rng.lognormvariate(0.0, 0.2)
        self._txn(t, card, mcc, eur, channel=channel, device=state.device, scenario="compromised_card")

    def _typical(self, card: Card) -> float:
        """The card's typical amount (EUR) across its habits: the geometric mean of their medians."""
        logs = [math.log(self._median(mcc, card)) for mcc in card.habits]
        return math.exp(sum(logs) / len(logs))

    def _burst(self, t: float) -> None:
        """Start one of the short scenarios, picked by its share of the budget."""
        names, weights = list(self.burst_p), list(self.burst_p.values())
        name = self.rng.choices(names, weights)[0]
        getattr(self, "_" + name)(t + self.rng.uniform(0.5, 5))

    def _card_testing(self, t: float) -> None:
        """A bot tries a few stolen cards at one online merchant: 1-3 tiny payments each, seconds apart."""
        rng = self.rng
        mcc = rng.choice(TESTING_MCCS)
        city = self._random_city()
        merchant = rng.choice(self.merchants[(city, mcc)])[0]
        for card in rng.sample(self.cards, min(len(self.cards), rng.randint(3, 8))):
            device, attempts = self.new_id("dev"), rng.randint(1, 3)
            times = [t := t + rng.uniform(1, 20) for _ in range(attempts)]
            reported = times[-1] + chargeback_delay_s(rng)
            self.leaked.append(card.index)
            for when in times:
                eur = rng.choice([0.5, 1.0, 2.0]) if rng.random() < 0.5 else rng.uniform(0.3, 2.99)
                self._txn(when, card, mcc, eur, merchant=merchant, channel="online", device=device,
                          scenario="card_testing", reported=reported)

    def _account_takeover(self, t: float) -> None:
        """A taken-over account on a new device: 2-4 large online purchases of resellable goods, minutes apart."""
        rng = self.rng
        card = self._weighted_card()
        if not self._accept(t, card.home, "online"):
            return
        city = card.home if rng.random() < 0.8 else self._random_city()
        device = self.new_id("dev")
        times = [t := t + rng.uniform(60, 1800) for _ in range(rng.randint(2, 4))]
        reported = times[-1] + chargeback_delay_s(rng)
        for when in times:
            eur = rng.lognormvariate(math.log(1200), 0.6)
            self._txn(when, card, rng.choice(TAKEOVER_MCCS), eur, city=city, channel="online", device=device,
                      scenario="account_takeover", reported=reported)

    def _large_amount(self, t: float) -> None:
        """One very large purchase (thousands of euros) at a category where large legitimate purchases also happen."""
        rng = self.rng
        card, mcc = self._weighted_card(), rng.choice(LARGE_MCCS)
        city = card.home if rng.random() < 0.7 else self._random_city()
        present = self._card_present(mcc)
        channel = rng.choice(present) if present and rng.random() < 0.5 else "online"
        if not self._accept(t, city, "online" if channel == "online" else "shop"):
            return
        eur = max(1500.0, rng.lognormvariate(math.log(4000), 0.7))
        self._txn(t, card, mcc, eur, city=city, channel=channel, device=self.new_id("dev"),
                  scenario="large_amount")

    def _impossible_travel(self, t: float) -> None:
        """A legitimate purchase where the cardholder is, then a counterfeit card present over 5,000 km away."""
        rng = self.rng
        card = self._pick_card(t)
        here = self._current_city(card, t)
        if here is None:
            return
        city, later = rng.choice(self.far[here]), t + rng.uniform(120, 900)
        if not self._accept(later, city, "shop"):
            return
        self._txn(t, card, "5411", self._amount("5411", card), city=here, channel="pos")
        mcc = rng.choice(TRAVEL_MCCS)
        self._txn(later, card, mcc, rng.uniform(200, 1500), city=city, channel=self._card_present(mcc)[0],
                  scenario="impossible_travel")
