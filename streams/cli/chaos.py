"""`lepton chaos`: run fault scenarios against the running stack and print what was lost or duplicated."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from streams.core.settings import get_settings
from streams.tools.chaos import SCENARIOS, ChaosConfig, Figures, run_scenario
from streams.tools.chaos_scale import SCALE_OUT, ScaleConfig, ScaleFigures, run_scale_out

ALL = (*SCENARIOS, SCALE_OUT)

console = Console(stderr=True)


def chaos(
    scenario: str = typer.Option("all", "--scenario", help=f"One of {', '.join(ALL)}, or all."),
    events: int = typer.Option(2000, min=20, help="Valid events (news and transactions) per scenario."),
    seconds: float = typer.Option(60.0, min=5, help="How long the traffic of a scenario is spread over."),
    outage_s: float = typer.Option(60.0, min=1, help="How long search-outage keeps the search engine down."),
    kills: int = typer.Option(3, min=1, help="How many times kill-worker SIGKILLs the worker."),
    workers: int = typer.Option(3, min=2, help="scale-out: workers before one is killed and one more started."),
    partitions: int = typer.Option(6, min=2, help="scale-out: partitions of the news and transaction topics."),
    seed: int = typer.Option(7, help="Seed of the workload and of the kill moments."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object, one key per scenario."),
) -> None:
    """Inject a fault while a mixed workload flows; report lost / duplicated documents, dead letters, recovery.

    scale-out runs several workers, kills one with batches in flight and starts another, and also checks one alert
    per planted surge. Exit code 1 when any scenario lost or duplicated a result or left a worker down.
    """
    names = ALL if scenario == "all" else (scenario,)
    if any(name not in ALL for name in names):
        raise typer.BadParameter(f"unknown scenario {scenario!r}; choose from {', '.join(ALL)} or all")
    settings = get_settings()
    config = ChaosConfig(events=events, seconds=seconds, outage_s=outage_s, kills=kills, seed=seed)
    scale = ScaleConfig(events=events, seconds=seconds, workers=workers, partitions=partitions, seed=seed)
    results: dict[str, Figures | ScaleFigures] = {}
    for name in names:
        log_dir = settings.local.state_dir / "run"
        results[name] = (run_scale_out(settings, scale, log_dir, console.print) if name == SCALE_OUT else
                         run_scenario(settings, name, config, log_dir, console.print))
        console.print(f"{name}: {'[green]ok[/]' if results[name].ok else '[red]FAILED[/]'}")
    if json_output:
        print(json.dumps({name: figures.as_dict() for name, figures in results.items()}))
    else:
        _table(results)
    if not all(figures.ok for figures in results.values()):
        raise typer.Exit(1)


def _table(results: dict[str, Figures | ScaleFigures]) -> None:
    rows = {name: figures.as_dict() for name, figures in results.items()}
    table = Table(title="lepton chaos")
    table.add_column("figure")
    for name in rows:
        table.add_column(name, justify="right")
    for key in dict.fromkeys(key for row in rows.values() for key in row):  # every scenario's figures, in order
        table.add_row(key, *(_cell(row[key]) if key in row else "" for row in rows.values()))
    Console().print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {item}" for key, item in value.items()) or "-"
    return (", ".join(value) or "-") if isinstance(value, list) else str(value)


def register(app: typer.Typer) -> None:
    """Add `chaos` to the root app."""
    app.command()(chaos)
