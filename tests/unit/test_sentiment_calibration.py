"""Temperature scaling, reliability figures and the negative threshold, on synthetic logits with a known answer."""

from __future__ import annotations

import pytest
import torch

from models.sentiment_calibration import (
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    negative_threshold,
    reliability,
    uncalibrated,
)


def sampled(n: int, temperature: float, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """Logits whose labels are drawn from softmax(logits / temperature): that temperature is the calibrated one."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 3, generator=generator) * 4
    labels = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator).squeeze(1)
    return logits, labels.tolist()


@pytest.mark.parametrize("true_temperature", [0.7, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_the_labels_were_drawn_with(true_temperature: float) -> None:
    logits, labels = sampled(20_000, true_temperature)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.06)


def test_temperature_scaling_lowers_the_calibration_error_of_overconfident_logits() -> None:
    logits, labels = sampled(5_000, 2.5, seed=1)
    raw = torch.softmax(logits, dim=-1)
    scaled = torch.softmax(logits / fit_temperature(logits, labels), dim=-1)
    assert expected_calibration_error(scaled, labels) < 0.03 < expected_calibration_error(raw, labels)
    assert calibration_report(scaled, labels, None)["nll"] < calibration_report(raw, labels, None)["nll"]


def test_reliability_bins_count_every_text_once() -> None:
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.34, 0.33, 0.33], [0.2, 0.75, 0.05], [0.1, 0.15, 0.75]])
    rows = reliability(probs, [0, 1, 1, 2])
    assert sum(r["n"] for r in rows) == 4
    assert [r["bin"] for r in rows] == ["0.3-0.4", "0.7-0.8", "0.9-1.0"]  # 1.0 lands in the last bin
    assert rows[0] == {"bin": "0.3-0.4", "n": 1, "confidence": 0.34, "accuracy": 0.0}
    assert rows[1]["n"] == 2 and rows[1]["accuracy"] == 1.0


def test_uncalibrated_undoes_the_temperature() -> None:
    logits = torch.randn(50, 3)
    torch.testing.assert_close(uncalibrated(torch.softmax(logits / 1.7, dim=-1), 1.7), torch.softmax(logits, dim=-1))


def test_negative_threshold_is_the_best_f1_cut_on_p_bearish() -> None:
    # Bearish texts have P(bearish) 0.3-0.9; the rest at most 0.25: any cut in (0.25, 0.30] catches all and only them.
    p_bearish = [0.3, 0.45, 0.6, 0.9, 0.05, 0.1, 0.2, 0.25]
    probs = torch.tensor([[p, (1 - p) / 2, (1 - p) / 2] for p in p_bearish])
    labels = [0, 0, 0, 0, 2, 1, 2, 2]
    threshold = negative_threshold(probs, labels)
    assert threshold == 0.26  # the lowest of the tied best cuts on the grid
    report = calibration_report(probs, labels, threshold)["negative"]
    assert (report["precision"], report["recall"], report["flagged"], report["bearish"]) == (1.0, 1.0, 4, 4)
