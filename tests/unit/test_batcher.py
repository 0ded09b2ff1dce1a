"""The dynamic batcher: order, size and time bounds, merging, failures, shutdown, free event loop, metrics."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.batcher import WARMUP_RUNS, DynamicBatcher, inference_dtype, resolve_device, share_cpu_threads, to_device
from sinks.metrics import REGISTRY, batch_observer
from streams.core.errors import BatcherClosedError, BatchResultError, ConfigurationError
from streams.core.settings import BatchingSettings


class Recorder:
    """A model function that doubles numbers and remembers every batch and the thread it ran on."""

    def __init__(self, fail_on: int | None = None, hold: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.fail_on, self.hold = fail_on, hold

    def __call__(self, items: list[int]) -> list[int]:
        self.threads.add(threading.get_ident())
        if self.hold is not None:
            assert self.hold.wait(5), "the test never released the model"
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"poison {self.fail_on}")
        return [2 * x for x in items]


def batcher(fn: Callable[[list[int]], list[int]], name: str, **limits: float) -> DynamicBatcher[int, int]:
    """A batcher with test limits: by default it never closes a batch on time, only on size or stop."""
    options = {"max_batch_size": 8, "max_wait_ms": 60_000.0} | limits
    return DynamicBatcher(
        fn,
        name=name,
        max_batch_size=int(options["max_batch_size"]),
        max_wait_ms=options["max_wait_ms"],
        max_queue=int(options["max_queue"]) if "max_queue" in options else None,
    )


async def within(awaitable: object, seconds: float = 5.0) -> object:
    """Await with a generous upper bound, so a hang fails the test instead of the suite."""
    return await asyncio.wait_for(awaitable, seconds)  # type: ignore[arg-type]


async def test_results_come_back_in_order_for_many_concurrent_submitters() -> None:
    model = Recorder()
    b = batcher(model, "order", max_batch_size=16, max_wait_ms=5)
    await b.start()
    rng = random.Random(7)
    submissions = [[i * 1000 + j for j in range(rng.randint(1, 40))] for i in range(30)]
    results = await within(asyncio.gather(*(b.submit(s) for s in submissions)))
    await b.stop()
    assert results == [[2 * x for x in s] for s in submissions]
    assert all(len(batch) <= 16 for batch in model.batches)
    assert sorted(x for batch in model.batches for x in batch) == sorted(x for s in submissions for x in s)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 50), min_size=1, max_size=12),
    max_batch_size=st.integers(1, 20),
    max_wait_ms=st.sampled_from([0.0, 1.0, 5.0]),
)
def test_any_mix_of_submissions_is_scored_in_order_within_the_size_bound(
    sizes: list[int], max_batch_size: int, max_wait_ms: float
) -> None:
    async def scenario() -> None:
        model = Recorder()
        b = batcher(model, "property", max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
        await b.start()
        submissions = [list(range(i * 100, i * 100 + n)) for i, n in enumerate(sizes)]
        results = await within(asyncio.gather(*(b.submit(s) for s in submissions)))
        await b.stop()
        assert results == [[2 * x for x in s] for s in submissions]
        assert all(1 <= len(batch) <= max_batch_size for batch in model.batches)
        assert sum(map(len, model.batches)) == sum(sizes)

    asyncio.run(scenario())


async def test_a_large_submission_is_split_into_full_device_batches() -> None:
    model = Recorder()
    b = batcher(model, "split", max_batch_size=8, max_wait_ms=20)  # the tail of 4 waits 20 ms
    await b.start()
    items = list(range(100))
    assert await within(b.submit(items)) == [2 * x for x in items]
    await b.stop()
    assert [len(batch) for batch in model.batches] == [8] * 12 + [4]
    assert [x for batch in model.batches for x in batch] == items


async def test_concurrent_submissions_share_one_batch_that_closes_when_full() -> None:
    model = Recorder()
    b = batcher(model, "merge", max_batch_size=30)  # max_wait 60 s: only a full batch flushes in time
    await b.start()
    submissions = [[10 * i, 10 * i + 1, 10 * i + 2] for i in range(10)]
    results = await within(asyncio.gather(*(b.submit(s) for s in submissions)))
    await b.stop()
    assert results == [[2 * x for x in s] for s in submissions]
    assert model.batches == [[x for s in submissions for x in s]]


async def test_a_lone_small_submission_is_flushed_after_max_wait_not_held_for_a_full_batch() -> None:
    model = Recorder()
    b = batcher(model, "lone", max_batch_size=1000, max_wait_ms=20)
    await b.start()
    assert await within(b.submit([5])) == [10]
    assert await within(b.submit([6, 7])) == [12, 14]
    await b.stop()
    assert model.batches == [[5], [6, 7]]


async def test_inputs_arriving_within_the_wait_join_the_open_batch() -> None:
    model = Recorder()
    b = batcher(model, "straggler", max_batch_size=1000)  # max_wait 60 s
    await b.start()
    first = asyncio.create_task(b.submit([1]))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(b.submit([2, 3]))
    await asyncio.sleep(0.05)
    assert not first.done() and model.batches == []  # still waiting for more inputs
    await within(b.stop())  # stop flushes at once instead of waiting out max_wait
    assert (first.result(), second.result()) == ([2], [4, 6])
    assert model.batches == [[1, 2, 3]]


async def test_a_failing_batch_fails_only_the_callers_with_inputs_in_it() -> None:
    model = Recorder(fail_on=13)
    b = batcher(model, "failure", max_batch_size=4, max_wait_ms=20)
    await b.start()
    # Batches in arrival order: [1, 2, 3, 4] · [11, 12, 13, 14] · [21, 22, 23, 24] · [25, 31, 32]
    a, poisoned, spans, after = [1, 2, 3, 4], [11, 12, 13, 14], [21, 22, 23, 24, 25], [31, 32]
    results = await within(asyncio.gather(*(b.submit(s) for s in (a, poisoned, spans, after)), return_exceptions=True))
    assert results[0] == [2, 4, 6, 8]
    assert isinstance(results[1], ValueError) and "poison 13" in str(results[1])
    assert results[2] == [42, 44, 46, 48, 50]
    assert results[3] == [62, 64]
    assert await within(b.submit([7])) == [14]  # the batcher keeps going
    await b.stop()


async def test_a_failure_reaches_every_caller_sharing_the_batch_and_a_split_submission() -> None:
    model = Recorder(fail_on=3)
    b = batcher(model, "failure-shared", max_batch_size=4, max_wait_ms=20)
    await b.start()
    # [1, 2, 3, 4] fails: both callers in it fail; the rest of the split submission is not scored.
    results = await within(
        asyncio.gather(b.submit([1, 2]), b.submit([3, 4, 5, 6, 7, 8]), b.submit([9]), return_exceptions=True)
    )
    await b.stop()
    assert isinstance(results[0], ValueError) and isinstance(results[1], ValueError)
    assert results[2] == [18]
    assert model.batches == [[1, 2, 3, 4], [9]]


async def test_a_wrong_number_of_results_is_an_error_for_the_callers() -> None:
    calls = 0

    def drops_one(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        return items[:-1] if calls == 1 else items

    b = batcher(drops_one, "wrong-count", max_batch_size=4, max_wait_ms=0)
    await b.start()
    with pytest.raises(BatchResultError, match="3 results for a batch of 4"):
        await within(b.submit([1, 2, 3, 4]))
    assert await within(b.submit([1, 2])) == [1, 2]
    await b.stop()


async def test_stop_drains_everything_already_submitted() -> None:
    release = threading.Event()
    model = Recorder(hold=release)
    b = batcher(model, "drain", max_batch_size=4)
    await b.start()
    tasks = [asyncio.create_task(b.submit([i, i + 100])) for i in range(10)]
    await asyncio.sleep(0)  # let every submission reach the queue
    stopping = asyncio.create_task(b.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    release.set()
    await within(stopping)
    assert [t.result() for t in tasks] == [[2 * i, 2 * i + 200] for i in range(10)]
    assert sum(map(len, model.batches)) == 20


async def test_submit_before_start_or_after_stop_raises_a_clear_error() -> None:
    b = batcher(Recorder(), "closed")
    with pytest.raises(BatcherClosedError, match="not started"):
        await b.submit([1])
    await b.start()
    await b.stop()
    with pytest.raises(BatcherClosedError, match="closed is stopped"):
        await b.submit([1])
    with pytest.raises(BatcherClosedError):
        await b.start()
    await b.stop()  # idempotent


async def test_the_event_loop_keeps_running_while_the_model_works_in_its_own_thread() -> None:
    release = threading.Event()
    model = Recorder(hold=release)  # blocks its thread until the heartbeat below has ticked
    b = batcher(model, "heartbeat", max_batch_size=2)
    await b.start()
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()

    scoring = asyncio.create_task(b.submit([1, 2, 3, 4]))
    await within(asyncio.gather(heartbeat(), scoring))
    await b.stop()
    assert ticks == 5 and scoring.result() == [2, 4, 6, 8]
    assert len(model.threads) == 1 and threading.get_ident() not in model.threads


async def test_a_free_model_thread_takes_the_next_batch_while_the_event_loop_is_busy() -> None:
    model = Recorder()
    b = batcher(model, "busy-loop", max_batch_size=2, max_wait_ms=0)
    await b.start()
    scoring = asyncio.create_task(b.submit([1, 2, 3, 4]))
    await asyncio.sleep(0)  # the submission reaches the queue
    time.sleep(0.5)  # the event loop is busy (blocked) and hands nothing out meanwhile
    assert model.batches == [[1, 2], [3, 4]]
    assert await within(scoring) == [2, 4, 6, 8]
    await b.stop()


async def test_a_cancelled_caller_is_dropped_without_disturbing_others() -> None:
    model = Recorder()
    b = batcher(model, "cancel", max_batch_size=1000)
    await b.start()
    gone = asyncio.create_task(b.submit([1, 2]))
    kept = asyncio.create_task(b.submit([3]))
    await asyncio.sleep(0)
    gone.cancel()
    await within(b.stop())
    assert gone.cancelled() and kept.result() == [6]
    assert model.batches == [[3]]


async def test_max_queue_makes_submitters_wait_for_room() -> None:
    release = threading.Event()
    model = Recorder(hold=release)
    b = batcher(model, "backpressure", max_batch_size=4, max_wait_ms=0, max_queue=4)
    await b.start()
    first = asyncio.create_task(b.submit([1, 2, 3, 4]))  # taken into the (held) batch at once
    await asyncio.sleep(0.05)
    second = asyncio.create_task(b.submit([5, 6, 7]))  # fits the empty queue
    third = asyncio.create_task(b.submit([8, 9]))  # 3 + 2 > 4: waits
    await asyncio.sleep(0.05)
    assert b.pending == 3
    release.set()
    assert await within(asyncio.gather(first, second, third)) == [[2, 4, 6, 8], [10, 12, 14], [16, 18]]
    await b.stop()


def sample(name: str, model: str) -> float:
    return REGISTRY.get_sample_value(name, {"model": model}) or 0.0


async def test_batch_size_queue_wait_and_inference_time_are_recorded_per_model() -> None:
    b = DynamicBatcher(Recorder(), name="metrics", max_batch_size=4, max_wait_ms=20, observe=batch_observer("metrics"))
    await b.start()
    await within(b.submit(list(range(10))))
    await b.stop()
    assert sample("lepton_batch_size_count", "metrics") == 3
    assert sample("lepton_batch_size_sum", "metrics") == 10
    assert REGISTRY.get_sample_value("lepton_batch_size_bucket", {"model": "metrics", "le": "2.0"}) == 1
    assert sample("lepton_batch_queue_wait_seconds_count", "metrics") == 3
    assert sample("lepton_batch_inference_seconds_count", "metrics") == 3
    assert sample("lepton_batch_inference_seconds_sum", "metrics") > 0


async def test_from_settings_uses_the_batching_section() -> None:
    batching = BatchingSettings(max_batch_size=3, model_threads=3)
    b = DynamicBatcher.from_settings(Recorder(), name="settings", batching=batching)
    assert (b.max_batch_size, b.max_wait_s, b.threads) == (3, 0.01, 3)
    with pytest.raises(ConfigurationError):
        DynamicBatcher(Recorder(), name="bad", max_batch_size=0, max_wait_ms=1)
    with pytest.raises(ConfigurationError):
        DynamicBatcher(Recorder(), name="bad", max_batch_size=1, max_wait_ms=1, threads=-1)


class Meeting(Recorder):
    """A model whose calls wait until `parties` calls are inside it at once (or fail after a few seconds)."""

    def __init__(self, parties: int, fail_on: int | None = None) -> None:
        super().__init__(fail_on=fail_on)
        self.barrier = threading.Barrier(parties)

    def __call__(self, items: list[int]) -> list[int]:
        self.barrier.wait(timeout=5)  # BrokenBarrierError unless the other batch runs at the same time
        return super().__call__(items)


async def test_with_two_threads_two_batches_run_at_once_and_results_stay_in_order() -> None:
    model = Meeting(2)
    b = DynamicBatcher(model, name="two-threads", max_batch_size=4, max_wait_ms=0, threads=2)
    await b.start()
    results = await within(asyncio.gather(b.submit(list(range(6))), b.submit([10, 11])))
    await b.stop()
    assert results == [[0, 2, 4, 6, 8, 10], [20, 22]]
    assert sorted(model.batches) == [[0, 1, 2, 3], [4, 5, 10, 11]]
    assert len(model.threads) == 2 and threading.get_ident() not in model.threads


async def test_with_two_threads_a_failing_batch_fails_only_its_callers() -> None:
    model = Meeting(2, fail_on=13)
    b = DynamicBatcher(model, name="two-threads-failure", max_batch_size=2, max_wait_ms=0, threads=2)
    await b.start()
    good, bad = await within(asyncio.gather(b.submit([1, 2]), b.submit([13, 14]), return_exceptions=True))
    await b.stop()
    assert good == [2, 4]
    assert isinstance(bad, ValueError) and "poison 13" in str(bad)


async def test_with_two_threads_stop_waits_for_every_batch_in_flight() -> None:
    release = threading.Event()
    model = Recorder(hold=release)
    b = DynamicBatcher(model, name="two-threads-drain", max_batch_size=2, max_wait_ms=0, threads=2)
    await b.start()
    tasks = [asyncio.create_task(b.submit([i, i + 1])) for i in range(0, 10, 2)]
    await asyncio.sleep(0.05)  # two batches are in the (held) model threads, three wait in the queue
    assert b.pending == 6
    stopping = asyncio.create_task(b.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    release.set()
    await within(stopping)
    assert [t.result() for t in tasks] == [[2 * i, 2 * i + 2] for i in range(0, 10, 2)]


async def test_start_warms_up_every_model_thread_twice_before_it_returns() -> None:
    model = Recorder()
    b = DynamicBatcher(model, name="warm", max_batch_size=4, max_wait_ms=0, threads=3, warmup=[7])
    await within(b.start())
    assert model.batches == [[7]] * 3 * WARMUP_RUNS and len(model.threads) == 3  # each thread, WARMUP_RUNS times
    assert await within(b.submit([1, 2])) == [2, 4]
    await b.stop()


async def test_a_model_that_fails_its_warm_up_fails_the_start() -> None:
    b = DynamicBatcher(Recorder(fail_on=7), name="warm-failure", max_batch_size=4, max_wait_ms=0, threads=2,
                       warmup=[7])
    with pytest.raises(ValueError, match="poison 7"):
        await within(b.start())
    with pytest.raises(BatcherClosedError):
        await b.submit([1])
    await b.stop()


def test_model_threads_share_the_cores_equally(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    try:
        assert share_cpu_threads(2) == 4 and torch.get_num_threads() == 4
        assert share_cpu_threads(1) == 8 and torch.get_num_threads() == 8
        assert share_cpu_threads(16) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_auto_picks_cuda_only_when_it_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigurationError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigurationError, match="unknown device"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_cpu_path_keeps_full_precision_and_plain_copies() -> None:
    cpu = torch.device("cpu")
    tensor = torch.arange(6).reshape(2, 3)
    assert inference_dtype(cpu) == torch.float32
    assert inference_dtype(torch.device("cuda")) == torch.float16
    moved = to_device(tensor, cpu)
    assert moved.device == cpu and torch.equal(moved, tensor)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_copies_through_pinned_memory() -> None:
    tensor = torch.arange(6).reshape(2, 3)
    moved = to_device(tensor, torch.device("cuda"))
    assert moved.is_cuda and torch.equal(moved.cpu(), tensor)
    assert to_device(moved, torch.device("cuda")) is moved


async def test_with_no_thread_the_model_runs_in_the_event_loop_in_device_batches() -> None:
    model = Recorder()
    observed: list[int] = []
    b = DynamicBatcher(model, name="inline", max_batch_size=4, max_wait_ms=60_000, threads=0, warmup=[1],
                       observe=lambda size, waited, took: observed.append(size))
    await b.start()
    assert model.batches == [[1]] * WARMUP_RUNS and model.threads == {threading.get_ident()}
    assert await within(b.submit(list(range(10)))) == [2 * x for x in range(10)]
    assert model.batches[WARMUP_RUNS:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert observed == [4, 4, 2] and model.threads == {threading.get_ident()}
    await b.stop()
    with pytest.raises(BatcherClosedError):
        await b.submit([1])


async def test_with_no_thread_a_failure_or_a_wrong_count_reaches_the_caller() -> None:
    b = DynamicBatcher(Recorder(fail_on=3), name="inline-failure", max_batch_size=4, max_wait_ms=0, threads=0)
    with pytest.raises(BatcherClosedError, match="not started"):
        await b.submit([1])
    await b.start()
    with pytest.raises(ValueError, match="poison 3"):
        await b.submit([1, 2, 3])
    assert await b.submit([4]) == [8]  # the batcher goes on after a failed batch
    short = DynamicBatcher(lambda items: items[1:], name="inline-short", max_batch_size=4, max_wait_ms=0, threads=0)
    await short.start()
    with pytest.raises(BatchResultError, match="returned 1 results for a batch of 2"):
        await short.submit([1, 2])
    broken = DynamicBatcher(Recorder(fail_on=7), name="inline-warm", max_batch_size=4, max_wait_ms=0, threads=0,
                            warmup=[7])
    with pytest.raises(ValueError, match="poison 7"):
        await broken.start()
    with pytest.raises(BatcherClosedError):
        await broken.submit([1])
