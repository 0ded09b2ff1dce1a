"""`lepton bench sentiment` reports the round whose pipeline_vs_raw is the median, and how the cores were shared."""

from __future__ import annotations

import pytest

from streams import bench
from streams.bench import CoreShares, median_round, news_indices


def test_the_round_with_the_median_ratio_stands_for_the_run() -> None:
    rounds = [(200.0, 180.0, 30.0), (300.0, 150.0, 30.0), (250.0, 175.0, 30.0)]  # ratios 0.9, 0.5, 0.7
    assert median_round(rounds) == (250.0, 175.0, 30.0)
    assert median_round(rounds[:2]) == (300.0, 150.0, 30.0)  # an even count: the lower middle one
    assert median_round(rounds[:1]) == rounds[0]


def test_core_shares_split_the_host_cores_between_worker_stack_others_and_idle(monkeypatch) -> None:
    readings = {1: [10.0, 13.2], 2: [5.0, 5.4], 3: [2.0, 2.1]}  # worker, search, broker: CPU seconds before/after
    host = [100.0, 104.0]  # host busy seconds before/after: 4 of the 2 cores x 2 s
    monkeypatch.setattr(bench, "cpu_seconds", lambda pid: readings[pid].pop(0))
    monkeypatch.setattr(bench, "host_busy_seconds", lambda: host.pop(0))
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    shares = CoreShares({"worker": 1, "search": 2, "broker": 3, "absent": None})
    shares.start()
    cores = shares.over(elapsed_s=2.0)
    assert cores == pytest.approx({"worker": 1.6, "search": 0.2, "broker": 0.05, "other": 0.15, "idle": 0.0})
    assert sum(cores.values()) == pytest.approx(2.0)


def test_the_runs_indices_are_the_months_of_its_headlines() -> None:
    records = [{"published_at": "2026-11-30T23:59:59+00:00"}, {"published_at": "2026-12-01T00:00:01+00:00"},
               {"published_at": "2026-11-02T08:00:00+00:00"}]
    assert news_indices("lepton-benchx", records) == {"lepton-benchx-news-2026.11", "lepton-benchx-news-2026.12"}
