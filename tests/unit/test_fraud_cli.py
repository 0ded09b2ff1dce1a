"""`lepton train | eval | score fraud` on a risk team's own files (from the independent simulator), and on generated
data: JSON keys, counts of what was read, the alert-budget thresholds in the artifact, and no file in the checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.fraud_data import FraudDataError, read_label_csv
from streams.cli.main import app
from streams.core.settings import REPO_ROOT

runner = CliRunner()
KEYS = {"pr_auc", "roc_auc", "recall_at_1pct_fpr", "card_precision_at_100"}
COUNTS = {"labelled", "fraud", "lines", "skipped", "first_skipped", "unmatched_labels", "unlabelled_in_window",
          "out_of_order", "feedback", "feedback_skipped"}


def check(results: dict) -> None:
    assert {"model", "logistic_regression", "amount_rule"} <= set(results)
    for method in ("model", "logistic_regression", "amount_rule"):
        assert set(results[method]) == KEYS and all(0.0 <= v <= 1.0 for v in results[method].values())
    assert set(results["counts"]) == COUNTS


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty days of the independent simulator, small, plus a broken line."""
    folder = tmp_path_factory.mktemp("sim")
    result = runner.invoke(app, ["simulate", "fraud", "--out", str(folder), "--days", "40", "--customers", "400",
                                 "--terminals", "800", "--seed", "3"])
    assert result.exit_code == 0, result.output
    with (folder / "transactions.jsonl").open("a") as lines:
        lines.write('{"id": "broken"}\n')
    return folder


def test_simulated_files_are_in_the_input_schemas(simulated: Path) -> None:
    first = json.loads((simulated / "transactions.jsonl").read_text().splitlines()[0])
    assert set(first) >= {"id", "ts", "card_token", "amount", "currency", "merchant_id", "mcc", "country", "channel"}
    feedback = [json.loads(line) for line in (simulated / "feedback.jsonl").read_text().splitlines()]
    assert feedback and all(f["fraud"] and f["reported_at"] > f["transaction_ts"] for f in feedback)
    assert [f["reported_at"] for f in feedback] == sorted(f["reported_at"] for f in feedback)
    labels, scenarios = read_label_csv(simulated / "labels.csv")
    assert sum(labels.values()) == len(feedback) and set(scenarios.values()) >= {"legit", "compromised_terminal"}


def test_train_eval_and_score_on_files_write_nothing_in_the_checkout(simulated: Path, tmp_path: Path) -> None:
    before = {p for p in REPO_ROOT.rglob("*") if ".lepton" not in p.parts and ".git" not in p.parts}
    files = ["--data", str(simulated / "transactions.jsonl"), "--feedback", str(simulated / "feedback.jsonl")]
    out = tmp_path / "artifact"
    trained = runner.invoke(app, ["train", "fraud", *files, "--since", "2026-01-20", "--until", "2026-02-01",
                                  "--valid-days", "3", "--epochs", "4", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["thresholds"]["alert_budget"] == 0.005 and 0 < meta["thresholds"]["review"] <= meta["thresholds"][
        "block"] <= 1
    assert meta["training"]["skipped_lines"] == 1 and meta["label_delay_days"] == 7
    assert "1 skipped" in trained.output and "broken" not in trained.output  # the reason names the line, not data
    evaluated = runner.invoke(app, ["eval", "fraud", *files, "--labels", str(simulated / "labels.csv"),
                                    "--since", "2026-02-03", "--artifact", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    results = json.loads(evaluated.stdout)
    check(results)
    assert results["counts"]["skipped"] == 1 and results["counts"]["first_skipped"][0].startswith("transactions.jsonl")
    assert set(results["scenarios"]) >= {"legit", "compromised_terminal"}
    scored = runner.invoke(app, ["score", "fraud", *files, "--artifact", str(out)])
    assert scored.exit_code == 0, scored.output
    lines = [json.loads(line) for line in scored.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == results["counts"]["lines"] - 1
    assert set(lines[0]) == {"id", "score", "decision", "reasons", "reason_codes"}
    assert {line["decision"] for line in lines} <= {"approve", "review", "block"}
    after = {p for p in REPO_ROOT.rglob("*") if ".lepton" not in p.parts and ".git" not in p.parts}
    assert after - before == set()


def test_eval_json_on_a_small_generated_holdout() -> None:
    result = runner.invoke(app, ["eval", "fraud", "--seed", "99", "--count", "3000", "--json"])
    assert result.exit_code == 0, result.output
    check(json.loads(result.stdout))


def test_feedback_needs_data(simulated: Path) -> None:
    result = runner.invoke(app, ["eval", "fraud", "--feedback", str(simulated / "feedback.jsonl")])
    assert result.exit_code != 0 and "--data" in result.output


def test_label_file_format(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("transaction_id,is_fraud\ntxn-1,1\ntxn-2,false\ntxn-3,YES\n")
    assert read_label_csv(good) == ({"txn-1": 1, "txn-2": 0, "txn-3": 1}, {})
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,label\ntxn-1,1\n")
    with pytest.raises(FraudDataError, match="transaction_id,is_fraud"):
        read_label_csv(bad_header)
    bad_value = tmp_path / "value.csv"
    bad_value.write_text("transaction_id,is_fraud\ntxn-1,maybe\n")
    with pytest.raises(FraudDataError, match=":2: is_fraud"):
        read_label_csv(bad_value)
