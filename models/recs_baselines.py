"""The field's simple baselines for next-item recommendation, in their standard formulations.

- `Popularity`: items by how many events they had over all history (POP).
- `CoOccurrence`: items most often seen in the same session as the current item, each pair counted once per session
  (association rules, AR in Ludewig & Jannach 2018).
- `SessionKNN`: session-based kNN (SKNN, Jannach & Ludewig 2017; Ludewig & Jannach 2018): the current session's items
  as a binary vector are compared, by cosine similarity, with the `sample` most recent past sessions that contain
  any of them; the `k` most similar vote for their items with their similarity.
Each recommends from the live catalog, skips the query's excluded items and tops its list up in popularity order (then
catalog order), so every method returns k items when k are eligible. They learn from a micro-batch only after it
was ranked, like the model (models/recs_eval.py drives them).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streams.core.events import ClickEvent


@dataclass(frozen=True)
class Query:
    """What a method knows at a query: the click, the session's items up to it in order, and what to exclude."""

    click: ClickEvent
    session: tuple[str, ...]
    excluded: frozenset[str]


class Catalog:
    """The items that may be recommended now (live in the catalog), in catalog order."""

    def __init__(self, order: Sequence[str]) -> None:
        self.order = list(order)
        self.live: set[str] = set()


def eligible_top(scores: dict[str, float] | Counter[str], query: Query, catalog: Catalog, k: int) -> list[str]:
    """The k best-scored live, non-excluded items (ties by id)."""
    eligible = ((i, v) for i, v in scores.items() if i in catalog.live and i not in query.excluded)
    return [item_id for item_id, _ in heapq.nsmallest(k, eligible, key=lambda kv: (-kv[1], kv[0]))]


class Popularity:
    """POP: event counts over all history; also the top-up order of the other baselines."""

    name = "popularity"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.counts: Counter[str] = Counter()
        self._ranked: list[str] = []

    def observe(self, click: ClickEvent) -> None:
        """Nothing per click: the baselines know the session from the query."""

    def learn(self, clicks: Iterable[ClickEvent]) -> None:
        """Count the micro-batch's events and re-rank (ties by catalog order)."""
        self.counts.update(click.item_id for click in clicks)
        position = {item_id: n for n, item_id in enumerate(self.catalog.order)}
        ranked = sorted(self.counts, key=lambda i: (-self.counts[i], position.get(i, len(position)), i))
        chosen = set(ranked)
        self._ranked = ranked + [i for i in self.catalog.order if i not in chosen]

    def fill(self, ranked: list[str], query: Query, k: int) -> list[str]:
        """`ranked` filtered to live, non-excluded items, topped up in popularity order to k."""
        live, out, chosen = self.catalog.live, [], set()
        for item_id in [*ranked, *(self._ranked or self.catalog.order)]:
            if item_id in live and item_id not in query.excluded and item_id not in chosen:
                out.append(item_id)
                chosen.add(item_id)
                if len(out) == k:
                    break
        return out

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
        return [self.fill([], query, k) for query in queries]


class CoOccurrence:
    """AR: for the current item, the items that shared the most sessions with it."""

    name = "cooccurrence"
    observe = Popularity.observe

    def __init__(self, popularity: Popularity) -> None:
        self.popularity = popularity
        self.pairs: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.sessions: defaultdict[str, set[str]] = defaultdict(set)

    def learn(self, clicks: Iterable[ClickEvent]) -> None:
        """Pair each new item of a session with the session's earlier items, once per session."""
        for click in clicks:
            seen = self.sessions[click.session_id]
            if click.item_id in seen:
                continue
            for other in seen:
                self.pairs[other][click.item_id] += 1
                self.pairs[click.item_id][other] += 1
            seen.add(click.item_id)

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
        out = []
        for query in queries:
            pairs = self.pairs.get(query.click.item_id, {})
            out.append(self.popularity.fill(eligible_top(pairs, query, self.popularity.catalog, k), query, k))
        return out


class SessionKNN:
    """SKNN: cosine similarity of binary session vectors against the most recent sessions sharing an item."""

    name = "sknn"
    observe = Popularity.observe

    def __init__(self, popularity: Popularity, k: int = 100, sample: int = 500) -> None:
        self.popularity, self.k, self.sample = popularity, k, sample
        self.items: dict[str, set[str]] = {}  # past session -> its items
        self.time: dict[str, float] = {}  # past session -> time of its last event
        self.sessions_of: defaultdict[str, set[str]] = defaultdict(set)  # item -> past sessions containing it

    def learn(self, clicks: Iterable[ClickEvent]) -> None:
        for click in clicks:
            self.items.setdefault(click.session_id, set()).add(click.item_id)
            self.time[click.session_id] = max(self.time.get(click.session_id, 0.0), click.ts.timestamp())
            self.sessions_of[click.item_id].add(click.session_id)

    def neighbours(self, session: set[str], own: str) -> list[tuple[float, str]]:
        """The k most similar of the `sample` most recent past sessions that share an item (not the session itself)."""
        candidates: set[str] = set()
        for item_id in session:
            candidates |= self.sessions_of.get(item_id, set())
        candidates.discard(own)
        recent = heapq.nlargest(self.sample, candidates, key=lambda s: (self.time[s], s))
        scored = []
        for other in recent:
            items = self.items[other]
            overlap = len(session & items)
            scored.append((overlap / math.sqrt(len(session) * len(items)), other))
        return heapq.nlargest(self.k, scored)

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
        out = []
        for query in queries:
            scores: Counter[str] = Counter()
            for similarity, other in self.neighbours(set(query.session), query.click.session_id):
                for item_id in self.items[other]:
                    scores[item_id] += similarity
            out.append(self.popularity.fill(eligible_top(scores, query, self.popularity.catalog, k), query, k))
        return out
