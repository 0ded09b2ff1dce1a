"""`lepton bench recs`: the recommender's model path, batched against one at a time, on the same data in one run.

It runs in-process, without Kafka or the search engine: it measures the model path a worker runs (the shared
encoder behind a DynamicBatcher, and `recommend` against the whole item index), not the transport; the
fraud and sentiment benches cover the pipeline around it. The data are the catalog and sessions of
`lepton eval recs --seed N`. (1) Catalog items embedded per second: micro-batches of `take_max` items
submitted one after another (as the catalog agent does) to a batcher at the configured batch size, against
one item per submission to a batcher of size 1. (2) Users recommended per second: one `recommend` call per
micro-batch of `take_max` users (as the clicks agent does), against one call per user. Each side warms up
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
    from models.recs import Popularity, UserState
    from models.recs_eval import Sample
    from streams.core.events import CatalogItem

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


def interests(samples: list[Sample], index: ItemIndex, recs: RecsSettings) -> tuple[list[UserState], Popularity]:
    """Every user's interest state and the popularity prior after replaying the clicks (untimed set-up)."""
    from models.recs import Popularity, update

    vectors = {item_id: index.vector(item_id) for item_id in index.ids}
    states: dict[str, UserState] = {}
    popularity = Popularity.from_settings(recs)
    for sample in samples:
        click = sample.click
        states[click.user_id] = update(states.get(click.user_id), click, vectors.get(click.item_id), recs)
        popularity.add(click.item_id, click.ts.timestamp())
    return list(states.values()), popularity


def recommend_rate(states: list[UserState], index: ItemIndex, popularity: Popularity, per_call: int,
                   recs: RecsSettings) -> float:
    """Users per second of `recommend` called on consecutive groups of `per_call` users."""
    from models.recs import recommend

    groups = chunks(states, per_call)
    recommend(groups[0], index, popularity, settings=recs)  # warm-up
    started = time.perf_counter()
    for users in groups:
        recommend(users, index, popularity, settings=recs)
    return len(states) / (time.perf_counter() - started)


def measure(encoder: TextEncoder, device: torch.device, catalog: list[CatalogItem], samples: list[Sample],
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
    states, popularity = interests(samples, index, recs)
    console.print(f"recommending for {len(states)} users: {per_submit} per call, then one per call...")
    users = recommend_rate(states, index, popularity, per_submit, recs)
    users_unbatched = recommend_rate(states, index, popularity, 1, recs)
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
    from models.recs_eval import EvalConfig
    from streams.tools.generated_data import shop_sessions

    settings = get_settings()
    target = resolve_device(device)
    catalog, samples = shop_sessions(EvalConfig(seed=seed, n_items=items, n_users=users, n_events=events))
    encoder = get_encoder(str(target))
    result: dict[str, Any] = measure(encoder, target, catalog, samples, settings.batching, settings.recs)
    result["device"] = str(target)
    return result
