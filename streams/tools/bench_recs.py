"""`lepton bench recs`: the recommender's model path, batched against one at a time, on the same data in one run.

It runs in-process, without Kafka or the search engine: it measures the model path a worker runs (the shared
encoder behind a DynamicBatcher, and `recommend` against the whole item index), not the transport; the
fraud and sentiment benches cover the pipeline around it. The data are the catalog and clicks of
`lepton eval recs --seed N`. (1) Catalog items embedded per second: micro-batches of `take_max` items
submitted one after another (as the catalog agent does) to a batcher at the configured batch size, against
one item per submission to a batcher of size 1. (2) Users recommended per second: one `Scorer.recommend` call per
micro-batch of `take_max` users (as the clicks agent does), against one call per user, with the item statistics
of the whole replay. Each side warms up
first (a few calls). Ratios against the baseline measured in the same run are what to compare across machines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console

from streams.core.settings import BatchingSettings, RecsSettings, get_settings

if TYPE_CHECKING:
    import torch

    from models.item_index import ItemIndex, TextEncoder
    from models.recs import Scorer, UserState
    from streams.core.events import CatalogItem, ClickEvent

console = Console(stderr=True)
WARM_UP = 16  # items embedded before the clock starts, on each side


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """`items` cut into consecutive lists of at most `size`."""
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


async def embed_rate(encoder: TextEncoder, items: list[CatalogItem], batch_size: int, per_submit: int,
                     max_wait_ms: float) -> tuple[float, list[torch.Tensor]]:
    """Items per second embedded through a DynamicBatcher, submissions of `per_submit` awaited in turn."""
    from models.batcher import DynamicBatcher
    from models.item_index import embed_items

    batcher: DynamicBatcher[CatalogItem, torch.Tensor] = DynamicBatcher(
        lambda batch: list(embed_items(batch, encoder)), name="bench-encoder", max_batch_size=batch_size,
        max_wait_ms=max_wait_ms)
    await batcher.start()
    try:
        for chunk in chunks(items[:max(per_submit, WARM_UP)], per_submit):  # warm-up (a new model thread)
            await batcher.submit(chunk)
        vectors: list[torch.Tensor] = []
        started = time.perf_counter()
        for chunk in chunks(items, per_submit):
            vectors += await batcher.submit(chunk)
        return len(items) / (time.perf_counter() - started), vectors
    finally:
        await batcher.stop()


def interests(clicks: list[ClickEvent], index: ItemIndex, recs: RecsSettings) -> tuple[list[UserState], Scorer]:
    """Every user's state and a scorer over the item statistics after replaying the clicks (untimed set-up)."""
    from models.item_stats import ItemStats, StatsView, compact, fold, merge
    from models.recs import Scorer, click_deltas, update

    vectors = {item_id: index.vector(item_id) for item_id in index.ids}
    states: dict[str, UserState] = {}
    deltas = []
    for offset, click in enumerate(clicks):
        deltas += click_deltas(states.get(click.user_id), click, 0, offset, recs)
        states[click.user_id] = update(states.get(click.user_id), click, vectors.get(click.item_id), recs)
    view, store = StatsView(), dict[str, ItemStats]()
    for item_id, mine in merge(deltas).items():
        store[item_id], _ = fold(None, item_id, mine, recs)
        view.put(compact(store[item_id], recs))
    return list(states.values()), Scorer(index, view, recs)


def recommend_rate(states: list[UserState], scorer: Scorer, per_call: int) -> float:
    """Users per second of `Scorer.recommend` called on consecutive groups of `per_call` users."""
    groups = chunks(states, per_call)
    scorer.recommend(groups[0])  # warm-up
    started = time.perf_counter()
    for users in groups:
        scorer.recommend(users)
    return len(states) / (time.perf_counter() - started)


def measure(encoder: TextEncoder, device: torch.device, catalog: list[CatalogItem], clicks: list[ClickEvent],
            batching: BatchingSettings, recs: RecsSettings) -> dict[str, float]:
    """Both rates, batched and one at a time, and their ratios, on the same catalog and users."""
    import torch

    from models.item_index import ItemIndex

    per_submit = batching.take_max
    console.print(f"embedding {len(catalog)} items: batches of {batching.max_batch_size}, then one at a time...")
    batched, vectors = asyncio.run(
        embed_rate(encoder, catalog, batching.max_batch_size, per_submit, batching.max_wait_ms))
    unbatched, _ = asyncio.run(embed_rate(encoder, catalog, 1, 1, batching.max_wait_ms))
    index = ItemIndex(device, capacity=len(catalog))
    index.upsert([item.item_id for item in catalog], torch.stack(vectors))
    states, scorer = interests(clicks, index, recs)
    console.print(f"recommending for {len(states)} users: {per_submit} per call, then one per call...")
    users = recommend_rate(states, scorer, per_submit)
    users_unbatched = recommend_rate(states, scorer, 1)
    return {
        "items_embedded_per_s": round(batched, 1), "items_embedded_unbatched_per_s": round(unbatched, 1),
        "embed_batched_vs_unbatched": round(batched / unbatched, 3),
        "users_recommended_per_s": round(users, 1), "users_recommended_unbatched_per_s": round(users_unbatched, 1),
        "recommend_batched_vs_unbatched": round(users / users_unbatched, 3),
        "items": len(catalog), "users": len(states), "batch_size": batching.max_batch_size,
        "per_call": per_submit,
    }


def run(seed: int = 7, items: int = 500, users: int = 1000, events: int = 20_000, device: str = "auto"
        ) -> dict[str, Any]:
    """Items embedded and users recommended per second, batched vs one at a time, in one run (in-process)."""
    from models.batcher import resolve_device
    from models.encoder import get_encoder
    from streams.tools.generated_data import shop_data

    settings = get_settings()
    target = resolve_device(device)
    catalog, stream = shop_data(seed, items, users, events)
    encoder = get_encoder(str(target))
    result: dict[str, Any] = measure(encoder, target, catalog, list(stream), settings.batching, settings.recs)
    result["device"] = str(target)
    return result
