"""`lepton eval recs`: next-item recommendations on a shop's own catalog and click log (or generated ones), with the
field's simple baselines computed in the same run."""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.shared import group, progress_bars

os.environ.setdefault("HF_HUB_OFFLINE", "1")

console = Console()
err_console = Console(stderr=True)


class Simulator(StrEnum):
    """Where generated data come from when no files are given."""

    shop = "shop"
    sessions = "sessions"


def eval_recs(
    catalog: Path | None = typer.Option(None, "--catalog", help="CATALOG.jsonl in the catalog schema."),
    clicks: Path | None = typer.Option(None, "--clicks", help="CLICKS.jsonl in the clicks schema, time-ordered."),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="List length K of HitRate@K, NDCG@K and MRR@K."),
    as_json: bool = typer.Option(False, "--json", help="Print only the figures as JSON."),
    seed: int = typer.Option(7, "--seed", help="Without files: seed of the generated catalog and clicks."),
    simulator: Simulator = typer.Option(
        Simulator.shop, "--simulator", help="Without files: this project's shop generator, or the independent "
        "session simulator written from published descriptions of session datasets."),
    items: int | None = typer.Option(None, "--items", min=20, help="Without files: catalog size (500 / 2,000)."),
    users: int | None = typer.Option(None, "--users", min=1, help="Without files: users (1,000 / 3,000)."),
    events: int = typer.Option(40_000, "--events", min=100, help="Without files: click events generated."),
    device: str | None = typer.Option(None, "--device", help="auto|cpu|cuda (default: the models.device setting)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads for the catalog embedding."),
) -> None:
    """HitRate@K, NDCG@K and MRR@K of the next viewed item, for the model and three baselines.

    Protocol: clicks are replayed in event-time order. Every click event whose session has a later `view` is a query;
    its truth is the item of that next `view`. At a query every method has seen the query click and all clicks
    before it, nothing after (shared statistics learn from a micro-batch of 256 clicks after it was ranked, the same
    for all). All methods rank the items live in the catalog then (a record counts from its `updated_at`), and none
    recommends the query's own item or an item the user bought; such truths count as unreachable. Baselines, same
    run: popularity over all history, session co-occurrence of the current item, and session kNN (k=100 of the 500
    most recent sessions sharing an item, cosine). Invalid lines are skipped and counted.
    """
    import torch

    from models.batcher import resolve_device
    from models.encoder import get_encoder
    from models.recs_data import ClickFile, read_catalog
    from models.recs_eval import evaluate
    from streams.core.settings import get_settings
    from streams.tools.generated_data import shop_data

    if (catalog is None) != (clicks is None):
        raise typer.BadParameter("give both --catalog and --clicks, or neither (then data are generated)")
    settings = get_settings()
    torch.set_num_threads(threads)
    target = resolve_device(device or settings.models.device)
    skipped, source = 0, None
    if catalog is not None and clicks is not None:
        records, skipped = read_catalog(catalog)
        source = ClickFile(clicks)
        stream, described = iter(source), f"{catalog.name} + {clicks.name}"
    else:
        records, stream = shop_data(seed, items, users, events, simulator.value)
        described = f"{simulator.value} generator, seed {seed}"
    began = time.perf_counter()
    with nullcontext() if as_json else err_console.status("loading the encoder"):
        encoder = get_encoder(str(target))
    loaded = time.perf_counter() - began
    with progress_bars(enabled=not as_json or err_console.is_terminal) as progress:
        report = evaluate(records, stream, encoder, target, settings.recs, k=k, progress=progress,
                          total=None if source else events)
    counts = {**report.counts, "skipped": skipped + (source.skipped if source else 0)}
    if as_json:
        typer.echo(json.dumps({**report.results, "counts": counts}))
        return
    table = Table(title=f"next viewed item, {described}")
    for column in ("method", f"HitRate@{k}", f"NDCG@{k}", f"MRR@{k}"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for method, figures in report.results.items():
        table.add_row(method, *(f"{value:.4f}" for value in figures.values()))
    console.print(table)
    console.print(", ".join(f"{name} {value:,}" for name, value in counts.items()))
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in {"load_s": loaded, **report.timings}.items())
    console.print(f"device {target}; {timings}")


def register(app: typer.Typer) -> None:
    """Attach `eval recs` to the shared `eval` group."""
    group(app, "eval", "Evaluate models offline.").command("recs")(eval_recs)
