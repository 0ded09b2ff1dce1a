"""Consumer health of one worker: lag per partition, commit progress and agent liveness.

`ConsumerHealth` is plain logic (tested with fakes): a timer feeds it a `PartitionState` per assigned partition
every few seconds, a Faust sensor tells it the Kafka timestamp of every processed message, and the agents'
error handler tells it about crashes. It keeps the Prometheus gauges current and answers `/ready` and `/live`.
`watch` wires it into a Faust app (sensor + timer); `read_partitions` reads the consumer. Times are wall-clock
seconds (time.time), because Kafka timestamps are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust

from sinks import metrics

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # how often the timer refreshes lag and commit progress (Prometheus scrapes every 5 s locally)
BROKER_TIMEOUT_S = 3.0  # a broker offsets request (about 1 s: it queues behind the fetch) slower than this is skipped

TopicPartition = tuple[str, int]
AgentErrorHandler = Callable[[Any, BaseException], Awaitable[None]]


@dataclass(frozen=True)
class PartitionState:
    """One assigned partition: the broker's high watermark, and where this worker stands in it.

    `committed` is the offset this worker's group last committed (the next one to read), None before the first
    commit; `position` is the next offset to process (committed, else the last consumed + 1, else the earliest).
    """

    highwater: int | None
    committed: int | None
    position: int | None

    @property
    def lag(self) -> int:
        """Messages between the position and the end of the partition (0 when unknown)."""
        if self.highwater is None or self.position is None:
            return 0
        return max(0, self.highwater - self.position)


class ConsumerHealth:
    """Lag, commit progress and agent liveness of one worker; updates the gauges, answers the health pages."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.crashed: dict[str, str] = {}  # agent name -> the error that killed it
        self.last_commit_at: float | None = None  # None until the first assignment
        self._last_processed: dict[TopicPartition, float] = {}  # Kafka timestamp of the last processed message
        self._lagging_since: dict[TopicPartition, float] = {}
        self._lag_since: float | None = None  # when the worker as a whole last went from caught up to lagging

    def message_processed(self, topic: str, partition: int, timestamp: float | None) -> None:
        """A message was processed (acked); remember its Kafka timestamp for the time lag."""
        if timestamp:
            self._last_processed[(topic, partition)] = timestamp

    def agent_crashed(self, agent: str, error: BaseException) -> None:
        """An agent raised: it is down for good (Faust may restart it, but a batch may have been skipped)."""
        self.crashed[agent] = f"{type(error).__name__}: {error}"
        metrics.AGENT_UP.labels(agent).set(0)

    async def on_agent_error(self, agent: Any, error: BaseException) -> None:
        """Called (by `watch`) when an agent's function raised."""
        log.critical("agent %s crashed: %s: %s; /live and /ready now fail", agent.name, type(error).__name__, error)
        self.agent_crashed(agent.name, error)

    def update(self, partitions: Mapping[TopicPartition, PartitionState], agents: Mapping[str, bool],
               now: float) -> None:
        """Take a fresh reading of the assigned partitions and of which agents run; refresh the gauges."""
        if partitions and self.last_commit_at is None:
            self.last_commit_at = now  # the stall clock starts at the first assignment
        for tp, state in partitions.items():
            previous = self.partitions.get(tp)
            if previous is not None and state.committed is not None and state.committed != previous.committed:
                self.last_commit_at = now
        for topic, partition in set(self.partitions) - set(partitions):  # revoked: no stale series
            metrics.CONSUMER_LAG_OFFSETS.remove(topic, str(partition))
            metrics.CONSUMER_LAG_SECONDS.remove(topic, str(partition))
            self._lagging_since.pop((topic, partition), None)
        self.partitions = dict(partitions)
        for tp, state in self.partitions.items():
            metrics.CONSUMER_LAG_OFFSETS.labels(tp[0], str(tp[1])).set(state.lag)
            metrics.CONSUMER_LAG_SECONDS.labels(tp[0], str(tp[1])).set(self._lag_seconds(tp, state, now))
        if self.total_lag == 0:
            self._lag_since = None
        elif self._lag_since is None:
            self._lag_since = now
        metrics.SECONDS_SINCE_COMMIT.set(self.seconds_since_commit(now))
        for agent, running in agents.items():
            metrics.AGENT_UP.labels(agent).set(1 if running and agent not in self.crashed else 0)

    def _lag_seconds(self, tp: TopicPartition, state: PartitionState, now: float) -> float:
        """Age of the last processed message while behind; without one, how long the partition has lagged."""
        if state.lag == 0:
            self._lagging_since.pop(tp, None)
            return 0.0
        since = self._lagging_since.setdefault(tp, now)
        last = self._last_processed.get(tp)
        return max(0.0, now - (last if last is not None else since))

    @property
    def total_lag(self) -> int:
        """Messages behind, summed over the assigned partitions."""
        return sum(state.lag for state in self.partitions.values())

    def lag_by_topic(self) -> dict[str, int]:
        """Messages behind per topic."""
        lag: dict[str, int] = {}
        for (topic, _), state in self.partitions.items():
            lag[topic] = lag.get(topic, 0) + state.lag
        return lag

    def seconds_since_commit(self, now: float) -> float:
        """Seconds since offsets last moved forward (or since the first assignment); 0 before it."""
        return 0.0 if self.last_commit_at is None else max(0.0, now - self.last_commit_at)

    def stalled_for(self, now: float) -> float:
        """How long the worker has lagged without committing (0 when caught up or committing)."""
        if self._lag_since is None or self.last_commit_at is None:
            return 0.0
        return max(0.0, now - max(self.last_commit_at, self._lag_since))

    def problems(self, now: float) -> list[str]:
        """Why the worker is not live, in words (empty when it is)."""
        found = [f"agent {name} crashed: {error}" for name, error in sorted(self.crashed.items())]
        stalled = self.stalled_for(now)
        if stalled > self.stall_after_s:
            found.append(f"stalled: {self.total_lag} messages behind and no commit for {stalled:.0f} s "
                         f"(limit LEPTON_STALL_AFTER_S={self.stall_after_s:g})")
        return found


class ProgressSensor(faust.Sensor):
    """Tells `ConsumerHealth` the Kafka timestamp of each message once its stream acked it, and counts rebalances
    with the group generation they ended in (what `lepton chaos` reports of several workers)."""

    def __init__(self, health: ConsumerHealth, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health = health

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self.health.message_processed(tp.topic, tp.partition, getattr(message, "timestamp", None))

    def on_rebalance_end(self, app: Any, state: dict) -> None:
        metrics.REBALANCES.inc()
        metrics.CONSUMER_GENERATION.set(app.consumer_generation_id)


def source_topics(app: faust.App) -> set[str]:
    """The topics the app's agents consume (changelogs and internal topics have no lag worth reporting)."""
    return {name for agent in app.agents.values() for name in getattr(agent.channel, "topics", ())}


def agents_running(app: faust.App) -> dict[str, bool]:
    """Per agent: started, not stopping, and at least one actor still running."""
    running = {}
    for name, agent in app.agents.items():
        actors = list(getattr(agent, "_actors", ()))
        tasks = [actor.actor_task for actor in actors if getattr(actor, "actor_task", None) is not None]
        running[name] = bool(agent.started and not agent.should_stop and any(not t.done() for t in tasks))
    return running


async def read_partitions(app: faust.App, topics: set[str]) -> dict[TopicPartition, PartitionState]:
    """High watermark, committed offset and position of every assigned partition of `topics`."""
    consumer = app.consumer
    tps = [tp for tp in consumer.assignment() if tp.topic in topics]
    if not tps:
        return {}
    try:  # ask the broker: fetch responses stop updating the high watermark when consumption is paused
        highwaters = dict(await asyncio.wait_for(consumer.highwaters(*tps), BROKER_TIMEOUT_S))
    except Exception:  # a health probe must not crash the worker
        log.debug("high watermarks from the broker failed; using the last fetched ones", exc_info=True)
        highwaters = {tp: consumer.highwater(tp) for tp in tps}
    # Faust keeps these per partition (faust/transport/consumer.py); neither has a public accessor.
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    consumed: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
    unknown = [tp for tp in tps if committed.get(tp) is None and consumed.get(tp) is None]
    earliest: Mapping[Any, int] = {}
    if unknown:
        try:
            earliest = await asyncio.wait_for(consumer.earliest_offsets(*unknown), BROKER_TIMEOUT_S)
        except Exception:  # the position stays unknown this round
            log.debug("earliest offsets failed", exc_info=True)
    states = {}
    for tp in tps:
        done, read = committed.get(tp), consumed.get(tp)
        position = done if done is not None else read + 1 if read is not None else earliest.get(tp)
        states[(tp.topic, tp.partition)] = PartitionState(highwaters.get(tp), done, position)
    return states


def _chained(first: AgentErrorHandler, then: AgentErrorHandler | None) -> AgentErrorHandler:
    async def on_error(agent: Any, error: BaseException) -> None:
        await first(agent, error)
        if then is not None:
            await then(agent, error)

    return on_error


def watch(app: faust.App, health: ConsumerHealth) -> None:
    """Feed `health` from the app: a sensor for processed messages, a timer for lag, commits and agents.

    Call it after the agents are defined: it chains `health.on_agent_error` before each agent's error handler
    (Faust sets that handler itself and has no public way to add one).
    """
    app.sensors.add(ProgressSensor(health))
    for agent in app.agents.values():
        agent._on_error = _chained(health.on_agent_error, agent._on_error)

    async def refresh_health() -> None:
        try:
            partitions = await read_partitions(app, source_topics(app))
        except Exception:  # during a rebalance the consumer may refuse; try again next tick
            log.debug("could not read the consumer's partitions", exc_info=True)
            return
        health.update(partitions, agents_running(app), time.time())

    app.timer(interval=INTERVAL_S, name="lepton-health")(refresh_health)
