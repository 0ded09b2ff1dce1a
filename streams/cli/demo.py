"""`lepton demo`: what `make demo` runs."""

from __future__ import annotations

import typer


def demo(
    news: int = typer.Option(2000, min=1, help="Headlines to produce."),
    transactions: int = typer.Option(3000, min=1, help="Card transactions to produce."),
    clicks: int = typer.Option(2000, min=1, help="Clickstream events to produce."),
    rate: float = typer.Option(100.0, min=1, help="Events per second per stream (wall clock)."),
    seed: int = typer.Option(42, help="Generator seed."),
    surge_ticker: str = typer.Option("QFL", help="Ticker that gets the negative-news surge."),
    workers: int = typer.Option(1, min=1, max=16, help="Worker processes, in one consumer group (they share the "
                                "partitions: at most LEPTON_TOPICS__*_PARTITIONS of them get work per topic)."),
) -> None:
    """Run every pipeline on the local stack with generated traffic; live progress, then a summary."""
    from streams.tools import demo as demo_tool

    demo_tool.run(news, transactions, clicks, rate, seed, surge_ticker, workers)


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command()(demo)
