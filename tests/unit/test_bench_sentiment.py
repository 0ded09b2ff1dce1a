"""`lepton bench sentiment` reports the round whose pipeline_vs_raw is the median, and how the cores were shared."""

from __future__ import annotations

import pytest

from streams.tools import bench_sentiment as bench
from streams.tools import core_shares
from streams.tools.bench_sentiment import median_round, news_indices
from streams.tools.core_shares import CoreShares


def test_the_round_with_the_median_ratio_stands_for_the_run() -> None:
    rounds = [(200.0, 180.0, 30.0), (300.0, 150.0, 30.0), (250.0, 175.0, 30.0)]  # ratios 0.9, 0.5, 0.7
    assert median_round(rounds) == (250.0, 175.0, 30.0)
    assert median_round(rounds[:2]) == (300.0, 150.0, 30.0)  # an even count: the lower middle one
    assert median_round(rounds[:1]) == rounds[0]


def test_core_shares_split_the_host_cores_between_worker_stack_others_and_idle(monkeypatch) -> None:
    readings = {1: [10.0, 13.2], 2: [5.0, 5.4], 3: [2.0, 2.1]}  # worker, search, broker: CPU seconds before/after
    host = [100.0, 104.0]  # host busy seconds before/after: 4 of the 2 cores x 2 s
    monkeypatch.setattr(core_shares, "cpu_seconds", lambda pid: readings[pid].pop(0))
    monkeypatch.setattr(core_shares, "host_busy_seconds", lambda: host.pop(0))
    monkeypatch.setattr(core_shares.os, "cpu_count", lambda: 2)
    shares = CoreShares({"worker": 1, "search": 2, "broker": 3, "absent": None})
    shares.start()
    cores = shares.over(elapsed_s=2.0)
    assert cores == pytest.approx({"worker": 1.6, "search": 0.2, "broker": 0.05, "other": 0.15, "idle": 0.0})
    assert sum(cores.values()) == pytest.approx(2.0)


def test_the_runs_indices_are_the_months_of_its_headlines() -> None:
    records = [{"published_at": "2026-11-30T23:59:59+00:00"}, {"published_at": "2026-12-01T00:00:01+00:00"},
               {"published_at": "2026-11-02T08:00:00+00:00"}]
    assert news_indices("lepton-benchx", records) == {"lepton-benchx-news-2026.11", "lepton-benchx-news-2026.12"}


@pytest.mark.parametrize(("stack_cores", "most", "chunks"), [
    ([1.0, 0.5, 0.47, 0.46], 40_000, 3),  # settles at the third chunk: within 10% of the second
    ([1.0, 0.8, 0.6, 0.4, 0.3, 0.2], 40_000, 5),  # never settles: 40,000 headlines at most
    ([1.0, 0.5, 0.47], 12_000, 2),  # a smaller bound: 8,000 and then 4,000
    ([0.0, 0.0, 0.0], 40_000, 2),  # no local stack to measure: two chunks
])
def test_the_warm_up_runs_until_the_stacks_cpu_per_headline_settles(
        monkeypatch, stack_cores: list[float], most: int, chunks: int) -> None:
    sizes: list[int] = []

    def run(settings, records, batched, device):  # 1,000 headlines/s; search and broker share the stack's CPU
        sizes.append(len(records))
        cores = stack_cores[len(sizes) - 1]
        return 1000.0, {"worker": 1.5, "search": cores * 0.75, "broker": cores * 0.25}

    monkeypatch.setattr(bench, "pipeline_rate", run)
    monkeypatch.setattr(bench, "headlines", lambda count, seed=1: [{}] * count)
    costs = bench.warm_up(None, most, "cpu")
    assert len(costs) == len(sizes) == chunks
    assert costs == pytest.approx(stack_cores[:chunks])  # cores per 1,000 headlines/s = ms per headline
    assert sum(sizes) <= most and all(size <= bench.WARMUP_CHUNK for size in sizes)
