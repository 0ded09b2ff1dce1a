"""The pipeline part of `lepton status`: per-stream rates, lag, alerts and dead letters of the running workers.

Read from the local Prometheus (it scrapes every worker, so several workers add up and rates are real rates).
`collect` turns query results into a `PipelineStatus` (pure, tested with canned results), `render` draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

Query = Callable[[str], list[dict[str, Any]]]  # PromQL -> the `result` of an instant vector query

WORKERS = "min by (instance) (lepton_agent_up)"  # series exist only for workers Prometheus scrapes right now
AGENTS_DOWN = "count by (instance) (lepton_agent_up == 0)"
SINCE_COMMIT = "max by (instance) (lepton_seconds_since_commit)"
BY_STREAM = {
    "in_per_s": "sum by (stream) (rate(lepton_events_consumed_total[1m]))",
    "scored_per_s": "sum by (stream) (rate(lepton_events_scored_total[1m]))",
    "consumed": "sum by (stream) (lepton_events_consumed_total)",
    "dead_letters": "sum by (stream) (lepton_events_deadlettered_total)",
}
BY_TOPIC = {
    "lag": "sum by (topic) (lepton_consumer_lag_offsets)",
    "lag_s": "max by (topic) (lepton_consumer_lag_seconds)",
}
ALERTS = "sum by (type) (lepton_alerts_total)"


class PrometheusUnavailable(Exception):
    """The local Prometheus did not answer."""


@dataclass
class StreamRow:
    """One input stream, summed over the workers that consume it."""

    stream: str
    in_per_s: float = 0.0
    scored_per_s: float = 0.0
    consumed: float = 0.0
    lag: float = 0.0
    lag_s: float = 0.0
    dead_letters: float = 0.0
    alerts: float | None = None  # None for streams that raise no alerts


@dataclass
class WorkerRow:
    """One worker Prometheus scrapes."""

    instance: str
    agents_down: int
    seconds_since_commit: float


@dataclass
class PipelineStatus:
    workers: list[WorkerRow] = field(default_factory=list)
    streams: list[StreamRow] = field(default_factory=list)


def prometheus_query(url: str, timeout_s: float = 5.0) -> Query:
    """A `Query` against Prometheus' HTTP API at `url`."""
    def query(promql: str) -> list[dict[str, Any]]:
        try:
            response = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=timeout_s)
            response.raise_for_status()
        except requests.RequestException as error:
            raise PrometheusUnavailable(f"Prometheus at {url} is not answering ({type(error).__name__}); "
                                        "start it with `lepton up --only prometheus`") from error
        return response.json()["data"]["result"]

    return query


def _values(query: Query, promql: str, label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in query(promql)}


def collect(query: Query, alert_streams: dict[str, str]) -> PipelineStatus:
    """Workers and per-stream figures; `alert_streams` maps an alert type to the stream that raises it."""
    workers = _values(query, WORKERS, "instance")
    if not workers:
        return PipelineStatus()
    down = _values(query, AGENTS_DOWN, "instance")
    since_commit = _values(query, SINCE_COMMIT, "instance")
    rows: dict[str, StreamRow] = {}
    for name, promql in BY_STREAM.items():
        for stream, value in _values(query, promql, "stream").items():
            setattr(rows.setdefault(stream, StreamRow(stream)), name, value)
    for name, promql in BY_TOPIC.items():
        for topic, value in _values(query, promql, "topic").items():
            setattr(rows.setdefault(topic, StreamRow(topic)), name, value)
    alerts = _values(query, ALERTS, "type")
    for kind, stream in alert_streams.items():
        if stream in rows:
            rows[stream].alerts = alerts.get(kind, 0.0)
    return PipelineStatus(
        workers=[WorkerRow(instance, int(down.get(instance, 0)), since_commit.get(instance, 0.0))
                 for instance in sorted(workers)],
        streams=sorted(rows.values(), key=lambda row: row.stream),
    )


def render(status: PipelineStatus) -> RenderableType:
    """A compact table, or one plain sentence when no worker is running."""
    if not status.workers:
        return Text("pipeline: no worker running (Prometheus scrapes none); start one with `lepton worker` "
                    "or `lepton demo`", style="yellow")
    workers = ", ".join(
        f"{w.instance} ([red]{w.agents_down} agent(s) down[/])" if w.agents_down else
        f"{w.instance} (last commit {w.seconds_since_commit:.0f} s ago)" for w in status.workers)
    table = Table(title="lepton pipeline", caption=f"workers: {workers}", caption_justify="left")
    table.add_column("stream")
    for column in ("in /s", "scored /s", "consumed", "lag (msgs)", "lag (s)", "dead letters", "alerts"):
        table.add_column(column, justify="right")
    for row in status.streams:
        table.add_row(row.stream, f"{row.in_per_s:,.1f}", f"{row.scored_per_s:,.1f}", f"{row.consumed:,.0f}",
                      f"[red]{row.lag:,.0f}[/]" if row.lag else "0", f"{row.lag_s:,.0f}",
                      f"[yellow]{row.dead_letters:,.0f}[/]" if row.dead_letters else "0",
                      "-" if row.alerts is None else f"{row.alerts:,.0f}")
    return table


def pipeline_view(prometheus_url: str, alert_streams: dict[str, str]) -> RenderableType:
    """What `lepton status` prints about the pipeline, Prometheus being down included."""
    try:
        return render(collect(prometheus_query(prometheus_url), alert_streams))
    except PrometheusUnavailable as error:
        return Text(f"pipeline: {error}", style="red")
