"""Surge windows are keyed by ticker: with two workers, one ticker's negative headlines spread over several news
partitions raise exactly one alert, and a worker killed and started again continues the window.

The headlines are written to be negative, but the model decides: the expected alert is what the same detector makes of
the news.by-ticker log (the order the surge stage read it in), so the test checks the stage against the detector, not
the model. The first half must not be a surge on its own, nor the second half: only a window that survived the kill
raises the alert.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from models.surge import SurgeDetector, TickerMentions, TickerWindow
from sinks.search import SearchClient, connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, read_records
from streams.core.events import utc_now
from streams.core.settings import Settings, SurgeSettings
from streams.tools.worker_process import WorkerProcess, free_port, isolated

TICKER, HALF = "ACME", 8
SURGE = {"min_negative": 12, "min_share": 0.4, "max_p_value": 1e-3}
NEGATIVE = ["{co} shares tumble {n}% after profit warning", "{co} misses bond payment; shares plunge",
            "{co} suspends dividend as cash runs low", "{co} cuts guidance; shares slump {n}%"]


def headlines(first: int, count: int, start: datetime) -> list[dict]:
    return [{"id": f"surge-{first + i}", "published_at": (start + timedelta(seconds=10 * (first + i))).isoformat(),
             "source": "wire", "headline": NEGATIVE[i % len(NEGATIVE)].format(co="Acme Industrial", n=20 + i),
             "tickers": [TICKER]} for i in range(count)]


def wait(condition: Callable[[], bool], what: str, workers: list[WorkerProcess], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "\n".join(
            w.log_tail(15) for w in workers)
        time.sleep(0.5)


def partitions(client: SearchClient, index: str) -> set[int]:
    """The news partitions the indexed headlines came from."""
    client.refresh(index)
    hits = client.search(index, {"size": 1000, "query": {"match_all": {}}})["hits"]["hits"]
    return {hit["_source"]["partition"] for hit in hits}


def expected_surges(s: Settings, surge: SurgeSettings, only: set[str] | None = None) -> list[str]:
    """The alert ids the detector gives the news.by-ticker log, read in order (headlines in `only`, if given)."""
    records = sorted(read_records(s, s.topics.news_by_ticker, None, 30.0), key=lambda r: (r.partition, r.offset))
    detector, window, found = SurgeDetector(surge), TickerWindow(), []
    for record in records:
        for m in TickerMentions.model_validate_json(record.value or b"").mentions:
            if only is None or m.id in only:
                found.append(detector.step(window, TICKER, m.t, m.neg, m.id))
    return [surge.alert_id for surge in found if surge is not None]


def test_two_workers_raise_one_alert_for_a_ticker_spread_over_partitions_and_a_killed_one_continues_the_window(
        settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "sentiment")
    env |= {f"LEPTON_SURGE__{name.upper()}": str(value) for name, value in SURGE.items()}
    surge_settings = s.surge.model_copy(update=SURGE)
    create_topics(s)
    start = utc_now() - timedelta(minutes=20)
    first, second = headlines(0, HALF, start), headlines(HALF, HALF, start)
    client, index = connect(s.search), f"{s.search.index_prefix}-news-*"
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log", free_port()) for n in range(2)]

    def stage_caught_up(live: list[WorkerProcess]) -> Callable[[], bool]:
        def done() -> bool:
            passed_on = len(read_records(s, s.topics.news_by_ticker, None, 30.0))
            taken = sum(w.metric("lepton_events_scored_total", {"stream": s.topics.news_by_ticker}) for w in live)
            return passed_on > 0 and taken >= passed_on
        return done

    def indexed(n: int) -> Callable[[], bool]:
        def done() -> bool:
            client.refresh(index)
            return client.count(index) >= n
        return done

    def alert_ids() -> list[str]:
        return [json.loads(r.value)["alert_id"] for r in read_records(s, s.topics.alerts_sentiment, None, 30.0)]

    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        with EventProducer(s) as producer:
            for record in first:
                producer.send_record("news", record)
            producer.flush()
        wait(indexed(HALF), "the first half indexed", workers)
        wait(stage_caught_up(workers), "the surge stage to take the first half", workers)
        assert len(partitions(client, index)) >= 2  # the ticker's headlines are spread over news partitions
        news = [w.metric("lepton_events_scored_total", {"stream": s.topics.news}) for w in workers]
        assert all(n > 0 for n in news), news  # both workers scored some of them
        assert expected_surges(s, surge_settings) == [] and alert_ids() == []

        owners = [w for w in workers if w.metric("lepton_events_scored_total", {"stream": s.topics.news_by_ticker})]
        assert len(owners) == 1  # one worker owns the ticker's partition of news.by-ticker
        owner = owners[0]
        owner.kill()  # SIGKILL: the window lives on in the table's changelog, not in the process
        restarted = WorkerProcess(env, tmp_path / "worker-restarted.log", free_port())
        workers.append(restarted)
        restarted.start()
        restarted.wait_ready()
        with EventProducer(s) as producer:
            for record in second:
                producer.send_record("news", record)
            producer.flush()
        live = [w for w in workers if w.running]
        wait(indexed(2 * HALF), "the second half indexed", live)
        wait(lambda: bool(alert_ids()), "the surge alert", live)
        time.sleep(3)  # a second alert, if any, would show up now
        expected = expected_surges(s, surge_settings)
        assert len(expected) == 1, "the model labelled too few headlines negative for a surge"
        assert expected_surges(s, surge_settings, {r["id"] for r in second}) == []  # the second half alone: none
        assert alert_ids() == expected  # one alert, on the topic once: the killed worker's window went on
        client.refresh(f"{s.search.index_prefix}-alerts-*")
        assert client.count(f"{s.search.index_prefix}-alerts-*") == 1
    finally:
        for worker in workers:
            if worker.running:
                worker.stop()
        client.delete_prefix(s.search.index_prefix)
        client.close()
