"""`lepton train fraud` / `lepton eval fraud`: generator hold-out JSON shape, and a risk team's own files."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.fraud_data import FraudDataError, read_labels
from streams.cli.main import app
from streams.core import pii
from streams.generators import TransactionGenerator

runner = CliRunner()
KEYS = {"pr_auc", "roc_auc", "recall_at_1pct_fpr"}


def check_metrics(results: dict) -> None:
    assert set(results) == {"model", "logistic_regression", "amount_rule"}
    for metrics in results.values():
        assert set(metrics) == KEYS and all(0.0 <= v <= 1.0 for v in metrics.values())


def test_eval_json_on_a_small_generated_holdout() -> None:
    result = runner.invoke(app, ["eval", "fraud", "--seed", "99", "--count", "2000", "--json"])
    assert result.exit_code == 0, result.output
    check_metrics(json.loads(result.stdout))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A risk team's files: tokenised transactions (JSONL) and labels (CSV), plus a bad line and an unlabelled one."""
    folder = tmp_path_factory.mktemp("history")
    gen = TransactionGenerator(
        seed=5, start=datetime(2026, 2, 1, tzinfo=UTC), rate_per_s=1.0, fraud_rate=0.1, n_cards=200
    )
    data, labels = folder / "txns.jsonl", folder / "labels.csv"
    with data.open("w") as lines, labels.open("w") as csv:
        csv.write("transaction_id,is_fraud\n")
        for i, item in enumerate(itertools.islice(gen, 2500)):
            record = dict(item.record)
            record["card_token"] = pii.tokenize(record.pop("card_number"), b"k" * 32)
            lines.write(json.dumps(record) + "\n")
            if i != 7:
                csv.write(f"{record['id']},{'true' if item.truth['is_fraud'] else '0'}\n")
        lines.write('{"id": "broken"}\n')
    return data, labels


def test_train_and_eval_on_labelled_files(history: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = history
    out = tmp_path / "artifact"
    files = ["--data", str(data), "--labels", str(labels)]
    trained = runner.invoke(app, ["train", "fraud", *files, "--epochs", "20", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["training"]["skipped_lines"] == 1 and meta["training"]["unlabelled"] == 1
    assert {p.name for p in out.iterdir()} >= {"weights.safetensors", "calibration.json", "meta.json", "scaler.json"}
    evaluated = runner.invoke(app, ["eval", "fraud", *files, "--artifact", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    check_metrics(json.loads(evaluated.stdout))


def test_data_needs_labels(history: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["eval", "fraud", "--data", str(history[0])])
    assert result.exit_code != 0 and "--labels" in result.output


def test_label_file_format(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("transaction_id,is_fraud\ntxn-1,1\ntxn-2,false\ntxn-3,YES\n")
    assert read_labels(good) == {"txn-1": 1, "txn-2": 0, "txn-3": 1}
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,label\ntxn-1,1\n")
    with pytest.raises(FraudDataError, match="transaction_id,is_fraud"):
        read_labels(bad_header)
    bad_value = tmp_path / "value.csv"
    bad_value.write_text("transaction_id,is_fraud\ntxn-1,maybe\n")
    with pytest.raises(FraudDataError, match=":2: is_fraud"):
        read_labels(bad_value)
