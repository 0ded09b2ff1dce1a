"""The dynamic batcher: merges submissions from every agent and partition into device batches.

In the spirit of Ray Serve's batching module: callers `await submit(items)` and get their results in order;
a device batch closes when it holds `max_batch_size` inputs or its oldest input has waited `max_wait_ms`;
the model function runs in dedicated threads so the event loop never blocks; a batch failure is set on
the future of every caller with inputs in that batch, and only on those. `max_batch_size=1` disables
batching (one input per model call), for benchmarks.

`threads` model threads run batches at once. Each takes its next batch itself, under a lock shared with
`submit`, as soon as it is free, and posts the results to the event loop: no round trip through the loop between
two batches. (When the loop handed batches out, a model thread waited 13 ms on average between two batches in a
busy worker, while the loop was busy with other events: 8-15% of the model threads' time.) On the CPU,
`share_cpu_threads` splits torch's intra-op threads among them: a batch on one core each keeps both cores
busy on a machine whose cores are also serving Kafka and the search engine, where one batch spread over
both cores waits at every operator for the core that was taken away.

With `threads=0` there is no model thread: `submit` runs the model function in the event loop, on the caller's
inputs as one batch (up to `max_batch_size` per call). That is for a model so small that handing it to a thread costs
more than it does: the fraud MLP scores a micro-batch of 200 payments in about 15 ms of CPU, yet in a busy worker its
thread waited 90-140 ms per batch for the interpreter lock it shares with the event loop (the `score` step of a
batch), and a stage's batch waited that long for its scores.

Given `warmup` inputs, `start` runs them twice in every model thread before it returns: the first events after a
start should not wait for what only the first calls cost (a TorchScript model optimises its graph on its second
call: a batch of 32 headlines on one core took 190 ms, then 152 ms, then 100-120 ms here).

The batcher reports each device batch (size, the oldest input's queue wait, inference time) to an `observe` callback
given by its owner (the worker passes Prometheus histograms), so this compute layer imports no sink.

The batcher is model-agnostic. Models pick their device with `resolve_device`, and on CUDA run in half
precision (`inference_dtype`) with inputs copied from pinned memory (`to_device`). The model function
runs in the batcher's thread, so it enters `torch.inference_mode()` itself (grad mode is thread-local).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch

from streams.core.errors import BatcherClosedError, BatchResultError, ConfigurationError
from streams.core.settings import BatchingSettings, get_settings

WARMUP_RUNS = 2
T = TypeVar("T")
R = TypeVar("R")
# (batch size, queue wait of its oldest input in s, inference time in s), called in the model thread per device batch
BatchObserver = Callable[[int, float, float], None]


def _ignore(size: int, queue_wait_s: float, inference_s: float) -> None:
    """The default observer: nothing is reported."""


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


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():  # a cancelled start() no longer waits
        future.set_result(value)


@dataclass(eq=False)
class _Request(Generic[R]):
    """One caller's submission: its future and the results gathered so far, by position. `dead` is set (by a model
    thread) once a batch with its inputs failed, so its remaining inputs are not scored."""

    future: asyncio.Future[list[R]]
    results: list[Any]
    pending: int
    dead: bool = False


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
        observe: BatchObserver = _ignore,
    ) -> None:
        if max_batch_size < 1 or max_wait_ms < 0 or threads < 0 or (max_queue is not None and max_queue < 1):
            raise ConfigurationError(f"batcher {name}: need max_batch_size, max_queue >= 1, threads, max_wait_ms >= 0")
        self.name, self.max_batch_size, self.max_queue, self.threads = name, max_batch_size, max_queue, threads
        self.max_wait_s = max_wait_ms / 1000
        self._fn = fn
        self._warmup = list(warmup)
        self._cond = threading.Condition()  # guards the queue, `_queued` and `_closing` (the loop and the threads)
        self._queue: deque[_Slice[T, R]] = deque()
        self._queued = 0
        self._closing = False
        self._space = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[threading.Thread] = []
        self._started = False
        self._observe = observe

    @classmethod
    def from_settings(
        cls, fn: Callable[[list[T]], Sequence[R]], *, name: str, batching: BatchingSettings | None = None,
        warmup: Sequence[T] = (), observe: BatchObserver = _ignore,
    ) -> DynamicBatcher[T, R]:
        """A batcher with the limits of the `batching` settings section."""
        b = batching or get_settings().batching
        return cls(fn, name=name, max_batch_size=b.max_batch_size, max_wait_ms=b.max_wait_ms, threads=b.model_threads,
                   warmup=warmup, observe=observe)

    @property
    def pending(self) -> int:
        """Inputs submitted and not yet taken into a batch."""
        return self._queued

    async def start(self) -> None:
        """Start the model threads, each warmed up before this returns (idempotent); a warm-up failure is raised.
        With `threads=0` the warm-up runs here, in the event loop."""
        if self._closing:
            raise BatcherClosedError(f"batcher {self.name} was stopped; create a new one")
        if self._started:
            return
        self._started = True
        if not self.threads:
            try:
                for _ in range(WARMUP_RUNS if self._warmup else 0):
                    self._fn(list(self._warmup))
            except Exception:
                self._closing = True  # the model does not work
                raise
            return
        self._loop = asyncio.get_running_loop()
        warmed = [self._loop.create_future() for _ in range(self.threads)]
        self._workers = [threading.Thread(target=self._work, args=(ready,), name=f"batcher-{self.name}_{n}",
                                          daemon=True) for n, ready in enumerate(warmed)]
        for worker in self._workers:
            worker.start()
        errors = [error for error in await asyncio.gather(*warmed) if error is not None]
        if errors:
            await self.stop()  # the model does not work: no thread is left waiting for batches
            raise errors[0]

    async def stop(self) -> None:
        """Refuse new submissions, score everything already submitted, then end the model threads."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._space.set()
        if self._workers:
            await asyncio.to_thread(lambda: [worker.join() for worker in self._workers])  # after their last results
        with self._cond:
            left, self._queue, self._queued = list(self._queue), deque(), 0
        self._fail(left, BatcherClosedError(f"batcher {self.name} stopped before scoring these inputs"))

    async def submit(self, items: list[T]) -> list[R]:
        """Score `items`, merged with other callers' inputs into device batches; results are in order."""
        self._check_open()
        if not items:
            return []
        if not self.threads:
            return self._run_inline(items)
        while self.max_queue is not None and self._queued and self._queued + len(items) > self.max_queue:
            self._space.clear()
            await self._space.wait()  # backpressure: wait until the model catches up
            self._check_open()
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        request = _Request(future, [None] * len(items), len(items))
        with self._cond:
            self._queue.append(_Slice(request, 0, list(items)))
            self._queued += len(items)
            self._cond.notify()
        return await future

    def _run_inline(self, items: list[T]) -> list[R]:
        """`threads=0`: the model function on `items`, in the caller's thread, `max_batch_size` at a time."""
        results: list[R] = []
        for start in range(0, len(items), self.max_batch_size):
            inputs = items[start : start + self.max_batch_size]
            results += self._call(inputs, waited=0.0)
        return results

    def _check_open(self) -> None:
        if not self._started or self._closing:
            state = "is stopped" if self._closing else "is not started; await start() first"
            raise BatcherClosedError(f"batcher {self.name} {state}")

    # The model threads: each takes its next batch itself as soon as it is free (no round trip through the event
    # loop between two batches), runs it, and posts the results to the loop.

    def _work(self, warmed: asyncio.Future[BaseException | None]) -> None:
        try:
            for _ in range(WARMUP_RUNS if self._warmup else 0):
                self._fn(list(self._warmup))
        except Exception as error:  # noqa: BLE001 - reported by start(): the model does not work
            self._post(_settle, warmed, error)
            return
        self._post(_settle, warmed, None)
        while (batch := self._next_batch()) is not None:
            self._run(batch)

    def _next_batch(self) -> list[_Slice[T, R]] | None:
        """Wait for a batch to close (full, or its oldest input waited max_wait) and take it; None once stopped
        and drained."""
        with self._cond:
            while True:
                self._drop_abandoned()
                if not self._queue:
                    if self._closing:
                        return None
                    self._cond.wait()
                    continue
                wait = self._queue[0].enqueued + self.max_wait_s - time.monotonic()
                if self._queued >= self.max_batch_size or self._closing or wait <= 0:
                    batch = self._take()
                    if self._queue:
                        self._cond.notify()  # the rest is another thread's
                    return batch
                self._cond.wait(wait)

    def _drop_abandoned(self) -> None:
        """Forget queued inputs whose caller was cancelled or already failed (holding the lock)."""
        if any(s.request.dead or s.request.future.done() for s in self._queue):
            self._queue = deque(s for s in self._queue if not (s.request.dead or s.request.future.done()))
            self._queued = sum(len(s.items) for s in self._queue)
            self._made_space()

    def _take(self) -> list[_Slice[T, R]]:
        """Pop up to max_batch_size inputs in arrival order, splitting the last slice if it does not fit (holding
        the lock)."""
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
        self._made_space()
        return batch

    def _made_space(self) -> None:
        if self.max_queue is not None:
            self._post(self._space.set)

    def _call(self, inputs: list[T], waited: float) -> list[R]:
        """The model function on one device batch, observed; one result per input or BatchResultError."""
        began = time.perf_counter()
        outputs = list(self._fn(inputs))
        self._observe(len(inputs), waited, time.perf_counter() - began)
        if len(outputs) != len(inputs):
            raise BatchResultError(
                f"model {self.name} returned {len(outputs)} results for a batch of {len(inputs)} inputs")
        return outputs

    def _run(self, batch: list[_Slice[T, R]]) -> None:
        """Run one device batch and post each caller its results, or the failure to every caller in it."""
        inputs = [item for s in batch for item in s.items]
        try:
            outputs = self._call(inputs, waited=time.monotonic() - min(s.enqueued for s in batch))
        except Exception as exc:  # noqa: BLE001 - the failure goes to every caller in the batch
            with self._cond:
                for s in batch:
                    s.request.dead = True  # their inputs still queued are dropped, not scored
            self._post(self._fail, batch, exc)
            return
        self._post(self._deliver, batch, outputs)

    def _post(self, callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` in the event loop (futures belong to it)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(callback, *args)

    # In the event loop:

    @staticmethod
    def _deliver(batch: list[_Slice[T, R]], outputs: list[R]) -> None:
        offset = 0
        for s in batch:
            request, n = s.request, len(s.items)
            request.results[s.start : s.start + n] = outputs[offset : offset + n]
            request.pending -= n
            offset += n
            if request.pending == 0 and not request.future.done():
                request.future.set_result(request.results)

    @staticmethod
    def _fail(slices: list[_Slice[T, R]], error: BaseException) -> None:
        for s in slices:
            if not s.request.future.done():
                s.request.future.set_exception(error)
