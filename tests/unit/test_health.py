"""ConsumerHealth: lag, commit progress, stall detection and agent liveness, fed with fake consumer readings."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from sinks.metrics import REGISTRY
from streams.worker.health import ConsumerHealth, PartitionState, _chained, read_partitions


@pytest.fixture
def topic() -> str:
    """A topic name of its own: the gauges live on the process-wide registry."""
    return f"t-{uuid.uuid4().hex[:8]}"


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_lag_per_partition_and_revoked_partitions_disappear(topic: str) -> None:
    health = ConsumerHealth(stall_after_s=60)
    health.update({(topic, 0): PartitionState(100, 40, 40), (topic, 1): PartitionState(7, None, 7)},
                  {}, now=1000.0)
    assert gauge("lepton_consumer_lag_offsets", topic=topic, partition="0") == 60
    assert gauge("lepton_consumer_lag_offsets", topic=topic, partition="1") == 0
    assert health.lag_by_topic() == {topic: 60}

    health.update({(topic, 1): PartitionState(9, None, 7)}, {}, now=1002.0)
    assert gauge("lepton_consumer_lag_offsets", topic=topic, partition="0") is None
    assert gauge("lepton_consumer_lag_seconds", topic=topic, partition="0") is None
    assert gauge("lepton_consumer_lag_offsets", topic=topic, partition="1") == 2


def test_unknown_highwater_or_position_counts_as_no_lag() -> None:
    assert PartitionState(None, 5, 5).lag == 0
    assert PartitionState(10, None, None).lag == 0
    assert PartitionState(10, 12, 12).lag == 0  # a stale highwater never makes negative lag


def test_seconds_since_commit_starts_at_assignment_and_resets_on_commit(topic: str) -> None:
    health = ConsumerHealth(stall_after_s=60)
    health.update({}, {}, now=1000.0)
    assert gauge("lepton_seconds_since_commit") == 0  # not assigned yet
    health.update({(topic, 0): PartitionState(10, 3, 3)}, {}, now=1010.0)
    health.update({(topic, 0): PartitionState(10, 3, 3)}, {}, now=1025.0)
    assert gauge("lepton_seconds_since_commit") == 15
    health.update({(topic, 0): PartitionState(10, 8, 8)}, {}, now=1030.0)  # the committed offset moved
    assert gauge("lepton_seconds_since_commit") == 0
    health.update({(topic, 0): PartitionState(10, 8, 8)}, {}, now=1034.0)
    assert gauge("lepton_seconds_since_commit") == 4


def test_lagging_without_commits_is_a_stall_but_idle_is_not(topic: str) -> None:
    health = ConsumerHealth(stall_after_s=60)
    health.update({(topic, 0): PartitionState(10, 10, 10)}, {}, now=0.0)
    health.update({(topic, 0): PartitionState(10, 10, 10)}, {}, now=500.0)  # idle for long: fine
    assert health.problems(500.0) == []
    health.update({(topic, 0): PartitionState(25, 10, 10)}, {}, now=510.0)  # new messages arrive
    assert health.problems(510.0) == []  # the stall clock starts when the lag appears, not at the last commit
    health.update({(topic, 0): PartitionState(25, 10, 10)}, {}, now=571.0)
    assert health.stalled_for(571.0) == 61
    [problem] = health.problems(571.0)
    assert "15 messages behind" in problem and "LEPTON_STALL_AFTER_S" in problem
    health.update({(topic, 0): PartitionState(30, 20, 20)}, {}, now=575.0)  # it commits again
    assert health.problems(575.0) == []


def test_lag_seconds_is_the_age_of_the_last_processed_message_while_behind(topic: str) -> None:
    health = ConsumerHealth(stall_after_s=60)
    health.update({(topic, 0): PartitionState(50, 0, 0)}, {}, now=1000.0)
    assert gauge("lepton_consumer_lag_seconds", topic=topic, partition="0") == 0  # nothing processed yet
    health.update({(topic, 0): PartitionState(50, 0, 0)}, {}, now=1004.0)
    assert gauge("lepton_consumer_lag_seconds", topic=topic, partition="0") == 4  # at least that far behind
    health.message_processed(topic, 0, 990.0)
    health.update({(topic, 0): PartitionState(50, 20, 20)}, {}, now=1006.0)
    assert gauge("lepton_consumer_lag_seconds", topic=topic, partition="0") == 16
    health.update({(topic, 0): PartitionState(50, 50, 50)}, {}, now=1008.0)
    assert gauge("lepton_consumer_lag_seconds", topic=topic, partition="0") == 0  # caught up


def test_a_crashed_agent_stays_down_and_fails_liveness() -> None:
    health = ConsumerHealth(stall_after_s=60)
    name = f"agent-{uuid.uuid4().hex[:6]}"
    health.update({}, {name: True, f"{name}-idle": False}, now=1.0)
    assert gauge("lepton_agent_up", agent=name) == 1
    assert gauge("lepton_agent_up", agent=f"{name}-idle") == 0  # stopped

    @dataclass
    class FakeAgent:
        name: str

    asyncio.run(health.on_agent_error(FakeAgent(name), ValueError("boom")))
    assert gauge("lepton_agent_up", agent=name) == 0
    health.update({}, {name: True}, now=2.0)  # Faust restarted its actor: still reported down
    assert gauge("lepton_agent_up", agent=name) == 0
    assert health.problems(2.0) == [f"agent {name} crashed: ValueError: boom"]


def test_chained_error_handlers_run_in_order() -> None:
    calls: list[str] = []

    async def first(agent: Any, error: BaseException) -> None:
        calls.append(f"first {error}")

    async def then(agent: Any, error: BaseException) -> None:
        calls.append(f"then {error}")

    asyncio.run(_chained(first, then)(None, KeyError("k")))
    asyncio.run(_chained(first, None)(None, KeyError("x")))
    assert calls == ["first 'k'", "then 'k'", "first 'x'"]


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeConsumer:
    """The parts of Faust's consumer that read_partitions uses."""

    def __init__(self, broker_fails: bool = False) -> None:
        self.broker_fails = broker_fails
        self.tps = [TP("news", 0), TP("news", 1), TP("news", 2), TP("news-changelog", 0)]
        self._committed_offset = {TP("news", 0): 40}
        self._read_offset = {TP("news", 1): 9}

    def assignment(self) -> set[TP]:
        return set(self.tps)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        if self.broker_fails:
            raise ConnectionError("broker gone")
        return dict.fromkeys(tps, 100)

    def highwater(self, tp: TP) -> int:
        return 50

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return dict.fromkeys(tps, 5)


class FakeApp:
    def __init__(self, consumer: FakeConsumer) -> None:
        self.consumer = consumer


def test_read_partitions_positions_from_committed_consumed_or_earliest() -> None:
    states = asyncio.run(read_partitions(FakeApp(FakeConsumer()), {"news"}))  # type: ignore[arg-type]
    assert states == {("news", 0): PartitionState(100, 40, 40),  # committed
                      ("news", 1): PartitionState(100, None, 10),  # consumed up to 9, not committed
                      ("news", 2): PartitionState(100, None, 5)}  # nothing yet: from the earliest offset


def test_read_partitions_falls_back_to_fetched_highwaters() -> None:
    states = asyncio.run(read_partitions(FakeApp(FakeConsumer(broker_fails=True)), {"news"}))  # type: ignore[arg-type]
    assert {tp: state.highwater for tp, state in states.items()} == {("news", p): 50 for p in range(3)}


def test_each_rebalance_is_counted_with_the_group_generation_it_ended_in() -> None:
    from streams.worker.health import ProgressSensor

    sensor = ProgressSensor(ConsumerHealth(stall_after_s=60))
    before = gauge("lepton_rebalances_total") or 0.0
    for generation in (3, 4):
        sensor.on_rebalance_end(type("App", (), {"consumer_generation_id": generation})(), {})
    assert gauge("lepton_rebalances_total") == before + 2
    assert gauge("lepton_consumer_generation") == 4
