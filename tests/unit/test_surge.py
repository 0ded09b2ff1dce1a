"""Surge detection: thresholds, one alert per surge, stable ids, baseline comparison."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from models.surge import SurgeDetector, surge_alert_id
from streams.core.settings import SurgeSettings

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SETTINGS = SurgeSettings(window_s=300, baseline_s=3600, min_negative=5, min_share=0.5, max_p_value=1e-4,
                         prior_share=0.3, prior_weight=20)


def feed(detector: SurgeDetector, ticker: str, start: datetime, pattern: str, step_s: int = 30) -> list:
    """pattern: 'n' negative, '.' not negative, one item every step_s seconds."""
    surges = []
    for i, mark in enumerate(pattern):
        surge = detector.observe(ticker, start + timedelta(seconds=i * step_s), mark == "n", f"{ticker}-{i}")
        if surge:
            surges.append(surge)
    return surges


def test_quiet_ticker_never_alerts() -> None:
    assert feed(SurgeDetector(SETTINGS), "ACME", T0, "...n....n.....n...." * 6) == []


def test_surge_raises_exactly_one_alert_with_evidence() -> None:
    detector = SurgeDetector(SETTINGS)
    feed(detector, "ACME", T0, "....n....." * 6)  # 30 minutes of calm, 10% negative
    surges = feed(detector, "ACME", T0 + timedelta(minutes=30), "nnnnnnnnnnnn")
    assert len(surges) == 1
    surge = surges[0]
    assert surge.ticker == "ACME"
    assert surge.negative >= 5 and surge.share >= 0.5
    assert surge.started_at >= T0 + timedelta(minutes=30)
    assert surge.event_ids and all(event_id.startswith("ACME-") for event_id in surge.event_ids)
    assert surge.alert_id == surge_alert_id("ACME", surge.started_at)


def test_surge_ends_then_a_new_one_gets_a_new_id() -> None:
    detector = SurgeDetector(SETTINGS)
    first = feed(detector, "ACME", T0, "n" * 10)
    calm = feed(detector, "ACME", T0 + timedelta(minutes=5), "." * 60, step_s=20)
    second = feed(detector, "ACME", T0 + timedelta(hours=3), "n" * 10)
    assert len(first) == 1 and calm == [] and len(second) == 1
    assert first[0].alert_id != second[0].alert_id


def test_below_share_threshold_no_alert() -> None:
    # 6 negatives among 18 items in the window: a share of 1/3
    assert feed(SurgeDetector(SETTINGS), "ACME", T0, "n.." * 6, step_s=20) == []


def test_high_baseline_suppresses_alert() -> None:
    detector = SurgeDetector(SETTINGS)
    feed(detector, "BEAR", T0, "nn.n" * 30)  # an hour of steady bad news (75%): that is the baseline
    assert feed(detector, "BEAR", T0 + timedelta(minutes=60), "nn.n" * 6 + "n" * 6) == []


def test_few_unlucky_items_without_history_do_not_alert() -> None:
    # six negatives in a row for a new ticker: unusual, but not unlikely enough under the 30% prior
    assert feed(SurgeDetector(SETTINGS), "NEW", T0, "nnnnnn") == []


def test_tickers_are_independent() -> None:
    detector = SurgeDetector(SETTINGS)
    assert len(feed(detector, "ACME", T0, "n" * 10)) == 1
    assert feed(detector, "BOLT", T0, "......") == []


def test_replay_gives_the_same_alert_id() -> None:
    ids = [feed(SurgeDetector(SETTINGS), "ACME", T0, ".." + "n" * 10)[0].alert_id for _ in range(2)]
    assert ids[0] == ids[1]


def test_a_window_stored_and_restored_at_every_step_gives_the_same_surges() -> None:
    from models.surge import TickerWindow

    pattern = "....n....." * 6 + "nnnnnnnnnnnn" + "." * 30 + "n" * 12
    kept = feed(SurgeDetector(SETTINGS), "ACME", T0, pattern)
    detector, stored, restored = SurgeDetector(SETTINGS), TickerWindow().to_dict(), []
    for i, mark in enumerate(pattern):
        window = TickerWindow.from_dict(json.loads(json.dumps(stored)))  # as a table value travels
        surge = detector.step(window, "ACME", T0 + timedelta(seconds=i * 30), mark == "n", f"ACME-{i}")
        stored = window.to_dict()
        if surge:
            restored.append(surge)
    assert len(kept) == 2 and restored == kept


def test_an_item_seen_again_is_not_counted_twice() -> None:
    detector = SurgeDetector(SETTINGS)
    feed(detector, "ACME", T0, "....n....." * 6)
    for _ in range(3):  # the same four negative headlines, scored three times: four items, not twelve
        assert feed(detector, "ACME", T0 + timedelta(minutes=30), "nnnn") == []
    assert len(feed(detector, "ACME", T0 + timedelta(minutes=30, seconds=1), "nnnnnnnn")) == 1


def test_items_older_than_the_baseline_are_ignored() -> None:
    from models.surge import TickerWindow

    detector, window = SurgeDetector(SETTINGS), TickerWindow()
    detector.step(window, "ACME", T0 + timedelta(hours=3), False, "now")
    assert detector.step(window, "ACME", T0, True, "old") is None
    assert list(window.buckets) == [int((T0 + timedelta(hours=3)).timestamp()) // 60]


def test_a_late_surge_counts_in_the_windows_it_belongs_to() -> None:
    """Headlines of one partition may reach the detector minutes after the others (a worker was down): they still
    make the surge of their own minutes, dated by a window they fall in, and only once."""
    detector = SurgeDetector(SETTINGS)
    feed(detector, "ACME", T0, "....n....." * 6)  # 30 minutes of calm
    feed(detector, "ACME", T0 + timedelta(minutes=40), "...")  # the other partitions have moved on
    surges = feed(detector, "ACME", T0 + timedelta(minutes=30), "nnnnnnnnnnnn", step_s=5)  # the late ones
    assert len(surges) == 1 and T0 + timedelta(minutes=30) <= surges[0].started_at <= T0 + timedelta(minutes=34)
