"""Offline evaluation of recommendations: replay generated sessions through the pipeline's own state and scoring.

For every click whose session has a next viewed item (the generator's truth), the user's state is updated
with the click, and the model, a popularity baseline and an item co-occurrence baseline each recommend
top-K; HitRate@K and NDCG@K are averaged over those clicks. Clicks are replayed in micro-batches like the
clicks agent: per-user state moves event by event, while the shared statistics (popularity, co-occurrence)
are folded in after each micro-batch, so no method ever sees a click after the one it recommends for.
All three methods exclude the same recently seen and purchased items.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from models.item_index import ItemIndex, TextEncoder, embed_items
from models.recs import Popularity, UserState, recommend, update
from streams.core.events import CatalogItem, ClickEvent
from streams.core.settings import RecsSettings

Progress = Callable[[str, int | None], Callable[[int], None]]
METHODS = ("model", "popularity", "cooccurrence")


def _no_progress(description: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


@dataclass(frozen=True)
class EvalConfig:
    """What to generate and how to replay it."""

    seed: int
    n_items: int = 500
    n_users: int = 1000
    n_events: int = 40_000
    rate_per_s: float = 50.0
    k: int = 10
    micro_batch: int = 256
    embed_batch: int = 64


@dataclass
class Metrics:
    """Running HitRate@K and NDCG@K of one method."""

    hits: float = 0.0
    gain: float = 0.0
    count: int = 0

    def add(self, ranked: list[str], truth: str) -> None:
        """Score one recommendation list against the next item."""
        self.count += 1
        if truth in ranked:
            self.hits += 1
            self.gain += 1 / math.log2(ranked.index(truth) + 2)

    def as_dict(self) -> dict[str, float]:
        """{"hit_rate_at_10": ..., "ndcg_at_10": ...} (the key names keep @10 whatever K is)."""
        n = max(self.count, 1)
        return {"hit_rate_at_10": round(self.hits / n, 4), "ndcg_at_10": round(self.gain / n, 4)}


@dataclass
class CoOccurrence:
    """Item-to-item counts of distinct items seen in the same session ("viewed this, also viewed")."""

    pairs: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    sessions: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, session_id: str, item_id: str) -> None:
        """Pair the item with every other item of its session, once per session."""
        seen = self.sessions[session_id]
        if item_id in seen:
            return
        for other in seen:
            self.pairs[other][item_id] += 1
            self.pairs[item_id][other] += 1
        seen.append(item_id)

    def top(self, item_id: str, k: int, exclude: set[str], fallback: list[str]) -> list[str]:
        """The k items most often seen with `item_id`, topped up from `fallback` (popularity order)."""
        pairs = self.pairs.get(item_id, {})
        ranked = heapq.nsmallest(k + len(exclude), pairs.items(), key=lambda entry: (-entry[1], entry[0]))
        out = [other for other, _ in ranked if other not in exclude][:k]
        chosen = set(out)
        out += [i for i in fallback if i not in exclude and i not in chosen][: k - len(out)]
        return out


@dataclass(frozen=True)
class Sample:
    """One replayed click and the item the user viewed next in the session (None: session ended)."""

    click: ClickEvent
    next_item_id: str | None


def build_index(
    catalog: list[CatalogItem], encoder: TextEncoder, device: torch.device, batch: int, progress: Progress
) -> ItemIndex:
    """Embed the catalog in batches and load it into an index on `device`."""
    index = ItemIndex(device, capacity=len(catalog))
    advance = progress("embedding catalog", len(catalog))
    for start in range(0, len(catalog), batch):
        chunk = catalog[start : start + batch]
        index.upsert([item.item_id for item in chunk], embed_items(chunk, encoder))
        advance(len(chunk))
    return index


def replay(
    samples: list[Sample],
    index: ItemIndex,
    config: EvalConfig,
    settings: RecsSettings,
    progress: Progress = _no_progress,
) -> dict[str, dict[str, float]]:
    """Replay the clicks and score the model and both baselines on every click that has a next item."""
    vectors = {item_id: index.vector(item_id).numpy() for item_id in index.ids}
    states: dict[str, UserState] = {}
    popularity = Popularity.from_settings(settings)
    cooccurrence = CoOccurrence()
    metrics = {method: Metrics() for method in METHODS}
    advance = progress("replaying clicks", len(samples))
    for start in range(0, len(samples), config.micro_batch):
        batch = samples[start : start + config.micro_batch]
        scored: list[tuple[Sample, UserState]] = []
        for sample in batch:
            click = sample.click
            state = update(states.get(click.user_id), click, vectors.get(click.item_id), settings)
            states[click.user_id] = state
            if sample.next_item_id is not None:
                scored.append((sample, state))
        model_lists = recommend([state for _, state in scored], index, popularity, config.k, settings)
        depth = config.k + settings.recent_items + settings.purchased_items
        ranked_popular = [item_id for item_id, _ in popularity.top(depth)]
        ranked_popular += [i for i in index.ids if i not in set(ranked_popular)][: depth - len(ranked_popular)]
        for (sample, state), model_list in zip(scored, model_lists, strict=True):
            excluded = state.excluded()
            truth = sample.next_item_id
            assert truth is not None
            metrics["model"].add([item_id for item_id, _ in model_list], truth)
            popular = [i for i in ranked_popular if i not in excluded][: config.k]
            metrics["popularity"].add(popular, truth)
            metrics["cooccurrence"].add(cooccurrence.top(sample.click.item_id, config.k, excluded, popular), truth)
        for sample in batch:  # the shared statistics learn from this micro-batch only after it was scored
            popularity.add(sample.click.item_id, sample.click.ts.timestamp())
            cooccurrence.add(sample.click.session_id, sample.click.item_id)
        advance(len(batch))
    return {method: metrics[method].as_dict() for method in METHODS}


@dataclass(frozen=True)
class EvalReport:
    """Figures of one evaluation run plus what it took."""

    results: dict[str, dict[str, float]]
    evaluated: int
    users: int
    unreachable: float  # share of next items the exclusion rule forbids (no method can hit them)
    timings: dict[str, float]


def unreachable_share(samples: list[Sample], settings: RecsSettings) -> float:
    """Share of scored clicks whose next item is in the user's excluded set."""
    states: dict[str, UserState] = {}
    total = blocked = 0
    for sample in samples:
        state = update(states.get(sample.click.user_id), sample.click, None, settings)
        states[sample.click.user_id] = state
        if sample.next_item_id is not None:
            total += 1
            blocked += sample.next_item_id in state.excluded()
    return blocked / max(total, 1)


def evaluate(
    config: EvalConfig,
    catalog: list[CatalogItem],
    samples: list[Sample],
    encoder: TextEncoder,
    device: torch.device,
    settings: RecsSettings,
    progress: Progress = _no_progress,
) -> EvalReport:
    """Embed, replay and score: the whole `lepton eval recs` run."""
    generated = time.perf_counter()
    index = build_index(catalog, encoder, device, config.embed_batch, progress)
    embedded = time.perf_counter()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # the replay's tensors are small: extra threads only add contention
    try:
        results = replay(samples, index, config, settings, progress)
    finally:
        torch.set_num_threads(threads)
    replayed = time.perf_counter()
    return EvalReport(
        results=results,
        evaluated=sum(sample.next_item_id is not None for sample in samples),
        users=len({sample.click.user_id for sample in samples}),
        unreachable=round(unreachable_share(samples, settings), 4),
        timings={
            "embed_s": round(embedded - generated, 2),
            "replay_s": round(replayed - embedded, 2),
        },
    )
