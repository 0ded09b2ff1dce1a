"""`lepton train fraud` and `lepton eval fraud`: generator data by default, or a risk team's labelled history."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.shared import group, progress_bars

if TYPE_CHECKING:
    from models.fraud_data import LabelledData

console = Console()
err_console = Console(stderr=True)
FILE_FORMAT = (
    "--data: JSONL, one transaction per line in the `transactions` topic schema "
    "(infra/schemas/transaction.json; card_number or card_token), replayed in event-time order. "
    "--labels: CSV with the header transaction_id,is_fraud (is_fraud 1/0 or true/false); "
    "transactions without a label still update their card's state but are not scored."
)
DATA_OPTION = typer.Option(None, "--data", exists=True, dir_okay=False, help="Transactions JSONL (needs --labels).")
LABELS_OPTION = typer.Option(None, "--labels", exists=True, dir_okay=False, help="transaction_id,is_fraud CSV.")
FRAUD_RATE_OPTION = typer.Option(0.02, "--fraud-rate", min=0.001, max=0.3, help="Generator: share of fraud events.")
THREADS_OPTION = typer.Option(1, "--threads", min=1, help="torch CPU threads.")


def _load_data(
    seed: int, count: int, fraud_rate: float, data: Path | None, labels: Path | None, what: str
) -> LabelledData:
    """Labelled rows from the files when given, else from the generator."""
    from models.fraud_data import from_files
    from streams.tools.generated_data import fraud_from_generator

    if (data is None) != (labels is None):
        raise typer.BadParameter("--data and --labels go together")
    with progress_bars() as progress:
        if data is not None and labels is not None:
            return from_files(data, labels, progress(f"{what}: replay {data.name}", None))
        return fraud_from_generator(seed, count, fraud_rate, progress(f"{what}: generate + featurize", count))


def _describe(rows: LabelledData, title: str) -> None:
    """Class balance and file-reading counts on stderr."""
    line = f"{title}: {len(rows.y)} labelled transactions, {int(rows.y.sum())} fraud ({100 * rows.fraud_rate:.2f}%)"
    if rows.skipped or rows.unlabelled:
        line += f"; {rows.skipped} invalid lines skipped, {rows.unlabelled} unlabelled (state only)"
    err_console.print(line)


def train_fraud(
    seed: int = typer.Option(7, "--seed", help="Generator seed (and model initialisation/shuffling)."),
    count: int = typer.Option(150_000, "--count", min=2000, help="Generated transactions to train on."),
    data: Path | None = DATA_OPTION,
    labels: Path | None = LABELS_OPTION,
    fraud_rate: float = FRAUD_RATE_OPTION,
    epochs: int = typer.Option(10, "--epochs", min=1, help="Passes over the training rows."),
    out: Path | None = typer.Option(None, "--out", help="Artifact folder (default: models/artifacts/fraud)."),
    threads: int = THREADS_OPTION,
) -> None:
    """Train the fraud MLP, its calibration and the logistic-regression baseline.

    Default source: the transaction generator (labels from its truth); or a risk team's history (see below).
    """
    from models.fraud import default_artifact_dir
    from models.fraud_train import TrainConfig, save_artifact, train

    started = time.monotonic()
    rows = _load_data(seed, count, fraud_rate, data, labels, "train")
    _describe(rows, "training data")
    config = TrainConfig(seed=seed, epochs=epochs, threads=threads)
    with progress_bars() as progress:
        report = train(rows, config, progress)
    target = out or default_artifact_dir()
    meta = save_artifact(report, rows, config, target)
    table = Table(title="held-out (later 20% in time) metrics")
    for column in ("method", "PR-AUC", "ROC-AUC", "recall@1%FPR"):
        table.add_column(column, justify="right")
    for name, m in report.holdout.items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("pr_auc", "roc_auc", "recall_at_1pct_fpr")))
    console.print(table)
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    console.print(
        f"saved {meta['model_name']} {meta['version']} to {target} ({size / 1024:.0f} KiB); "
        f"training {report.seconds:.0f} s, total {time.monotonic() - started:.0f} s"
    )


def eval_fraud(
    seed: int = typer.Option(1001, "--seed", help="Generator seed of the hold-out (use one not trained on)."),
    count: int = typer.Option(100_000, "--count", min=1000, help="Generated hold-out transactions."),
    data: Path | None = DATA_OPTION,
    labels: Path | None = LABELS_OPTION,
    fraud_rate: float = FRAUD_RATE_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print only the metrics as JSON."),
    artifact: Path | None = typer.Option(None, "--artifact", help="Artifact folder (default: models/artifacts/fraud)."),
    threads: int = THREADS_OPTION,
) -> None:
    """PR-AUC, ROC-AUC and recall at 1% FPR of the model, logistic regression and the amount rule.

    Hold-out: generated with --seed (one not trained on), or --data/--labels (see below).

    Either way it is replayed through the same per-card feature code as training and the pipeline.
    """
    import torch

    from models.fraud import FraudModel, default_artifact_dir
    from models.fraud_eval import LogisticBaseline, evaluate, scenario_recall
    from streams.core.settings import get_settings

    torch.set_num_threads(threads)
    folder = artifact or default_artifact_dir()
    model = FraudModel.load(folder, device="cpu")
    baseline = LogisticBaseline.load(folder)
    trained_seed = model.meta.get("training", {}).get("seed")
    if data is None and seed == trained_seed and "generator" in model.meta.get("training", {}).get("source", ""):
        err_console.print(f"[yellow]warning:[/] seed {seed} is the training seed: this is not a hold-out")
    rows = _load_data(seed, count, fraud_rate, data, labels, "eval")
    results = evaluate(model, baseline, rows)
    if as_json:
        print(json.dumps(results))
        return
    _describe(rows, "hold-out")
    table = Table(title=f"{model.name} {model.version} on {rows.source}")
    for column in ("method", "PR-AUC", "ROC-AUC", "recall@1%FPR"):
        table.add_column(column, justify="right")
    for name, m in results.items():
        table.add_row(name, *(f"{m[k]:.4f}" for k in ("pr_auc", "roc_auc", "recall_at_1pct_fpr")))
    console.print(table)
    fraud = get_settings().fraud
    if any(rows.scenario):
        probabilities = model.probabilities(rows.X)
        share = scenario_recall(rows, probabilities, fraud.review_threshold)
        table = Table(title=f"share at or above the review threshold {fraud.review_threshold}")
        table.add_column("scenario")
        table.add_column("rows", justify="right")
        table.add_column("flagged", justify="right")
        for name, row in share.items():
            table.add_row(name, str(row["rows"]), f"{100 * row['flagged']:.2f}%")
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add `train fraud` and `eval fraud` to the shared train/eval groups."""
    group(app, "train", "Train models.").command("fraud", epilog=FILE_FORMAT)(train_fraud)
    group(app, "eval", "Evaluate models on labelled data.").command("fraud", epilog=FILE_FORMAT)(eval_fraud)
