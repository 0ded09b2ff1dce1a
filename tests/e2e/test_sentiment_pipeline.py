"""News sentiment, end to end: producer -> Kafka -> worker (batched model) -> search index + alert topic.

Generated headlines with one injected negative surge (QFL) plus malformed messages go in; every valid event
must have exactly one scored document, exactly one surge alert must come out of the surge stage (for QFL, none for
others), and every malformed message must be in the dead-letter topic with its reason.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest

from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, read_records
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.malformed import malformed
from streams.generators.news import NewsGenerator
from streams.tools.deadletters import read_topic
from streams.tools.worker_process import WorkerProcess, free_port, isolated

VALID = 800
SURGE_TICKER = "QFL"


@pytest.fixture
def isolated_run(settings: Settings, unique: str) -> tuple[Settings, dict[str, str]]:
    return isolated(settings, unique, "sentiment")


def test_news_to_scores_alerts_and_dead_letters(isolated_run: tuple[Settings, dict[str, str]],
                                                tmp_path: Path) -> None:
    s, env = isolated_run
    create_topics(s)
    generator = NewsGenerator(seed=7, start=utc_now() - timedelta(hours=1), rate_per_s=2.0,
                              surge_ticker=SURGE_TICKER, surge_at_s=150, surge_duration_s=60, surge_count=80)
    records = [record for record, _ in islice(generator, VALID)]
    bad = [sample for sample in malformed() if sample.kind == "news" and len(sample.payload) < 900_000]
    with EventProducer(s) as producer:
        for i, record in enumerate(records):
            producer.send_record("news", record)
            if i % 80 == 0 and bad:
                producer.send_raw(s.topics.news, bad.pop().payload)
        for sample in bad:
            producer.send_raw(s.topics.news, sample.payload)
        producer.flush()
    sent_bad = sum(1 for sample in malformed() if sample.kind == "news" and len(sample.payload) < 900_000)

    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    client = connect(s.search)
    news_index = f"{s.search.index_prefix}-news-*"
    try:
        worker.start()
        worker.wait_ready()
        deadline, count = time.monotonic() + 300, 0
        while time.monotonic() < deadline:
            client.refresh(news_index)
            count = client.count(news_index)
            if count >= VALID and worker.metric("lepton_events_deadlettered_total") >= sent_bad:
                break
            assert worker.running, worker.log_tail()
            time.sleep(1)
        # the surge stage reads the scored headlines by ticker (news.by-ticker): wait until it has taken them all
        passed_on = len(read_records(s, s.topics.news_by_ticker, None, 30.0))
        while worker.metric("lepton_events_scored_total", {"stream": s.topics.news_by_ticker}) < passed_on:
            assert worker.running and time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.5)
        time.sleep(2)  # anything extra would show up now
        client.refresh(news_index)
        assert client.count(news_index) == VALID, worker.log_tail()

        ids = {r["id"] for r in records}
        body = {"size": 0, "aggs": {"ids": {"terms": {"field": "event_id", "size": VALID + 10}}}}
        buckets = client.search(news_index, body)["aggregations"]["ids"]["buckets"]
        assert {b["key"] for b in buckets} == ids and all(b["doc_count"] == 1 for b in buckets)

        hit = client.search(news_index, {"query": {"term": {"event_id": records[0]["id"]}}})["hits"]["hits"][0]
        doc = hit["_source"]
        assert hit["_id"] == records[0]["id"]
        assert doc["label"] in ("bearish", "neutral", "bullish") and -1 <= doc["score"] <= 1
        assert doc["topic"] == s.topics.news and doc["offset"] >= 0 and doc["model_version"]

        alerts = [json.loads(value) for value in read_topic(s, s.topics.alerts_sentiment)]
        assert [a["subject"] for a in alerts] == [SURGE_TICKER], alerts
        assert alerts[0]["kind"] == "sentiment" and alerts[0]["event_ids"]
        client.refresh(f"{s.search.index_prefix}-alerts-*")
        assert client.count(f"{s.search.index_prefix}-alerts-*") == 1

        letters = [json.loads(value) for value in read_topic(s, s.topics.deadletter)]
        assert len(letters) == sent_bad
        assert all(letter["reason"] and letter["source_topic"] == s.topics.news for letter in letters)
    finally:
        assert worker.stop() == 0, worker.log_tail()
        client.delete_prefix(s.search.index_prefix)
        client.close()
