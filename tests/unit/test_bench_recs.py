"""`lepton bench recs` on a tiny catalog with the fake encoder: both sides see the same data, figures are sane."""

from __future__ import annotations

import itertools

import torch

from streams.core.settings import BatchingSettings, RecsSettings
from streams.tools.bench_recs import chunks, measure
from streams.tools.generated_data import shop_data
from tests.unit.recs_fakes import FakeEncoder

KEYS = {"items_embedded_per_s", "items_embedded_unbatched_per_s", "embed_batched_vs_unbatched",
        "users_recommended_per_s", "users_recommended_unbatched_per_s", "recommend_batched_vs_unbatched"}


def test_chunks_cover_everything_in_order() -> None:
    assert chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(itertools.chain(*chunks(list(range(64)), 8))) == list(range(64))


def test_measure_reports_both_rates_and_ratios_on_the_same_data() -> None:
    catalog, stream = shop_data(seed=3, items=40, users=20, events=300)
    clicks = list(stream)
    encoder = FakeEncoder()
    batching = BatchingSettings(max_batch_size=8, max_wait_ms=1.0, take_max=16)
    result = measure(encoder, torch.device("cpu"), catalog, clicks, batching, RecsSettings())
    assert set(result) >= KEYS
    assert all(result[key] > 0 for key in KEYS)
    assert result["items"] == 40
    assert result["users"] == len({click.user_id for click in clicks})
    # batched: warm-up + 40 items in batches of at most 8; one at a time: warm-up + 40 single calls
    assert encoder.calls >= 1 + 40 // 8 + 1 + 40
