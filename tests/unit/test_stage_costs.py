"""`lepton bench fraud --steps`: the fraud stages' own steps timed in one process, every transaction documented."""

from __future__ import annotations

import pytest

from streams.tools import stage_costs


def test_every_step_is_timed_per_payment_for_each_batch_size() -> None:
    result = stage_costs.run(300, batches=(100, 7))  # raises unless every transaction got its document
    assert result["transactions"] == 300 and result["batch_sizes"] == [100, 7]
    per_step = [result[f"{step} (us)"] for step in stage_costs.STEPS]
    assert all(len(figures) == 2 and all(us > 0 for us in figures) for figures in per_step)
    for size, total in enumerate(result["total_us_per_payment"]):
        assert total == pytest.approx(sum(figures[size] for figures in per_step), abs=1.0)  # each rounded to 0.1
    # a model call per batch: batches of 7 pay for it 14 times as often as batches of 100
    model = result["model and reasons (us)"]
    assert model[1] > model[0]


def test_the_clock_sums_every_timed_block_of_a_step() -> None:
    clock = stage_costs.StepClock()
    for _ in range(3):
        with clock("card decode"):
            sum(range(10_000))
    assert clock.seconds["card decode"] > 0
    assert set(clock.seconds) == set(stage_costs.STEPS) and clock.seconds["model and reasons"] == 0
    with pytest.raises(ZeroDivisionError), clock("merchant decode"):
        1 / 0  # noqa: B018 - a failing step is still timed
    assert clock.seconds["merchant decode"] > 0
