"""`lepton bench sentiment` reports the round whose pipeline_vs_raw is the median."""

from __future__ import annotations

from streams.bench import median_round


def test_the_round_with_the_median_ratio_stands_for_the_run() -> None:
    rounds = [(200.0, 180.0, 30.0), (300.0, 150.0, 30.0), (250.0, 175.0, 30.0)]  # ratios 0.9, 0.5, 0.7
    assert median_round(rounds) == (250.0, 175.0, 30.0)
    assert median_round(rounds[:2]) == (300.0, 150.0, 30.0)  # an even count: the lower middle one
    assert median_round(rounds[:1]) == rounds[0]
