"""The Faust app of a worker process, built by a function (nothing happens at import time).

One worker holds one `Runtime` (runtime.py): the models, one dynamic batcher per model, the search sink and the
checkpoint. Agents read micro-batches, hand them to their pipeline through the checkpoint (checkpoint.py), and
Faust acks a batch's offsets only after its documents, alerts and dead letters are durable. The sentiment agent
works on several micro-batches at once (the model scores one while the search engine takes the last); the surge,
fraud and recommendation agents keep per-key state and take one at a time (recommendation workers also read the
compacted catalog and item-stats topics in full, outside the consumer group). Beyond that, scale by partitions and
worker processes. `LEPTON_PIPELINES` chooses which pipelines a worker runs. When the worker stops, Faust stops the
agents (each finishes its batch), flushes and stops the producer, then the runtime closes the batchers and the sink.
"""

from __future__ import annotations

import time
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.core.settings import KafkaSettings, Settings
from streams.worker import console
from streams.worker.checkpoint import consume
from streams.worker.faust_fixes import STREAM_YIELD_S, LeptonApp, yield_every
from streams.worker.faust_producer import CachingPartitioner
from streams.worker.health import ConsumerHealth, watch
from streams.worker.runtime import Runtime

# Fraud batches in flight while none comes full (no backlog): at 1,200 payments/s, 8 small batches in flight doubled
# the median alert latency against 2 (docs/performance.md); a full batch opens all of fraud_batches_in_flight.
FRAUD_QUIET_IN_FLIGHT = 2


def faust_credentials(kafka: KafkaSettings) -> Any:
    """The Faust worker's `broker_credentials`: SASL (over TLS for SASL_SSL), TLS alone, or None."""
    context = kafka.ssl_context()
    if kafka.uses_sasl:
        assert kafka.sasl_password is not None  # checked by the settings
        return faust.SASLCredentials(username=kafka.sasl_username, password=kafka.sasl_password.get_secret_value(),
                                     ssl_context=context, mechanism=kafka.sasl_mechanism)
    return faust.SSLCredentials(context) if context is not None else None


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """The worker's Faust app with its agents and web pages, and the runtime they share."""
    faust_dir = settings.local.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last folder of its datadir
    app = LeptonApp(  # faust.App with eleven fixes (faust_fixes.py, faust_producer.py)
        settings.worker_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings.kafka),  # SASL and/or TLS from LEPTON_KAFKA__*
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=str(faust_dir / "{conf.name}-data"),  # not the working directory
        topic_replication_factor=settings.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka.session_timeout_s,
        producer_acks=-1,
        # a worker sends several messages per event (changelogs, the next stage's topic, alerts): a 2 ms linger and
        # 256 KiB batches put them in a few produce requests instead of one each (profiled: one request per message
        # spent a third of the event loop in socket writes)
        producer_linger=0.002,
        producer_max_batch_size=262_144,
        producer_partitioner=CachingPartitioner(),  # aiokafka's murmur2 partitioning, each key's hash remembered
        web_enabled=True,
        web_bind=settings.metrics_host,
        web_host=settings.metrics_host,
        web_port=settings.metrics_port,
        web_in_thread=True,
    )
    runtime = Runtime(settings, app)
    app.on_close(runtime.close)
    health = ConsumerHealth(settings.stall_after_s)
    batching, topics = settings.batching, settings.topics

    def table(name: str, partitions: int) -> Any:
        """A changelog-backed table of JSON values keyed by the source topic's key bytes (same partitioner), so a
        key's changelog record lands in the partition of its source record and is restored by the worker that owns
        that partition (JSON keys would be hashed as their JSON text, elsewhere)."""
        # Faust derives a table's own key serializer (sending and recovery) from key_type, not from the schema
        return app.Table(name, partitions=partitions, use_partitioner=True, key_type=bytes,
                         schema=faust.Schema(key_serializer="raw", value_serializer="json"))

    def agent(topics: str | tuple[str, ...], partitions: int, pipeline: str, take_max: int = 0, in_flight: int = 1,
              within_s: float = 0.0, yield_every_s: float = 0.0, quiet_in_flight: int = 0) -> None:
        """One agent: micro-batches of its topic(s) into the named pipeline, up to `in_flight` at once, each acked
        once it is durable. Topics read together are keyed alike and have the same partitions, so Faust gives one
        worker the same partitions of each (co-partitioned). `yield_every_s`: fix 8 (faust_fixes.py);
        `quiet_in_flight`: see `consume`."""
        names = (topics,) if isinstance(topics, str) else topics
        source = app.topic(*names, key_type=bytes, value_type=bytes, partitions=partitions)

        async def agent_loop(stream: faust.StreamT) -> None:
            yield_every(yield_every_s)
            await runtime.ready()
            await consume(stream, take_max or batching.take_max, within_s or batching.take_within_s,
                          runtime.runner(pipeline), in_flight, quiet_in_flight)

        app.agent(source, name=pipeline)(agent_loop)

    if settings.runs("sentiment"):
        runtime.surge_windows = table("surge-windows", topics.news_partitions)
        agent(topics.news, topics.news_partitions, "sentiment", in_flight=batching.sentiment_batches_in_flight)
        agent(topics.news_by_ticker, topics.news_partitions, "surge")
    if settings.runs("fraud"):
        runtime.card_states = table("card-state", topics.transactions_partitions)
        runtime.merchant_states = table("merchant-state", topics.transactions_partitions)
        fraud = {"take_max": batching.fraud_batch_size, "within_s": batching.fraud_take_within_s,
                 "in_flight": batching.fraud_batches_in_flight, "yield_every_s": STREAM_YIELD_S,
                 "quiet_in_flight": FRAUD_QUIET_IN_FLIGHT}
        agent((topics.transactions, topics.labels_by_card), topics.transactions_partitions, "fraud-cards", **fraud)
        agent((topics.transactions_by_merchant, topics.labels), topics.transactions_partitions, "fraud", **fraud)
    if settings.runs("recs"):  # the catalog and item-stats topics are read in full by every worker (runtime.py)
        runtime.user_states = table("user-interest", topics.clicks_partitions)
        runtime.item_stats = table("item-stats", topics.item_stats_partitions)
        agent(topics.clicks, topics.clicks_partitions, "clicks")
        agent(topics.item_deltas, topics.item_stats_partitions, "item-stats")

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        ready = runtime.consuming and not health.crashed
        return web.json({"ready": ready, "crashed": health.crashed}, status=200 if ready else 503)

    @app.page("/live")
    async def live_page(web: Any, request: Any) -> Any:
        problems = health.problems(time.time())
        return web.json({"live": not problems, "problems": problems}, status=503 if problems else 200)

    watch(app, health)
    console.register(app, runtime, health)

    return app, runtime
