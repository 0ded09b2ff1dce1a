"""Catalog and clickstream generators: items in categories, and users whose latent tastes drive sessions.

The catalog is a pure function of its seed, so `clicks --seed 7` refers to the items of `catalog --seed 7`.
Click truth carries the user's true category preferences (first time the user appears) and the next item the
user looked at in the session; none of it travels in the events.
"""

from __future__ import annotations

import bisect
import itertools
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
ACTIONS_FUNNEL = (0.35, 0.3, 0.45)  # P(click | view), P(cart | click), P(purchase | cart)


@dataclass(frozen=True)
class Item:
    """One catalog item (the generator keeps a popularity weight for sampling, not sent)."""

    item_id: str
    category: str
    title: str
    description: str
    price: float


def build_catalog(seed: int, n_items: int = 500) -> list[Item]:
    """Items spread over the categories, deterministic per seed."""
    rng = random.Random(f"catalog-{seed}")
    names = list(CATEGORIES)
    items = []
    for index in range(n_items):
        category = names[index % len(names)]
        (low, high), nouns, adjectives, phrases = CATEGORIES[category]
        title = f"{rng.choice(BRANDS)} {rng.choice(adjectives)} {rng.choice(nouns)}"
        description = " ".join(rng.sample(phrases, 2))
        price = round(rng.uniform(low, high), 2)
        items.append(Item(f"item-{index:05d}", category, title, description, price))
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
    """Shopping sessions: a user picks a category by taste, views items, and sometimes clicks, carts, buys."""

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
        items = build_catalog(seed if catalog_seed is None else catalog_seed, n_items)
        self.by_category: dict[str, tuple[list[Item], list[float]]] = {}
        for category in CATEGORIES:
            members = [item for item in items if item.category == category]
            popularity = itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(members)))
            rng.shuffle(members)
            self.by_category[category] = (members, list(popularity))
        self.users: list[tuple[str, list[str], list[float], dict[str, float]]] = []
        for index in range(n_users):
            weights = {c: rng.gammavariate(0.3, 1.0) + 1e-3 for c in CATEGORIES}
            total = sum(weights.values())
            prefs = {c: round(w / total, 4) for c, w in weights.items()}
            names = list(prefs)
            self.users.append((f"user-{index:05d}", names, list(itertools.accumulate(prefs.values())), prefs))
        self._introduced: set[str] = set()

    def arrival_rate(self) -> float:
        """Sessions start at rate / mean events per session."""
        return self.rate_per_s / 8.0

    def _pick(self, names: list[Any], cumulative: list[float]) -> Any:
        return names[min(bisect.bisect(cumulative, self.rng.uniform(0, cumulative[-1])), len(names) - 1)]

    def step(self, t: float) -> None:
        """Plan one whole session (so each event's truth knows the next item) and schedule its events."""
        rng = self.rng
        user_id, names, cumulative, prefs = self.users[rng.randrange(len(self.users))]
        session = self.new_id("sess")
        steps: list[tuple[str, str]] = []
        while True:
            members, popularity = self.by_category[self._pick(names, cumulative)]
            item = self._pick(members, popularity)
            steps.append((item.item_id, "view"))
            for action, p in zip(("click", "add_to_cart", "purchase"), ACTIONS_FUNNEL, strict=True):
                if rng.random() >= p:
                    break
                steps.append((item.item_id, action))
            if len(steps) >= 40 or rng.random() < 0.2:
                break
        views = [index for index, (_, action) in enumerate(steps) if action == "view"]
        for index, (item_id, action) in enumerate(steps):
            following = [v for v in views if v > index]
            record = {
                "id": self.new_id("clk"),
                "ts": None,
                "user_id": user_id,
                "session_id": session,
                "item_id": item_id,
                "action": action,
            }
            truth: dict[str, Any] = {
                "id": record["id"],
                "user_id": user_id,
                "next_item_id": steps[following[0]][0] if following else None,
            }
            if user_id not in self._introduced:
                self._introduced.add(user_id)
                truth["user_preferences"] = prefs
            self.at(t, record, truth)
            t += rng.uniform(2, 40)
