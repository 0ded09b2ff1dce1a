"""Every dashboard panel's aggregation, run against real indices written by the project's own sink.

Documents are built with the pipeline's output models (the fields the pipelines write) and indexed by the
SearchSink under a unique index prefix; each panel's query (streams/tools/dashboards.py) must return buckets whose
values agree with what was indexed.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sinks.search import Doc, SearchClient, connect
from sinks.search_sink import SearchSink
from sinks.templates import monthly_index
from streams.core.events.outputs import Alert, FraudDoc, Recommendation, RecommendationDoc, SentimentDoc
from streams.core.settings import Settings
from streams.tools import dashboards as d

REVIEW, BLOCK = 0.2, 0.6  # decisions of the synthetic documents (the model's thresholds are its own)
START = datetime(2026, 11, 3, 8, tzinfo=UTC)
TICKERS = ("QFL", "ORBX", "NVLT")
MERCHANTS = tuple(f"m-{i:03d}" for i in range(6))


def _scored(i: int, topic: str) -> dict[str, Any]:
    when = START + timedelta(hours=i % 30)
    return {"event_id": f"{topic}-{i}", "event_time": when, "processed_at": when + timedelta(seconds=2),
            "model_name": topic, "model_version": "test", "topic": topic, "partition": i % 3, "offset": i}


def _documents(settings: Settings) -> dict[str, list[Any]]:
    rng = random.Random(7)
    news = []
    for i in range(60):
        label = rng.choice(("bearish", "bearish", "neutral", "bullish"))
        score = {"bearish": -rng.uniform(0.3, 0.9), "neutral": rng.uniform(-0.2, 0.2), "bullish": rng.uniform(0.3, 0.9)}
        probabilities = {"bearish": 0.2, "neutral": 0.6, "bullish": 0.2}
        news.append(SentimentDoc(**_scored(i, "news"), label=label, score=score[label], probabilities=probabilities,
                                 negative=label == "bearish", negative_threshold=0.55,
                                 headline=f"headline {i}", tickers=[TICKERS[i % 3]], source="wire"))
    transactions = []
    for i in range(80):
        score = rng.random() ** 3
        decision = ("block" if score >= BLOCK
                    else "review" if score >= REVIEW else "approve")
        transactions.append(FraudDoc(**_scored(i, "transactions"), card_token=f"tok_{i % 9}", amount=10.0 + i,
                                     currency="EUR", merchant_id=rng.choice(MERCHANTS), mcc="5411", country="DE",
                                     channel="pos", fraud_score=score, decision=decision,
                                     flagged=decision != "approve"))
    recommendations = [
        RecommendationDoc(**_scored(i, "clicks"), user_id=f"u-{i}", session_id=f"s-{i}", trigger_item_id="it-0",
                          updated_at=START + timedelta(minutes=i),
                          items=[Recommendation(item_id=f"it-{(i + k) % 12}", score=1.0 - k / 10, rank=k + 1)
                                 for k in range(5)])
        for i in range(8)
    ]
    alerts = [Alert(alert_id=f"a-{i}", kind="fraud" if i % 3 else "sentiment", severity="high",
                    created_at=START + timedelta(hours=i), subject="x", summary="s", event_ids=[f"e-{i}"])
              for i in range(9)]
    return {"news": news, "transactions": transactions, "recommendations": recommendations, "alerts": alerts}


@pytest.fixture(scope="module")
def module_unique() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


Indexed = tuple[SearchClient, str, dict[str, list[Any]]]


@pytest.fixture(scope="module")
async def indexed(settings: Settings, module_unique: str) -> AsyncIterator[Indexed]:
    prefix = f"it{module_unique}"
    search = settings.search.model_copy(update={"index_prefix": prefix})
    sink, client = SearchSink(connect(search), search), connect(search)
    docs = _documents(settings)
    indices = set()
    try:
        await sink.start()
        for kind, items in docs.items():
            for item in items:
                if kind == "recommendations":
                    doc = Doc.of(f"{prefix}-recommendations", item.user_id, item)
                elif kind == "alerts":
                    index = monthly_index(prefix, "alerts", item.created_at)
                    doc = Doc.of(index, item.alert_id, item)
                else:
                    doc = Doc.of(monthly_index(prefix, kind, item.event_time), item.event_id, item)
                indices.add(doc.index)
                sink.add([doc])
        assert await sink.flush() == []
        for index in indices:
            client.refresh(index)
        yield client, prefix, docs
    finally:
        for index in indices:
            client.delete_index(index)
        sink.close()
        client.close()


def _run(client: SearchClient, prefix: str, panel: d.Panel) -> dict[str, Any]:
    response = client.search(panel.data_view.pattern(prefix), panel.query("1d"))
    assert response["hits"]["total"]["value"] > 0, f"{panel.id}: no documents"
    return response["aggregations"]


def _buckets(aggs: dict[str, Any], agg_id: str) -> list[dict[str, Any]]:
    buckets = aggs[agg_id]["buckets"]
    assert buckets, f"aggregation {agg_id} returned no buckets"
    return buckets


async def test_sentiment_by_ticker(indexed: Any) -> None:
    client, prefix, docs = indexed
    days = _buckets(_run(client, prefix, d.SENTIMENT_BY_TICKER), "2")
    seen = set()
    for day in days:
        for ticker in _buckets(day, "3"):
            seen.add(ticker["key"])
            assert -1 <= ticker["1"]["value"] <= 1
    assert seen == set(TICKERS)
    assert sum(t["doc_count"] for day in days for t in day["3"]["buckets"]) == len(docs["news"])


async def test_negative_share(indexed: Any) -> None:
    client, prefix, docs = indexed
    days = _buckets(_run(client, prefix, d.NEGATIVE_SHARE), "2")
    labels = Counter()
    for day in days:
        for label in _buckets(day, "3"):
            labels[label["key"]] += label["doc_count"]
    assert labels == Counter(doc.label for doc in docs["news"])
    assert 0 < labels["bearish"] / sum(labels.values()) < 1


async def test_alerts_timeline(indexed: Any) -> None:
    client, prefix, docs = indexed
    hours = _buckets(_run(client, prefix, d.ALERTS_TIMELINE), "2")
    kinds = Counter()
    for bucket in hours:
        for kind in _buckets(bucket, "3"):
            kinds[kind["key"]] += kind["doc_count"]
    assert kinds == Counter(alert.kind for alert in docs["alerts"])


async def test_fraud_score_distribution(indexed: Any, settings: Settings) -> None:
    client, prefix, docs = indexed
    bands = _buckets(_run(client, prefix, d.FRAUD_SCORE_DISTRIBUTION), "2")
    assert bands[0]["key"] == 0 and bands[-1]["key"] >= 0.95  # the whole [0, 1] range is drawn
    assert sum(band["doc_count"] for band in bands) == len(docs["transactions"])
    for band in bands:
        for decision in band["3"]["buckets"]:
            if decision["key"] == "approve":
                assert band["key"] < REVIEW
            else:
                assert band["key"] + 0.05 > REVIEW


async def test_fraud_decisions(indexed: Any) -> None:
    client, prefix, docs = indexed
    decisions = {b["key"]: b["doc_count"] for b in _buckets(_run(client, prefix, d.FRAUD_DECISIONS), "2")}
    assert decisions == dict(Counter(doc.decision for doc in docs["transactions"]))
    assert decisions["approve"] > 0 and decisions.get("review", 0) + decisions.get("block", 0) > 0


async def test_riskiest_merchants(indexed: Any, settings: Settings) -> None:
    client, prefix, docs = indexed
    merchants = _buckets(_run(client, prefix, d.RISKIEST_MERCHANTS), "2")
    flagged = Counter(doc.merchant_id for doc in docs["transactions"] if doc.decision != "approve")
    assert {b["key"]: b["doc_count"] for b in merchants} == dict(flagged)
    assert [b["doc_count"] for b in merchants] == sorted((b["doc_count"] for b in merchants), reverse=True)
    for bucket in merchants:
        assert REVIEW <= bucket["4"]["value"] <= bucket["5"]["value"] <= 1


async def test_recommendation_coverage(indexed: Any) -> None:
    client, prefix, docs = indexed
    aggs = _run(client, prefix, d.RECOMMENDATION_COVERAGE)
    items = {item.item_id for doc in docs["recommendations"] for item in doc.items}
    assert aggs["1"]["value"] == len(docs["recommendations"])
    assert aggs["2"]["value"] == len(items)


async def test_most_recommended_items(indexed: Any) -> None:
    client, prefix, docs = indexed
    items = _buckets(_run(client, prefix, d.MOST_RECOMMENDED_ITEMS), "2")
    expected = Counter(item.item_id for doc in docs["recommendations"] for item in doc.items)
    assert {b["key"]: b["doc_count"] for b in items} == dict(expected)


def test_every_panel_is_tested() -> None:
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    untested = [p.id for p in d.PANELS if p.id.removeprefix("lepton-").replace("-", "_") not in tested]
    assert not untested, f"panels without a test here: {untested}"
