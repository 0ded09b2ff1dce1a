"""`lepton deadletter tail` (recent dead letters as a table) and `lepton deadletter replay` (re-publish them)."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from streams.core.events import DeadLetter

console = Console()
app = typer.Typer(help="Inspect and replay the dead-letter topic.", no_args_is_help=True)


def _select(
    letters: list[DeadLetter], source: str | None, error_type: str | None, since: datetime | None
) -> list[DeadLetter]:
    """Dead letters matching the filters."""
    return [
        letter
        for letter in letters
        if (source is None or letter.source_topic == source)
        and (error_type is None or letter.error_type == error_type)
        and (since is None or letter.received_at >= (since if since.tzinfo else since.astimezone()))
    ]


def _where(letter: DeadLetter) -> str:
    if letter.source_partition is not None:
        return f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
    return f"{letter.source_topic} ({letter.origin or letter.stage})"


@app.command()
def tail(
    lines: int = typer.Option(20, "-n", "--lines", min=1, help="how many of the most recent dead letters"),
    topic: str | None = typer.Option(None, help="dead-letter topic (default: settings.topics.deadletter)"),
    source: str | None = typer.Option(None, help="only those from this source topic"),
    error_type: str | None = typer.Option(None, "--type", help="only this error type (e.g. validation)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """Show the most recent dead letters: when, where from, error type, size and the reason."""
    from streams.core.settings import get_settings
    from streams.tools.deadletters import parse_letters, read_topic

    settings = get_settings()
    name = topic or settings.topics.deadletter
    filtered = source is not None or error_type is not None
    letters, unreadable = parse_letters(read_topic(settings, name, last=None if filtered else lines))
    letters = _select(letters, source, error_type, None)[-lines:]
    if as_json:
        for letter in letters:
            print(letter.model_dump_json(exclude={"original_b64"}))
        return
    table = Table(title=f"{len(letters)} most recent dead letter(s) in {name}", expand=True)
    for column, style in (
        ("received (UTC)", "dim"),
        ("source", "cyan"),
        ("type", "yellow"),
        ("bytes", None),
        ("reason", None),
    ):
        table.add_column(column, style=style, overflow="fold", ratio=4 if column == "reason" else None)
    for letter in letters:
        table.add_row(
            letter.received_at.strftime("%Y-%m-%d %H:%M:%S"),
            _where(letter),
            letter.error_type,
            f"{letter.original_size:,}",
            letter.reason,
        )
    console.print(table)
    if unreadable:
        console.print(f"[yellow]{unreadable} record(s) in {name} are not dead letters[/]")


@app.command()
def replay(
    topic: str | None = typer.Option(None, help="dead-letter topic (default: settings.topics.deadletter)"),
    source: str | None = typer.Option(None, help="only those from this source topic"),
    error_type: str | None = typer.Option(None, "--type", help="only this error type"),
    since: datetime | None = typer.Option(None, help="only those received at or after this time"),
    limit: int | None = typer.Option(None, min=1, help="at most this many (oldest first)"),
    to: str | None = typer.Option(None, help="publish to this topic instead of each letter's source topic"),
    only_valid: bool = typer.Option(False, "--only-valid", help="replay only those the decoder now accepts"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would be replayed, send nothing"),
) -> None:
    """Re-publish the original bytes of dead letters (after a fix) to their source topic, with their keys."""
    from streams.core.settings import get_settings
    from streams.tools.deadletters import parse_letters, read_topic
    from streams.tools.deadletters import replay as run_replay

    settings = get_settings()
    letters, _ = parse_letters(read_topic(settings, topic or settings.topics.deadletter))
    selected = _select(letters, source, error_type, since)[:limit]
    report = run_replay(selected, settings=settings, target=to, only_valid=only_valid, dry_run=dry_run)
    verb = "would replay" if dry_run else "replayed"
    console.print(f"[bold]{verb}[/] {report.replayed:,} of {len(selected):,} selected dead letter(s)")
    details = {
        "truncated originals (cannot replay)": report.truncated,
        "still invalid": report.still_invalid,
        "duplicates": report.duplicates,
        "failed deliveries": report.failed,
    }
    for label, value in details.items():
        if value:
            console.print(f"  {label}: {value:,}")
    for error in report.errors:
        console.print(f"  [red]{json.dumps(error)}[/]")
    if report.failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add the `deadletter` command group to the root app."""
    root.add_typer(app, name="deadletter")
