"""Metrics in dataset label order, and the CSV/JSONL readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.sentiment_data import iter_records, read_labelled_csv
from models.sentiment_fit import stratified_split
from models.sentiment_metrics import classification_metrics, metrics_from_confusion
from streams.core.errors import ConfigurationError


def test_metrics_confusion_rows_are_true_labels() -> None:
    metrics = classification_metrics([0, 0, 1, 2], [0, 2, 1, 2])
    assert metrics["confusion"] == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert metrics["accuracy"] == 0.75
    assert metrics["n"] == 4
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, abs=1e-4)


# A hand-made confusion matrix (rows true, columns predicted: bearish, bullish, neutral) and its figures by hand.
CONFUSION = [[30, 5, 15], [0, 40, 10], [10, 10, 180]]
BY_HAND = {  # precision = tp / column sum, recall = tp / row sum, F1 = 2pr / (p + r)
    "bearish": (30 / 40, 30 / 50, 2 * 30 / (40 + 50), 50),
    "bullish": (40 / 55, 40 / 50, 2 * 40 / (55 + 50), 50),
    "neutral": (180 / 205, 180 / 200, 2 * 180 / (205 + 200), 200),
}


def test_metrics_of_a_hand_made_confusion_matrix() -> None:
    metrics = metrics_from_confusion(CONFUSION)
    assert metrics["n"] == 300 and metrics["confusion"] == CONFUSION
    assert metrics["accuracy"] == pytest.approx(250 / 300, abs=1e-4)
    for name, (precision, recall, f1, support) in BY_HAND.items():
        got = metrics["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((precision, recall, f1), abs=1e-4)
        assert got["support"] == support
    f1s = [BY_HAND[name][2] for name in ("bearish", "bullish", "neutral")]
    assert metrics["macro_f1"] == pytest.approx(sum(f1s) / 3, abs=1e-4)
    assert metrics["weighted_f1"] == pytest.approx((50 * f1s[0] + 50 * f1s[1] + 200 * f1s[2]) / 300, abs=1e-4)


def test_metrics_agree_with_scikit_learn_and_handle_a_class_never_predicted() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    truth = [row for row, counts in enumerate(CONFUSION) for col, n in enumerate(counts) for _ in range(n)]
    predicted = [col for counts in CONFUSION for col, n in enumerate(counts) for _ in range(n)]
    metrics = classification_metrics(truth, predicted)
    assert metrics["confusion"] == CONFUSION
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-4)
    for average in ("macro", "weighted"):
        assert metrics[f"{average}_f1"] == pytest.approx(f1_score(truth, predicted, average=average), abs=1e-4)
    never_bullish = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2])
    assert never_bullish["per_class"]["bullish"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert never_bullish["weighted_f1"] == pytest.approx((1 * 1.0 + 2 * 0.8) / 4, abs=1e-4)


def test_read_labelled_csv_and_bad_label(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text('text,label\n"Stocks rally, again",1\nFlat day,2\n')
    rows = read_labelled_csv(good)
    assert rows.texts == ["Stocks rally, again", "Flat day"] and rows.labels == [1, 2]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nSomething,positive\n")
    with pytest.raises(ConfigurationError, match="label must be"):
        read_labelled_csv(bad)


def test_iter_records_csv_and_jsonl(tmp_path: Path) -> None:
    csv_file = tmp_path / "in.csv"
    csv_file.write_text("id,text\na1,Up we go\n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"id": 7, "headline": "Down we go"}) + "\n\n")
    assert [t for _, t in iter_records(csv_file)] == ["Up we go"]
    assert [(r["id"], t) for r, t in iter_records(jsonl)] == [(7, "Down we go")]
    with pytest.raises(ConfigurationError):
        list(iter_records(tmp_path / "in.txt"))


def test_stratified_split_keeps_label_shares_and_is_seeded() -> None:
    labels = [0] * 100 + [1] * 200 + [2] * 700
    train, dev = stratified_split(labels, 0.1, seed=1)
    assert sorted(train + dev) == list(range(1000))
    assert [sum(labels[i] == k for i in dev) for k in (0, 1, 2)] == [10, 20, 70]
    assert stratified_split(labels, 0.1, seed=1) == (train, dev)
