"""`lepton up | down | status`: the local stack from the command line."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from infra.local import stack
from streams.settings import get_settings

console = Console()


def _parse_only(only: str | None) -> list[str] | None:
    return [name.strip() for name in only.split(",") if name.strip()] if only else None


ONLY = typer.Option(None, "--only", help="Comma-separated subset of: kafka,search,prometheus.")


def up(only: str | None = ONLY) -> None:
    """Start the local stack (Kafka, OpenSearch, Prometheus) and wait until each is healthy."""
    started = time.monotonic()
    stack.up(get_settings(), _parse_only(only), report=console.print)
    console.print(f"[green]stack healthy[/] in {time.monotonic() - started:.1f} s "
                  f"(state and logs under {get_settings().local.state_dir})")


def down(only: str | None = ONLY) -> None:
    """Stop the services `lepton up` started."""
    stack.down(get_settings(), _parse_only(only), report=console.print)


def status(only: str | None = ONLY) -> None:
    """Show each service: ports, pid, health, version, memory, log file."""
    rows = stack.status(get_settings(), _parse_only(only))
    table = Table(title="lepton local stack")
    for column in ("service", "ports", "pid", "health", "version", "memory", "log"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name, ",".join(map(str, row.ports)), str(row.pid or "-"),
            f"[green]{row.health}[/]" if row.health == "healthy" else f"[red]{row.health}[/]",
            row.version, f"{row.rss_mb:.0f} MiB" if row.rss_mb else "-", str(row.log),
        )
    console.print(table)
    if any(row.health != "healthy" for row in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root app."""
    app.command()(up)
    app.command()(down)
    app.command()(status)
