"""`lepton up | down | status`: the local stack from the command line."""

from __future__ import annotations

import time

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from infra.local import stack
from streams.core.settings import Settings, get_settings
from streams.tools.pipeline_status import pipeline_view

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


def status(only: str | None = ONLY,
           watch: bool = typer.Option(False, "--watch", "-w", help="Keep the view live-updating (Ctrl-C stops).")
           ) -> None:
    """Show each service (ports, pid, health, version, memory, log) and the running pipeline (rates, lag, alerts)."""
    settings = get_settings()
    if watch:
        try:
            with Live(_status_view(settings, only)[0], console=console, refresh_per_second=1) as live:
                while True:
                    time.sleep(2)
                    live.update(_status_view(settings, only)[0])
        except KeyboardInterrupt:
            return
    view, healthy = _status_view(settings, only)
    console.print(view)
    if not healthy:
        raise typer.Exit(1)


def _status_view(settings: Settings, only: str | None) -> tuple[RenderableType, bool]:
    """The stack table plus (without --only) the pipeline view; and whether every service is healthy."""
    rows = stack.status(settings, _parse_only(only))
    table = Table(title="lepton local stack")
    for column in ("service", "ports", "pid", "health", "version", "memory", "log"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name, ",".join(map(str, row.ports)), str(row.pid or "-"),
            f"[green]{row.health}[/]" if row.health == "healthy" else f"[red]{row.health}[/]",
            row.version, f"{row.rss_mb:.0f} MiB" if row.rss_mb else "-", str(row.log),
        )
    healthy = all(row.health == "healthy" for row in rows)
    if only:
        return table, healthy
    topics = settings.topics
    pipeline = pipeline_view(f"http://127.0.0.1:{settings.local.prometheus_port}",
                             {"sentiment": topics.news, "fraud": topics.transactions})
    return Group(table, pipeline), healthy


def register(app: typer.Typer) -> None:
    """Add the stack commands to the root app."""
    app.command()(up)
    app.command()(down)
    app.command()(status)
