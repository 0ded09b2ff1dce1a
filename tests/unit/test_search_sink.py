"""The search sink: item checks, retries with back-off, permanent failures returned, bounded buffer."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.search import BulkItemError, BulkResult, Doc
from sinks.search_sink import SearchSink
from streams.core.errors import SinkBackpressure
from streams.core.settings import SearchSettings


class FakeClient:
    """Scripted responses: each bulk call pops the next outcome (a status per doc id, or an exception)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.calls: list[list[str]] = []
        self.stored: dict[str, dict] = {}
        self.templates: dict[str, dict] = {}

    def bulk_index(self, docs: list[Doc]) -> BulkResult:
        self.calls.append([d.id for d in docs])
        outcome = self.script.pop(0) if self.script else {}
        if isinstance(outcome, Exception):
            raise outcome
        errors = [BulkItemError(d.id, d.index, outcome[d.id], "scripted") for d in docs if d.id in outcome]
        for doc in docs:
            if doc.id not in outcome:
                self.stored[doc.id] = doc.body
        return BulkResult(len(docs) - len(errors), errors)

    def put_index_template(self, name: str, body: dict) -> None:
        self.templates[name] = body

    def close(self) -> None:
        pass


async def no_sleep(_: float) -> None:
    pass


def docs(n: int) -> list[Doc]:
    return [Doc.of("idx", f"d{i}", {"i": i}) for i in range(n)]


async def test_flush_writes_everything_in_bulk_chunks() -> None:
    client = FakeClient([])
    sink = SearchSink(client, SearchSettings(bulk_max_docs=4), sleep=no_sleep)
    sink.add(docs(10))
    assert await sink.flush() == []
    assert [len(call) for call in client.calls] == [4, 4, 2]
    assert set(client.stored) == {f"d{i}" for i in range(10)}


async def test_429_and_5xx_items_are_retried_until_written() -> None:
    client = FakeClient([{"d1": 429, "d2": 503}, {"d2": 429}, {}])
    sink = SearchSink(client, SearchSettings(), sleep=no_sleep)
    sink.add(docs(3))
    assert await sink.flush() == []
    assert client.calls == [["d0", "d1", "d2"], ["d1", "d2"], ["d2"]]
    assert set(client.stored) == {"d0", "d1", "d2"}


async def test_mapping_errors_are_returned_not_retried() -> None:
    client = FakeClient([{"d1": 400}])
    sink = SearchSink(client, SearchSettings(), sleep=no_sleep)
    sink.add(docs(3))
    refused = await sink.flush()
    assert [(e.doc_id, e.status) for e in refused] == [("d1", 400)]
    assert len(client.calls) == 1


async def test_outage_is_waited_out_with_growing_backoff() -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    client = FakeClient([ConnectionError("down"), ConnectionError("down"), ConnectionError("down"), {}])
    sink = SearchSink(client, SearchSettings(retry_initial_s=1.0, retry_max_s=3.0), sleep=record)
    sink.add(docs(2))
    assert await sink.flush() == []
    assert set(client.stored) == {"d0", "d1"}
    assert len(delays) == 3
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 1.5 <= delays[2] <= 3.0


async def test_duplicate_ids_in_one_flush_are_written_once() -> None:
    client = FakeClient([])
    sink = SearchSink(client, SearchSettings(), sleep=no_sleep)
    sink.add([Doc.of("idx", "same", {"v": 1}), Doc.of("idx", "same", {"v": 2})])
    await sink.flush()
    assert client.calls == [["same"]] and client.stored["same"] == {"v": 2}


def test_add_refuses_beyond_the_bound() -> None:
    sink = SearchSink(FakeClient([]), SearchSettings(), max_pending=5, sleep=no_sleep)
    sink.add(docs(5))
    with pytest.raises(SinkBackpressure, match="flush"):
        sink.add(docs(1))


async def test_start_installs_templates_with_the_configured_refresh_interval() -> None:
    client = FakeClient([])
    await SearchSink(client, SearchSettings(index_prefix="t1", refresh_interval_s=2.5), sleep=no_sleep).start()
    assert "t1-news" in client.templates and "t1-alerts" in client.templates
    assert {body["template"]["settings"]["refresh_interval"] for body in client.templates.values()} == {"2500ms"}


async def test_every_answered_bulk_sets_the_last_write_time() -> None:
    import time

    from prometheus_client import REGISTRY

    sink = SearchSink(FakeClient([{"d1": 400}]), SearchSettings(), sleep=no_sleep)
    sink.add(docs(3))
    before = time.time()
    await sink.flush()  # one item refused for good still counts: the engine answered
    assert before <= REGISTRY.get_sample_value("lepton_sink_last_write_timestamp_seconds") <= time.time()
