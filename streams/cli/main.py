"""The `lepton` command: one Typer app; each module of this folder registers its own sub-commands here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from streams.core.errors import LeptonError

app = typer.Typer(
    name="lepton",
    help="lepton-streams: real-time AI scoring pipeline (Kafka -> Faust -> batched models -> search + alerts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    """Attach the command groups; each module imports its heavy parts inside its commands, so `--help` is quick."""
    from streams.cli import (
        bench,
        chaos,
        config,
        dashboards,
        deadletter,
        demo,
        fraud,
        produce,
        recs,
        schemas,
        sentiment,
        stack,
        topics,
        worker,
    )

    for area in (stack, topics, worker, produce, deadletter, demo, sentiment, fraud, recs, bench, chaos, dashboards,
                 schemas, config):
        area.register(app)


_register()


def main() -> None:
    """Entry point of the console script: LeptonError becomes a one-line message and exit code 1."""
    try:
        app()
    except LeptonError as error:
        err_console.print(f"[bold red]error:[/] {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
