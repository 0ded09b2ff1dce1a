"""`lepton train|eval|score sentiment`: train the sentiment head, evaluate it on a labelled CSV, score a file."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.shared import group, progress_bars

os.environ.setdefault("HF_HUB_OFFLINE", "1")

console = Console()
err_console = Console(stderr=True)
DATA_OPTION = typer.Option(..., "--data", exists=True, dir_okay=False, help="CSV with text,label columns.")
ARTIFACT_OPTION = typer.Option(None, "--artifact", help="Artifact folder (default: models/artifacts/sentiment).")
INT8_OPTION = typer.Option(False, "--int8", help="Use the int8 dynamic-quantised CPU path.")


def _print_epoch(row: dict[str, Any]) -> None:
    """One line per epoch, so a log shows progress even without a terminal."""
    err_console.print(
        f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}  "
        f"dev accuracy {row['accuracy']:.4f}  dev macro-F1 {row['macro_f1']:.4f}"
    )


def train_sentiment(
    data: Path = DATA_OPTION,
    seed: int = typer.Option(13, "--seed", help="Seed of the dev split, initialisation and shuffling."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Epochs over the cached features."),
    out: Path | None = typer.Option(None, "--out", help="Artifact folder (default: models/artifacts/sentiment)."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", min=0.02, max=0.5, help="Share held out as dev."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
) -> None:
    """Fine-tune the top MiniLM layers and head on a labelled CSV; the best dev-fold epoch is saved."""
    from models.sentiment import default_artifact_dir
    from models.sentiment_train import TrainConfig, save_artifact, train

    config = TrainConfig(seed=seed, epochs=epochs, dev_fraction=dev_fraction, threads=threads)
    started = time.monotonic()
    with progress_bars() as progress:
        report = train(data, config, progress, on_epoch=_print_epoch)
    target = out or default_artifact_dir()
    meta = save_artifact(report, data, target)
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    table = Table(title=f"dev fold per epoch (best: {report.best_epoch})")
    for column in ("epoch", "train loss", "accuracy", "macro-F1"):
        table.add_column(column, justify="right")
    for row in report.history:
        table.add_row(*(str(row[k]) for k in ("epoch", "train_loss", "accuracy", "macro_f1")))
    console.print(table)
    console.print(
        f"saved {meta['model_name']} {meta['version']} to {target} ({size / 1e6:.1f} MB) "
        f"in {time.monotonic() - started:.0f} s"
    )


def eval_sentiment(
    data: Path = DATA_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print only the metrics as JSON."),
    artifact: Path | None = ARTIFACT_OPTION,
    int8: bool = INT8_OPTION,
    speed: bool = typer.Option(False, "--speed", help="Also time predict() at batch 32 (texts/s)."),
) -> None:
    """Accuracy, macro-F1 and the confusion matrix on a CSV with text,label (0 bearish, 1 bullish, 2 neutral)."""
    from models.sentiment import LABELS, SentimentModel
    from models.sentiment_data import read_labelled_csv
    from models.sentiment_eval import evaluate, throughput

    rows = read_labelled_csv(data)
    model = SentimentModel.load(artifact, device="cpu" if int8 else None, quantize=int8)
    with progress_bars() as progress:
        metrics = evaluate(model, rows, advance=progress(f"eval {data.name}", len(rows.texts)))
    if as_json:
        print(json.dumps(metrics))
        return
    table = Table(title=f"{model.name} {model.version_tag} on {data.name}: rows true, columns predicted")
    table.add_column("true \\ predicted")
    for name in LABELS:
        table.add_column(name, justify="right")
    for name, counts in zip(LABELS, metrics["confusion_matrix"], strict=True):
        table.add_row(name, *(str(c) for c in counts))
    console.print(table)
    console.print(f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro-F1={metrics['macro_f1']:.4f}")
    if speed:
        rate = throughput(model, rows.texts[:512], batch_size=32)
        console.print(f"speed: {rate:.0f} texts/s at batch 32 on {model.encoder.device} ({model.version_tag})")


def score_sentiment(
    source: Path = typer.Option(..., "--input", exists=True, dir_okay=False, help="A .csv or .jsonl of texts."),
    target: Path = typer.Option(..., "--output", help="The JSONL file to write, one result per input line."),
    artifact: Path | None = ARTIFACT_OPTION,
    int8: bool = INT8_OPTION,
) -> None:
    """Score every text of a file offline, through the dynamic batcher, into JSONL (in input order)."""
    from models.sentiment import SentimentModel
    from models.sentiment_score import score_file
    from streams.core.settings import get_settings

    batching = get_settings().batching
    model = SentimentModel.load(artifact, device="cpu" if int8 else None, quantize=int8)
    started = time.monotonic()
    with progress_bars() as progress:
        advance = progress(f"score {source.name}", None)
        count = asyncio.run(score_file(model, source, target, batching.max_batch_size, batching.max_wait_ms, advance))
    seconds = time.monotonic() - started
    console.print(f"scored {count} texts into {target} in {seconds:.1f} s ({count / max(seconds, 1e-9):.0f}/s)")


def register(app: typer.Typer) -> None:
    """Add `train sentiment`, `eval sentiment` and `score sentiment` to the root app."""
    group(app, "train", "Train models.").command("sentiment")(train_sentiment)
    group(app, "eval", "Evaluate models on labelled data.").command("sentiment")(eval_sentiment)
    group(app, "score", "Score files offline with a model.").command("sentiment")(score_sentiment)
