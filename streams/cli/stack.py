"""`lepton up | down | status`: the local stack, and background workers, from the command line."""

from __future__ import annotations

import time

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table

from infra.local import stack
from streams.core.settings import Settings, get_settings
from streams.tools import workers as background
from streams.tools.pipeline_status import pipeline_view

console = Console()


def _parse_only(only: str | None) -> list[str] | None:
    return [name.strip() for name in only.split(",") if name.strip()] if only else None


ONLY = typer.Option(None, "--only", help="Comma-separated subset of: kafka,search,prometheus.")


def up(only: str | None = ONLY,
       workers: int | None = typer.Option(
           None, "--workers", min=0, max=64, help="Also run this many `lepton worker` processes in the background, "
           "in one consumer group (web ports from LEPTON_METRICS_PORT up; 0 stops them; `lepton down` too).")
       ) -> None:
    """Start the local stack (Kafka, OpenSearch, Prometheus) and wait until each is healthy; with --workers N, run
    exactly N workers in the background too (started, or the extra ones stopped)."""
    settings, started = get_settings(), time.monotonic()
    stack.up(settings, _parse_only(only), report=console.print)
    console.print(f"[green]stack healthy[/] in {time.monotonic() - started:.1f} s "
                  f"(state and logs under {settings.local.state_dir})")
    if workers is not None:
        if workers:
            from streams.broker.topics import create_topics

            create_topics(settings)  # the workers' topics exist before they subscribe
        background.up(settings, workers, report=console.print)
        console.print(f"[green]{workers} background worker(s) ready[/] in consumer group {settings.worker_id}"
                      if workers else "no background workers")


def down(only: str | None = ONLY) -> None:
    """Stop the background workers and the services `lepton up` started."""
    settings = get_settings()
    if not only:
        background.down(settings, report=console.print)
    stack.down(settings, _parse_only(only), report=console.print)


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
    for worker in [] if only else background.status(settings):
        table.add_row(
            worker.name, str(worker.port), str(worker.pid or "-"),
            f"[green]{worker.health}[/]" if worker.health == "healthy" else f"[red]{worker.health}[/]",
            "-", f"{worker.rss_mb:.0f} MiB" if worker.rss_mb else "-", str(worker.log),
        )
    healthy = all(row.health == "healthy" for row in rows) and all(
        worker.health == "healthy" for worker in ([] if only else background.status(settings)))
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
