"""`lepton status` pipeline view: canned Prometheus results in, the table (or a plain sentence) out."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from rich.console import Console

from streams.tools import pipeline_status as ps


def vector(label: str, values: dict[str, float]) -> list[dict[str, Any]]:
    return [{"metric": {label: key}, "value": [1795940000.0, str(value)]} for key, value in values.items()]


CANNED = {
    ps.WORKERS: vector("instance", {"127.0.0.1:6066": 1, "127.0.0.1:6067": 0}),
    ps.AGENTS_DOWN: vector("instance", {"127.0.0.1:6067": 1}),
    ps.SINCE_COMMIT: vector("instance", {"127.0.0.1:6066": 0.8, "127.0.0.1:6067": 300}),
    ps.BY_STREAM["in_per_s"]: vector("stream", {"news": 81.25, "transactions": 40}),
    ps.BY_STREAM["scored_per_s"]: vector("stream", {"news": 80, "transactions": 40}),
    ps.BY_STREAM["consumed"]: vector("stream", {"news": 1208, "transactions": 408}),
    ps.BY_STREAM["dead_letters"]: vector("stream", {"news": 8}),
    ps.BY_TOPIC["lag"]: vector("topic", {"news": 478, "transactions": 0, "clicks": 12}),
    ps.BY_TOPIC["lag_s"]: vector("topic", {"news": 3.2, "transactions": 0, "clicks": 0}),
    ps.ALERTS: vector("type", {"sentiment": 1, "fraud": 17}),
}
STREAMS = {"sentiment": "news", "fraud": "transactions"}


def text(renderable: Any) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_collect_merges_streams_topics_alerts_and_workers() -> None:
    status = ps.collect(CANNED.__getitem__, STREAMS)
    rows = {row.stream: row for row in status.streams}
    assert list(rows) == ["clicks", "news", "transactions"]
    assert (rows["news"].in_per_s, rows["news"].lag, rows["news"].dead_letters, rows["news"].alerts) == (81.25, 478, 8,
                                                                                                         1)
    assert rows["transactions"].alerts == 17 and rows["transactions"].dead_letters == 0
    assert rows["clicks"].lag == 12 and rows["clicks"].alerts is None  # lag known, no counters yet, no alerts
    assert [(w.instance, w.agents_down) for w in status.workers] == [("127.0.0.1:6066", 0), ("127.0.0.1:6067", 1)]


def test_render_shows_a_compact_table() -> None:
    out = text(ps.render(ps.collect(CANNED.__getitem__, STREAMS)))
    cells = {row[0]: row for row in ([cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines())
             if row}
    assert cells["news"] == ["news", "81.2", "80.0", "1,208", "478", "3", "8", "1"]
    assert cells["clicks"][-1] == "-"
    assert "127.0.0.1:6066 (last commit 1 s ago)" in out and "127.0.0.1:6067 (1 agent(s) down)" in out


def test_no_worker_is_said_plainly() -> None:
    status = ps.collect({ps.WORKERS: []}.__getitem__, STREAMS)  # no other query is needed
    assert status.workers == [] and status.streams == []
    assert "no worker running" in text(ps.render(status))


def test_prometheus_down_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise requests.ConnectionError("refused")

    monkeypatch.setattr(ps.requests, "get", refuse)
    out = text(ps.pipeline_view("http://127.0.0.1:1", STREAMS))
    assert "not answering" in out and "lepton up --only prometheus" in out
