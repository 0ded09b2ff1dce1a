"""The dynamic batcher: merges submissions from every agent and partition into device batches.

In the spirit of Ray Serve's batching module: callers `await submit(items)` and get their results in order;
a device batch closes when it holds `max_batch_size` inputs or its oldest input has waited `max_wait_ms`;
the model function runs in dedicated threads so the event loop never blocks; a batch failure is set on
the future of every caller with inputs in that batch, and only on those. `max_batch_size=1` disables
batching (one input per model call), for benchmarks.

`threads` model threads run batches at once (the next batch forms while one runs). On the CPU,
`share_cpu_threads` splits torch's intra-op threads among them: a batch on one core each keeps both cores
busy on a machine whose cores are also serving Kafka and the search engine, where one batch spread over
both cores waits at every operator for the core that was taken away.

Given `warmup` inputs, `start` runs them twice in every model thread before it returns: the first events after a
start should not wait for what only the first calls cost (a TorchScript model optimises its graph on its second
call: a batch of 32 headlines on one core took 190 ms, then 152 ms, then 100-120 ms here).

The batcher is model-agnostic. Models pick their device with `resolve_device`, and on CUDA run in half
precision (`inference_dtype`) with inputs copied from pinned memory (`to_device`). The model function
runs in the batcher's thread, so it enters `torch.inference_mode()` itself (grad mode is thread-local).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch

from sinks.metrics import BATCH_INFERENCE_SECONDS, BATCH_QUEUE_WAIT_SECONDS, BATCH_SIZE
from streams.errors import BatcherClosedError, BatchResultError, ConfigurationError
from streams.settings import BatchingSettings, get_settings

WARMUP_RUNS = 2
T = TypeVar("T")
R = TypeVar("R")


def resolve_device(setting: str) -> torch.device:
    """The torch device for a `models.device` setting: `auto` picks CUDA when it is available."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError("LEPTON_MODELS__DEVICE=cuda but torch sees no CUDA device; use auto or cpu")
    if setting not in ("cpu", "cuda"):
        raise ConfigurationError(f"unknown device {setting!r}; expected auto, cpu or cuda")
    return torch.device(setting)


def share_cpu_threads(model_threads: int) -> int:
    """Give each of `model_threads` batches in flight an equal share of this process's cores; returns the share."""
    share = max(1, len(os.sched_getaffinity(0)) // model_threads)
    torch.set_num_threads(share)
    return share


def inference_dtype(device: torch.device) -> torch.dtype:
    """Half precision on CUDA, full precision on the CPU (where fp16 is slow)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a tensor to the device; host-to-CUDA copies go through pinned memory without blocking."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass(eq=False)
class _Request(Generic[R]):
    """One caller's submission: its future and the results gathered so far, by position."""

    future: asyncio.Future[list[R]]
    results: list[Any]
    pending: int


@dataclass(eq=False)
class _Slice(Generic[T, R]):
    """A run of consecutive inputs of one request, starting at `start` in that request."""

    request: _Request[R]
    start: int
    items: list[T]
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher(Generic[T, R]):
    """One per model per worker process; shared by all agents and partitions."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        name: str,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int | None = None,
        threads: int = 1,
        warmup: Sequence[T] = (),
    ) -> None:
        if max_batch_size < 1 or max_wait_ms < 0 or threads < 1 or (max_queue is not None and max_queue < 1):
            raise ConfigurationError(f"batcher {name}: need max_batch_size, threads, max_queue >= 1, max_wait_ms >= 0")
        self.name, self.max_batch_size, self.max_queue, self.threads = name, max_batch_size, max_queue, threads
        self.max_wait_s = max_wait_ms / 1000
        self._fn = fn
        self._warmup = list(warmup)
        self._queue: deque[_Slice[T, R]] = deque()
        self._queued = 0
        self._running: dict[asyncio.Task[None], list[_Slice[T, R]]] = {}  # batches in the model threads
        self._free_threads = asyncio.Semaphore(threads)
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        metrics = (BATCH_SIZE, BATCH_QUEUE_WAIT_SECONDS, BATCH_INFERENCE_SECONDS)
        self._size, self._wait, self._inference = (m.labels(name) for m in metrics)

    @classmethod
    def from_settings(
        cls, fn: Callable[[list[T]], Sequence[R]], *, name: str, batching: BatchingSettings | None = None,
        warmup: Sequence[T] = (),
    ) -> DynamicBatcher[T, R]:
        """A batcher with the limits of the `batching` settings section."""
        b = batching or get_settings().batching
        return cls(fn, name=name, max_batch_size=b.max_batch_size, max_wait_ms=b.max_wait_ms, threads=b.model_threads,
                   warmup=warmup)

    @property
    def pending(self) -> int:
        """Inputs submitted and not yet taken into a batch."""
        return self._queued

    async def start(self) -> None:
        """Start the batching loop and the model threads, warmed up (idempotent)."""
        if self._closing:
            raise BatcherClosedError(f"batcher {self.name} was stopped; create a new one")
        if self._task is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=f"batcher-{self.name}")
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")
            if self._warmup:
                await self._warm_up()

    async def _warm_up(self) -> None:
        """Run the warm-up inputs once in every model thread (a failure is raised: the model does not work)."""
        every_thread = threading.Barrier(self.threads)

        def warm() -> None:
            try:
                for _ in range(WARMUP_RUNS):
                    self._fn(list(self._warmup))
            finally:
                every_thread.wait()  # holds this thread until all have warmed: no thread takes two

        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, warm) for _ in range(self.threads)))

    async def stop(self) -> None:
        """Refuse new submissions, process everything already submitted, then release the thread."""
        self._closing = True
        self._arrived.set()
        self._space.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def submit(self, items: list[T]) -> list[R]:
        """Score `items`, merged with other callers' inputs into device batches; results are in order."""
        self._check_open()
        if not items:
            return []
        while self.max_queue is not None and self._queued and self._queued + len(items) > self.max_queue:
            self._space.clear()
            await self._space.wait()  # backpressure: wait until the model catches up
            self._check_open()
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        request = _Request(future, [None] * len(items), len(items))
        self._queue.append(_Slice(request, 0, list(items)))
        self._queued += len(items)
        self._arrived.set()
        return await request.future

    def _check_open(self) -> None:
        if self._task is None or self._closing:
            state = "is stopped" if self._closing else "is not started; await start() first"
            raise BatcherClosedError(f"batcher {self.name} {state}")

    async def _loop(self) -> None:
        """Form batches until stopped and drained; on an unexpected exit, fail whoever still waits."""
        try:
            while True:
                self._drop_abandoned()
                if not self._queue:
                    if self._closing:
                        break
                    self._arrived.clear()
                    await self._arrived.wait()
                    continue
                await self._free_threads.acquire()  # the batch forms once a model thread can take it
                self._drop_abandoned()
                deadline = self._queue[0].enqueued + self.max_wait_s if self._queue else 0.0
                while self._queued < self.max_batch_size and not self._closing:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
                    self._arrived.clear()
                    try:
                        async with asyncio.timeout(timeout):
                            await self._arrived.wait()
                    except TimeoutError:
                        break
                self._launch(self._take())
            if self._running:
                await asyncio.wait(list(self._running))
        finally:
            error = BatcherClosedError(f"batcher {self.name} stopped before scoring these inputs")
            self._fail([*(s for batch in self._running.values() for s in batch), *self._queue], error)

    def _launch(self, batch: list[_Slice[T, R]]) -> None:
        """Run `batch` in a free model thread; the thread is released when it is done."""
        if not batch:
            self._free_threads.release()
            return
        task = asyncio.get_running_loop().create_task(self._run(batch), name=f"batcher-{self.name}-batch")
        self._running[task] = batch

        def done(_: asyncio.Task[None]) -> None:
            del self._running[task]
            self._free_threads.release()

        task.add_done_callback(done)

    def _drop_abandoned(self) -> None:
        """Forget queued inputs whose caller was cancelled or already failed."""
        if any(s.request.future.done() for s in self._queue):
            self._queue = deque(s for s in self._queue if not s.request.future.done())
            self._queued = sum(len(s.items) for s in self._queue)
            self._space.set()

    def _take(self) -> list[_Slice[T, R]]:
        """Pop up to max_batch_size inputs in arrival order, splitting the last slice if it does not fit."""
        batch: list[_Slice[T, R]] = []
        room = self.max_batch_size
        while self._queue and room:
            s = self._queue.popleft()
            if len(s.items) > room:
                self._queue.appendleft(_Slice(s.request, s.start + room, s.items[room:], s.enqueued))
                s = _Slice(s.request, s.start, s.items[:room], s.enqueued)
            batch.append(s)
            room -= len(s.items)
        self._queued -= self.max_batch_size - room
        self._space.set()
        return batch

    async def _run(self, batch: list[_Slice[T, R]]) -> None:
        """Run one device batch in the model thread and hand each caller its results or the failure."""
        if not batch:
            return
        inputs = [item for s in batch for item in s.items]
        self._size.observe(len(inputs))
        self._wait.observe(time.monotonic() - min(s.enqueued for s in batch))
        try:
            assert self._executor is not None
            outputs, seconds = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._call, inputs
            )
            self._inference.observe(seconds)
            if len(outputs) != len(inputs):
                raise BatchResultError(
                    f"model {self.name} returned {len(outputs)} results for a batch of {len(inputs)} inputs"
                )
        except Exception as exc:  # noqa: BLE001 - the failure goes to every caller in the batch
            self._fail(batch, exc)
            return
        offset = 0
        for s in batch:
            request, n = s.request, len(s.items)
            request.results[s.start : s.start + n] = outputs[offset : offset + n]
            request.pending -= n
            offset += n
            if request.pending == 0 and not request.future.done():
                request.future.set_result(request.results)

    def _call(self, inputs: list[T]) -> tuple[list[R], float]:
        """Run the model function (in the model thread) and time it."""
        began = time.perf_counter()
        outputs = list(self._fn(inputs))
        return outputs, time.perf_counter() - began

    @staticmethod
    def _fail(slices: list[_Slice[T, R]], error: BaseException) -> None:
        for s in slices:
            if not s.request.future.done():
                s.request.future.set_exception(error)
