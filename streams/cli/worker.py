"""`lepton worker`: run one Faust worker process of the pipeline."""

from __future__ import annotations

import logging
import os

import typer


def worker(loglevel: str = typer.Option("info", help="debug, info, warning or error.")) -> None:
    """Run a pipeline worker: consume, score in batches, index, alert (Ctrl-C stops it cleanly)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import faust

    from streams.broker.producer import EventProducer
    from streams.core.settings import get_settings
    from streams.worker.app import create_app

    settings = get_settings()
    with EventProducer(settings) as probe:  # a refused password or certificate: say which setting, then stop
        probe.check_connection(timeout_s=30.0)
    app, _ = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    for chatty in ("opensearch", "elastic_transport", "elasticsearch"):  # one line per bulk request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    worker.execute_from_commandline()


def register(app: typer.Typer) -> None:
    """Add `worker` to the root app."""
    app.command()(worker)
