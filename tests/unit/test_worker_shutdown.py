"""A stopping worker closes what its runtime opened, and the Faust fixes refuse a Faust they were not written for."""

from __future__ import annotations

import asyncio

import pytest

from models.batcher import DynamicBatcher
from streams.core.errors import BatcherClosedError, ConfigurationError
from streams.core.settings import Settings
from streams.worker.app import create_app
from streams.worker.faust_fixes import WRITTEN_FOR, check_faust_version


class FakeSink:
    def __init__(self) -> None:
        self.pending = ["doc"]
        self.events: list[str] = []

    async def flush(self) -> list:
        self.events.append(f"flush {len(self.pending)}")
        self.pending = []
        return []

    def close(self) -> None:
        self.events.append("close")


async def test_app_shutdown_stops_the_batchers_and_flushes_then_closes_the_sink() -> None:
    app, runtime = create_app(Settings(pipelines="sentiment"))
    batcher = DynamicBatcher(lambda xs: [x * 2 for x in xs], name="shutdown", max_batch_size=4, max_wait_ms=1.0)
    await batcher.start()
    sink = FakeSink()
    runtime.batchers, runtime.sink = [batcher], sink  # type: ignore[assignment]
    submitted = asyncio.ensure_future(batcher.submit([1, 2, 3]))
    await asyncio.sleep(0)
    await app.on_shutdown()  # what mode.Service.stop runs after Faust stopped the agents and the producer
    assert await submitted == [2, 4, 6]  # what was submitted before the stop is still scored
    with pytest.raises(BatcherClosedError):
        await batcher.submit([4])
    assert sink.events == ["flush 1", "close"]
    assert runtime.sink is None and runtime.batchers == []
    await runtime.close()  # idempotent
    assert sink.events == ["flush 1", "close"]


def test_the_faust_fixes_refuse_another_faust_version_naming_the_fix() -> None:
    check_faust_version(WRITTEN_FOR[0])
    with pytest.raises(ConfigurationError, match=r"faust-streaming 0\.16\.0 is installed.*faust-streaming==0\.15\.3"):
        check_faust_version("0.16.0")


def test_the_installed_faust_is_one_the_fixes_were_written_for() -> None:
    check_faust_version()  # the locked environment: a bump of faust-streaming fails here first
