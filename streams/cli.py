"""The `lepton` command: one Typer app; each area registers its own sub-commands here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from streams.errors import LeptonError

app = typer.Typer(
    name="lepton",
    help="lepton-streams: real-time AI scoring pipeline (Kafka -> Faust -> batched models -> search + alerts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    """Attach the command groups; imports stay light so `lepton --help` is quick."""
    from infra.local.cli import register as register_stack
    from models.fraud_cli import register as register_fraud
    from models.recs_cli import register as register_recs
    from models.sentiment_cli import register as register_sentiment
    from streams.bench import register as register_bench
    from streams.bench_fraud import register as register_bench_fraud
    from streams.bench_fuzz import register as register_bench_fuzz
    from streams.bench_recs import register as register_bench_recs
    from streams.chaos_cli import register as register_chaos
    from streams.config_reference import register as register_config
    from streams.dashboards_cli import register as register_dashboards
    from streams.deadletter_cli import register as register_deadletter
    from streams.demo import register as register_demo
    from streams.produce_cli import register as register_produce
    from streams.schemas import register as register_schemas
    from streams.topics_cli import register as register_topics
    from streams.worker_cli import register as register_worker

    register_stack(app)
    register_fraud(app)
    register_topics(app)
    register_worker(app)
    register_produce(app)
    register_deadletter(app)
    register_schemas(app)
    register_demo(app)
    register_bench(app)
    register_bench_fraud(app)
    register_bench_fuzz(app)
    register_bench_recs(app)
    register_recs(app)
    register_chaos(app)
    register_sentiment(app)
    register_dashboards(app)
    register_config(app)


_register()


def main() -> None:
    """Entry point of the console script: LeptonError becomes a one-line message and exit code 1."""
    try:
        app()
    except LeptonError as error:
        err_console.print(f"[bold red]error:[/] {error}")
        sys.exit(1)
