"""The checkpoint: outputs durable before a batch may be acked, refused documents dead-lettered, a failing pipeline
quarantined, and the agent loop that lets Faust ack a batch only after it was made durable, with fewer batches in
flight when none comes full."""

from __future__ import annotations

import asyncio
import json

import pytest

from sinks.search import BulkItemError, Doc
from streams.core.events import Alert, utc_now
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint, Message, Outputs, consume

KEY = b"k" * 32


class Sink:
    def __init__(self, refuse: frozenset[str] = frozenset(), gate: asyncio.Event | None = None) -> None:
        self.pending: list[Doc] = []
        self.written: list[Doc] = []
        self.refuse, self.gate = refuse, gate

    def add(self, docs: list[Doc]) -> None:
        self.pending += docs

    async def flush(self) -> list[BulkItemError]:
        batch, self.pending = self.pending, []
        if self.gate is not None:
            await self.gate.wait()
        self.written += [d for d in batch if d.id not in self.refuse]
        return [BulkItemError(d.id, d.index, 400, "mapper_parsing_exception") for d in batch if d.id in self.refuse]


def record(offset: int) -> Record:
    return Record("news", 0, offset, None, b'{"id": "n"}')


def alert(alert_id: str) -> Alert:
    return Alert(alert_id=alert_id, kind="sentiment", severity="high", created_at=utc_now(), subject="ACME",
                 summary="surge", evidence={}, event_ids=["n-1"])


def checkpoint(sink: Sink) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    sent: list[tuple[str, bytes, bytes]] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    return Checkpoint(Settings(), sink, publish, KEY), sent  # type: ignore[arg-type]


async def test_everything_is_written_and_a_refused_document_becomes_a_dead_letter() -> None:
    sink = Sink(refuse=frozenset({"d2"}))
    point, sent = checkpoint(sink)
    outputs = Outputs(documents=[(Doc.of("i", "d1", {}), record(1)), (Doc.of("i", "d2", {}), record(2))],
                      alerts=[alert("a1")], alert_topic="alerts.sentiment",
                      messages=[Message("recommendations", b"u", b"{}")])
    assert await point.make_durable(outputs) == 1
    assert sorted(d.id for d in sink.written) == ["a1", "d1"]  # the alert is indexed beside the documents
    assert [(topic, key) for topic, key, _ in sent[:2]] == [("alerts.sentiment", b"a1"), ("recommendations", b"u")]
    letter = json.loads(sent[2][2])
    assert sent[2][0] == "deadletter" and letter["source_offset"] == 2 and "mapper_parsing" in letter["reason"]


async def test_alerts_go_out_while_the_documents_are_still_being_written() -> None:
    gate = asyncio.Event()
    point, sent = checkpoint(Sink(gate=gate))
    durable = asyncio.ensure_future(point.make_durable(
        Outputs(documents=[(Doc.of("i", "d1", {}), record(1))], alerts=[alert("a1")], alert_topic="alerts.fraud")))
    await asyncio.sleep(0.01)
    assert [topic for topic, _, _ in sent] == ["alerts.fraud"] and not durable.done()  # not durable yet: no ack
    gate.set()
    assert await durable == 0


async def test_a_failing_pipeline_has_its_whole_batch_dead_lettered() -> None:
    point, sent = checkpoint(Sink())

    async def broken(records: list[Record]) -> None:
        raise KeyError("bug")

    await point.run("sentiment", broken, [record(5), record(6)])
    letters = [json.loads(value) for _, _, value in sent]
    assert [letter["source_offset"] for letter in letters] == [5, 6]
    assert all("sentiment pipeline failed: KeyError" in letter["reason"] for letter in letters)


class KafkaMessage:
    def __init__(self, offset: int) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = "news", 0, offset, None, b"{}"


class Event:
    def __init__(self, offset: int) -> None:
        self.message = KafkaMessage(offset)


class Stream:
    """Our take_adaptive as far as acks go: it yields batches and leaves the acks to the caller."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches, self.acked = batches, []

    async def take_adaptive(self, take_max: int, within: float):
        for batch in self.batches:
            yield [Event(offset) for offset in batch]

    async def ack(self, event: Event) -> None:
        self.acked.append(event.message.offset)


async def test_a_batch_is_acked_only_after_its_work_returned_even_when_the_agent_is_cancelled() -> None:
    stream, seen, release = Stream([[1, 2], [3]]), [], asyncio.Event()

    async def run(records: list[Record]) -> None:
        seen.append([r.offset for r in records])
        assert stream.acked == [o for batch in seen[:-1] for o in batch]  # earlier batches only
        await release.wait()

    agent = asyncio.ensure_future(consume(stream, 10, 0.1, run))
    await asyncio.sleep(0.01)
    agent.cancel()  # a graceful stop while the first batch is in flight
    await asyncio.sleep(0.01)
    assert stream.acked == [] and not agent.done()  # the batch is finished first
    release.set()
    await asyncio.gather(agent, return_exceptions=True)
    assert seen == [[1, 2]] and stream.acked == [1, 2]


async def test_batches_in_flight_are_acked_in_the_order_they_came_each_once_it_returned() -> None:
    stream, started = Stream([[1, 2], [3], [4, 5], [6]]), []
    gates = {first: asyncio.Event() for first in (1, 3, 4, 6)}

    async def run(records: list[Record]) -> None:
        started.append(records[0].offset)
        await gates[records[0].offset].wait()

    agent = asyncio.ensure_future(consume(stream, 10, 0.1, run, in_flight=2))
    await asyncio.sleep(0.01)
    assert started == [1, 3] and stream.acked == []  # two batches in flight, the third waits for a free slot
    gates[3].set()  # the second finishes first: nothing may be acked past the unfinished first
    await asyncio.sleep(0.01)
    assert started == [1, 3] and stream.acked == []
    gates[1].set()
    await asyncio.sleep(0.01)
    assert stream.acked == [1, 2, 3] and started == [1, 3, 4, 6]
    gates[4].set(), gates[6].set()
    await agent
    assert stream.acked == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(("quiet_in_flight", "taken"), [(0, [1, 11, 21, 22]), (2, [1, 11, 21])])
async def test_short_batches_keep_fewer_in_flight_than_a_backlog(quiet_in_flight: int, taken: list[int]) -> None:
    stream, started, gate = Stream([list(range(1, 11)), list(range(11, 21)), [21], [22]]), [], asyncio.Event()

    async def run(records: list[Record]) -> None:
        started.append(records[0].offset)
        await gate.wait()

    agent = asyncio.ensure_future(consume(stream, 10, 0.1, run, in_flight=4, quiet_in_flight=quiet_in_flight))
    await asyncio.sleep(0.01)
    # two full batches (a backlog) open all four slots; after the short third, only two may be in flight
    assert started == taken
    gate.set()
    await agent
    assert started == [1, 11, 21, 22] and stream.acked == list(range(1, 23))


async def test_a_finished_batch_is_acked_while_no_further_batch_comes() -> None:
    stream, idle = Stream([[1, 2]]), asyncio.Event()

    async def take_then_idle(take_max: int, within: float):
        yield [Event(1), Event(2)]
        await idle.wait()  # a quiet topic: the next batch is a long time coming
        yield []

    stream.take_adaptive = take_then_idle  # type: ignore[method-assign]

    async def run(records: list[Record]) -> None:
        await asyncio.sleep(0)

    agent = asyncio.ensure_future(consume(stream, 10, 0.1, run, in_flight=2))
    await asyncio.sleep(0.01)
    assert stream.acked == [1, 2]  # committed offsets move on even when the topic goes quiet
    agent.cancel()
    await asyncio.gather(agent, return_exceptions=True)
