"""Offline evaluation of next-item recommendations on a click log (a shop's own files or generated data).

The protocol (also in `lepton eval recs --help` and docs/models.md):
- clicks are replayed in event-time order; every click event whose session has a later `view` is a query, and its
  truth is the item of the session's next `view` (a repeat of an item seen earlier in the session counts);
- at a query a method has seen the query click and every click before it, nothing after. Each user's and session's
  own state follows click by click; shared statistics (item statistics, counts, past sessions) learn from a
  micro-batch of clicks only after it was ranked, as the pipeline does, identically for every method;
- every method ranks the items live in the catalog at the start of the micro-batch (a catalog record's `updated_at`
  is when it takes effect; without one, from the start) and never recommends the item of the query click or an item
  the user bought (the last `purchased_items`); a truth that is excluded or not live is counted as unreachable;
- HitRate@K, NDCG@K and MRR@K are averaged over all queries, for the model and the baselines of the same run.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import torch

from models.item_index import ItemIndex, TextEncoder, embed_items
from models.item_stats import Delta, ItemStats, StatsView, compact, fold, merge
from models.recs import Scorer, UserState, click_deltas, update
from models.recs_baselines import Catalog, CoOccurrence, Popularity, Query, SessionKNN
from streams.core.errors import LeptonError
from streams.core.events import CatalogItem, ClickEvent
from streams.core.settings import RecsSettings

Progress = Callable[[str, int | None], Callable[[int], None]]
METHODS = ("model", "popularity", "cooccurrence", "sknn")


class EvalDataError(LeptonError):
    """A click log or catalog cannot be evaluated as given."""


def _no_progress(description: str, total: int | None) -> Callable[[int], None]:
    return lambda n: None


@dataclass
class Metrics:
    """Running HitRate@K, NDCG@K and MRR@K of one method."""

    hits: float = 0.0
    gain: float = 0.0
    reciprocal: float = 0.0
    count: int = 0

    def add(self, ranked: Sequence[str], truth: str) -> None:
        """Score one ranked list against the next viewed item."""
        self.count += 1
        if truth in ranked:
            rank = list(ranked).index(truth) + 1
            self.hits += 1
            self.gain += 1 / math.log2(rank + 1)
            self.reciprocal += 1 / rank

    def as_dict(self, k: int) -> dict[str, float]:
        n = max(self.count, 1)
        return {f"hit_rate_at_{k}": round(self.hits / n, 4), f"ndcg_at_{k}": round(self.gain / n, 4),
                f"mrr_at_{k}": round(self.reciprocal / n, 4)}


class Method(Protocol):
    """What the protocol drives: see each click in order, rank a micro-batch of queries, then learn from it."""

    name: str

    def observe(self, click: ClickEvent) -> None: ...

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]: ...

    def learn(self, clicks: Iterable[ClickEvent]) -> None: ...


class ModelMethod:
    """The recommender exactly as the pipeline runs it: user state per click, item statistics per micro-batch."""

    name = "model"

    def __init__(self, index: ItemIndex, catalog: Catalog, settings: RecsSettings) -> None:
        self.index, self.catalog, self.settings = index, catalog, settings
        self.view = StatsView()
        self.scorer = Scorer(index, self.view, settings)
        self.store: dict[str, ItemStats] = {}
        self.states: dict[str, UserState] = {}
        self.vectors = {item_id: index.vector(item_id) for item_id in index.ids}
        self.snapshots: list[UserState] = []
        self.deltas: list[Delta] = []
        self.position = 0  # the replay's own offset, so deltas carry a position like the pipeline's

    def observe(self, click: ClickEvent) -> None:
        """Fold the click into its user's state (kept for the query) and collect its item-statistic deltas."""
        before = self.states.get(click.user_id)
        self.deltas += click_deltas(before, click, 0, self.position, self.settings)
        self.position += 1
        self.states[click.user_id] = update(before, click, self.vectors.get(click.item_id), self.settings)
        self.snapshots.append(self.states[click.user_id])

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
        live = torch.tensor([item_id in self.catalog.live for item_id in self.index.ids], dtype=torch.bool)
        ranked = self.scorer.recommend(self.snapshots, k, live, [query.excluded for query in queries])
        self.snapshots = []
        return [[item_id for item_id, _ in items] for items in ranked]

    def learn(self, clicks: Iterable[ClickEvent]) -> None:
        """Fold the micro-batch's deltas into item statistics and publish them to the view (the item-stats stage)."""
        for item_id, deltas in merge(self.deltas).items():
            stats, _ = fold(self.store.get(item_id), item_id, deltas, self.settings)
            self.store[item_id] = stats
            self.view.put(compact(stats, self.settings))
        self.deltas = []


@dataclass(frozen=True)
class EvalReport:
    """The figures of one run, per method, with the counts and what it took."""

    results: dict[str, dict[str, float]]
    counts: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, float] | dict[str, int]]:
        return {**self.results, "counts": self.counts}


class Timeline:
    """When catalog records take effect: items go live at their record's `updated_at` and leave when deleted."""

    def __init__(self, records: Sequence[CatalogItem], catalog: Catalog) -> None:
        dated = sorted(records, key=lambda r: r.updated_at.timestamp() if r.updated_at else -math.inf)
        self.times = [r.updated_at.timestamp() if r.updated_at else -math.inf for r in dated]
        self.records, self.catalog, self.next = dated, catalog, 0

    def advance(self, until: float) -> None:
        """Apply every record stamped at or before `until`."""
        stop = bisect.bisect_right(self.times, until)
        for record in self.records[self.next:stop]:
            (self.catalog.live.discard if record.deleted else self.catalog.live.add)(record.item_id)
        self.next = max(self.next, stop)


def build_index(records: Sequence[CatalogItem], encoder: TextEncoder, device: torch.device, batch: int,
                progress: Progress) -> ItemIndex:
    """Every item that is ever live, embedded from its last live record, in an index on `device`."""
    latest = {r.item_id: r for r in records if not r.deleted}
    items = list(latest.values())
    if not items:
        raise EvalDataError("the catalog has no live item")
    index = ItemIndex(device, capacity=len(items))
    advance = progress("embedding catalog", len(items))
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        index.upsert([item.item_id for item in chunk], embed_items(chunk, encoder))
        advance(len(chunk))
    return index


def _batches(clicks: Iterable[ClickEvent], size: int) -> Iterator[list[ClickEvent]]:
    """Consecutive micro-batches; refuses clicks out of event-time order."""
    batch: list[ClickEvent] = []
    last: datetime | None = None
    for click in clicks:
        if last is not None and click.ts < last:
            raise EvalDataError(f"clicks must be in event-time order: {click.id} at {click.ts.isoformat()} comes after "
                                f"an event at {last.isoformat()} (sort the file by ts)")
        last = click.ts
        batch.append(click)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def standard_methods(index: ItemIndex, catalog: Catalog, settings: RecsSettings) -> list[Method]:
    """The model and the three baselines, sharing one popularity count (the baselines' top-up order)."""
    popularity = Popularity(catalog)
    return [ModelMethod(index, catalog, settings), popularity, CoOccurrence(popularity), SessionKNN(popularity)]


def replay(clicks: Iterable[ClickEvent], records: Sequence[CatalogItem], index: ItemIndex | None,
           settings: RecsSettings, k: int = 10, micro_batch: int = 256, progress: Progress = _no_progress,
           total: int | None = None, methods: Callable[[Catalog], list[Method]] | None = None) -> EvalReport:
    """Run the protocol: the model and the baselines (or `methods(catalog)`) rank every click, each scored against the
    session's next view."""
    catalog = Catalog([r.item_id for r in records if not r.deleted])
    timeline = Timeline(records, catalog)
    if methods is not None:
        chosen = methods(catalog)
    else:
        assert index is not None, "the model needs the item index"
        chosen = standard_methods(index, catalog, settings)
    metrics = {method.name: Metrics() for method in chosen}
    sessions: dict[str, list[str]] = {}
    purchased: dict[str, list[str]] = {}
    pending: dict[str, list[tuple[frozenset[str], list[list[str]]]]] = {}
    counts = {"events": 0, "queries": 0, "unreachable": 0}
    advance = progress("replaying clicks", total)
    for batch in _batches(clicks, micro_batch):
        timeline.advance(batch[0].ts.timestamp())
        queries = []
        for click in batch:
            session = sessions.setdefault(click.session_id, [])
            session.append(click.item_id)
            if click.action == "purchase":
                bought = [i for i in purchased.get(click.user_id, []) if i != click.item_id] + [click.item_id]
                purchased[click.user_id] = bought[-settings.purchased_items:] if settings.purchased_items else []
            queries.append(Query(click, tuple(session), frozenset({click.item_id, *purchased.get(click.user_id, [])})))
            for method in chosen:
                method.observe(click)
        ranked = [method.rank(queries, k) for method in chosen]
        for position, (click, query) in enumerate(zip(batch, queries, strict=True)):
            if click.action == "view":
                for excluded, lists in pending.pop(click.session_id, []):
                    counts["queries"] += 1
                    counts["unreachable"] += click.item_id in excluded or click.item_id not in catalog.live
                    for method, items in zip(chosen, lists, strict=True):
                        metrics[method.name].add(items, click.item_id)
            pending.setdefault(click.session_id, []).append((query.excluded, [r[position] for r in ranked]))
        for method in chosen:
            method.learn(batch)
        counts["events"] += len(batch)
        advance(len(batch))
    return EvalReport({name: m.as_dict(k) for name, m in metrics.items()}, counts)


def evaluate(records: Sequence[CatalogItem], clicks: Iterable[ClickEvent], encoder: TextEncoder, device: torch.device,
             settings: RecsSettings, k: int = 10, micro_batch: int = 256, embed_batch: int = 64,
             progress: Progress = _no_progress, total: int | None = None) -> EvalReport:
    """Embed the catalog, then replay the clicks (`total` of them, when known): the whole `lepton eval recs` run."""
    began = time.perf_counter()
    index = build_index(records, encoder, device, embed_batch, progress)
    embedded = time.perf_counter()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # the replay's tensors are small: extra threads only add contention
    try:
        report = replay(clicks, records, index, settings, k, micro_batch, progress, total)
    finally:
        torch.set_num_threads(threads)
    return EvalReport(report.results, report.counts, {"embed_s": round(embedded - began, 2),
                                                       "replay_s": round(time.perf_counter() - embedded, 2)})

