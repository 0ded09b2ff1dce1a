"""What several command areas share: the `train`/`eval`/`score`/`bench` groups, progress bars, result printing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The root's `name` sub-app, created if no other area registered it yet."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def print_result(title: str, result: dict[str, Any], json_output: bool) -> None:
    """One JSON object on stdout, or a two-column table for people."""
    if json_output:
        print(json.dumps(result))
        return
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, str(value))
    Console().print(table)


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Callable[[str, int | None], Callable[[int], None]]]:
    """A factory (description, total) -> advance(n) drawing rich progress bars on stderr."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False, disable=not enabled) as progress:

        def factory(description: str, total: int | None) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        yield factory
