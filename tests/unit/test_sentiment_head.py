"""The head's shapes and pooling, label order and the score arithmetic, with a tiny random transformer layer."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from models.sentiment import LABELS, SentimentHead, results_from_probabilities


def tiny_head() -> SentimentHead:
    config = BertConfig(hidden_size=8, num_attention_heads=2, intermediate_size=16)
    torch.manual_seed(0)
    return SentimentHead([BertLayer(config)], hidden_size=8).eval()


def test_labels_follow_the_dataset_ids() -> None:
    assert LABELS == ("bearish", "bullish", "neutral")  # CSV labels: 0 bearish, 1 bullish, 2 neutral


def test_result_label_probabilities_and_score() -> None:
    probs = torch.tensor([[0.7, 0.1, 0.2], [0.05, 0.9, 0.05], [0.2, 0.2, 0.6]])
    bearish, bullish, neutral = results_from_probabilities(probs, "m", "1.0.0")
    assert (bearish.label, bullish.label, neutral.label) == ("bearish", "bullish", "neutral")
    assert bearish.score == pytest.approx(-0.6)
    assert bullish.score == pytest.approx(0.85)
    assert neutral.score == pytest.approx(0.0)
    assert bearish.probabilities == pytest.approx({"bearish": 0.7, "bullish": 0.1, "neutral": 0.2})
    assert (bullish.model, bullish.version) == ("m", "1.0.0")
    assert set(bullish.to_dict()) == {"label", "probabilities", "score", "model", "version", "negative",
                                      "negative_threshold"}
    assert [r.negative for r in (bearish, bullish, neutral)] == [True, False, False]  # no threshold: the top label


def test_negative_is_p_bearish_at_or_above_the_threshold_whatever_the_top_label() -> None:
    probs = torch.tensor([[0.35, 0.05, 0.6], [0.34, 0.33, 0.33], [0.3, 0.1, 0.6]])
    results = results_from_probabilities(probs, "m", "v", negative_threshold=0.34)
    assert [(r.label, r.negative) for r in results] == [("neutral", True), ("bearish", True), ("neutral", False)]
    assert {r.negative_threshold for r in results} == {0.34}


def test_score_stays_within_bounds() -> None:
    probs = torch.softmax(torch.randn(100, 3) * 10, dim=-1)
    assert all(-1.0 <= r.score <= 1.0 for r in results_from_probabilities(probs, "m", "v"))


def test_head_gives_three_logits_and_ignores_padding() -> None:
    head = tiny_head()
    hidden = torch.randn(1, 4, 8)
    padded = torch.cat([hidden, torch.randn(1, 3, 8)], dim=1)
    with torch.no_grad():
        short = head(hidden, torch.ones(1, 4, dtype=torch.long))
        long = head(padded, torch.tensor([[1, 1, 1, 1, 0, 0, 0]]))
    assert short.shape == (1, 3)
    torch.testing.assert_close(short, long, atol=1e-5, rtol=1e-5)
