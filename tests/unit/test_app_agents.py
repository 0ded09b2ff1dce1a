"""The worker's agents: which pipelines run, how many micro-batches each works on at once, and when it is ready."""

from __future__ import annotations

import asyncio

from streams.core.settings import BatchingSettings, Settings
from streams.worker.app import create_app


def test_only_the_sentiment_agent_works_on_several_batches_at_once() -> None:
    # Surge, fraud, clicks and item-stats keep per-ticker, per-card, per-user and per-item state in tables: their
    # batches run in order.
    # The catalog is no agent: every recommendation worker reads the compacted topic in full (runtime.py).
    settings = Settings(pipelines="sentiment,fraud,recs", batching=BatchingSettings(sentiment_batches_in_flight=3))
    app, _ = create_app(settings)
    concurrency = {agent.name.rsplit(".", 1)[-1]: agent.concurrency for agent in app.agents.values()}
    assert concurrency == {"sentiment": 3, "surge": 1, "fraud-cards": 1, "fraud": 1, "clicks": 1, "item-stats": 1}


def test_pipelines_choose_the_agents() -> None:
    app, _ = create_app(Settings(pipelines="fraud"))
    assert [agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()] == ["fraud-cards", "fraud"]


def test_ready_means_models_up_and_partitions_held() -> None:
    app, runtime = create_app(Settings(pipelines="sentiment"))

    async def states() -> list[bool]:
        seen = [runtime.consuming]  # nothing started, no rebalance yet
        runtime._started = asyncio.get_running_loop().create_future()
        runtime._started.set_result(None)  # models and sink up
        seen.append(runtime.consuming)  # ...but the consumer group not joined yet
        app.on_rebalance_start()
        seen.append(runtime.consuming)  # partitions being assigned
        app.rebalancing = False  # what on_rebalance_end sets once the partitions are sought and resumed
        seen.append(runtime.consuming)
        return seen

    assert asyncio.run(states()) == [False, False, False, True]
