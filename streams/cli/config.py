"""`lepton config reference`: every LEPTON_* setting, printed or written into docs/operations.md."""

from __future__ import annotations

import typer

app = typer.Typer(help="Configuration: the LEPTON_* environment variables.", no_args_is_help=True)


@app.command("reference")
def reference_command(
    write: bool = typer.Option(False, "--write", help="update the block in docs/operations.md instead of printing"),
) -> None:
    """Print every LEPTON_* setting (type, default, description) as Markdown, or update the docs with it."""
    from streams.tools.config_reference import REFERENCE_DOC, render, write_reference

    if write:
        changed = write_reference()
        typer.echo(f"{REFERENCE_DOC}: {'updated' if changed else 'already up to date'}")
    else:
        typer.echo(render(), nl=False)


def register(root: typer.Typer) -> None:
    """Add the `config` group to the root app."""
    root.add_typer(app, name="config")
