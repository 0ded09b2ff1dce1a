"""What one worker process shares between its agents: models, one batcher per model, the sink and the checkpoint.

Started once, on the first agent's demand (models load before the consumer group is joined, and a recommendation
worker reads the compacted catalog and item-stats topics in full first, then keeps following them), and closed when
the worker stops: `close` stops the followers and the batchers (they score what was submitted, then end their
threads) and flushes and closes the search sink. The Kafka producer is Faust's: the app flushes and stops it.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from models.batcher import DynamicBatcher, share_cpu_threads
from sinks import metrics
from sinks.search import connect
from sinks.search_sink import SearchSink
from streams.core.decoding import Decoder
from streams.core.record import Record
from streams.core.settings import Settings
from streams.worker.checkpoint import Checkpoint
from streams.worker.pipeline import Pipeline

log = logging.getLogger(__name__)


async def _maybe_await(value: Any) -> Any:
    """`value`, awaited when it is awaitable (pipelines' `process` is a coroutine, a view's `apply` is not)."""
    return await value if inspect.isawaitable(value) else value


class Runtime:
    """The per-process resources every agent shares."""

    def __init__(self, settings: Settings, app: faust.App) -> None:
        self.settings = settings
        self.app = app
        self.decoder = Decoder(settings)
        self._started: asyncio.Task[None] | None = None
        self.sink: SearchSink | None = None
        self.checkpoint: Checkpoint | None = None
        self.batchers: list[DynamicBatcher[Any, Any]] = []
        self.pipelines: dict[str, Pipeline[Any, Any]] = {}
        self.user_states: Any = None  # the Faust table of user sessions and interests (recs)
        self.item_stats: Any = None  # the Faust table of item statistics (recs)
        self._follows: list[asyncio.Task[None]] = []  # topics every worker reads in full (recs)
        self.card_states: Any = None  # the Faust table of per-card state (fraud, card stage)
        self.merchant_states: Any = None  # the Faust table of per-merchant state (fraud, scoring stage)
        self.surge_windows: Any = None  # the Faust table of per-ticker negative-news windows (sentiment, surge stage)

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

    def runner(self, pipeline: str) -> Callable[[list[Record]], Awaitable[None]]:
        """What an agent runs per micro-batch: the pipeline, guarded by the checkpoint (which exists once ready)."""

        async def run(records: list[Record]) -> None:
            assert self.checkpoint is not None, "await ready() first"
            # no await before the pipeline's own: batches enter their pipeline in the order they came (pipeline.py)
            await self.checkpoint.run(pipeline, self.pipelines[pipeline].process, records)

        return run

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one message and wait until the broker has it (acks=all)."""
        await self.app.producer.send_and_wait(topic, key, value, None, None, None)

    async def close(self) -> None:
        """Stop the followers and the batchers (after what was submitted is scored), flush and close the sink;
        idempotent."""
        follows, self._follows = self._follows, []
        for task in follows:
            task.cancel()
        await asyncio.gather(*follows, return_exceptions=True)
        batchers, self.batchers = self.batchers, []
        await asyncio.gather(*(batcher.stop() for batcher in batchers))
        if self.sink is not None:
            sink, self.sink = self.sink, None
            refused = await sink.flush()  # the agents flush at every checkpoint: normally nothing is left
            if refused:
                log.error("search sink: %d documents refused at shutdown", len(refused))
            sink.close()
        log.info("runtime closed: %d batchers stopped, search sink closed", len(batchers))

    async def _start(self) -> None:
        s = self.settings
        share_cpu_threads(s.batching.model_threads)  # each batcher runs this many batches at once
        self.sink = SearchSink(await asyncio.to_thread(connect, s.search), s.search)
        await self.sink.start()
        # the producer learns the changelog topics before a batch writes a table (faust_fixes.py, fix 6)
        self.checkpoint = Checkpoint(s, self.sink, self.publish, self.decoder.pii_key,
                                     before_state_write=self.app.learn_changelog_partitions)
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
        from models.surge import SurgeDetector
        from streams.worker.sentiment import SentimentPipeline
        from streams.worker.surge import SurgePipeline

        s = self.settings
        model = await asyncio.to_thread(SentimentModel.load, None, s.models.device)
        log.info("sentiment model %s %s on %s", model.name, model.version_tag, model.encoder.device)
        batcher = await self._batcher(model.predict, "sentiment", warmup=[WARMUP_TEXT] * s.batching.max_batch_size)
        assert self.checkpoint is not None
        self.pipelines["sentiment"] = SentimentPipeline(s, self.decoder, self.checkpoint, batcher.submit)
        self.pipelines["surge"] = SurgePipeline(s, self.decoder, self.checkpoint, self.surge_windows,
                                                SurgeDetector(s.surge))

    async def _start_fraud(self) -> None:
        from models.fraud import FraudModel, Thresholds
        from models.fraud_features import FeatureConfig
        from streams.worker.fraud import FraudPipeline
        from streams.worker.fraud_cards import CardStage

        s = self.settings
        model = await asyncio.to_thread(FraudModel.load, None, s.models.device)
        thresholds = Thresholds(s.fraud.review_threshold or model.thresholds.review,
                                s.fraud.block_threshold or model.thresholds.block)
        # reasons for the payments the worker flags (explaining every payment was most of the model's time)
        score = functools.partial(model.score_batch, explain_from=thresholds.review)
        batcher = await self._batcher(score, "fraud", s.batching.fraud_batch_size,
                                      threads=s.batching.fraud_model_threads)
        assert self.checkpoint is not None
        config = FeatureConfig(model.delay_days, model.currency, s.fraud.rates)
        self.pipelines["fraud-cards"] = CardStage(s, self.decoder, self.checkpoint, self.card_states, config)
        self.pipelines["fraud"] = FraudPipeline(s, self.decoder, self.checkpoint, batcher.submit,
                                                self.merchant_states, config, thresholds)

    async def _start_recs(self) -> None:
        from models.encoder import get_encoder
        from models.item_index import ItemIndex, embed_items
        from models.item_stats import StatsView
        from models.recs import Scorer
        from streams.worker.item_stats import ItemStatsPipeline, StatsFeed
        from streams.worker.recs import CatalogPipeline, ClicksPipeline

        s = self.settings
        assert self.checkpoint is not None
        encoder = await asyncio.to_thread(get_encoder, s.models.device)
        batcher = await self._batcher(lambda items: list(embed_items(items, encoder)), "encoder")
        index, view = ItemIndex(encoder.device), StatsView()
        catalog, feed = CatalogPipeline(s, self.decoder, self.checkpoint, batcher.submit, index), StatsFeed(view)
        # The index and the statistics live in memory on every worker: read both compacted topics in full before
        # serving, then keep following them (all partitions, no consumer group).
        records = await self._follow(s.topics.catalog, catalog.process)
        log.info("item index rebuilt from %d catalog records: %d items", records, len(index))
        records = await self._follow(s.topics.item_stats, feed.apply)
        log.info("item statistics read from %d item-stats records: %d items", records, len(view))
        self.pipelines["catalog"] = catalog
        self.pipelines["clicks"] = ClicksPipeline(s, self.decoder, self.checkpoint, index, Scorer(index, view, s.recs),
                                                  self.user_states)
        self.pipelines["item-stats"] = ItemStatsPipeline(s, self.decoder, self.checkpoint, self.item_stats)

    async def _follow(self, topic: str, apply: Callable[[list[Record]], Any]) -> int:
        """Read `topic` in full through `apply` (awaited when it returns an awaitable), then keep following it in a
        task; returns how many records the catch-up read. The consumer lives in one thread of its own, so a poll
        still running when the task is cancelled ends before the consumer is closed."""
        from streams.broker.follow import TopicFollower

        loop = asyncio.get_running_loop()
        thread = ThreadPoolExecutor(1, thread_name_prefix=f"follow-{topic}")
        follower = await loop.run_in_executor(thread, TopicFollower, self.settings, topic)
        read = 0
        while not follower.caught_up:
            records = await loop.run_in_executor(thread, follower.poll, 512, 0.5)
            read += len(records)
            if records:
                await _maybe_await(apply(records))

        async def follow() -> None:
            try:
                while True:
                    records = await loop.run_in_executor(thread, follower.poll, 512, 0.5)
                    if records:
                        try:
                            await _maybe_await(apply(records))
                        except Exception:  # a bad batch must not stop the view from following
                            log.exception("applying %d records of %s failed", len(records), topic)
            finally:
                await asyncio.shield(loop.run_in_executor(thread, follower.close))
                thread.shutdown(wait=False)

        self._follows.append(asyncio.ensure_future(follow()))
        return read

    async def _batcher(self, fn: Any, name: str, max_batch_size: int | None = None, warmup: list[Any] | None = None,
                       threads: int | None = None) -> DynamicBatcher[Any, Any]:
        batching = self.settings.batching
        if max_batch_size:
            batching = batching.model_copy(update={"max_batch_size": max_batch_size})
        if threads is not None:
            batching = batching.model_copy(update={"model_threads": threads})
        batcher: DynamicBatcher[Any, Any] = DynamicBatcher.from_settings(
            fn, name=name, batching=batching, warmup=warmup or (), observe=metrics.batch_observer(name))
        self.batchers.append(batcher)
        await batcher.start()
        return batcher
