"""The worker's agents: which pipelines run, and how many micro-batches each works on at once."""

from __future__ import annotations

from streams.app import create_app
from streams.settings import BatchingSettings, Settings


def test_only_the_sentiment_agent_works_on_several_batches_at_once() -> None:
    # Fraud and clicks keep per-card and per-user state in tables: their batches must run in order.
    settings = Settings(pipelines="sentiment,fraud,recs", batching=BatchingSettings(sentiment_batches_in_flight=3))
    app, _ = create_app(settings)
    concurrency = {agent.name.rsplit(".", 1)[-1]: agent.concurrency for agent in app.agents.values()}
    assert concurrency == {"sentiment": 3, "fraud": 1, "catalog": 1, "clicks": 1}


def test_pipelines_choose_the_agents() -> None:
    app, _ = create_app(Settings(pipelines="fraud"))
    assert [agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()] == ["fraud"]
