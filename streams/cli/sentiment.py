"""`lepton train|eval|score sentiment` and `lepton train|eval sentiment-teacher`: train the teacher ensemble, distil
it into the shipped student, evaluate either on a labelled CSV, score a file."""

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
TEACHER_DIR = Path(".lepton/sentiment-teacher")
INT8_OPTION = typer.Option(False, "--int8", help="Use the int8 dynamic-quantised CPU path.")


def _print_epoch(row: dict[str, Any]) -> None:
    """One line per epoch, so a log shows progress even without a terminal."""
    err_console.print(
        f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}  "
        f"dev accuracy {row['accuracy']:.4f}  macro-F1 {row['macro_f1']:.4f}  weighted F1 {row['weighted_f1']:.4f}"
    )


def train_sentiment(
    data: Path = DATA_OPTION,
    teacher: Path | None = typer.Option(None, "--teacher", help="Distil from this teacher folder (see "
                                        "`lepton train sentiment-teacher`); without it, train on the labels alone."),
    unlabelled: int = typer.Option(10_000, "--unlabelled", min=0, help="Generated headlines the teacher labels."),
    unlabelled_seed: int = typer.Option(7, "--unlabelled-seed", help="Seed of the news generator's headlines."),
    hard_weight: float = typer.Option(0.5, "--hard-weight", min=0.0, max=1.0,
                                      help="Share of the label in a labelled headline's target (the rest: teacher)."),
    soft_temperature: float = typer.Option(1.0, "--soft-temperature", min=0.5, max=10.0, help="Divide the teacher's "
                                           "logits by this before they become targets (> 1: flatter)."),
    seed: int = typer.Option(13, "--seed", help="Seed of the initialisation and shuffling."),
    split_seed: int = typer.Option(13, "--split-seed", help="Seed of the dev split (the teacher's must match)."),
    epochs: int = typer.Option(5, "--epochs", min=1, help="Epochs over the cached features."),
    frozen_layers: int = typer.Option(4, "--frozen-layers", min=0, max=5, help="Bottom MiniLM layers kept frozen and "
                                      "shared with the encoder; the layers above them are fine-tuned (0: all six)."),
    layer_lr: float = typer.Option(2e-4, "--layer-lr", min=1e-6, max=1e-2, help="Learning rate of the trained layers."),
    out: Path | None = typer.Option(None, "--out", help="Artifact folder (default: models/artifacts/sentiment)."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", min=0.02, max=0.5, help="Share held out as dev."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
) -> None:
    """Train the shipped student (top MiniLM layers and head), distilled from a teacher when one is given; the best
    dev-fold epoch is saved, with its temperature and negative threshold fitted on the dev fold."""
    from models.sentiment import default_artifact_dir
    from models.sentiment_teacher import Teacher
    from models.sentiment_train import TrainConfig, check_teacher, save_artifact, train
    from streams.tools.generated_data import news_headlines

    config = TrainConfig(seed=seed, split_seed=split_seed, epochs=epochs, dev_fraction=dev_fraction,
                         hard_weight=hard_weight, soft_temperature=soft_temperature, threads=threads,
                         frozen_layers=frozen_layers, layer_lr=layer_lr)
    command = f"lepton train sentiment --data {data.name} --seed {seed} --split-seed {split_seed} --epochs {epochs} " \
              f"--dev-fraction {dev_fraction} --frozen-layers {frozen_layers} --layer-lr {layer_lr:g}"
    recipe, teacher_record, extra = [command], None, []
    started = time.monotonic()
    with progress_bars() as progress:
        soft_labels = None
        if teacher is not None:
            ensemble = Teacher(teacher)
            check_teacher(ensemble.meta, data, config)
            recipe = [teacher_command(ensemble.meta), f"{command} --teacher {teacher} --unlabelled {unlabelled} "
                      f"--unlabelled-seed {unlabelled_seed} --hard-weight {hard_weight} "
                      f"--soft-temperature {soft_temperature:g}"]
            teacher_record = teacher_summary(ensemble.meta)
            extra = news_headlines(unlabelled_seed, unlabelled) if unlabelled else []
            soft_labels = lambda texts: ensemble.cached_probabilities(texts, progress)  # noqa: E731
        report = train(data, config, progress, _print_epoch, soft_labels, extra)
    target = out or default_artifact_dir()
    meta = save_artifact(report, data, target, recipe, teacher_record)
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    table = Table(title=f"dev fold per epoch (best: {report.best_epoch})")
    for column in ("epoch", "train loss", "accuracy", "macro-F1", "weighted F1"):
        table.add_column(column, justify="right")
    for row in report.history:
        table.add_row(*(str(row[k]) for k in ("epoch", "train_loss", "accuracy", "macro_f1", "weighted_f1")))
    console.print(table)
    calibration = meta["calibration"]
    console.print(f"temperature {calibration['temperature']}, negative threshold {calibration['negative_threshold']}; "
                  f"dev ECE {calibration['dev_before']['ece']} -> {calibration['dev_after']['ece']}")
    console.print(
        f"saved {meta['model_name']} {meta['version']} to {target} ({size / 1e6:.1f} MB) "
        f"in {time.monotonic() - started:.0f} s"
    )


def teacher_command(meta: dict[str, Any]) -> str:
    """The command that reproduces a teacher, from its teacher.json."""
    c = meta["config"]
    return (f"lepton train sentiment-teacher --data {meta['data_file']} --members {c['members']} --epochs "
            f"{c['epochs']} --seed {c['seed']} --split-seed {c['split_seed']} --dev-fraction {c['dev_fraction']}"
            + (f" --folds {c['folds']}" if c.get("folds", 0) >= 2 else ""))


def teacher_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """What the student's meta.json keeps of its teacher: the config, each member's dev figures, the ensemble's."""
    keep = ("accuracy", "macro_f1", "weighted_f1")
    return {
        "config": meta["config"],
        "members": [{"seed": m["seed"], "decay": m["decay"], "best_epoch": m["best_epoch"],
                     "train_seconds": m["train_seconds"], **{k: m["dev_metrics"][k] for k in keep}}
                    for m in meta["members"]],
        "dev_metrics": {k: meta["dev_metrics"][k] for k in keep},
    }


def train_sentiment_teacher(
    data: Path = DATA_OPTION,
    out: Path = typer.Option(TEACHER_DIR, "--out", help="Folder for the members and teacher.json (git-ignored)."),
    members: int = typer.Option(3, "--members", min=1, help="Fine-tuned encoders in the ensemble."),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Epochs per member (the best dev epoch is kept)."),
    seed: int = typer.Option(101, "--seed", help="Member k's seed is seed + k (initialisation, dropout, order)."),
    split_seed: int = typer.Option(13, "--split-seed", help="Seed of the dev split (the student's must match)."),
    dev_fraction: float = typer.Option(0.1, "--dev-fraction", min=0.02, max=0.5, help="Share held out as dev."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads."),
    folds: int = typer.Option(0, "--folds", min=0, help="Cross-fit: member k trains without fold k % folds of the "
                              "training part, and labels it for the student (0: every member sees all of it)."),
    resume: bool = typer.Option(False, "--resume", help="Keep members already in --out (an interrupted run with "
                                "the same options) instead of training them again."),
) -> None:
    """Fine-tune an ensemble of whole MiniLM encoders: the teacher `lepton train sentiment --teacher` distils."""
    from models.sentiment_data import read_labelled_csv
    from models.sentiment_teacher import TeacherConfig, train_teacher

    if folds == 1 or folds > members:
        raise typer.BadParameter(f"--folds takes 0 (no cross-fitting) or 2 to --members ({members}): every fold needs "
                                 "a member that did not see it", param_hint="--folds")
    config = TeacherConfig(members=members, epochs=epochs, seed=seed, split_seed=split_seed,
                           dev_fraction=dev_fraction, threads=threads, folds=folds)
    started = time.monotonic()
    with progress_bars() as progress:
        meta = train_teacher(data, read_labelled_csv(data), config, out, progress, _print_epoch, resume)
    table = Table(title="teacher on the dev fold")
    for column in ("model", "best epoch", "accuracy", "macro-F1", "weighted F1"):
        table.add_column(column, justify="right")
    for record in meta["members"]:
        m = record["dev_metrics"]
        table.add_row(f"member {record['index']}", str(record["best_epoch"]),
                      *(f"{m[k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1")))
    m = meta["dev_metrics"]
    table.add_row("ensemble", "", *(f"{m[k]:.4f}" for k in ("accuracy", "macro_f1", "weighted_f1")))
    console.print(table)
    console.print(f"saved the teacher to {out} in {time.monotonic() - started:.0f} s")


def calibrate_sentiment(
    data: Path = DATA_OPTION,
    artifact: Path | None = ARTIFACT_OPTION,
) -> None:
    """Fit a trained artifact's temperature and negative threshold on its dev fold of the training CSV (the fold it
    was trained beside) and write them into its meta.json; `train sentiment` already does this for new artifacts."""
    from models.sentiment import default_artifact_dir
    from models.sentiment_calibration import calibrate_artifact
    from models.sentiment_data import read_labelled_csv

    path = artifact or default_artifact_dir()
    calibration = calibrate_artifact(path, read_labelled_csv(data), f"lepton train sentiment-calibration --data "
                                     f"{data.name}")
    console.print(f"{path}: temperature {calibration['temperature']}, negative threshold "
                  f"{calibration['negative_threshold']}; dev ECE {calibration['dev_before']['ece']} -> "
                  f"{calibration['dev_after']['ece']}, NLL {calibration['dev_before']['nll']} -> "
                  f"{calibration['dev_after']['nll']}")


def eval_sentiment(
    data: Path = DATA_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print only the metrics as JSON."),
    artifact: Path | None = ARTIFACT_OPTION,
    int8: bool = INT8_OPTION,
    speed: bool = typer.Option(False, "--speed", help="Also time predict() at batch 32 (texts/s)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="With --speed: also time this artifact, taking "
                                         "turns with the evaluated one (3 rounds each), in the same process."),
    record: bool = typer.Option(False, "--record", help="Write the figures into the artifact's meta.json (eval)."),
) -> None:
    """Accuracy, macro-F1, weighted F1, per-class figures, the confusion matrix and calibration on a CSV with
    text,label (0 bearish, 1 bullish, 2 neutral)."""
    from models.sentiment import SentimentModel, default_artifact_dir
    from models.sentiment_data import read_labelled_csv
    from models.sentiment_eval import evaluate, interleaved_throughput, record_eval

    rows = read_labelled_csv(data)
    model = SentimentModel.load(artifact, device="cpu" if int8 else None, quantize=int8)
    with progress_bars(not as_json) as progress:
        metrics = evaluate(model, rows, advance=progress(f"eval {data.name}", len(rows.texts)))
    if record:
        record_eval(artifact or default_artifact_dir(), data, "int8" if int8 else "fp32", metrics)
    if as_json:
        print(json.dumps(metrics))
        return
    print_metrics(f"{model.name} {model.version_tag} on {data.name}", metrics)
    calibration = metrics["calibration"]
    console.print(f"calibration (T={calibration['temperature']}): ECE {calibration['before']['ece']:.4f} -> "
                  f"{calibration['ece']:.4f}, NLL {calibration['before']['nll']:.4f} -> {calibration['nll']:.4f}")
    if "negative" in calibration:
        n = calibration["negative"]
        console.print(f"negative (P(bearish) >= {n['threshold']}): precision {n['precision']:.4f}, "
                      f"recall {n['recall']:.4f}, {n['flagged']} flagged for {n['bearish']} bearish")
    if speed:
        models = {str(artifact or default_artifact_dir()): model}
        if baseline is not None:
            models[str(baseline)] = SentimentModel.load(baseline, device="cpu" if int8 else None, quantize=int8)
        for name, rates in interleaved_throughput(models, rows.texts[:512]).items():
            console.print(f"speed of {name} ({models[name].version_tag}, batch 32, {model.encoder.device}): "
                          f"{', '.join(f'{r:.0f}' for r in rates)} texts/s (median {sorted(rates)[1]:.0f})")


def eval_sentiment_teacher(
    data: Path = DATA_OPTION,
    teacher: Path = typer.Option(TEACHER_DIR, "--teacher", help="The teacher folder."),
    as_json: bool = typer.Option(False, "--json", help="Print only the metrics as JSON."),
) -> None:
    """The teacher ensemble's figures (and each member's) on a labelled CSV, to set beside the student's."""
    import torch

    from models.sentiment_data import read_labelled_csv
    from models.sentiment_metrics import classification_metrics
    from models.sentiment_teacher import Teacher

    rows = read_labelled_csv(data)
    with progress_bars(not as_json) as progress:
        members = Teacher(teacher).member_probabilities(rows.texts, progress)
    ensemble = classification_metrics(rows.labels, torch.stack(members).mean(dim=0).argmax(dim=-1).tolist())
    result = {**ensemble, "members": [classification_metrics(rows.labels, p.argmax(dim=-1).tolist()) for p in members]}
    if as_json:
        print(json.dumps(result))
        return
    for number, metrics in enumerate(result["members"]):
        console.print(f"member {number}: accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
                      f"weighted F1 {metrics['weighted_f1']:.4f}")
    print_metrics(f"teacher ensemble ({len(members)} members) on {data.name}", ensemble)


def print_metrics(title: str, metrics: dict[str, Any]) -> None:
    """Per-class figures beside the confusion row (rows true, columns predicted), then the summary line."""
    from models.sentiment import LABELS

    table = Table(title=f"{title}: rows true, columns predicted")
    for column in ("true \\ predicted", *LABELS, "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for name, counts in zip(LABELS, metrics["confusion"], strict=True):
        c = metrics["per_class"][name]
        table.add_row(name, *(str(n) for n in counts), *(f"{c[k]:.4f}" for k in ("precision", "recall", "f1")),
                      str(c["support"]))
    console.print(table)
    console.print(f"n={metrics['n']}  accuracy={metrics['accuracy']:.4f}  macro-F1={metrics['macro_f1']:.4f}  "
                  f"weighted F1={metrics['weighted_f1']:.4f}")


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
    group(app, "train", "Train models.").command("sentiment-teacher")(train_sentiment_teacher)
    group(app, "train", "Train models.").command("sentiment-calibration")(calibrate_sentiment)
    group(app, "eval", "Evaluate models on labelled data.").command("sentiment")(eval_sentiment)
    group(app, "eval", "Evaluate models on labelled data.").command("sentiment-teacher")(eval_sentiment_teacher)
    group(app, "score", "Score files offline with a model.").command("sentiment")(score_sentiment)
