"""`lepton eval recs`: replay generated sessions through the recommender and compare it with two baselines."""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.shared import group, progress_bars

os.environ.setdefault("HF_HUB_OFFLINE", "1")

console = Console()
err_console = Console(stderr=True)
BAR = 1.2  # HitRate@10 must beat the better baseline by 20 % (relative)


def eval_recs(
    seed: int = typer.Option(7, "--seed", help="Seed of the generated catalog and sessions."),
    as_json: bool = typer.Option(False, "--json", help="Print only the figures as JSON."),
    items: int = typer.Option(500, "--items", min=20, help="Catalog size."),
    users: int = typer.Option(1000, "--users", min=1, help="Simulated users."),
    events: int = typer.Option(40_000, "--events", min=100, help="Click events replayed."),
    device: str | None = typer.Option(None, "--device", help="auto|cpu|cuda (default: the models.device setting)."),
    threads: int = typer.Option(2, "--threads", min=1, help="torch CPU threads for the catalog embedding."),
) -> None:
    """HitRate@10 and NDCG@10 of the next viewed item: model vs popularity vs item co-occurrence."""
    import torch

    from models.batcher import resolve_device
    from models.encoder import get_encoder
    from models.recs_eval import EvalConfig, evaluate
    from streams.core.settings import get_settings
    from streams.tools.generated_data import shop_sessions

    settings = get_settings()
    torch.set_num_threads(threads)
    target = resolve_device(device or settings.models.device)
    config = EvalConfig(seed=seed, n_items=items, n_users=users, n_events=events, k=settings.recs.top_k)
    began = time.perf_counter()
    with nullcontext() if as_json else err_console.status("loading the encoder"):
        encoder = get_encoder(str(target))
    loaded = time.perf_counter() - began
    with progress_bars(enabled=not as_json or err_console.is_terminal) as progress:
        report = evaluate(config, *shop_sessions(config), encoder, target, settings.recs, progress)
    if as_json:
        typer.echo(json.dumps(report.results))
        return
    best = max(report.results["popularity"]["hit_rate_at_10"], report.results["cooccurrence"]["hit_rate_at_10"])
    model = report.results["model"]["hit_rate_at_10"]
    table = Table(title=f"next-item recommendations, seed {seed} ({report.evaluated} clicks, {report.users} users)")
    for column in ("method", "HitRate@10", "NDCG@10"):
        table.add_column(column, justify="right" if column != "method" else "left")
    for method, figures in report.results.items():
        table.add_row(method, f"{figures['hit_rate_at_10']:.4f}", f"{figures['ndcg_at_10']:.4f}")
    console.print(table)
    lift = model / best - 1 if best else float("inf")
    verdict = "[green]met[/]" if model >= BAR * best else "[red]missed[/]"
    console.print(f"model vs better baseline: {lift:+.1%} HitRate@10 (bar +20%: {verdict})")
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in {"load_s": loaded, **report.timings}.items())
    console.print(f"next item excluded as recently seen/purchased (no method can hit it): {report.unreachable:.1%}")
    console.print(f"device {target}; {timings}")


def register(app: typer.Typer) -> None:
    """Attach `eval recs` to the shared `eval` group."""
    group(app, "eval", "Evaluate models offline.").command("recs")(eval_recs)
