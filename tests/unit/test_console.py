"""The live console's data: rates from counters, the chart from a canned search response, alerts, recommendations."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from streams.core.events import Alert
from streams.core.settings import Settings
from streams.worker import checkpoint
from streams.worker.console import Console, RateMeter, alert_view, counter_totals, negative_share, negative_share_query
from streams.worker.health import ConsumerHealth, PartitionState

CANNED_CHART = {"aggregations": {"tickers": {"buckets": [
    {"key": "QFL", "doc_count": 30, "negative": {"doc_count": 18}, "over_time": {"buckets": [
        {"key": 1_800_000_000_000, "doc_count": 10, "negative": {"doc_count": 2}},
        {"key": 1_800_000_300_000, "doc_count": 0, "negative": {"doc_count": 0}},
        {"key": 1_800_000_600_000, "doc_count": 20, "negative": {"doc_count": 16}}]}},
    {"key": "ACME", "doc_count": 4, "negative": {"doc_count": 1}, "over_time": {"buckets": [
        {"key": 1_800_000_000_000, "doc_count": 4, "negative": {"doc_count": 1}}]}},
]}}}


def alert(alert_id: str, kind: str = "fraud") -> Alert:
    return Alert(alert_id=alert_id, kind=kind, severity="high", created_at=datetime(2026, 1, 2, tzinfo=UTC),
                 subject="tok_abcdefgh", summary="BLOCK: 900.00 EUR", event_ids=["t-1", "t-2"],
                 evidence={"fraud_score": 0.97, "decision": "block",
                           "reasons": "amount 12x the card's usual; new country"})


def test_counter_totals_sum_over_other_labels() -> None:
    registry = CollectorRegistry()
    letters = Counter("x_letters_total", "dead letters", ["stream", "error_type"], registry=registry)
    letters.labels("news", "validation").inc(3)
    letters.labels("news", "invalid_json").inc(2)
    letters.labels("clicks", "empty").inc()
    assert counter_totals(letters) == {"news": 5, "clicks": 1}


def test_rates_over_a_sliding_window() -> None:
    meter = RateMeter(window_s=10)
    assert meter.rates(100.0, {"news": 0}) == {"news": 0.0}  # one sample: no rate yet
    assert meter.rates(102.0, {"news": 40}) == {"news": 20.0}
    meter.rates(111.0, {"news": 200})
    meter.rates(113.0, {"news": 230})
    assert meter.rates(115.0, {"news": 260}) == {"news": (260 - 40) / 13}  # since the newest sample >= 10 s old
    assert meter.rates(125.0, {"news": 300}) == {"news": (300 - 260) / 10}  # older samples fell out


def test_negative_share_series_from_a_search_response() -> None:
    series = negative_share(CANNED_CHART)
    assert [s["ticker"] for s in series] == ["QFL", "ACME"]
    qfl = series[0]
    assert (qfl["negative"], qfl["items"]) == (18, 30)
    assert [(p["t"], p["share"], p["items"]) for p in qfl["points"]] == [
        (1_800_000_000_000, 0.2, 10), (1_800_000_600_000, 0.8, 20)]  # the empty bucket is left out
    assert negative_share({}) == []
    query = negative_share_query("30m", tickers=3)
    assert query["query"]["range"]["processed_at"] == {"gte": "now-30m"}
    assert query["aggs"]["tickers"]["terms"]["size"] == 3


def test_alert_view_keeps_evidence_and_splits_reasons() -> None:
    view = alert_view(alert("fraud-t-1"))
    assert view["alert_id"] == "fraud-t-1" and view["events"] == 2
    assert view["evidence"] == {"fraud_score": 0.97, "decision": "block"}
    assert view["reasons"] == ["amount 12x the card's usual", "new country"]


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((index, body))
        if index.endswith("-recommendations"):
            found = body["query"]["ids"]["values"] == ["user-1"]
            source = {"items": [{"item_id": "sku-9", "score": 0.8, "rank": 1}], "updated_at": "2026-01-02T00:00:00Z",
                      "trigger_item_id": "sku-1"}
            return {"hits": {"hits": [{"_id": "user-1", "_source": source}] if found else []}}
        return CANNED_CHART


class FakeSink:
    def __init__(self) -> None:
        self.client = FakeClient()


class FakeRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consuming = True
        self.sink = FakeSink()


def test_console_data_from_counters_health_alerts_and_search() -> None:
    settings = Settings(pipelines="sentiment,fraud", topics={"news": f"news-{uuid.uuid4().hex[:6]}"})
    runtime = FakeRuntime(settings)
    health = ConsumerHealth(stall_after_s=60)
    health.update({(settings.topics.news, 0): PartitionState(30, 10, 10)}, {}, now=time.time())
    console = Console(settings, runtime, health)
    checkpoint.RECENT_ALERTS.clear()
    checkpoint.RECENT_ALERTS["fraud"].extend(alert(f"fraud-{i}") for i in range(30))
    checkpoint.RECENT_ALERTS["sentiment"].append(alert("surge-QFL", kind="sentiment"))

    data = asyncio.run(console.data())
    assert data["ready"] is True and data["problems"] == []
    assert [row["stream"] for row in data["streams"]] == [settings.topics.news, settings.topics.news_by_ticker,
                                                          settings.topics.transactions]
    assert data["streams"][0]["lag"] == 20
    assert [a["alert_id"] for a in data["alerts"]["fraud"]] == [f"fraud-{i}" for i in range(29, 4, -1)]  # newest first
    assert [a["alert_id"] for a in data["alerts"]["sentiment"]] == ["surge-QFL"]  # not drowned by fraud alerts
    assert data["chart"]["series"][0]["ticker"] == "QFL"
    assert runtime.sink.client.calls[0][0] == f"{settings.search.index_prefix}-news-*"

    asyncio.run(console.data())  # within the cache time: no second chart query
    assert len(runtime.sink.client.calls) == 1

    health.agent_crashed("sentiment", RuntimeError("bug"))
    assert asyncio.run(console.data())["ready"] is False


def test_console_recommendations() -> None:
    console = Console(Settings(), FakeRuntime(Settings()), ConsumerHealth(stall_after_s=60))
    status, body = asyncio.run(console.recommendations("user-1"))
    assert status == 200 and body["items"][0]["item_id"] == "sku-9" and body["trigger_item_id"] == "sku-1"
    status, body = asyncio.run(console.recommendations("user-2"))
    assert status == 200 and body["items"] == [] and "no recommendations for user-2" in body["note"]
    status, body = asyncio.run(console.recommendations("bad id/../"))
    assert status == 400 and "user id" in body["error"]


def test_console_without_sentiment_or_search_says_why() -> None:
    runtime = FakeRuntime(Settings(pipelines="fraud"))
    chart = asyncio.run(Console(runtime.settings, runtime, ConsumerHealth(60)).chart(0.0))
    assert chart == {"series": [], "error": "this worker does not run the sentiment pipeline"}
    runtime = FakeRuntime(Settings())
    runtime.sink = None  # type: ignore[assignment]
    chart = asyncio.run(Console(runtime.settings, runtime, ConsumerHealth(60)).chart(0.0))
    assert "search engine" in chart["error"]
