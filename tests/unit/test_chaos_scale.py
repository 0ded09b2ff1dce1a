"""The scale-out scenario's bookkeeping: its workload with planted surges, how alerts match them, when it is ok."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.cli.chaos import _cell
from streams.core.errors import ConfigurationError
from streams.tools.chaos_scale import SURGE_TICKERS, PlantedSurge, ScaleConfig, ScaleFigures, scale_workload


def test_workload_has_whole_surges_on_three_tickers_in_the_interleaved_traffic() -> None:
    messages, surges = scale_workload(2000, seed=3)
    assert Counter(m.kind for m in messages) == {"news": 1000, "transactions": 1000}
    assert len({m.record["id"] for m in messages if m.record}) == 2000
    assert [s.ticker for s in surges] == list(SURGE_TICKERS)
    for surge in surges:
        items = [m.record for m in messages if m.kind == "news" and m.record["tickers"] == [surge.ticker]
                 and surge.first <= datetime.fromisoformat(m.record["published_at"]) <= surge.last]
        assert len(items) >= 80  # the planted ones (2000 // 25), plus background news about the ticker
        assert timedelta(seconds=55) < surge.last - surge.first <= timedelta(seconds=60)
    assert surges[0].last < surges[1].first < surges[1].last < surges[2].first  # three separate surges


def test_too_few_events_for_whole_surges_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="raise --events"):
        scale_workload(300, seed=3)


def test_an_alert_matches_a_surge_by_ticker_and_start_time() -> None:
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    surge = PlantedSurge("KSTR", t0, t0 + timedelta(seconds=60))

    def alert(subject: str, started: datetime) -> dict[str, Any]:
        return {"subject": subject, "evidence": {"started_at": started.isoformat()}}

    assert surge.matches(alert("KSTR", t0 + timedelta(minutes=3)), window_s=300)
    assert not surge.matches(alert("NGP", t0), window_s=300)
    assert not surge.matches(alert("KSTR", t0 + timedelta(minutes=10)), window_s=300)  # another surge of KSTR
    assert not surge.matches({"subject": "KSTR"}, window_s=300)


def figures(**changes: Any) -> ScaleFigures:
    base = dict(produced=10, valid=10, documents=10, lost=0, duplicated=0, rewritten=2, dead_letters=0, workers=4,
                workers_started=4, workers_running=3, rebalances=2, surges_planted=3, surge_alerts=3,
                alerts_per_surge={"KSTR": 1, "NGP": 1, "CHS": 1}, other_surge_alerts=1, fraud_alerts=5,
                alert_repeats=2, in_flight_at_kill=3, produce_failures=0)
    return ScaleFigures(**(base | changes))


def test_figures_are_ok_with_one_alert_per_surge_and_no_loss_or_duplicate() -> None:
    assert figures().ok and figures().as_dict()["ok"] is True  # repeats of an alert id and rewrites are allowed
    assert not figures(lost=1).ok
    assert not figures(duplicated=1).ok
    assert not figures(workers=2).ok
    assert not figures(surge_alerts=2, alerts_per_surge={"KSTR": 1, "NGP": 0, "CHS": 1}).ok
    assert not figures(surge_alerts=4, alerts_per_surge={"KSTR": 2, "NGP": 1, "CHS": 1}).ok
    assert not figures(workers_running=2).ok  # a worker other than the killed one died


def test_the_table_shows_a_surge_count_per_ticker() -> None:
    assert _cell({"KSTR": 1, "NGP": 1}) == "KSTR 1, NGP 1"
    assert _cell([]) == "-" and _cell(3) == "3"


def test_default_config_is_three_workers_on_six_partitions() -> None:
    config = ScaleConfig()
    assert (config.workers, config.partitions, config.events) == (3, 6, 2000)
