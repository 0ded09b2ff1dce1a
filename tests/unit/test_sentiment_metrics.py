"""Metrics in dataset label order, and the CSV/JSONL readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.sentiment_data import iter_records, read_labelled_csv
from models.sentiment_metrics import classification_metrics
from models.sentiment_train import stratified_split
from streams.core.errors import ConfigurationError


def test_metrics_confusion_rows_are_true_labels() -> None:
    metrics = classification_metrics([0, 0, 1, 2], [0, 2, 1, 2])
    assert metrics["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 0, 1]]
    assert metrics["accuracy"] == 0.75
    assert metrics["n"] == 4
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, abs=1e-4)


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
