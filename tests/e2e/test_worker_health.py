"""A real worker's health: lag series per assigned partition, commit age, agents up, /live and /ready, and the
pipeline view of `lepton status` once the local Prometheus scrapes the worker; and a clean stop."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta
from itertools import islice
from pathlib import Path

from rich.console import Console

from infra.local.services import Prometheus
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.news import NewsGenerator
from streams.tools.pipeline_status import collect, prometheus_query, render
from streams.tools.worker_process import WorkerProcess, free_port, isolated

NEWS = 60


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_worker_reports_lag_commits_agents_and_health(settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "sentiment")
    create_topics(s)
    generator = NewsGenerator(seed=3, start=utc_now() - timedelta(minutes=30), rate_per_s=1.0)
    with EventProducer(s) as producer:
        for record, _ in islice(generator, NEWS):
            producer.send_record("news", record)
        producer.flush()

    port = free_port()
    worker = WorkerProcess(env, tmp_path / "worker.log", port)
    base = f"http://127.0.0.1:{port}"
    target = Prometheus(settings.local, ()).targets_dir / f"health-{unique}.json"
    try:
        worker.start()
        worker.wait_ready()
        partitions = [str(p) for p in range(s.topics.news_partitions)]
        deadline, lag = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            assert worker.running, worker.log_tail()
            consumed = worker.metric("lepton_events_consumed_total", {"stream": s.topics.news})
            series = [worker.metric("lepton_consumer_lag_offsets", {"topic": s.topics.news, "partition": p})
                      for p in partitions]
            text = urllib.request.urlopen(worker.metrics_url, timeout=5).read().decode()
            every_partition = all(f'lepton_consumer_lag_offsets{{partition="{p}",topic="{s.topics.news}"}}' in text
                                  for p in partitions)
            lag = sum(series)
            if consumed >= NEWS and every_partition and lag == 0:
                break
            time.sleep(1)
        assert every_partition, f"no lag series for every partition of {s.topics.news}:\n{text}"
        assert lag == 0 and consumed == NEWS, (lag, consumed, worker.log_tail())
        assert all(f'lepton_consumer_lag_seconds{{partition="{p}",topic="{s.topics.news}"}} 0.0' in text
                   for p in partitions), text
        assert worker.metric("lepton_agent_up", {"agent": "sentiment"}) == 1
        assert "lepton_seconds_since_commit " in text
        assert worker.metric("process_resident_memory_bytes") > 50e6  # the default process collector

        assert get(f"{base}/live") == (200, {"live": True, "problems": []})
        status, ready = get(f"{base}/ready")
        assert status == 200 and ready["ready"] is True and ready["crashed"] == {}

        prometheus = Prometheus(settings.local, ())
        target.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"run": unique}}]))
        query, deadline, row = prometheus_query(prometheus.url), time.monotonic() + 120, None
        while time.monotonic() < deadline and row is None:
            view = collect(query, {"sentiment": s.topics.news})
            row = next((r for r in view.streams if r.stream == s.topics.news and r.consumed == NEWS), None)
            time.sleep(2)
        assert row is not None, "Prometheus never showed the worker's stream"
        assert row.lag == 0 and row.dead_letters == 0 and row.alerts == 0
        assert f"127.0.0.1:{port}" in [w.instance for w in view.workers]
        console = Console(record=True, width=160)
        console.print(render(view))
        assert s.topics.news in console.export_text()
    finally:
        target.unlink(missing_ok=True)
        assert worker.stop() == 0, worker.log_tail()
    # A graceful stop: Faust flushes its producer, then the runtime stops the batcher and flushes and closes the sink.
    log = (tmp_path / "worker.log").read_text()
    assert "Flush producer buffer" in log, worker.log_tail()
    assert "runtime closed: 1 batchers stopped, search sink closed" in log, worker.log_tail()
