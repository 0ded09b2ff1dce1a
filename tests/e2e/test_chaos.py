"""`lepton chaos` at CI size: every fault scenario loses nothing and duplicates nothing, one worker or several.

The full size is behind the command (`lepton chaos --scenario all`, 2,000 events each, 60 s outage).
search-outage and broker-restart stop and start services of the local stack, which comes back healthy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local import stack
from streams.core.settings import Settings
from streams.tools.chaos import ChaosConfig, run_scenario
from streams.tools.chaos_scale import ScaleConfig, run_scale_out

CI_SIZE = {
    "poison": ChaosConfig(events=300, seconds=15, drain_timeout_s=150),
    "kill-worker": ChaosConfig(events=400, seconds=45, kills=3, drain_timeout_s=150),
    "sigterm": ChaosConfig(events=300, seconds=20, drain_timeout_s=150),
    "search-outage": ChaosConfig(events=300, seconds=30, outage_s=15, drain_timeout_s=150),
    "broker-restart": ChaosConfig(events=300, seconds=30, drain_timeout_s=150),
}


@pytest.mark.parametrize("scenario", CI_SIZE)
def test_scenario_loses_and_duplicates_nothing(settings: Settings, scenario: str, tmp_path: Path) -> None:
    config = CI_SIZE[scenario]
    try:
        figures = run_scenario(settings, scenario, config, tmp_path)
    finally:
        stack.up(settings, report=lambda _: None)  # whatever the fault did, the next test gets a healthy stack
    assert figures.produce_failures == 0
    assert figures.valid == config.events
    assert figures.lost == 0, figures
    assert figures.duplicated == 0, figures
    assert figures.documents == config.events
    assert figures.worker_running, figures
    if scenario == "poison":
        assert figures.dead_letters >= figures.expected_dead_letters > 40, figures
    else:
        assert figures.expected_dead_letters == 0 and figures.recovery_s is not None and figures.recovery_s >= 0
    if scenario == "sigterm":
        assert figures.shutdown_s is not None and figures.shutdown_s < config.shutdown_bound_s
    assert figures.alerts > 0  # the workload's negative surge and fraud scenarios raise alerts


def test_scale_out_loses_and_duplicates_nothing_and_alerts_once_per_surge(settings: Settings, tmp_path: Path) -> None:
    """Three workers on six partitions, one SIGKILLed with headlines in flight and a fourth started (the full size,
    2,000 events over 60 s, is `lepton chaos --scenario scale-out`)."""
    # the traffic's last 20% waits until the fourth worker (started at the kill) is in the group, so it takes some
    config = ScaleConfig(events=800, seconds=30, drain_timeout_s=150)
    figures = run_scale_out(settings, config, tmp_path)
    assert figures.produce_failures == 0 and figures.valid == config.events
    assert figures.lost == 0 and figures.duplicated == 0, figures
    assert figures.documents == config.events
    assert figures.workers == 4 and figures.workers_running == 3, figures
    assert figures.rebalances >= 1  # the kill and the fourth worker moved partitions
    assert figures.surges_planted == figures.surge_alerts == 3, figures
    assert list(figures.alerts_per_surge.values()) == [1, 1, 1], figures
    assert figures.fraud_alerts > 0
