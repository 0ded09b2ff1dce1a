"""Command groups shared by several areas (`train`, `eval`, `score`, `bench`): created once, then reused."""

from __future__ import annotations

import typer


def group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The root's `name` sub-app, created if no other area registered it yet."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub
