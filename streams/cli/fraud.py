"""`lepton train | eval | score fraud` and `lepton simulate fraud`: a risk team's files, or generated data."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.shared import group, progress_bars

if TYPE_CHECKING:
    from models.fraud_data import Counts, LabelledData

console = Console()
err_console = Console(stderr=True)
FILE_FORMAT = (
    "Files: --data is JSONL, one transaction per line in the `transactions` topic schema "
    "(infra/schemas/transaction.json), replayed in file order (time order). --feedback is JSONL in the `labels` "
    "topic schema (infra/schemas/chargeback-label.json): confirmed outcomes, merged into the replay by reported_at, "
    "so that no feature reads an outcome before it was known. --labels is a CSV transaction_id,is_fraud[,scenario] "
    "naming the rows to train on or score; without it, the feedback is the supervision (fraud where a fraud was "
    "confirmed, legitimate otherwise). --since/--until select the rows by event time; earlier rows build state."
)
DATA = typer.Option(None, "--data", exists=True, dir_okay=False, help="Transactions JSONL.")
FEEDBACK = typer.Option(None, "--feedback", exists=True, dir_okay=False, help="Outcomes JSONL (labels schema).")
LABELS = typer.Option(None, "--labels", exists=True, dir_okay=False, help="transaction_id,is_fraud CSV.")
SINCE = typer.Option(None, "--since", help="Keep rows at or after this event time (ISO date or time, UTC).")
UNTIL = typer.Option(None, "--until", help="Keep rows before this event time.")
SEED = typer.Option(7, "--seed", help="Generator seed (without --data), and model initialisation.")
COUNT = typer.Option(150_000, "--count", min=2000, help="Generated transactions (without --data).")
FRAUD_RATE = typer.Option(0.02, "--fraud-rate", min=0.001, max=0.3, help="Generator: share of fraud events.")
THREADS = typer.Option(1, "--threads", min=1, help="torch CPU threads.")
ARTIFACT = typer.Option(None, "--artifact", help="Artifact folder (default: models/artifacts/fraud).")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _report_counts(counts: Counts) -> None:
    """What was read and left out, on stderr (every mode)."""
    err_console.print(f"read {counts.lines:,} transaction lines ({counts.skipped:,} skipped), {counts.feedback:,} "
                      f"outcomes ({counts.feedback_skipped:,} skipped); {counts.unmatched_labels:,} labels matched no "
                      f"transaction; {counts.out_of_order:,} lines earlier than a line before them")
    for reason in counts.reasons:
        err_console.print(f"  skipped {reason}")


def _describe(rows: LabelledData, title: str) -> None:
    line = f"{title}: {len(rows.y):,} labelled transactions, {int(rows.y.sum()):,} fraud ({100 * rows.fraud_rate:.2f}%)"
    if rows.unlabelled:
        line += f"; {rows.unlabelled:,} in the window without a label (state only)"
    err_console.print(line)


def _load(seed: int, count: int, fraud_rate: float, data: Path | None, feedback: Path | None, labels: Path | None,
          since: datetime | None, until: datetime | None, delay_days: int, valid: tuple[Path, Path | None] | None,
          what: str) -> list[LabelledData]:
    """Labelled rows (and validation rows, when a validation file is given) from files, else from the generator."""
    from models.fraud_data import Part, replay_files
    from streams.tools.generated_data import fraud_from_generator

    with progress_bars() as progress:
        if data is None:
            if feedback or labels or valid:
                raise typer.BadParameter("--feedback, --labels and --valid-data need --data")
            return [fraud_from_generator(seed, count, fraud_rate, delay_days, progress(f"{what}: generate", count))]
        parts = [Part(data, labels, _utc(since), _utc(until))]
        if valid is not None:
            parts.append(Part(valid[0], valid[1]))
        found = replay_files(parts, feedback, delay_days=delay_days, advance=progress(f"{what}: replay", None))
    _report_counts(found[0].counts)
    return found


def train_fraud(
    seed: int = SEED, count: int = COUNT, fraud_rate: float = FRAUD_RATE,
    data: Path | None = DATA, feedback: Path | None = FEEDBACK, labels: Path | None = LABELS,
    since: datetime | None = SINCE, until: datetime | None = UNTIL,
    valid_days: float | None = typer.Option(None, "--valid-days", min=0.1, help="Validate on the last N days."),
    valid_data: Path | None = typer.Option(None, "--valid-data", exists=True, dir_okay=False,
                                           help="Validation transactions, replayed right after --data."),
    valid_labels: Path | None = typer.Option(None, "--valid-labels", exists=True, dir_okay=False,
                                             help="Labels of --valid-data (default: the feedback)."),
    delay_days: int | None = typer.Option(None, "--label-delay-days", min=0, help="Default: fraud.label_delay_days."),
    epochs: int = typer.Option(12, "--epochs", min=1, help="Passes over the training rows (the best is kept)."),
    out: Path | None = typer.Option(None, "--out", help="Artifact folder (default: models/artifacts/fraud)."),
    threads: int = THREADS,
) -> None:
    """Train the fraud MLP (early-stopped), calibrate it and set the thresholds that meet the alert budget.

    Validation (calibration and thresholds) is --valid-data, or the last --valid-days, or the latest 20%.
    """
    from models.fraud import default_artifact_dir
    from models.fraud_train import TrainConfig, save_artifact, train
    from streams.core.settings import get_settings

    if valid_days is not None and valid_data is not None:
        raise typer.BadParameter("give --valid-days or --valid-data, not both")
    started, fraud = time.monotonic(), get_settings().fraud
    delay = fraud.label_delay_days if delay_days is None else delay_days
    found = _load(seed, count, fraud_rate, data, feedback, labels, since, until, delay,
                  (valid_data, valid_labels) if valid_data else None, "train")
    rows, validation = found[0], (found[1] if len(found) > 1 else None)
    if valid_days is not None:
        head, tail = rows.split_days(valid_days)
        rows, validation = rows.subset(head), rows.subset(tail)
    _describe(rows, "training data")
    if validation is not None:
        _describe(validation, "validation data")
    config = TrainConfig(seed=seed, epochs=epochs, threads=threads, alert_budget=fraud.alert_budget,
                         block_budget=fraud.block_budget, delay_days=delay,
                         reference_currency=fraud.reference_currency)
    with progress_bars() as progress:
        report = train(rows, config, progress, validation)
    target = out or default_artifact_dir()
    meta = save_artifact(report, rows, config, target)
    _table("validation metrics", report.holdout)
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    console.print(f"thresholds: review {report.thresholds.review:.4f} (alert budget {fraud.alert_budget:.2%} of "
                  f"legitimate traffic), block {report.thresholds.block:.4f} ({fraud.block_budget:.2%}); best epoch "
                  f"{report.rows['best_epoch']} of {epochs}")
    console.print(f"saved {meta['model_name']} {meta['version']} to {target} ({size / 1024:.0f} KiB); "
                  f"training {report.seconds:.0f} s, total {time.monotonic() - started:.0f} s")


def eval_fraud(
    seed: int = typer.Option(1001, "--seed", help="Generator seed of the hold-out (one not trained on)."),
    count: int = typer.Option(100_000, "--count", min=1000, help="Generated hold-out transactions."),
    fraud_rate: float = FRAUD_RATE,
    data: Path | None = DATA, feedback: Path | None = FEEDBACK, labels: Path | None = LABELS,
    since: datetime | None = SINCE, until: datetime | None = UNTIL,
    as_json: bool = typer.Option(False, "--json", help="Print only the figures as JSON."),
    artifact: Path | None = ARTIFACT, threads: int = THREADS,
) -> None:
    """PR-AUC, ROC-AUC, recall at 1% FPR and card precision at 100 of the model, logistic regression and the
    amount rule on the same rows, with recall per fraud pattern at the artifact's thresholds."""
    import torch

    from models.fraud import FraudModel, default_artifact_dir
    from models.fraud_eval import LogisticBaseline, evaluate, scenario_recall

    torch.set_num_threads(threads)
    folder = artifact or default_artifact_dir()
    model = FraudModel.load(folder, device="cpu")
    baseline = LogisticBaseline.load(folder)
    training = model.meta.get("training", {})
    if data is None and seed == training.get("seed") and "generator" in training.get("source", ""):
        err_console.print(f"[yellow]warning:[/] seed {seed} is the training seed: this is not a hold-out")
    rows = _load(seed, count, fraud_rate, data, feedback, labels, since, until, model.delay_days, None, "eval")[0]
    result: dict[str, Any] = evaluate(model, baseline, rows)
    c = rows.counts
    result["counts"] = {"labelled": len(rows.y), "fraud": int(rows.y.sum()), "lines": c.lines, "skipped": c.skipped,
                        "first_skipped": c.reasons, "unmatched_labels": c.unmatched_labels,
                        "unlabelled_in_window": rows.unlabelled, "out_of_order": c.out_of_order,
                        "feedback": c.feedback, "feedback_skipped": c.feedback_skipped}
    if any(rows.scenario):
        probabilities = model.probabilities(rows.X)
        result["scenarios"] = scenario_recall(rows, probabilities, model.thresholds.review)
    if as_json:
        print(json.dumps(result))
        return
    _describe(rows, "hold-out")
    _table(f"{model.name} {model.version} on {rows.source}", {k: v for k, v in result.items() if k in METHODS})
    if "scenarios" in result:
        table = Table(title=f"share at or above the review threshold {model.thresholds.review:.4f}")
        for column in ("pattern", "rows", "flagged"):
            table.add_column(column, justify="right" if column != "pattern" else "left")
        for name, row in result["scenarios"].items():
            table.add_row(name, f"{row['rows']:,}", f"{100 * row['flagged']:.2f}%")
        console.print(table)


METHODS = ("model", "logistic_regression", "amount_rule")


def _table(title: str, figures: dict[str, dict[str, float]]) -> None:
    keys = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "card_precision_at_100")
    table = Table(title=title)
    for column in ("method", "PR-AUC", "ROC-AUC", "recall@1%FPR", "CP@100"):
        table.add_column(column, justify="right")
    for name, m in figures.items():
        table.add_row(name, *(f"{m[k]:.4f}" if k in m else "-" for k in keys))
    console.print(table)


def score_fraud(
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Transactions JSONL."),
    feedback: Path | None = FEEDBACK, artifact: Path | None = ARTIFACT, threads: int = THREADS,
    batch: int = typer.Option(1024, "--batch", min=1, help="Transactions per model call."),
) -> None:
    """One JSON line per transaction on stdout: id, score, decision, reasons (the artifact's thresholds)."""
    import torch

    from models.fraud import FraudModel, default_artifact_dir
    from streams.tools.fraud_scoring import score_file

    torch.set_num_threads(threads)
    model = FraudModel.load(artifact or default_artifact_dir(), device="cpu")
    with progress_bars(enabled=err_console.is_terminal) as progress:
        counts = score_file(model, data, feedback, batch, sys.stdout, progress("score", None))
    _report_counts(counts)


def simulate_fraud(
    out: Path = typer.Option(..., "--out", file_okay=False, help="Folder for the files."),
    days: int = typer.Option(70, "--days", min=1, help="Simulated days."),
    seed: int = typer.Option(0, "--seed", help="Simulator seed."),
    start: datetime = typer.Option("2026-01-01", "--start", help="First simulated day (UTC)."),
    customers: int = typer.Option(5000, "--customers", min=10, help="Cardholders."),
    terminals: int = typer.Option(10000, "--terminals", min=10, help="Merchants (terminals)."),
) -> None:
    """Write transactions.jsonl, feedback.jsonl and labels.csv from an independent simulator (the Fraud Detection
    Handbook's published design: compromised terminals and cards, large amounts, chargebacks a week later)."""
    from streams.generators.handbook import HandbookConfig, HandbookSimulator
    from streams.tools.fraud_files import write_files

    config = HandbookConfig(seed=seed, days=days, start=_utc(start) or start, customers=customers,
                            terminals=terminals)
    with progress_bars() as progress:
        written = write_files(HandbookSimulator(config), out, progress("simulate", None))
    console.print(f"wrote {written.transactions:,} transactions ({written.frauds:,} fraud) from {written.first_ts} "
                  f"to {written.last_ts} into {out}/ (transactions.jsonl, feedback.jsonl, labels.csv)")


def register(app: typer.Typer) -> None:
    """Add `train fraud`, `eval fraud`, `score fraud` and `simulate fraud`."""
    group(app, "train", "Train models.").command("fraud", epilog=FILE_FORMAT)(train_fraud)
    group(app, "eval", "Evaluate models on labelled data.").command("fraud", epilog=FILE_FORMAT)(eval_fraud)
    group(app, "score", "Score files offline with a model.").command("fraud", epilog=FILE_FORMAT)(score_fraud)
    group(app, "simulate", "Write labelled data from independent simulators.").command("fraud")(simulate_fraud)
