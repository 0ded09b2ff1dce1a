"""`lepton topics create | list`: the topics of the data flow, made with confluent-kafka's admin client."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from streams.broker.topics import create_topics, list_topics
from streams.core.settings import get_settings

console = Console()
topics_app = typer.Typer(help="Create and list the pipeline's Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
def create() -> None:
    """Create every topic of the data flow that does not exist yet (idempotent)."""
    for name, outcome in create_topics(get_settings()).items():
        console.print(f"{name}: {outcome}")


@topics_app.command("list")
def list_() -> None:
    """List the broker's topics with partitions and cleanup policy."""
    table = Table(title=f"topics on {get_settings().kafka.bootstrap_servers}")
    for column in ("topic", "partitions", "cleanup.policy"):
        table.add_column(column)
    for topic in list_topics(get_settings()):
        table.add_row(topic.name, str(topic.partitions), topic.cleanup_policy)
    console.print(table)


@topics_app.command("tail")
def tail(
    topic: str = typer.Argument(..., help="Topic to read, e.g. transactions or alerts.sentiment."),
    last: int = typer.Option(10, "-n", "--last", min=1, help="How many of the newest messages per partition."),
) -> None:
    """Print a topic's newest messages, one value per line (like `kcat -C -o -N -e`)."""
    from streams.tools.deadletters import read_topic

    for value in read_topic(get_settings(), topic, last=last):
        typer.echo(value.decode(errors="replace"))


def register(app: typer.Typer) -> None:
    """Add `topics` to the root app."""
    app.add_typer(topics_app, name="topics")
