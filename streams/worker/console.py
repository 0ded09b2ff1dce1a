"""The live console: one page on the worker's own web server (`/console`, bound to LEPTON_METRICS_HOST).

It shows what this worker is doing right now, from the pipeline's own state only: per-stream rates from the
in-process counters, lag from `ConsumerHealth`, the latest alerts this process published (RECENT_ALERTS), the
negative-news share per ticker over event time and a user's recommendations (both from the search engine).
The page (console.html, plain HTML + JS, no build step) polls `/console/data` every two seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

import faust
from prometheus_client import Counter

from sinks import metrics
from streams.core.events import Alert, utc_now
from streams.core.settings import Settings
from streams.worker.checkpoint import RECENT_ALERTS
from streams.worker.health import ConsumerHealth

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("console.html")
ALERTS_SHOWN = 25  # per kind: a stream of fraud alerts must not push the rare sentiment alert off the page
ALERT_KINDS = ("sentiment", "fraud")
RATE_WINDOW_S = 10.0  # rates are averaged over about this long
CHART_WINDOW = "1h"  # the chart covers news processed in this window (search engine date math)
CHART_TICKERS = 5  # the tickers with the most negative items in it
CHART_BUCKETS = 30
CHART_CACHE_S = 5.0  # at most one chart query per this many seconds, however many pages are open
USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


def counter_totals(counter: Counter) -> dict[str, float]:
    """A counter's totals by its first label (the stream), summed over the other labels."""
    totals: dict[str, float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = next(iter(sample.labels.values()), "")
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


class RateMeter:
    """Per-key rates from cumulative totals: the change since the newest sample at least `window_s` old."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, dict[str, float]]] = deque()

    def rates(self, now: float, totals: dict[str, float]) -> dict[str, float]:
        """Record `totals` at `now`; return per-second rates (0 until two samples are apart)."""
        self._samples.append((now, dict(totals)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        then, old = self._samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return dict.fromkeys(totals, 0.0)
        return {key: max(0.0, value - old.get(key, 0.0)) / elapsed for key, value in totals.items()}


def negative_share_query(window: str = CHART_WINDOW, tickers: int = CHART_TICKERS,
                         buckets: int = CHART_BUCKETS) -> dict[str, Any]:
    """Top tickers by negative items among news processed in `window`, each with its share over event time."""
    bearish = {"filter": {"term": {"label": "bearish"}}}
    return {
        "size": 0,
        "query": {"range": {"processed_at": {"gte": f"now-{window}"}}},
        "aggs": {"tickers": {
            "terms": {"field": "tickers", "size": tickers, "order": {"negative": "desc"}},
            "aggs": {"negative": bearish,
                     "over_time": {"auto_date_histogram": {"field": "event_time", "buckets": buckets},
                                   "aggs": {"negative": bearish}}},
        }},
    }


def negative_share(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The chart's series from a `negative_share_query` response; empty time buckets are left out."""
    series = []
    for bucket in response.get("aggregations", {}).get("tickers", {}).get("buckets", []):
        points = [{"t": point["key"], "items": point["doc_count"],
                   "share": point["negative"]["doc_count"] / point["doc_count"]}
                  for point in bucket["over_time"]["buckets"] if point["doc_count"]]
        series.append({"ticker": bucket["key"], "items": bucket["doc_count"],
                       "negative": bucket["negative"]["doc_count"], "points": points})
    return series


def alert_view(alert: Alert) -> dict[str, Any]:
    """What the page shows of an alert: its id, what and why, the evidence and the events behind it."""
    reasons = alert.evidence.get("reasons")
    return {
        "alert_id": alert.alert_id, "kind": alert.kind, "severity": alert.severity,
        "created_at": alert.created_at.isoformat(), "subject": alert.subject, "summary": alert.summary,
        "evidence": {key: value for key, value in alert.evidence.items() if key != "reasons"},
        "reasons": [part for part in str(reasons).split("; ") if part] if reasons else [],
        "events": len(alert.event_ids), "event_ids": alert.event_ids[:5],
    }


class Console:
    """Builds the console's JSON from the runtime, the health tracker, the counters and the search engine."""

    def __init__(self, settings: Settings, runtime: Any, health: ConsumerHealth) -> None:
        self.settings = settings
        self.runtime = runtime
        self.health = health
        self.meter = RateMeter()
        self._chart: tuple[float, dict[str, Any]] | None = None

    def streams(self) -> list[str]:
        """The input topics this worker consumes, in data-flow order."""
        topics, runs = self.settings.topics, self.settings.runs
        return [name for name, pipeline in ((topics.news, "sentiment"), (topics.news_by_ticker, "sentiment"),
                                            (topics.transactions, "fraud"), (topics.catalog, "recs"),
                                            (topics.clicks, "recs"), (topics.item_deltas, "recs")) if runs(pipeline)]

    def stream_rows(self, now: float) -> list[dict[str, Any]]:
        """Per stream: totals, rates over the last seconds, dead letters and lag."""
        consumed = counter_totals(metrics.EVENTS_CONSUMED)
        scored = counter_totals(metrics.EVENTS_SCORED)
        letters = counter_totals(metrics.EVENTS_DEADLETTERED)
        rates = self.meter.rates(now, {**{f"in:{k}": v for k, v in consumed.items()},
                                       **{f"scored:{k}": v for k, v in scored.items()}})
        lag = self.health.lag_by_topic()
        return [{"stream": stream, "consumed": consumed.get(stream, 0.0), "scored": scored.get(stream, 0.0),
                 "in_per_s": rates.get(f"in:{stream}", 0.0), "scored_per_s": rates.get(f"scored:{stream}", 0.0),
                 "dead_letters": letters.get(stream, 0.0), "lag": lag.get(stream, 0)}
                for stream in self.streams()]

    async def chart(self, now: float) -> dict[str, Any]:
        """The negative-share series (cached a few seconds); an `error` in words when there is none."""
        if not self.settings.runs("sentiment"):
            return {"series": [], "error": "this worker does not run the sentiment pipeline"}
        if self._chart is not None and now - self._chart[0] < CHART_CACHE_S:
            return self._chart[1]
        client = self._client()
        if client is None:
            return {"series": [], "error": "waiting for the worker to connect to the search engine"}
        index = f"{self.settings.search.index_prefix}-news-*"
        try:
            response = await asyncio.to_thread(client.search, index, negative_share_query())
            chart: dict[str, Any] = {"series": negative_share(response), "error": None, "window": CHART_WINDOW}
        except Exception as error:  # noqa: BLE001 - a missing index or a search outage is shown, not raised
            chart = {"series": [], "error": f"no chart from {index}: {type(error).__name__}"}
        self._chart = (now, chart)
        return chart

    async def data(self) -> dict[str, Any]:
        """Everything the page shows except recommendations."""
        now = time.time()
        problems = self.health.problems(now)
        return {
            "worker": self.settings.worker_id, "generated_at": utc_now().isoformat(),
            "ready": bool(self.runtime.consuming) and not self.health.crashed, "problems": problems,
            "streams": self.stream_rows(now),
            "alerts": {kind: [alert_view(alert) for alert in list(RECENT_ALERTS[kind])[::-1][:ALERTS_SHOWN]]
                       for kind in ALERT_KINDS},
            "chart": await self.chart(now),
        }

    async def recommendations(self, user_id: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): the user's current top-K from the recommendations index."""
        if not USER_ID.match(user_id):
            return 400, {"error": "a user id is 1-128 letters, digits, '.', '_', ':' or '-'"}
        client = self._client()
        if client is None:
            return 503, {"error": "the worker is not connected to the search engine yet"}
        index = f"{self.settings.search.index_prefix}-recommendations"
        body = {"query": {"ids": {"values": [user_id]}}}
        try:
            hits = (await asyncio.to_thread(client.search, index, body))["hits"]["hits"]
        except Exception as error:  # noqa: BLE001 - shown on the page
            return 502, {"error": f"could not read {index}: {type(error).__name__}"}
        if not hits:
            return 200, {"user_id": user_id, "items": [], "note": f"no recommendations for {user_id} yet"}
        doc = hits[0]["_source"]
        return 200, {"user_id": user_id, "items": doc.get("items", []), "updated_at": doc.get("updated_at"),
                     "trigger_item_id": doc.get("trigger_item_id")}

    def _client(self) -> Any:
        sink = getattr(self.runtime, "sink", None)
        return sink.client if sink is not None else None


def register(app: faust.App, runtime: Any, health: ConsumerHealth) -> Console:
    """Add /console, /console/data and /console/recommendations?user=ID to the app's web server."""
    console = Console(runtime.settings, runtime, health)

    @app.page("/console")
    async def console_page(web: Any, request: Any) -> Any:
        return web.html(PAGE.read_text())

    @app.page("/console/data")
    async def console_data(web: Any, request: Any) -> Any:
        return web.json(await console.data())

    @app.page("/console/recommendations")
    async def console_recommendations(web: Any, request: Any) -> Any:
        status, body = await console.recommendations(request.query.get("user", "").strip())
        return web.json(body, status=status)

    return console
