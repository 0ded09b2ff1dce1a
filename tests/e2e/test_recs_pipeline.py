"""Recommendations, end to end: catalog + clicks -> worker -> one document per user + the topic message."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.shop import build_catalog
from streams.tools.deadletters import read_topic
from streams.tools.worker_process import WorkerProcess, free_port, isolated

USER = "user-e2e-1"


def test_a_user_who_clicks_one_category_gets_that_category(settings: Settings, unique: str,
                                                             tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "recs")
    env["LEPTON_RECS__PUBLISH_INTERVAL_S"] = "0"  # every refresh is published, so topic and index must agree
    create_topics(s)
    items = build_catalog(seed=11, n_items=200)
    category = items[0].category
    mine = [item for item in items if item.category == category]
    with EventProducer(s) as producer:
        for item in items:
            producer.send_record("catalog", {"item_id": item.item_id, "title": item.title,
                                             "description": item.description, "category": item.category,
                                             "price": item.price})
        producer.flush()

    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    client = connect(s.search)
    index = f"{s.search.index_prefix}-recommendations"
    try:
        worker.start()
        worker.wait_ready()
        start = utc_now() - timedelta(minutes=5)
        clicks = [{"id": f"clk-e2e-{i}", "ts": (start + timedelta(seconds=10 * i)).isoformat(), "user_id": USER,
                   "session_id": "sess-e2e", "item_id": item.item_id,
                   "action": "purchase" if i == 3 else "view"} for i, item in enumerate(mine[:6])]
        with EventProducer(s) as producer:
            for click in clicks:
                producer.send_record("clicks", click)
            producer.flush()

        doc, deadline = None, time.monotonic() + 120
        while time.monotonic() < deadline:
            client.refresh(index)
            hits = client.search(index, {"query": {"ids": {"values": [USER]}}})["hits"]["hits"] \
                if client.count(index) else []
            if hits and hits[0]["_source"]["event_id"] == clicks[-1]["id"]:
                doc = hits[0]["_source"]
                break
            assert worker.running, worker.log_tail()
            time.sleep(0.5)
        assert doc is not None, worker.log_tail()

        recommended = [entry["item_id"] for entry in doc["items"]]
        by_id = {item.item_id: item for item in items}
        assert len(recommended) == s.recs.top_k
        assert sum(by_id[i].category == category for i in recommended) >= 8, [by_id[i].category for i in recommended]
        assert not {click["item_id"] for click in clicks} & set(recommended)  # seen and bought are excluded

        messages = [json.loads(v) for v in read_topic(s, s.topics.recommendations) if json.loads(v)["user_id"] == USER]
        assert messages and messages[-1]["items"] == doc["items"]
        assert client.count(index) == 1  # one upserted document per user
    finally:
        assert worker.stop() == 0, worker.log_tail()
        client.delete_prefix(s.search.index_prefix)
        client.close()
