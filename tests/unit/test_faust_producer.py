"""The producer's fixes for faust-streaming (faust_producer.py): a hand-over does not wait for a few hundred queued
changelog messages, and a started producer is handed to a send without a turn of the event loop."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import faust
from faust.transport.producer import ProducerBuffer

from streams.worker.faust_fixes import LeptonApp
from streams.worker.faust_producer import EBB_MESSAGES, EbbingProducerBuffer


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
