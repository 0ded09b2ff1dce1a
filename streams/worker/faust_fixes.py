"""Fixes for faust-streaming 0.15.3: three stop a restarted worker from skipping events, seven save CPU or latency,
one keeps table writes from failing.

The first two were found by `lepton chaos` (sigterm, kill-worker) and the fraud state-restart test, with the
consumer's fetches, skips, seeks and commits logged; the third by kill-worker and Faust's commit logic read closely:

1. **Fetches hand out records Faust then throws away.** Faust asks aiokafka for the records of its *live* set
   of active partitions. That set changes while the fetch waits (for example it becomes empty when recovery
   pauses the changelogs, and aiokafka treats an empty set as "every partition"), so records of paused stream
   partitions come back; Faust's `getmany` skips them while aiokafka's position has already moved past them.
   They were never processed, yet the next record looks like a gap and the gap gets committed: lost.
   `SafeFetchConsumerThread` asks for a snapshot of the active set and puts any record that comes back for a
   partition no longer active back (a seek to its offset, in the consumer's own thread, before anything else
   can fetch), so it is fetched again once the partition resumes.
2. **Recovery resumes the stream partitions before it seeks them.** `Recovery.on_recovery_completed` resumes
   them and then seeks them to their committed offsets, so a batch fetched in between is delivered, the seek
   rewinds the read offset, and messages of that batch still in flight move it forward again: re-fetched
   messages below it are dropped as already read. `SeekFirstRecovery` seeks while they are still paused.

3. **Commits can pass a message that is still being processed.** With two actors on one topic (the sentiment
   agent's micro-batches in flight) the actors take alternate messages of a partition, so acks arrive out of
   order. `Consumer._new_offset` commits the first run of consecutive acked offsets, and its only guard against a
   hole before that run (`min(acked) - committed > 1`) lets a hole of exactly one message through and is skipped
   while nothing was committed yet: acked 101, 103 with 100 still in the other actor's batch commits 102. A worker
   killed before that batch is written has then lost message 100 (`lepton chaos`, kill-worker: one lost event
   in 400, now and then). `SafeFetchConsumer` commits nothing while a message that a stream has taken and not
   acked lies below the first acked offset.

4. **Every message handed to the streams costs four asyncio tasks.** Faust's fetch loop hands each message over
   racing it against a flow stop (`wait_first(callback(message), suspend_flow.wait())`: tasks for the hand-over,
   the flow stop and the consumer's stopped and crashed events, then three cancellations), so that a hand-over
   blocked on a full stream buffer gives way when a rebalance stops the flow. `SafeFetchConsumer` races each
   fetch's hand-over instead: the same loop and checks, one race per fetch (hundreds of messages), and the rest
   of a fetch is dropped when the flow stops, as Faust's `getmany` drops it. Measured with the model replaced by
   a constant, so that the event loop is what limits: 283-284 µs of event-loop CPU per headline before, 179-190
   after.

5. **A micro-batch waits for its window even when nothing more is coming.** `take_events` yields when the buffer
   is full or `within` has passed since it started waiting, so at moderate load every event waits the whole window,
   in every stage it passes (the fraud pipeline has two). `AdaptiveStream.take_adaptive` is `take_events` with one
   change: it also yields as soon as the buffer holds events and none was added for `idle_s` (a fetch's messages
   reach the buffer a fraction of a millisecond apart, so a backlog still fills batches to `max_`). It leaves the
   acks to its caller, which holds several batches in flight.

6. **A table write can fail for want of metadata.** See `LeptonApp.learn_changelog_partitions`, which the checkpoint
   awaits before a micro-batch writes its state (the changelog topics exist once partitions are assigned, not when
   agents start).

7. **A fetch of quiet partitions holds up the busy ones for 1.5 s.** aiokafka keeps one fetch request in flight per
   broker, and a partition whose fetched records still wait in its buffer (the event loop busy) is left out of the
   next request once 100 ms have passed. That request may then name only quiet partitions (a worker also reads
   `labels` and `labels.by-card`), and Faust has the broker hold it up to 1,500 ms for data that does not come,
   while the stage topics' new records wait behind it: at 1,000 payments/s this stalled a fraud worker for a second
   now and then and alerts queued for 3-4 s. `SafeFetchConsumerThread` has the broker answer within
   `FETCH_MAX_WAIT_MS` (an idle worker then sends a few more empty fetches a second).

8. **Every event a stream takes waits a turn of the event loop.** Faust's stream iterator (the compiled one, which
   faust-streaming's wheels carry) awaits `asyncio.sleep(0)` before each event, so on a busy loop a stream takes one
   event per turn while every other ready task (a batch's features, a bulk response, the other fraud stage) runs in
   between: at 1,400 payments/s the card stage took 9 events in 20 ms with 1,088 waiting in its queue, batches stayed
   at 50, and alerts queued for seconds (the worker at 0.8 of a core). `install_stream_yield` lets an agent that
   calls `yield_every(STREAM_YIELD_S)` (the fraud stages) have its iterator yield only when that long passed since the
   loop last had a turn (events between are a fraction of a millisecond each); other agents keep Faust's turn per
   event, which the sentiment pipeline's model threads need (`lepton bench sentiment`, pipeline_vs_raw of the median
   round: 0.864-0.937 with a turn per event, 0.832-0.858 with the sentiment agent yielding every 2 ms too).
   `take_adaptive` does not close a batch for a quiet spell while events wait in its queue.

9. **Table writes hold up the hand-over of fetched messages.** See faust_producer.py.

10. **Every 10,000 acks the streams get nothing for half a second.** Faust's fetch loop awaits a whole commit
    (flush every queued produce, then commit offsets) before it hands over the next message once
    `broker_commit_every` acks have accumulated: a fraud payment is acked twice (two stages), so at 1,200 payments/s
    alerts were 0.5-1.3 s late every 4 s, at 800/s every 6 s. `SafeFetchConsumer` hands over without it; the commit
    timer still commits every `broker_commit_interval` (1 s), beside the streams instead of in their way.

11. **Every message Faust sends waits three turns of the event loop.** See faust_producer.py.

`LeptonApp` is `faust.App` with all eleven installed, a version guard (the fixes override about fifteen private names
of faust-streaming, so the app refuses to start on a version they were not checked against) and `on_close`, the
hook that closes the worker's own resources once Faust has stopped the agents and the producer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence, Set
from contextvars import ContextVar
from importlib.metadata import version
from typing import Any, cast

import faust
from faust.streams import _tracks_buffer_agen
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT
from faust.types.tuples import ack_lock

from streams.core.errors import ConfigurationError
from streams.worker.faust_producer import EbbingProducer, ReadyProducerApp

WRITTEN_FOR = ("0.15.3",)  # faust-streaming versions these fixes were read against and tested with
FETCH_MAX_WAIT_MS = 50  # the longest the broker holds a fetch for data to arrive (fix 7; Faust asks for 1,500)
STREAM_YIELD_S = 0.002  # a fraud stage taking queued events gives the event loop a turn at least this often (fix 8)


class SafeFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Never returns a record Faust will skip; such records stay fetchable (fix 1). Fetches wait at most
    FETCH_MAX_WAIT_MS at the broker (fix 7)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # Faust passes 1,500; the fetcher is built from this at start
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: Set[TP], timeout: float | None = None,
                             max_records: int | None = None) -> Mapping[TP, list]:
        wanted = frozenset(active_partitions)  # Faust passes its live set, which changes while we wait
        if not wanted:
            return {}  # aiokafka would read an empty set as "all partitions"
        records = await super()._fetch_records(consumer, wanted, timeout=timeout, max_records=max_records)
        still_wanted = set(active_partitions) | set(self.consumer._buffered_partitions)
        for tp in [tp for tp in records if tp not in still_wanted]:
            if tp in consumer.assignment():
                consumer.seek(tp, records[tp][0].offset)  # fetched again when the partition resumes
            del records[tp]
        return records


class SafeFetchConsumer(faust_aiokafka.Consumer):
    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (`Consumer._drain_messages`), with the flow-stop race per fetch (fix 4)."""
        stopped, fetcher_stopped = self._stopped.is_set, cast(Any, fetcher)._stopped.is_set
        try:
            while not (stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                messages = self.getmany(timeout=1.0)
                await self.sleep(0)
                # The fetch waits outside the race, as in Faust; `getmany` yields the rest without waiting.
                first = None if self.should_stop else await anext(aiter(messages), None)
                if first is not None:
                    await self.wait_first(self._hand_over(first, messages), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, first: tuple[TP, Any], rest: Any) -> None:
        """A fetch's messages to their streams, yielding to the event loop every 100 as Faust does."""
        await self._hand_over_one(*first)
        n = 1
        async for tp, message in rest:
            n += 1
            if n % 100 == 0:
                await asyncio.sleep(0)
            await self._hand_over_one(tp, message)

    async def _hand_over_one(self, tp: TP, message: Any) -> None:
        """One message, with the checks of Faust's loop: below the read offset it is dropped (read already) and a
        gap above it is recorded (acked topics). Faust's commit every `broker_commit_every` acks is left out (fix
        10): the commit timer (`broker_commit_interval`) commits."""
        offset, last = message.offset, self._read_offset[tp]
        if last is not None and offset < last:
            return
        if last and offset - last > 1 and self.app.topics.acks_enabled_for(message.topic):
            await self._add_gap(tp, last + 1, offset)
        await self.callback(message)
        self._read_offset[tp] = offset

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return SafeFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's commit offset for `tp`, or None while a taken, unacked message lies below the first acked one
        (Faust would commit past it: fix 3)."""
        acked = self._acked[tp]
        if acked:
            committed, generation = self._committed_offset[tp], self.app.consumer_generation_id
            with ack_lock:  # messages of an earlier assignment are fetched again: they hold nothing back
                pending = [m.offset for m in list(self._unacked_messages)
                           if m.tp == tp and not m.acked and m.generation_id == generation
                           and (committed is None or m.offset >= committed)]
            if pending and min(pending) < min(acked):
                return None
        return super()._new_offset(tp)


class SafeFetchTransport(faust_aiokafka.Transport):
    Consumer = SafeFetchConsumer
    Producer = EbbingProducer  # fix 9 (faust_producer.py)


class SeekFirstRecovery(Recovery):
    """`Recovery` with `on_recovery_completed` reordered: seek, then resume; otherwise unchanged."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        await asyncio.gather(*(table.on_recovery_completed(self.actives_for_table[table],
                                                           self.standbys_for_table[table])
                               for table in self.tables.values()))
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again app id %s param %s",
                             self.app.consumer_generation_id, generation_id)
            return
        assignment = consumer.assignment()
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await cast(Any, self.app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def check_faust_version(installed: str | None = None) -> None:
    """Refuse a faust-streaming these fixes were not written for: they override its private methods."""
    installed = installed or version("faust-streaming")
    if installed not in WRITTEN_FOR:
        raise ConfigurationError(
            f"faust-streaming {installed} is installed, but streams/worker/faust_fixes.py was written for "
            f"{', '.join(WRITTEN_FOR)} (it overrides Faust's private fetch, commit and recovery methods). Install "
            f"faust-streaming=={WRITTEN_FOR[-1]} (`uv sync --locked`), or re-check each fix against {installed}, "
            "run `lepton chaos`, and add the version to WRITTEN_FOR.")


class AdaptiveStream(faust.Stream):
    """`faust.Stream` with `take_adaptive` (fix 5)."""

    @_tracks_buffer_agen  # closed with the stream, as Faust's own take_events
    async def take_adaptive(self, max_: int, within: float, idle_s: float = 0.002
                            ) -> AsyncGenerator[Sequence[EventT], None]:
        """Faust's `take_events`, yielding also once events are buffered and none came for `idle_s`. Unlike there,
        the caller acks a batch's events (`stream.ack`) once they are done with, so that batches can stay in flight
        after the loop body returned (checkpoint.consume)."""
        events: list[EventT] = []
        buffer_full, first_added = asyncio.Event(), asyncio.Event()
        buffer_consumed = asyncio.Event()
        last_added = 0.0
        buffer_consuming: asyncio.Future[None] | None = None
        stream_enable_acks = self.enable_acks

        async def add_to_buffer(value: Any) -> Any:
            nonlocal buffer_consuming, last_added
            try:
                if buffer_consuming is not None:
                    try:
                        await buffer_consuming
                    finally:
                        buffer_consuming = None
                event = self.current_event
                if event is None:
                    raise RuntimeError("Take buffer found current_event is None")
                events.append(event)
                last_added = time.monotonic()
                first_added.set()
                if len(events) >= max_:
                    buffer_full.set()
                    buffer_consumed.clear()
                    await self.wait(buffer_consumed)  # type: ignore[arg-type]
            except asyncio.CancelledError:  # pragma: no cover
                raise
            except Exception as exc:
                self.log.exception("Error adding to take buffer: %r", exc)
                await self.crash(exc)
            return value

        self.enable_acks = False
        self.add_processor(add_to_buffer)
        self._enable_passive(cast(Any, aiter(self.channel)))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(first_added)  # type: ignore[arg-type]
                started = time.monotonic()
                while not buffer_full.is_set() and not self.should_stop:
                    now = time.monotonic()
                    quiet = now - last_added >= idle_s and self.channel.queue.empty()  # not quiet: the loop was busy
                    if quiet or now - started >= within:
                        break
                    await self.wait_for_stopped(buffer_full, timeout=idle_s)  # type: ignore[arg-type]
                if events:
                    buffer_consuming = self.loop.create_future()
                    try:
                        yield list(events)
                    finally:
                        events.clear()
                        buffer_consuming.set_result(None)
                        buffer_full.clear()
                        first_added.clear()
                        buffer_consumed.set()
        finally:
            self.enable_acks = stream_enable_acks
            self._processors.remove(add_to_buffer)


_last_turn = [0.0]  # when a stream last gave the event loop a turn (fix 8)
_yield_every_s: ContextVar[float] = ContextVar("stream_yield_every_s", default=0.0)  # 0: a turn per event (Faust)


def yield_every(seconds: float) -> None:
    """Fix 8 for the streams the current task (an agent) iterates: a turn of the event loop at most every `seconds`
    instead of one per event."""
    _yield_every_s.set(seconds)


async def _yield_now_and_then(delay: float = 0, result: Any = None) -> Any:
    """`asyncio.sleep` for Faust's stream iterator: a zero delay yields only once the agent's `yield_every` passed
    since the last turn given (fix 8); any other delay sleeps."""
    now = time.monotonic()
    if delay or now - _last_turn[0] >= _yield_every_s.get():
        await asyncio.sleep(delay)
        _last_turn[0] = time.monotonic()
    return result


def install_stream_yield() -> None:
    """Fix 8 on the compiled stream iterator, the one Faust uses when its extension is installed (it looks `sleep`
    up in its module at each event); Faust's pure-Python fallback keeps yielding per event."""
    try:
        from faust._cython import streams as compiled
    except ImportError:
        return
    compiled.sleep = _yield_now_and_then  # type: ignore[attr-defined]


class LeptonApp(ReadyProducerApp):
    """`faust.App` with the eleven fixes installed, a version guard and a close hook."""

    def __init__(self, *args: Any, **options: Any) -> None:
        check_faust_version()
        install_stream_yield()
        super().__init__(*args, TableManager=SeekFirstTableManager, Stream=AdaptiveStream, **options)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run `close` when the app shuts down, after Faust stopped the agents, flushed and stopped the producer."""
        self._closers.append(close)

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        for close in reversed(self._closers):
            await close()

    def _new_transport(self) -> Any:
        return SafeFetchTransport(self.conf.broker_consumer, self)

    async def learn_changelog_partitions(self) -> None:
        """Fix 6: the producer knows every table's changelog topic before a table is written. A table with
        `use_partitioner` (ours: keyed by the source key) picks a changelog partition from the producer's cluster
        metadata (`key_partition`) without asking the broker, and the producer refreshes only the topics it sent to:
        a changelog it had not seen failed every write of its table (seen in three-worker runs: all the table writes
        of one worker). The checkpoint awaits this before a batch writes its state; once all are known it costs a lookup
        each."""
        producer = self.producer._ensure_producer()
        for table in self.tables.values():
            topic = table.changelog_topic.get_topic_name()
            if producer.client.cluster.partitions_for_topic(topic) is None:
                await producer.partitions_for(topic)
