"""The chaos harness's bookkeeping: the workload it sends and how it counts documents and alerts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.generators.malformed import malformed
from streams.tools.chaos import ChaosConfig, ChaosRun, Figures, workload


def test_workload_interleaves_valid_news_and_transactions() -> None:
    messages = workload(100, seed=3, poison=False)
    kinds = Counter(m.kind for m in messages)
    assert kinds == {"news": 50, "transactions": 50}
    assert all(m.record is not None and m.raw is None for m in messages)
    assert [m.kind for m in messages[:4]] == ["news", "transactions", "news", "transactions"]
    assert len({m.record["id"] for m in messages if m.record}) == 100


def test_poison_workload_carries_every_malformed_kind_once() -> None:
    messages = workload(200, seed=3, poison=True)
    raw = [m for m in messages if m.raw is not None]
    sendable = [s for s in malformed() if len(s.payload) < 900_000]
    assert Counter(m.kind for m in raw) == Counter(s.kind for s in sendable)
    assert len({m.raw for m in raw}) == len(sendable)
    assert {m.kind for m in raw} == {"news", "transactions", "clicks", "catalog"}
    assert sum(m.record is not None for m in messages) == 200
    assert messages.index(raw[0]) < len(messages) // 2  # spread through the traffic, not appended


def figures(**changes: Any) -> Figures:
    base = dict(produced=10, valid=10, documents=10, lost=0, duplicated=0, rewritten=0, dead_letters=0,
                expected_dead_letters=0, alerts=0, duplicate_alert_ids=0, recovery_s=1.0, produce_failures=0,
                worker_running=True)
    return Figures(**(base | changes))


def test_figures_are_ok_only_without_loss_duplicates_or_a_dead_worker() -> None:
    assert figures().ok
    assert figures(duplicate_alert_ids=3, rewritten=5).ok  # re-emitted alerts and overwrites are allowed
    assert not figures(lost=1).ok
    assert not figures(duplicated=1).ok
    assert not figures(worker_running=False).ok
    assert not figures(expected_dead_letters=5, dead_letters=4).ok
    assert figures().as_dict()["ok"] is True


class PagedClient:
    """Answers search_after pages over a fixed list of hits, as the search engine would."""

    def __init__(self, hits: list[dict[str, Any]]) -> None:
        self.hits = sorted(hits, key=lambda h: (h["_source"]["event_id"], h["_index"]))
        self.bodies: list[dict[str, Any]] = []

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        after = tuple(body.get("search_after", ()))
        page = [h for h in self.hits if not after or (h["_source"]["event_id"], h["_index"]) > after]
        page = page[: body["size"]]
        return {"hits": {"hits": [h | {"sort": [h["_source"]["event_id"], h["_index"]]} for h in page]}}


def test_document_ids_pages_through_every_hit_and_counts_rewrites() -> None:
    hits = [{"_index": f"idx-{i % 2}", "_version": 2 if i % 7 == 0 else 1, "_source": {"event_id": f"e{i:05d}"}}
            for i in range(12_000)]
    hits.append({"_index": "idx-9", "_version": 1, "_source": {"event_id": "e00001"}})  # a duplicate elsewhere
    run = ChaosRun.__new__(ChaosRun)
    run.s = type("S", (), {"search": type("X", (), {"index_prefix": "p"})()})()
    client = PagedClient(hits)
    found, rewritten = run._document_ids(client)
    assert len(found) == 12_000 and found["e00001"] == 2
    assert rewritten == len(range(0, 12_000, 7))
    assert len(client.bodies) == 4  # three pages of 5000 and an empty one


def test_default_config_is_the_full_size() -> None:
    config = ChaosConfig()
    assert config.events >= 2000 and config.kills >= 3 and config.outage_s == 60.0


def test_traffic_holds_its_last_messages_until_resumed_then_sends_every_one(monkeypatch: Any) -> None:
    """The scale-out scenario's hold: messages from `hold_from` on wait for `resume`, none is lost or sent twice."""
    import threading
    import time

    from streams.tools import chaos

    sent: list[str] = []
    two_sent = threading.Event()

    class Producer:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.stats = None

        def send_record(self, kind: str, record: dict[str, Any]) -> None:
            sent.append(record["id"])
            if len(sent) == 2:
                two_sent.set()

        def flush(self, timeout: float) -> int:
            return 0

    monkeypatch.setattr(chaos, "EventProducer", Producer)
    messages = [chaos.Message("news", {"id": str(i)}) for i in range(4)]
    traffic = chaos.Traffic(None, messages, seconds=0.04, hold_from=2)  # type: ignore[arg-type]
    traffic.start()
    assert two_sent.wait(5)
    time.sleep(0.2)  # far past the traffic's 40 ms: the held messages still wait
    assert sent == ["0", "1"]
    traffic.resume.set()
    traffic.join(5)
    assert sent == ["0", "1", "2", "3"] and traffic.held_s > 0.1  # it noted the wait
