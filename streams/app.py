"""The Faust app of a worker process, built by a function (nothing happens at import time).

One worker holds one `Runtime`: the shared encoder, one dynamic batcher per model, the search sink and the
Kafka publisher. Agents read micro-batches (`take_events`), hand them to their pipeline, and Faust acks
(and later commits) a batch's offsets only after the pipeline returned, that is after its documents,
alerts and dead letters are durable. Faust commits a partition's offsets only up to its oldest unacked event, so
the sentiment agent may work on several micro-batches at once (the model scores one while the search engine takes
the last); the fraud and recommendation agents keep per-key state and take one at a time. Beyond that, scale by
partitions and worker processes.
`LEPTON_PIPELINES` chooses which pipelines a worker runs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sinks.search import connect
from sinks.search_sink import SearchSink
from streams import console
from streams.batch_io import Record, emit_letters, processing_letter
from streams.decoding import Decoder
from streams.faust_fixes import LeptonApp
from streams.health import ConsumerHealth, watch
from streams.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """The per-process resources every agent shares; started once, on the first agent's demand."""

    def __init__(self, settings: Settings, app: faust.App) -> None:
        self.settings = settings
        self.app = app
        self.decoder = Decoder(settings)
        self._started: asyncio.Task[None] | None = None
        self.sink: SearchSink | None = None
        self.pipelines: dict[str, Any] = {}
        self.user_states: Any = None  # the Faust table of user interests (recs)
        self.card_states: Any = None  # the Faust table of per-card state (fraud)

    @property
    def started(self) -> bool:
        """True once every model, batcher and the sink are up."""
        return self._started is not None and self._started.done() and self._started.exception() is None

    @property
    def consuming(self) -> bool:
        """True once everything is up and the consumer holds its partitions (after the first rebalance, not during
        one): what `/ready` reports. The models load before the group is joined, so a worker whose models are up
        may still be some hundred milliseconds away from fetching its first record."""
        return self.started and self.app.rebalancing_count > 0 and not self.app.rebalancing

    async def ready(self) -> None:
        """Start everything once; concurrent callers wait for the same start."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await self._started

    async def _start(self) -> None:
        from models.batcher import share_cpu_threads

        s = self.settings
        share_cpu_threads(s.batching.model_threads)  # each batcher runs this many batches at once
        self.sink = SearchSink(await asyncio.to_thread(connect, s.search), s.search)
        await self.sink.start()
        if s.runs("sentiment"):
            await self._start_sentiment()
        if s.runs("fraud"):
            await self._start_fraud()
        if s.runs("recs"):
            await self._start_recs()
        # What start-up loaded (modules, models, the item index: about 560,000 objects) lives as long as the worker:
        # keep it out of the garbage collector's way. A full collection walks every tracked object while it holds
        # the GIL, so with these in it one took 0.44 s of a busy worker (measured), the model threads waiting.
        gc.collect()
        gc.freeze()

    async def _start_sentiment(self) -> None:
        from models.sentiment import WARMUP_TEXT, SentimentModel
        from streams.sentiment_pipeline import SentimentPipeline
        from streams.surge import SurgeDetector

        s = self.settings
        model = await asyncio.to_thread(SentimentModel.load, None, s.models.device)
        log.info("sentiment model %s %s on %s", model.name, model.version_tag, model.encoder.device)
        batcher = await self._batcher(model.predict, "sentiment", warmup=[WARMUP_TEXT] * s.batching.max_batch_size)
        self.pipelines["sentiment"] = SentimentPipeline(s, self.decoder, batcher.submit, self.sink, self.publish,
                                                        SurgeDetector(s.surge))

    async def _start_fraud(self) -> None:
        from models.fraud import FraudModel
        from streams.fraud_pipeline import FraudPipeline

        model = await asyncio.to_thread(FraudModel.load, None, self.settings.models.device)
        batcher = await self._batcher(model.score_batch, "fraud", self.settings.batching.fraud_batch_size)
        self.pipelines["fraud"] = FraudPipeline(self.settings, self.decoder, batcher.submit, self.sink,
                                                self.publish, self.card_states)

    async def _start_recs(self) -> None:
        from models.encoder import get_encoder
        from models.item_index import ItemIndex, embed_items
        from models.recs import Popularity
        from streams.recs_pipeline import CatalogPipeline, ClicksPipeline
        from streams.topics import read_records

        s = self.settings
        encoder = await asyncio.to_thread(get_encoder, s.models.device)
        batcher = await self._batcher(lambda items: list(embed_items(items, encoder)), "encoder")
        index = ItemIndex(encoder.device)
        catalog = CatalogPipeline(s, self.decoder, batcher.submit, index, self.publish)
        # The index lives in memory: rebuild it from the compacted catalog before serving recommendations.
        records = await asyncio.to_thread(read_records, s, s.topics.catalog, None, 300.0)
        for start in range(0, len(records), 512):
            await catalog.process(records[start:start + 512])
        log.info("item index rebuilt from %d catalog records: %d items", len(records), len(index))
        self.pipelines["catalog"] = catalog
        self.pipelines["clicks"] = ClicksPipeline(s, self.decoder, index, Popularity.from_settings(s.recs),
                                                  self.user_states, self.sink, self.publish)

    async def _batcher(self, fn: Any, name: str, max_batch_size: int | None = None, warmup: list[Any] | None = None
                       ) -> Any:
        from models.batcher import DynamicBatcher

        batching = self.settings.batching
        if max_batch_size:
            batching = batching.model_copy(update={"max_batch_size": max_batch_size})
        batcher = DynamicBatcher.from_settings(fn, name=name, batching=batching, warmup=warmup or ())
        await batcher.start()
        return batcher

    async def process(self, pipeline: str, records: list[Record]) -> None:
        """Hand a batch to its pipeline; a failure quarantines the batch instead of letting it be acked."""
        try:
            await self.pipelines[pipeline].process(records)
        except Exception as error:  # noqa: BLE001 - a bug must not let Faust ack the batch unprocessed
            await self.quarantine(pipeline, records, error)

    async def quarantine(self, pipeline: str, records: list[Record], error: Exception) -> None:
        """Dead-letter a whole batch a pipeline failed on; if even that fails, die before anything is acked."""
        log.exception("%s pipeline failed on a batch of %d; dead-lettering it", pipeline, len(records))
        reason = f"{pipeline} pipeline failed: {type(error).__name__}: {error}"
        try:
            await emit_letters(self.publish, self.settings.topics.deadletter,
                               [processing_letter(record, reason, self.decoder.pii_key) for record in records])
        except Exception:  # noqa: BLE001 - any failure here means the batch could be lost
            log.critical("could not dead-letter the failed batch; exiting without committing its offsets")
            os._exit(70)

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one message and wait until the broker has it (acks=all)."""
        await self.app.producer.send_and_wait(topic, key, value, None, None, None)


def _records(events: Any) -> list[Record]:
    return [Record(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
            for e in events]


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """The worker's Faust app with its agents and web pages, and the runtime they share."""
    faust_dir = settings.local.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last folder of its datadir
    app = LeptonApp(  # faust.App with four fixes (streams/faust_fixes.py)
        settings.worker_id,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=settings.kafka.faust_credentials(),  # SASL and/or TLS from LEPTON_KAFKA__*
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        datadir=str(faust_dir / "{conf.name}-data"),  # not the working directory
        topic_replication_factor=settings.kafka.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka.session_timeout_s,
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.metrics_host,
        web_host=settings.metrics_host,
        web_port=settings.metrics_port,
        web_in_thread=True,
    )
    runtime = Runtime(settings, app)
    health = ConsumerHealth(settings.stall_after_s)
    batching, topics = settings.batching, settings.topics

    def table(name: str, partitions: int) -> Any:
        """A changelog-backed table of JSON values keyed by the source topic's key (same partitioner)."""
        return app.Table(name, partitions=partitions, use_partitioner=True,
                         schema=faust.Schema(key_serializer="json", value_serializer="json"))

    def agent(topic: str, partitions: int, pipeline: str, take_max: int = 0, in_flight: int = 1) -> None:
        """One agent: micro-batches of `topic` into the named pipeline, acked once it returns; `in_flight`
        actors share the topic's queue, each with a micro-batch of its own."""
        source = app.topic(topic, key_type=bytes, value_type=bytes, partitions=partitions)

        async def consume(stream: faust.StreamT) -> None:
            await runtime.ready()
            async for events in stream.take_events(take_max or batching.take_max, within=batching.take_within_s):
                records = _records(events)
                # take_events acks the batch when this loop is left, even by cancellation (a graceful stop):
                # finish the batch first, so nothing is acked that was not processed.
                batch = asyncio.ensure_future(runtime.process(pipeline, records))
                try:
                    await asyncio.shield(batch)
                except asyncio.CancelledError:
                    await batch
                    raise

        app.agent(source, concurrency=in_flight, name=pipeline)(consume)

    if settings.runs("sentiment"):
        agent(topics.news, topics.news_partitions, "sentiment", in_flight=batching.sentiment_batches_in_flight)
    if settings.runs("fraud"):
        runtime.card_states = table("card-state", topics.transactions_partitions)
        agent(topics.transactions, topics.transactions_partitions, "fraud", take_max=batching.fraud_batch_size)
    if settings.runs("recs"):
        runtime.user_states = table("user-interest", topics.clicks_partitions)
        agent(topics.catalog, topics.catalog_partitions, "catalog")
        agent(topics.clicks, topics.clicks_partitions, "clicks")

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
