"""Catalog and clickstream generators: items in categories, and users whose drifting tastes drive sessions.

The catalog is a pure function of its seed, so `clicks --seed 7` refers to the items of `catalog --seed 7`.
Click truth carries the user's true category preferences (first time the user appears) and the next item the
user looked at in the session; none of it travels in the events.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.generators.timeline import Simulation

# category: (price range, nouns, adjectives, description phrases)
CATEGORIES: dict[str, tuple[tuple[float, float], list[str], list[str], list[str]]] = {
    "outdoor": (
        (15, 400),
        ["tent", "trail backpack", "sleeping bag", "camp stove", "headlamp", "rain shell"],
        ["ultralight", "weatherproof", "packable", "rugged"],
        [
            "Built for long days on the trail.",
            "Seams are taped against heavy rain.",
            "Packs down small enough for a day bag.",
        ],
    ),
    "kitchen": (
        (8, 250),
        ["chef's knife", "cast iron skillet", "pour-over kettle", "mixing bowl set", "spice grinder", "cutting board"],
        ["stainless", "heirloom", "nonstick", "compact"],
        ["Balanced for everyday prep.", "Safe for the dishwasher.", "Heats evenly from edge to centre."],
    ),
    "books": (
        (6, 45),
        ["mystery novel", "field guide", "cookbook", "history of sail", "poetry collection", "graphic novel"],
        ["illustrated", "paperback", "annotated", "award-winning"],
        ["A page-turner from the first chapter.", "Includes maps and a full index.", "Printed on recycled paper."],
    ),
    "audio": (
        (20, 600),
        ["wireless earbuds", "bookshelf speaker", "turntable", "studio headphones", "portable radio", "soundbar"],
        ["noise-cancelling", "hi-fi", "bluetooth", "retro"],
        ["Deep bass without distortion.", "Up to thirty hours on one charge.", "Pairs in seconds."],
    ),
    "toys": (
        (5, 120),
        ["building blocks", "plush fox", "puzzle cube", "wooden train set", "kite", "board game"],
        ["colourful", "educational", "classic", "glow-in-the-dark"],
        ["Recommended for ages six and up.", "Hours of screen-free play.", "Made from sustainable wood."],
    ),
    "garden": (
        (4, 300),
        ["pruning shears", "raised bed kit", "watering can", "seed starter tray", "hose reel", "compost bin"],
        ["galvanised", "ergonomic", "heavy-duty", "folding"],
        ["Handles tough stems with ease.", "Rust-resistant finish.", "Assembles without tools."],
    ),
    "fitness": (
        (10, 900),
        ["yoga mat", "kettlebell", "resistance bands", "rowing machine", "jump rope", "foam roller"],
        ["non-slip", "adjustable", "pro-grade", "space-saving"],
        ["Grippy on both sides.", "Folds flat for storage.", "Includes a printed training plan."],
    ),
    "office": (
        (3, 500),
        ["standing desk", "fountain pen", "desk lamp", "notebook set", "monitor arm", "ergonomic chair"],
        ["minimalist", "height-adjustable", "refillable", "dimmable"],
        ["Keeps the desk clear.", "Warm light for late evenings.", "Ten-year warranty on the frame."],
    ),
    "pets": (
        (4, 180),
        ["dog harness", "cat tree", "chew toy", "pet bed", "bird feeder", "aquarium filter"],
        ["washable", "reflective", "orthopedic", "quiet"],
        ["Vet-recommended design.", "Stands up to enthusiastic chewing.", "Machine-washable cover."],
    ),
    "apparel": (
        (12, 260),
        ["wool sweater", "denim jacket", "running shoes", "linen shirt", "beanie", "rain boots"],
        ["organic", "slim-fit", "breathable", "water-resistant"],
        ["Soft against the skin.", "Cut for everyday comfort.", "Available in six colours."],
    ),
}
BRANDS = ["Northpeak", "Larkspur", "Copperfield", "Ostrava", "Brambleton", "Quayside", "Tamsin & Co", "Velde"]
ACTIONS_FUNNEL = (0.3, 0.3, 0.6)  # P(click | view), P(checkout | session), P(purchase | cart)


@dataclass(frozen=True)
class Item:
    """One catalog item (the generator keeps a popularity weight for sampling, not sent)."""

    item_id: str
    category: str
    title: str
    description: str
    price: float
    noun: str = ""  # the kind of product: items of one noun are substitutes, the next noun complements them


def build_catalog(seed: int, n_items: int = 500) -> list[Item]:
    """Items spread over the categories, deterministic per seed."""
    rng = random.Random(f"catalog-{seed}")
    names = list(CATEGORIES)
    items = []
    for index in range(n_items):
        category = names[index % len(names)]
        (low, high), nouns, adjectives, phrases = CATEGORIES[category]
        brand, adjective, noun = rng.choice(BRANDS), rng.choice(adjectives), rng.choice(nouns)
        description = " ".join(rng.sample(phrases, 2))
        price = round(rng.uniform(low, high), 2)
        items.append(Item(f"item-{index:05d}", category, f"{brand} {adjective} {noun}", description, price, noun))
    return items


class CatalogGenerator(Simulation):
    """Every catalog item once, then price updates and occasional deletions (latest record wins)."""

    time_field = "updated_at"

    def __init__(self, *, seed: int, start: datetime, rate_per_s: float = 100.0, n_items: int = 500) -> None:
        super().__init__(seed=seed, start=start, rate_per_s=rate_per_s)
        self.items = build_catalog(seed, n_items)
        self._next = 0
        self._deleted: set[str] = set()

    def _record(self, item: Item, price: float) -> dict[str, Any]:
        return {
            "item_id": item.item_id,
            "title": item.title,
            "description": item.description,
            "category": item.category,
            "price": price,
            "deleted": False,
            "updated_at": None,
        }

    def step(self, t: float) -> None:
        """The next new item, or once all exist, an update of a random one."""
        rng = self.rng
        if self._next < len(self.items):
            item = self.items[self._next]
            self._next += 1
            self.at(t, self._record(item, item.price), {"item_id": item.item_id, "change": "created"})
            return
        item = rng.choice(self.items)
        if item.item_id not in self._deleted and rng.random() < 0.03:
            self._deleted.add(item.item_id)
            record = {"item_id": item.item_id, "deleted": True, "updated_at": None}
            self.at(t, record, {"item_id": item.item_id, "change": "deleted"})
            return
        self._deleted.discard(item.item_id)
        price = round(item.price * rng.uniform(0.8, 1.2), 2)
        self.at(t, self._record(item, price), {"item_id": item.item_id, "change": "updated"})


class ClickGenerator(Simulation):
    """Shopping sessions over days of event time, with a daily rhythm, visited in sequences.

    Each user has category tastes that drift between sessions. A session starts at an item of a favourite category
    (or, for a returning user, back at an item of their last session), then moves one step at a time: to a
    substitute (same kind of product), a complement (the kind that goes with it), back to an item seen earlier,
    or to another category; it may end at checkout (the most looked-at item added to the cart, often bought).
    Sessions (about 7.5 events each) start at `rate_per_s / 7.5` per second on average, more in the evening than at
    night, so with the default `n_users` a user's sessions are hours or days apart at a realistic rate.
    """

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        rate_per_s: float = 50.0,
        n_users: int = 1000,
        n_items: int = 500,
        catalog_seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed, start=start, rate_per_s=rate_per_s)
        rng = self.rng
        self.items = build_catalog(seed if catalog_seed is None else catalog_seed, n_items)
        self.kinds: dict[tuple[str, str], tuple[list[Item], list[float]]] = {}  # (category, noun) -> items
        for category, (_, nouns, _, _) in CATEGORIES.items():
            for noun in nouns:
                members = [item for item in self.items if item.category == category and item.noun == noun]
                rng.shuffle(members)
                self.kinds[(category, noun)] = (members, list(itertools.accumulate(
                    1 / (rank + 1) ** 0.9 for rank in range(len(members)))))
        self.users = [(f"user-{index:05d}", self._taste()) for index in range(n_users)]
        self.last_session: dict[int, list[str]] = {}
        self.busy_until: dict[int, float] = {}
        self._introduced: set[str] = set()

    def _taste(self) -> dict[str, float]:
        weights = {c: self.rng.gammavariate(0.3, 1.0) + 1e-3 for c in CATEGORIES}
        total = sum(weights.values())
        return {c: round(w / total, 4) for c, w in weights.items()}

    def arrival_rate(self) -> float:
        """Session starts at the evening peak (the rhythm thins them to 0.575 on average): rate / events per session."""
        return self.rate_per_s / 7.5 / 0.575

    def _pick(self, names: list[Any], weights: list[float]) -> Any:
        cumulative = list(itertools.accumulate(weights))
        return names[min(bisect.bisect(cumulative, self.rng.uniform(0, cumulative[-1])), len(names) - 1)]

    def _of_kind(self, category: str, noun: str, besides: Item | None = None) -> Item | None:
        """A popular item of one kind (category and noun), other than `besides`."""
        members, cumulative = self.kinds[(category, noun)]
        for _ in range(4):
            if not members:
                return None
            item = members[min(bisect.bisect(cumulative, self.rng.uniform(0, cumulative[-1])), len(members) - 1)]
            if item is not besides:
                return item
        return None

    def _in_category(self, category: str) -> Item | None:
        nouns = CATEGORIES[category][1]
        return self._of_kind(category, nouns[min(int(self.rng.expovariate(0.6)), len(nouns) - 1)])

    def _step(self, seen: list[Item], taste: dict[str, float]) -> Item | None:
        """The next item after `seen[-1]`: substitute, complement, back to an earlier one, or elsewhere."""
        rng, current = self.rng, seen[-1]
        nouns = CATEGORIES[current.category][1]
        roll = rng.random()
        if roll < 0.45:
            return self._of_kind(current.category, current.noun, besides=current)
        if roll < 0.67:
            return self._of_kind(current.category, nouns[(nouns.index(current.noun) + 1) % len(nouns)])
        if roll < 0.77 and len(seen) > 1:
            return seen[-2 - min(int(rng.expovariate(1.0)), len(seen) - 2)]
        return self._in_category(self._pick(list(taste), list(taste.values())))

    def step(self, t: float) -> None:
        """Plan one whole session (so each event's truth knows the next item) and schedule its events."""
        rng = self.rng
        when = self.when(t)
        hour = when.hour + when.minute / 60
        if rng.random() > 0.15 + 0.85 * (0.5 + 0.5 * math.cos(2 * math.pi * (hour - 20) / 24)):
            return  # the daily rhythm: busiest at 8 pm, quiet before dawn
        index = rng.randrange(len(self.users))
        if self.busy_until.get(index, -1.0) > t:
            return
        user_id, taste = self.users[index]
        if rng.random() < 0.25:  # interests drift: one category gains weight
            grown = dict(taste)
            grown[rng.choice(list(CATEGORIES))] += 0.5
            taste = {c: round(w / 1.5, 4) for c, w in grown.items()}
            self.users[index] = (user_id, taste)
        by_id = {item.item_id: item for item in self.items}
        earlier = self.last_session.get(index)
        first = by_id[rng.choice(earlier)] if earlier and rng.random() < 0.25 else \
            self._in_category(self._pick(list(taste), list(taste.values())))
        seen = [first] if first is not None else []
        while seen and len(seen) < 40 and rng.random() > 0.17:
            following = self._step(seen, taste)
            if following is not None:
                seen.append(following)
        if not seen:
            return
        steps = []
        for item in seen:
            steps.append((item.item_id, "view"))
            if rng.random() < ACTIONS_FUNNEL[0]:
                steps.append((item.item_id, "click"))
        if rng.random() < ACTIONS_FUNNEL[1]:  # checkout: the most looked-at item
            chosen = max(seen, key=lambda item: (seen.count(item), seen.index(item))).item_id
            steps.append((chosen, "add_to_cart"))
            if rng.random() < ACTIONS_FUNNEL[2]:
                steps.append((chosen, "purchase"))
        self._schedule(t, user_id, taste, steps)
        self.last_session[index] = [item.item_id for item in seen]
        self.busy_until[index] = t + 3600.0

    def _schedule(self, t: float, user_id: str, taste: dict[str, float], steps: list[tuple[str, str]]) -> None:
        session = self.new_id("sess")
        views = [index for index, (_, action) in enumerate(steps) if action == "view"]
        for index, (item_id, action) in enumerate(steps):
            following = [v for v in views if v > index]
            record = {"id": self.new_id("clk"), "ts": None, "user_id": user_id, "session_id": session,
                      "item_id": item_id, "action": action}
            truth: dict[str, Any] = {"id": record["id"], "user_id": user_id,
                                     "next_item_id": steps[following[0]][0] if following else None}
            if user_id not in self._introduced:
                self._introduced.add(user_id)
                truth["user_preferences"] = taste
            self.at(t, record, truth)
            t += self.rng.uniform(5, 90)
