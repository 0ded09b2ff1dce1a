"""`lepton demo`: every pipeline on the local stack, with live progress and a closing summary.

It brings the stack up, creates the topics, starts the workers (one unless told: `--workers N` runs N in one
consumer group, sharing the partitions), and produces generated traffic at a steady
rate: headlines with one negative surge, card transactions with fraud scenarios, a catalog and shopping
sessions (a few malformed messages included). A live table shows, per stream, what went in, what was
scored and indexed, dead letters and alerts. Then a scripted shopper views an item, one of its substitutes, then
an item of another category, and the summary shows their recommendations following the session, the alerts raised,
and where to look.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

from rich.console import Console
from rich.live import Live
from rich.table import Table

from infra.local import stack
from sinks.search import SearchClient, connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.errors import ServiceError
from streams.core.events import utc_now
from streams.core.settings import Settings, get_settings
from streams.generators.shop import build_catalog
from streams.tools.deadletters import read_topic
from streams.tools.demo_feeds import SHOP_ITEMS, Feed, catalog_feed, clicks_feed, news_feed, transactions_feed
from streams.tools.worker_process import WorkerGroup
from streams.tools.workers import numbers, write_targets

console = Console()
SHOPPER = "user-demo-shopper"
STREAMS = {"news": "news", "transactions": "transactions", "clicks": "recommendations"}  # stream -> index kind


def run(news: int = 2000, transactions: int = 3000, clicks: int = 2000, rate: float = 100.0, seed: int = 42,
        surge_ticker: str = "QFL", workers: int = 1) -> None:
    """Run every pipeline on the local stack with generated traffic; live progress, then a summary."""
    settings = get_settings()
    if numbers(settings):
        raise ServiceError("background workers of `lepton up --workers` are running on the demo's ports and in its "
                           "consumer group: stop them first (`lepton up --workers 0`)")
    stack.up(settings, report=console.print)
    create_topics(settings)
    started_at = utc_now()
    ports = [settings.metrics_port + n for n in range(workers)]  # Prometheus scrapes the first; the others:
    write_targets(settings, workers)
    group = WorkerGroup({}, settings.local.state_dir / "run", "demo", ports)
    for _ in range(workers):
        group.add()
    client = connect(settings.search)
    try:
        catalog = catalog_feed(settings, seed)
        catalog.start()
        with console.status(f"starting {workers} worker(s) (loading the models, rebuilding the item index)..."):
            group.wait_settled()
            catalog.join()
        console.print(f"live console: [bold]{_console_url(settings)}[/] (open it in a browser while the demo runs)")
        feeds = {"news": news_feed(settings, news, rate, seed, surge_ticker),
                 "transactions": transactions_feed(settings, transactions, rate, seed),
                 "clicks": clicks_feed(settings, clicks, rate, seed)}
        figures = _run(settings, client, group, feeds, started_at)
        journey = _shopper(settings, client, seed, group)
    finally:
        group.stop()
        write_targets(settings, 0)
    _summary(settings, figures, journey, started_at, group)
    client.close()


def _fresh(client: SearchClient, index: str, since: datetime) -> int:
    client.refresh(index)
    return client.count(index, {"range": {"processed_at": {"gte": since.isoformat()}}})


def _run(settings: Settings, client: SearchClient, group: WorkerGroup, feeds: dict[str, Feed],
         started_at: datetime) -> dict[str, dict[str, float]]:
    prefix = settings.search.index_prefix
    for feed in feeds.values():
        feed.start()
    began = time.monotonic()
    limit = 120 + 5 * max(feed.count / feed.rate for feed in feeds.values())
    figures: dict[str, dict[str, float]] = {}
    last_counts, last_change = (), time.monotonic()
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            for name, feed in feeds.items():
                stream = getattr(settings.topics, name)
                kind = STREAMS[name]
                index = f"{prefix}-{kind}" if kind == "recommendations" else f"{prefix}-{kind}-*"
                figures[name] = {
                    "produced": feed.sent,
                    "consumed": group.metric("lepton_events_consumed_total", {"stream": stream}),
                    "scored": group.metric("lepton_events_scored_total", {"stream": stream}),
                    "indexed": _fresh(client, index, started_at),
                    "dead letters": group.metric("lepton_events_deadlettered_total", {"stream": stream}),
                }
            figures["news"]["alerts"] = group.metric("lepton_alerts_total", {"type": "sentiment"})
            figures["transactions"]["alerts"] = group.metric("lepton_alerts_total", {"type": "fraud"})
            elapsed = time.monotonic() - began
            live.update(_table(figures, elapsed))
            counts = tuple((f["consumed"], f["scored"], f["dead letters"]) for f in figures.values())
            if counts != last_counts:
                last_counts, last_change = counts, time.monotonic()
            if _settled(feeds, figures, quiet_s=time.monotonic() - last_change) or not group.running \
                    or elapsed > limit:
                break
            time.sleep(0.5)
    for name in figures:
        figures[name]["elapsed_s"] = time.monotonic() - began
    return figures


def _settled(feeds: dict[str, Feed], figures: dict[str, dict[str, float]], quiet_s: float) -> bool:
    """Every feed sent and consumed, and every consumed event scored or dead-lettered; or, should some never be
    (a replay after a rebalance is skipped, neither scored nor dead-lettered), nothing has moved for 5 s."""
    if not all(feed.done.is_set() and figures[name]["consumed"] >= feed.sent for name, feed in feeds.items()):
        return False
    processed = all(f["scored"] + f["dead letters"] >= f["consumed"] for f in figures.values())
    return processed or quiet_s >= 5.0


def _table(figures: dict[str, dict[str, float]], elapsed: float) -> Table:
    table = Table(title=f"lepton demo — {elapsed:.0f} s", min_width=72)
    columns = ["produced", "consumed", "scored", "indexed", "dead letters", "alerts"]
    table.add_column("stream")
    for column in columns:
        table.add_column(column, justify="right")
    for name, row in figures.items():
        table.add_row(name, *(f"{row[c]:,.0f}" if c in row else "-" for c in columns))
    return table


def _shopper(settings: Settings, client: SearchClient, seed: int,
             group: WorkerGroup) -> list[tuple[str, list[str]]]:
    """A scripted session: an item, one of its substitutes, then an item of another category; after each view, the
    item viewed and the top-5 recommended (title and category), to show the recommendations following the session."""
    items = build_catalog(seed, SHOP_ITEMS)
    by_id = {item.item_id: item for item in items}
    first, substitute = next((a, b) for a in items for b in items
                             if a.title != b.title and (a.category, a.noun) == (b.category, b.noun))
    elsewhere = next(i for i in items if i.category != first.category)
    journey, clock = [], utc_now() - timedelta(minutes=10)
    index = f"{settings.search.index_prefix}-recommendations"
    for step, item in enumerate((first, substitute, elsewhere)):
        clock += timedelta(seconds=40)
        with EventProducer(settings) as producer:
            producer.send_record("clicks", {"id": f"clk-demo-{step}", "ts": clock.isoformat(), "user_id": SHOPPER,
                                            "session_id": "sess-demo", "item_id": item.item_id, "action": "view"})
            producer.flush()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and group.running:
            client.refresh(index)
            hits = client.search(index, {"query": {"ids": {"values": [SHOPPER]}}})["hits"]["hits"]
            if hits and hits[0]["_source"]["event_id"] == f"clk-demo-{step}":
                top = [by_id[r["item_id"]] for r in hits[0]["_source"]["items"][:5] if r["item_id"] in by_id]
                journey.append((f"{item.title} ({item.category})", [f"{i.title} ({i.category})" for i in top]))
                break
            time.sleep(0.5)
    return journey


def _summary(settings: Settings, figures: dict[str, dict[str, float]], journey: list[tuple[str, list[str]]],
             started_at: datetime, group: WorkerGroup) -> None:
    since = started_at.isoformat().replace("+00:00", "Z")
    console.line()  # off a terminal, the live table's last line ends without one
    console.rule("summary")
    console.print(f"{len(group.workers)} worker process(es) ran in consumer group {settings.worker_id}, sharing "
                  f"{settings.topics.news_partitions} news, {settings.topics.transactions_partitions} transaction and "
                  f"{settings.topics.clicks_partitions} click partitions")
    for name, row in figures.items():
        outcome = (f"recommendations refreshed for {row['indexed']:,.0f} users" if name == "clicks" else
                   f"indexed {row['indexed']:,.0f} ({row['indexed'] / max(row['elapsed_s'], 1e-9):.0f}/s end to end)")
        console.print(f"{name:>12}: produced {row['produced']:,.0f}, {outcome}, "
                      f"dead letters {row['dead letters']:,.0f}")
    sentiment, fraud = ([a for a in map(json.loads, read_topic(settings, topic)) if a["created_at"] >= since]
                        for topic in (settings.topics.alerts_sentiment, settings.topics.alerts_fraud))
    for alert in sentiment:
        console.print(f"[bold red]SENTIMENT ALERT[/] {alert['severity']}: {alert['summary']}")
    merchant = sorted((alert for alert in fraud if "merchant's confirmed fraud" in alert["summary"]),
                      key=lambda alert: -alert["evidence"].get("merchant_frauds_30d", 0))  # the most evidence first
    console.print(f"[bold red]{len(fraud)} fraud alerts[/] ({len(merchant)} citing a merchant's confirmed fraud), "
                  "for example:")
    for alert in [*merchant[:1], *[a for a in fraud if a not in merchant][:2]]:
        console.print(f"  {alert['severity']}: {alert['summary']}")
    for viewed, top in journey:
        console.print(f"[bold]{SHOPPER}[/] viewed {viewed}; recommended next: {'; '.join(top)}")
    prefix, url, prom = settings.search.index_prefix, settings.search.url, settings.local.prometheus_port
    console.print(
        "\nWhere to look:\n"
        f"  scores:       curl '{url}/{prefix}-news-*/_search?q=tickers:QFL&sort=event_time:desc&size=3&pretty'\n"
        f"  fraud:        curl '{url}/{prefix}-transactions-*/_search?q=decision:block&size=3&pretty'\n"
        f"  recs:         curl '{url}/{prefix}-recommendations/_doc/{SHOPPER}?pretty'\n"
        f"  alerts:       lepton topics tail {settings.topics.alerts_fraud}   |   "
        f"curl '{url}/{prefix}-alerts-*/_search?pretty'\n"
        f"  dead letters: lepton deadletter tail\n"
        f"  Prometheus:   http://127.0.0.1:{prom}/graph?g0.expr=rate(lepton_events_scored_total[1m])\n"
        f"  live console: {_console_url(settings)} (while a worker runs: `lepton worker`)\n"
        f"  worker logs:  {', '.join(str(worker.log_path) for worker in group.workers)}",
        soft_wrap=True,  # commands and URLs stay whole on one line, to copy (the terminal wraps them for display)
    )


def _console_url(settings: Settings) -> str:
    """The worker's live console (streams/worker/console.py), served by its web server."""
    return f"http://{settings.metrics_host}:{settings.metrics_port}/console"
