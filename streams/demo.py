"""`lepton demo`: the whole news slice on the local stack, with live progress and a closing summary.

It brings the stack up, creates the topics, starts a worker, produces generated headlines (with one
negative surge and a few malformed messages) at a steady rate, shows events in / scored / indexed /
dead-lettered / alerts live, and ends with the figures and where to look.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from itertools import islice

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from infra.local import stack
from sinks.search import connect
from streams.deadletters import read_topic
from streams.events import utc_now
from streams.generators.news import NewsGenerator
from streams.malformed import malformed
from streams.producer import EventProducer
from streams.settings import Settings, get_settings
from streams.topics import create_topics
from streams.worker_process import WorkerProcess

console = Console()
SIM_RATE = 2.0  # simulated headlines per second of event time: the surge stands out against a realistic flow


class Feed(threading.Thread):
    """Produces the demo traffic in the background at a steady wall-clock rate."""

    def __init__(self, settings: Settings, count: int, rate: float, seed: int, surge_ticker: str) -> None:
        super().__init__(daemon=True)
        span = count / SIM_RATE
        self.generator = NewsGenerator(
            seed=seed, start=utc_now() - timedelta(seconds=span), rate_per_s=SIM_RATE, surge_ticker=surge_ticker,
            surge_at_s=span * 0.6, surge_duration_s=90, surge_count=max(60, count // 30),
        )
        self.settings, self.count, self.rate = settings, count, rate
        self.bad = [s.payload for s in malformed() if s.kind == "news" and len(s.payload) < 100_000][:8]
        self.producer = EventProducer(settings)
        self.done = threading.Event()

    @property
    def sent(self) -> int:
        return self.producer.stats.sent

    def run(self) -> None:
        every = max(1, self.count // (len(self.bad) + 1))
        started = time.monotonic()
        for i, (record, _) in enumerate(islice(self.generator, self.count)):
            self.producer.send_record("news", record)
            if i % every == every - 1 and self.bad:
                self.producer.send_raw(self.settings.topics.news, self.bad.pop())
            pause = started + (i + 1) / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.producer.flush()
        self.done.set()


def _table(rows: dict[str, str]) -> Table:
    table = Table(title="lepton demo: news sentiment", show_header=False, min_width=48)
    for name, value in rows.items():
        table.add_row(name, value)
    return table


def demo(
    count: int = typer.Option(3000, min=1, help="Headlines to produce."),
    rate: float = typer.Option(150.0, min=1, help="Headlines per second (wall clock)."),
    seed: int = typer.Option(42, help="Generator seed."),
    surge_ticker: str = typer.Option("QFL", help="Ticker that gets the negative-news surge."),
) -> None:
    """Run the pipeline on the local stack with generated news and a surge; live progress, then a summary."""
    settings = get_settings()
    stack.up(settings, report=console.print)
    create_topics(settings)
    started_at = utc_now()
    worker = WorkerProcess({}, settings.local.state_dir / "run" / "demo-worker.log", settings.metrics_port)
    worker.start()
    try:
        with console.status("starting the worker (loading the model)..."):
            worker.wait_ready()
        feed = Feed(settings, count, rate, seed, surge_ticker)
        figures = _run(settings, worker, feed, started_at)
    finally:
        worker.stop()
    _summary(settings, figures, started_at, worker)


def _run(settings: Settings, worker: WorkerProcess, feed: Feed, started_at: datetime) -> dict[str, float]:
    client = connect(settings.search)
    index = f"{settings.search.index_prefix}-news-*"
    fresh = {"range": {"processed_at": {"gte": started_at.isoformat()}}}
    feed.start()
    began, first_indexed, figures = time.monotonic(), None, {}
    with Live(_table({}), console=console, refresh_per_second=4) as live:
        while True:
            client.refresh(index)
            figures = {
                "produced": feed.sent,
                "consumed": worker.metric("lepton_events_consumed_total"),
                "scored": worker.metric("lepton_events_scored_total"),
                "indexed": client.count(index, fresh),
                "dead letters": worker.metric("lepton_events_deadlettered_total"),
                "alerts": worker.metric("lepton_alerts_total"),
            }
            if first_indexed is None and figures["indexed"]:
                first_indexed = time.monotonic()
            figures["elapsed_s"] = time.monotonic() - began
            live.update(_table({k: f"{v:,.0f}" for k, v in figures.items() if k != "elapsed_s"}
                               | {"elapsed": f"{figures['elapsed_s']:.1f} s"}))
            settled = feed.done.is_set() and figures["consumed"] >= feed.sent and figures["indexed"] >= feed.count
            if settled or not worker.running or figures["elapsed_s"] > 60 + 10 * feed.count / feed.rate:
                break
            time.sleep(0.5)
    figures["throughput"] = figures["indexed"] / max(1e-9, time.monotonic() - (first_indexed or began))
    client.close()
    return figures


def _summary(settings: Settings, figures: dict[str, float], started_at: datetime, worker: WorkerProcess) -> None:
    alerts = [json.loads(v) for v in read_topic(settings, settings.topics.alerts_sentiment)]
    alerts = [a for a in alerts if a["created_at"] >= started_at.isoformat().replace("+00:00", "Z")]
    console.rule("summary")
    console.print(f"produced {figures['produced']:,.0f}, scored {figures['scored']:,.0f}, "
                  f"indexed {figures['indexed']:,.0f}, dead letters {figures['dead letters']:,.0f}, "
                  f"alerts {len(alerts)}; {figures['throughput']:.0f} headlines/s end to end")
    for alert in alerts:
        console.print(f"[bold red]ALERT[/] {alert['severity']}: {alert['summary']}")
    prefix, url = settings.search.index_prefix, settings.search.url
    console.print(
        "\nWhere to look:\n"
        f"  scores:      curl '{url}/{prefix}-news-*/_search?q=tickers:QFL&sort=event_time:desc&size=3&pretty'\n"
        f"  alerts:      curl '{url}/{prefix}-alerts-*/_search?pretty'   |   lepton topics tail "
        f"{settings.topics.alerts_sentiment}\n"
        f"  dead letters: lepton deadletter tail\n"
        f"  Prometheus:  http://127.0.0.1:{settings.local.prometheus_port}/graph?g0.expr=lepton_events_scored_total\n"
        f"  worker log:  {worker.log_path}"
    )


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command()(demo)
