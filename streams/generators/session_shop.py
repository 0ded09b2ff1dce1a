"""An independent shop simulator, written from published descriptions of real session datasets, not from this project.

It exists to test the recommender on data it was not designed around (`lepton eval recs --simulator sessions`). It
shares no code or vocabulary with `shop.py` beyond the simulation clock. What it follows, and where from:
- session lengths: e-commerce logs average 3.5-5 events per session with a long tail (YooChoose / RSC15 about
  3.97 clicks per session in Hidasi et al. 2016; Diginetica 5.12 in Wu et al. 2019, SR-GNN; RetailRocket about
  3.5 in Ludewig & Jannach 2018); here a mixture of two geometric lengths (browsers and explorers), mean about 4.6;
- repeats: about a fifth of the next items in a session are items already seen in it (Ren et al. 2019, RepeatNet:
  repeat ratios around 20-25% on YooChoose and Diginetica), mostly recent ones;
- item popularity: a power law (Zipf exponent about 1) over the catalog, within categories too, with trends:
  some items rise or fade over the weeks and about a tenth arrive during the run (Jannach, Ludewig & Lerche 2017,
  "short-term trends" and "reminders" in e-commerce sessions);
- sequences: consecutive views mostly stay in a category (substitutes of a similar price), sometimes move to a
  complementary category, sometimes jump (a new search);
- users: most visitors appear once (RetailRocket: 1.4M visitors for 2.75M events; YooChoose has no user ids);
  about a third of sessions come from returning users whose sessions are hours to weeks apart (log-normal gaps),
  who revisit items from earlier sessions ("reminders") and whose interests drift between sessions;
- actions: views dominate (RetailRocket: 96.7% views, 2.5% add-to-cart, 0.8% transactions); carts and
  purchases come at the end of a session, of an item viewed in it;
- a daily rhythm (quiet at night, an evening peak) and a weekly one (busier weekends), as shop logs show.
Deterministic per seed. Records follow the `clicks` and `catalog` contracts; truth is never in a record.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.generators.timeline import Simulation, iso

# department: leaf categories, each with (product words, feature words); complements are leaf -> leaves
DEPARTMENTS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "electronics": {
        "phones": (["smartphone", "flip phone", "rugged phone"], ["5G", "dual-SIM", "128 GB", "OLED"]),
        "phone accessories": (["phone case", "screen protector", "charging cable"], ["shockproof", "braided"]),
        "laptops": (["laptop", "ultrabook", "convertible notebook"], ["14-inch", "16 GB RAM", "backlit keys"]),
        "laptop bags": (["laptop sleeve", "messenger bag", "laptop backpack"], ["padded", "water-repellent"]),
        "cameras": (["mirrorless camera", "action camera", "instant camera"], ["4K", "stabilised", "24 MP"]),
        "memory cards": (["SD card", "microSD card", "card reader"], ["UHS-II", "256 GB", "high-endurance"]),
    },
    "home": {
        "bedding": (["duvet cover", "pillow", "fitted sheet"], ["cotton sateen", "hypoallergenic", "king size"]),
        "mattresses": (["memory foam mattress", "spring mattress", "mattress topper"], ["medium-firm", "cooling"]),
        "lighting": (["floor lamp", "pendant light", "LED strip"], ["dimmable", "warm white", "smart"]),
        "light bulbs": (["LED bulb", "filament bulb", "smart bulb"], ["E27", "2700 K", "pack of four"]),
        "cookware": (["frying pan", "stock pot", "wok"], ["induction-ready", "ceramic", "28 cm"]),
        "utensils": (["spatula set", "ladle", "tongs"], ["silicone", "heat-resistant", "bamboo"]),
    },
    "beauty": {
        "skincare": (["face serum", "moisturiser", "cleanser"], ["vitamin C", "fragrance-free", "SPF 30"]),
        "makeup": (["lipstick", "mascara", "foundation"], ["long-wear", "matte", "volumising"]),
        "hair care": (["shampoo", "conditioner", "hair oil"], ["sulfate-free", "repairing", "argan"]),
        "hair tools": (["hair dryer", "straightener", "curling wand"], ["ionic", "ceramic", "travel-size"]),
    },
    "sports": {
        "running": (["running shoe", "running shorts", "running vest"], ["cushioned", "lightweight"]),
        "sports nutrition": (["protein powder", "energy gel", "electrolyte tabs"], ["vanilla", "vegan"]),
        "cycling": (["road bike", "cycling helmet", "bike light"], ["carbon", "aero", "USB-rechargeable"]),
        "bike parts": (["inner tube", "brake pads", "chain lube"], ["tubeless-ready", "wet-weather"]),
    },
    "grocery": {
        "coffee": (["coffee beans", "ground coffee", "coffee pods"], ["single-origin", "dark roast", "1 kg"]),
        "coffee gear": (["grinder", "french press", "milk frother"], ["burr", "stainless", "electric"]),
        "snacks": (["trail mix", "granola bar", "rice crackers"], ["salted", "gluten-free", "family pack"]),
        "tea": (["green tea", "herbal tea", "black tea"], ["loose-leaf", "organic", "40 bags"]),
    },
}
COMPLEMENTS: dict[str, list[str]] = {
    "phones": ["phone accessories", "memory cards"], "laptops": ["laptop bags"], "cameras": ["memory cards"],
    "bedding": ["mattresses"], "mattresses": ["bedding"], "lighting": ["light bulbs"], "cookware": ["utensils"],
    "skincare": ["makeup"], "hair care": ["hair tools"], "running": ["sports nutrition"], "cycling": ["bike parts"],
    "coffee": ["coffee gear", "snacks"], "coffee gear": ["coffee"], "tea": ["snacks"],
}
MAKERS = ["Arvo", "Brightline", "Celest", "Dunmore", "Eskild", "Fjora", "Grayson", "Halden", "Iver", "Jovi"]
P_REPEAT, P_SUBSTITUTE, P_COMPLEMENT = 0.12, 0.55, 0.1  # the rest of the steps: a new search (a jump)
RETURNING_SHARE = 0.35  # sessions from returning users; the others are one-off visitors
NEW_ITEM_SHARE = 0.1  # items that arrive during the run


@dataclass(frozen=True)
class SimItem:
    """One simulated item: its leaf category, a price tier inside the leaf, popularity and lifecycle."""

    item_id: str
    department: str
    leaf: str
    title: str
    description: str
    price: float
    tier: float  # position within the leaf (similar tiers are close substitutes)
    weight: float  # base popularity (Zipf)
    trend: float  # popularity change per week, as a log-rate
    arrives_s: float  # seconds after the start when the item appears (0: from the start)


def build_items(seed: int, n_items: int = 2000, span_s: float = 21 * 86_400) -> list[SimItem]:
    """The simulated catalog: Zipf popularity over a random order, a tenth of the items arriving later."""
    rng = random.Random(f"session-shop-catalog-{seed}")
    leaves = [(department, leaf) for department, members in DEPARTMENTS.items() for leaf in members]
    ranks = list(range(n_items))
    rng.shuffle(ranks)
    items = []
    for index in range(n_items):
        department, leaf = leaves[rng.randrange(len(leaves))]
        products, features = DEPARTMENTS[department][leaf]
        tier = rng.random()
        title = f"{rng.choice(MAKERS)} {rng.choice(features)} {rng.choice(products)}"
        description = "" if rng.random() < 0.2 else f"{rng.choice(features).capitalize()}, {leaf}."
        arrives = rng.uniform(0.1, 0.9) * span_s if rng.random() < NEW_ITEM_SHARE else 0.0
        items.append(SimItem(
            item_id=f"sku-{seed % 1000:03d}-{index:06d}", department=department, leaf=leaf, title=title,
            description=description, price=round(5 + 500 * tier**2 * rng.uniform(0.8, 1.2), 2), tier=tier,
            weight=1 / (ranks[index] + 1) ** 1.0, trend=rng.gauss(0, 0.25), arrives_s=arrives))
    return items


def catalog_records(items: Sequence[SimItem], start: datetime) -> list[dict[str, Any]]:
    """Catalog records (the `catalog` contract), each stamped with the time its item appears."""
    from datetime import timedelta

    return [{"item_id": i.item_id, "title": i.title, "description": i.description, "category": i.leaf,
             "price": i.price, "updated_at": iso(start + timedelta(seconds=i.arrives_s))}
            for i in sorted(items, key=lambda i: i.arrives_s)]


def rhythm(hour: float, weekday: int) -> float:
    """Relative traffic at an hour of the day (UTC as the shop's time) and a weekday: low at 4 am, peak at 9 pm."""
    daily = 0.55 + 0.45 * math.cos(2 * math.pi * (hour - 21) / 24)
    return (0.1 + daily) * (1.15 if weekday >= 5 else 1.0)


class SessionShopSimulator(Simulation):
    """Sessions from one-off visitors and returning users over the simulated catalog (see the module docstring)."""

    def __init__(self, *, seed: int, start: datetime, rate_per_s: float = 0.025, n_users: int = 3000,
                 n_items: int = 2000, span_s: float = 21 * 86_400) -> None:
        super().__init__(seed=seed, start=start, rate_per_s=rate_per_s)
        self.items = build_items(seed, n_items, span_s)
        self.by_leaf: dict[str, list[SimItem]] = {}
        for item in self.items:
            self.by_leaf.setdefault(item.leaf, []).append(item)
        for members in self.by_leaf.values():
            members.sort(key=lambda i: i.tier)
        self.departments = list(DEPARTMENTS)
        rng = self.rng
        self.users = [self._new_taste() for _ in range(n_users)]
        self.history: dict[int, list[str]] = {}  # returning user -> items of their earlier sessions
        self.busy_until: dict[int, float] = {}
        self.user_weight = list(itertools.accumulate(rng.paretovariate(1.5) for _ in range(n_users)))
        self._visitors = 0

    def _new_taste(self) -> list[float]:
        weights = [self.rng.gammavariate(0.4, 1.0) + 1e-3 for _ in self.departments]
        return list(itertools.accumulate(w / sum(weights) for w in weights))

    def arrival_rate(self) -> float:
        """Session starts at the peak rate (thinned by the rhythm in `step`): rate / mean events per session."""
        return self.rate_per_s / 4.6 / 0.7

    def _popular(self, members: Sequence[SimItem], t: float, near: float | None = None) -> SimItem | None:
        """An item of `members` live at t, by trended popularity (and closeness in tier when `near` is set)."""
        live = [i for i in members if i.arrives_s <= t]
        if not live:
            return None
        weeks = t / (7 * 86_400)
        weights = [i.weight * math.exp(i.trend * weeks) * (1 if near is None else math.exp(-abs(i.tier - near) * 8))
                   for i in live]
        cumulative = list(itertools.accumulate(weights))
        return live[min(bisect.bisect(cumulative, self.rng.uniform(0, cumulative[-1])), len(live) - 1)]

    def _search(self, taste: list[float], t: float) -> SimItem | None:
        """A new search: a department by taste, then an item of it by popularity."""
        rng = self.rng
        department = self.departments[min(bisect.bisect(taste, rng.random()), len(taste) - 1)]
        leaves = list(DEPARTMENTS[department])
        return self._popular([i for leaf in leaves for i in self.by_leaf.get(leaf, [])], t)

    def _next(self, seen: list[SimItem], taste: list[float], t: float) -> SimItem | None:
        rng, current = self.rng, seen[-1]
        roll = rng.random()
        if roll < P_REPEAT and len(seen) > 1:
            back = min(int(rng.expovariate(0.7)) + 2, len(seen))  # mostly the one before the current item
            return seen[-back]
        if roll < P_REPEAT + P_SUBSTITUTE:
            return self._popular([i for i in self.by_leaf[current.leaf] if i is not current], t, near=current.tier)
        if roll < P_REPEAT + P_SUBSTITUTE + P_COMPLEMENT and current.leaf in COMPLEMENTS:
            return self._popular(self.by_leaf.get(rng.choice(COMPLEMENTS[current.leaf]), []), t)
        return self._search(taste, t)

    def _visitor(self, t: float) -> tuple[str, list[float], int | None]:
        """Who starts this session: a returning user who is not in a session, or a one-off visitor."""
        rng = self.rng
        if rng.random() < RETURNING_SHARE:
            user = min(bisect.bisect(self.user_weight, rng.uniform(0, self.user_weight[-1])), len(self.users) - 1)
            if self.busy_until.get(user, -1.0) < t:
                if rng.random() < 0.3:  # interests drift between sessions
                    self.users[user] = self._new_taste()
                return f"member-{user:06d}", self.users[user], user
        self._visitors += 1
        return f"visitor-{self.seed % 1000:03d}-{self._visitors:08d}", self._new_taste(), None

    def step(self, t: float) -> None:
        """Plan one session (thinned by the rhythm) and schedule its events."""
        rng = self.rng
        when = self.when(t)
        if rng.random() > rhythm(when.hour + when.minute / 60, when.weekday()) / 1.15:
            return
        user_id, taste, member = self._visitor(t)
        earlier = self.history.get(member, []) if member is not None else []
        stop = 0.08 if rng.random() < 0.12 else 0.27  # explorers and browsers: mean length about 4.6
        first = None
        if earlier and rng.random() < 0.3:  # a reminder: back to an item of an earlier session
            first = next((i for i in self.items if i.item_id == rng.choice(earlier[-10:])), None)
        seen = [first or self._search(taste, t)]
        while seen[-1] is not None and len(seen) < 60 and rng.random() > stop:
            following = self._next(seen, taste, t)  # type: ignore[arg-type]
            if following is None:
                break
            seen.append(following)
        views = [item for item in seen if item is not None]
        if not views:
            return
        steps = [(item.item_id, "view") for item in views]
        if rng.random() < 0.16:  # checkout: the most viewed item of the session goes to the cart
            chosen = max(set(views), key=lambda item: (views.count(item), views.index(item))).item_id
            steps.append((chosen, "add_to_cart"))
            if rng.random() < 0.45:
                steps.append((chosen, "purchase"))
        session = self.new_id("s")
        clock = t
        for item_id, action in steps:
            record = {"id": self.new_id("e"), "ts": None, "user_id": user_id, "session_id": session,
                      "item_id": item_id, "action": action}
            self.at(clock, record, {"id": record["id"], "returning": member is not None})
            clock += math.exp(rng.gauss(math.log(50), 1.0))  # dwell: log-normal, median 50 s
        if member is not None:
            self.history[member] = (earlier + [item.item_id for item in views])[-30:]
            self.busy_until[member] = clock + math.exp(rng.gauss(math.log(86_400), 1.3))  # next visit: ~1 day
