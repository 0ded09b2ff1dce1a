"""The item index is rebuilt from the compacted catalog topic at start, and deletions are honoured."""

from __future__ import annotations

from pathlib import Path

from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.settings import Settings
from streams.generators.shop import build_catalog
from streams.tools.worker_process import WorkerProcess, free_port, isolated


def test_index_rebuilt_after_restart_with_deletions(settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "recs")
    create_topics(s)
    items = build_catalog(seed=3, n_items=40)
    with EventProducer(s) as producer:
        for item in items:
            producer.send_record("catalog", {"item_id": item.item_id, "title": item.title,
                                             "description": item.description, "category": item.category,
                                             "price": item.price})
        for item in items[:5]:  # deleted by flag
            producer.send_record("catalog", {"item_id": item.item_id, "deleted": True})
        for item in items[5:10]:  # deleted by tombstone
            producer.send_raw(s.topics.catalog, None, item.item_id.encode())
        producer.flush()

    port = free_port()
    for attempt in range(2):  # the second start must rebuild the same index from the topic
        worker = WorkerProcess(env, tmp_path / f"worker-{attempt}.log", port)
        try:
            worker.start()
            worker.wait_ready()
            assert worker.metric("lepton_item_index_items") == 30, worker.log_tail()
            rebuilt = [line for line in worker.log_tail(400).splitlines() if "item index rebuilt" in line]
            assert rebuilt and rebuilt[-1].rstrip().endswith(": 30 items")
        finally:
            assert worker.stop() == 0, worker.log_tail()
