"""The producer's fixes for faust-streaming (faust_producer.py): a hand-over does not wait for a few hundred queued
changelog messages, and a started producer is handed to a send without a turn of the event loop; and the app's
partitioner, which remembers each key's hash and partitions as aiokafka's default."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.transport.producer import ProducerBuffer

from streams.core.settings import Settings
from streams.worker.app import create_app
from streams.worker.faust_fixes import LeptonApp
from streams.worker.faust_producer import EBB_MESSAGES, CachingPartitioner, EbbingProducerBuffer


async def flushes_before_a_hand_over(buffer: ProducerBuffer, queued: int) -> list[int | None]:
    """The flushes a hand-over waits for while `queued` changelog messages wait in `buffer`."""
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    for message in range(queued):
        buffer.put(message)  # type: ignore[arg-type]
    flushes: list[int | None] = []

    async def flush_atmost(max_messages: int | None) -> int:
        flushes.append(max_messages)
        return 0

    buffer.flush_atmost = flush_atmost  # type: ignore[method-assign]
    await buffer.wait_until_ebb()
    return flushes


async def test_a_hand_over_waits_for_the_buffer_only_beyond_the_ebb_bound() -> None:
    assert await flushes_before_a_hand_over(ProducerBuffer(), 1_000) == [100]  # Faust's: waits past 100
    assert await flushes_before_a_hand_over(EbbingProducerBuffer(), 1_000) == []
    # beyond the bound, only until the buffer is back under it (Faust's would wait for as many sends as its bound)
    assert await flushes_before_a_hand_over(EbbingProducerBuffer(), EBB_MESSAGES + 5) == [5]


def finishes_without_suspending(coroutine: Any) -> tuple[bool, Any]:
    """Step `coroutine` once: whether it finished without giving the event loop a turn, and its result."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return True, done.value
    coroutine.close()
    return False, None


async def test_a_started_producer_is_handed_to_a_send_without_a_turn_of_the_event_loop() -> None:
    starts: list[str] = []

    async def start() -> None:
        starts.append("start")
        await asyncio.sleep(0)

    for app in (faust.App("plain", broker="kafka://localhost:9092"), LeptonApp("fixed", broker="kafka://localhost:9092")):
        with patch.object(app.producer, "maybe_start", start):
            first = await asyncio.gather(app.maybe_start_producer(), app.maybe_start_producer())
            assert first == [app.producer, app.producer]  # concurrent first calls: one guarded start
            finished, producer = finishes_without_suspending(app.maybe_start_producer())
            assert finished is isinstance(app, LeptonApp)  # Faust's own suspends on every send
            assert producer is (app.producer if finished else None)
    assert starts == ["start", "start"]  # one per app


def test_the_caching_partitioner_sends_every_key_where_aiokafkas_default_partitioner_does() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(1, 40)) for _ in range(2_000)] + [b"tok_card-1", b"m-ie-dublin"]
    caching, default = CachingPartitioner(remembered=64), DefaultPartitioner()
    for key in keys * 2:  # the second round mostly from the cache (and evicted keys hashed again)
        for partitions in ([0], [0, 1, 2, 3, 4, 5], list(range(12))):
            assert caching(key, partitions, partitions) == default(key, partitions, partitions)
    assert caching(None, [0, 1, 2], [2]) == 2  # no key: a random available partition, as aiokafka's


def test_the_app_partitions_with_the_caching_partitioner() -> None:
    app, _ = create_app(Settings(pipelines="fraud"))
    assert isinstance(app.conf.producer_partitioner, CachingPartitioner)
