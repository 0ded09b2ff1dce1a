"""The worker's agents: which pipelines run, how many micro-batches each works on at once, and when it is ready."""

from __future__ import annotations

import asyncio

from streams.core.settings import BatchingSettings, Settings
from streams.worker.app import create_app


def test_every_agent_is_one_actor_so_each_key_is_read_in_order() -> None:
    # Batches in flight (sentiment, the fraud stages) are held by the one actor's loop (checkpoint.consume), which
    # takes them in order; several Faust actors would split a partition's messages between them.
    # The catalog is no agent: every recommendation worker reads the compacted topic in full (runtime.py).
    settings = Settings(pipelines="sentiment,fraud,recs", batching=BatchingSettings(sentiment_batches_in_flight=3))
    app, _ = create_app(settings)
    concurrency = {agent.name.rsplit(".", 1)[-1]: agent.concurrency for agent in app.agents.values()}
    assert concurrency == {"sentiment": 1, "surge": 1, "fraud-cards": 1, "fraud": 1, "clicks": 1, "item-stats": 1}


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
