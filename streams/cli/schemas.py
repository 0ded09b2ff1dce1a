"""`lepton schemas export`: the JSON Schemas of the event contracts, written to infra/schemas/."""

from __future__ import annotations

from pathlib import Path

import typer

from streams.tools.schemas import CONTRACTS, SCHEMA_DIR, export, stale_files

app = typer.Typer(help="JSON Schemas of the event contracts.", no_args_is_help=True)


@app.command("export")
def export_command(
    out: Path = typer.Option(SCHEMA_DIR, help="directory for the *.json files"),
    check: bool = typer.Option(False, "--check", help="write nothing; exit 1 if the files are out of date"),
) -> None:
    """Write the JSON Schema of every event, document, alert and dead letter to infra/schemas/."""
    if check:
        stale = stale_files(out)
        if stale:
            typer.echo(f"out of date: {', '.join(stale)} (run `lepton schemas export`)", err=True)
            raise typer.Exit(1)
        typer.echo(f"{len(CONTRACTS)} schema files are up to date")
        return
    for path in export(out):
        typer.echo(f"wrote {path}")


def register(root: typer.Typer) -> None:
    """Add the `schemas` command group to the root app."""
    root.add_typer(app, name="schemas")
