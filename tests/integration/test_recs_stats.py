"""Item statistics are shared: two workers recommend from the same statistics, and a restart keeps them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sinks.search import SearchClient, connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, read_records
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.shop import build_catalog
from streams.tools.worker_process import WorkerProcess, free_port, isolated

PROBES = 8


def _stats_records(s: Settings) -> tuple[int, dict[str, dict]]:
    """How many records the item-stats topic holds, and the latest statistics per item."""
    records = read_records(s, s.topics.item_stats, None, 30.0)
    return len(records), {r.key.decode(): json.loads(r.value) for r in records if r.key and r.value}


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _docs(client: SearchClient, index: str, users: list[str], last_ids: dict[str, str]) -> dict[str, dict]:
    """Each user's recommendation document once it reflects their last click."""
    found: dict[str, dict] = {}

    def ready() -> bool:
        client.refresh(index)
        hits = client.search(index, {"size": len(users), "query": {"ids": {"values": users}}})["hits"]["hits"]
        found.update({h["_id"]: h["_source"] for h in hits if h["_source"]["event_id"] == last_ids[h["_id"]]})
        return len(found) == len(users)

    _wait(ready, "recommendation documents")
    return found


def test_two_workers_share_item_statistics_and_a_restart_keeps_them(settings: Settings, unique: str,
                                                                    tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "recs")
    env["LEPTON_RECS__WEIGHT_POPULARITY"] = "0"  # the probes' own views change popularity only: leave it out
    create_topics(s)
    items = build_catalog(seed=5, n_items=60)
    first = items[0]
    other = next(i for i in items if i.category != first.category)  # text alone would never suggest it
    at = utc_now() - timedelta(minutes=30)

    def sessions(prefix: str, count: int) -> list[dict]:
        return [{"id": f"{prefix}-{n}-{step}", "ts": (at + timedelta(seconds=n)).isoformat(),
                 "user_id": f"{prefix}-{n}", "session_id": f"{prefix}-s{n}", "item_id": item.item_id, "action": "view"}
                for n in range(count) for step, item in enumerate((first, other))]

    with EventProducer(s) as producer:
        for item in items:
            producer.send_record("catalog", {"item_id": item.item_id, "title": item.title, "category": item.category,
                                             "description": item.description, "price": item.price})
        for record in sessions("warm", 30):
            producer.send_record("clicks", record)
        producer.flush()

    client, index = connect(s.search), f"{s.search.index_prefix}-recommendations"
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log", free_port()) for n in range(2)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        _wait(lambda: _stats_records(s)[1].get(first.item_id, {}).get("next", {}).get(other.item_id, 0) > 29.9,
              "the warm-up's transitions in item-stats")
        total = _stats_records(s)[0]
        _wait(lambda: all(w.metric("lepton_item_stats_read_total") >= total for w in workers), "both views")

        probes = [f"probe-{n}" for n in range(PROBES)]
        scored = [w.metric("lepton_events_scored_total", {"stream": s.topics.clicks}) for w in workers]
        with EventProducer(s) as producer:
            for user in probes:  # one view each, at the warm-up's time: no transition, no decay
                producer.send_record("clicks", {"id": f"{user}-0", "ts": at.isoformat(), "user_id": user,
                                                "session_id": f"{user}-s", "item_id": first.item_id, "action": "view"})
            producer.flush()
        docs = _docs(client, index, probes, {user: f"{user}-0" for user in probes})
        after = [w.metric("lepton_events_scored_total", {"stream": s.topics.clicks}) for w in workers]
        assert all(a > b for a, b in zip(after, scored, strict=True)), "both workers must have served probes"
        lists = {json.dumps([(r["item_id"], round(r["score"], 5)) for r in doc["items"]]) for doc in docs.values()}
        assert len(lists) == 1, lists  # the same statistics on both workers: the same recommendations
        expected = docs[probes[0]]["items"]
        assert expected[0]["item_id"] == other.item_id  # what followed the item for other users comes first

        for worker in workers:
            assert worker.stop() == 0, worker.log_tail()
        with EventProducer(s) as producer:
            for record in sessions("later", 10):
                producer.send_record("clicks", record)
            producer.send_record("clicks", {"id": "again-0", "ts": at.isoformat(), "user_id": "again",
                                            "session_id": "again-s", "item_id": first.item_id, "action": "view"})
            producer.flush()
        restarted = [WorkerProcess(env, tmp_path / f"worker-restarted-{n}.log", free_port()) for n in range(2)]
        workers += restarted
        for worker in restarted:
            worker.start()
        for worker in restarted:
            worker.wait_ready()
            assert worker.metric("lepton_item_stats_items") >= 2  # read back from the compacted topic at start
        # each item's table value was restored by the worker that owns its partition (raw keys put the changelog
        # record in the item's partition): the 10 later sessions add to the 30, they do not start over
        _wait(lambda: _stats_records(s)[1][first.item_id]["next"][other.item_id] > 39.9, "the later transitions")
        assert _stats_records(s)[1][first.item_id]["next"][other.item_id] < 40.1
        [again] = _docs(client, index, ["again"], {"again": "again-0"}).values()
        assert again["items"][0]["item_id"] == other.item_id
    finally:
        for worker in workers:
            if worker.running:
                worker.stop()
        client.delete_prefix(s.search.index_prefix)
        client.close()
