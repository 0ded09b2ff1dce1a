"""A long-lived async bulk writer behind the search seam (the Quix Streams sink contract).

`add` documents, then `flush` at a checkpoint; the caller commits offsets only after `flush` returns.
Inside `flush`: bulk requests run in a worker thread, every item is checked, 429/5xx items and outages are
retried with exponential back-off and jitter (the caller waits, so consumption pauses: that is the
backpressure), and items the server refuses for good (a mapping error) are returned so the caller can
dead-letter them. Nothing is dropped and the buffer never grows past one checkpoint's worth.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from sinks import metrics
from sinks.search import BulkItemError, Doc, SearchClient
from sinks.templates import templates
from streams.core.errors import SinkBackpressure
from streams.core.settings import SearchSettings

log = logging.getLogger(__name__)
R = TypeVar("R")


class SearchSink:
    """Buffered, retrying, idempotent writer of documents into the search engine."""

    def __init__(self, client: SearchClient, settings: SearchSettings, max_pending: int = 10_000,
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self.client = client
        self.settings = settings
        self.max_pending = max_pending
        self._pending: list[Doc] = []
        self._sleep = sleep
        self._closing = False

    async def start(self) -> None:
        """Install the index templates (idempotent), retrying while the engine is unreachable."""
        for name, body in templates(self.settings.index_prefix, self.settings.refresh_interval_s).items():
            await self._with_retries(lambda n=name, b=body: self.client.put_index_template(n, b), "template")

    def add(self, docs: list[Doc]) -> None:
        """Queue documents for the next flush; refuse (typed) rather than buffer without bound."""
        if len(self._pending) + len(docs) > self.max_pending:
            raise SinkBackpressure(
                f"search sink holds {len(self._pending)} unflushed documents (limit {self.max_pending}); "
                "flush before adding more"
            )
        self._pending.extend(docs)

    async def flush(self) -> list[BulkItemError]:
        """Write everything added so far; return the items refused for good (never the retryable ones)."""
        pending, self._pending = self._pending, []
        permanent: list[BulkItemError] = []
        size = self.settings.bulk_max_docs
        for start in range(0, len(pending), size):
            permanent.extend(await self._write(pending[start:start + size]))
        return permanent

    def close(self) -> None:
        """Stop retrying (a flush in progress gives up at its next back-off) and close the client."""
        self._closing = True
        self.client.close()

    async def _write(self, docs: list[Doc]) -> list[BulkItemError]:
        # A loop of its own, not tenacity: each round resends only the items refused with 429/5xx in the last one.
        by_key = {(doc.index, doc.id): doc for doc in docs}
        remaining, attempt = list(by_key.values()), 0
        permanent: list[BulkItemError] = []
        while remaining:
            started = time.perf_counter()
            result = await self._with_retries(lambda batch=remaining: self.client.bulk_index(batch), "bulk")
            metrics.SINK_BULK_SECONDS.observe(time.perf_counter() - started)
            metrics.SINK_LAST_WRITE.set_to_current_time()
            for error in result.errors:
                metrics.SINK_ITEM_FAILURES.labels(status=str(error.status)).inc()
            permanent.extend(error for error in result.errors if not error.retryable)
            remaining = [by_key[(e.index, e.doc_id)] for e in result.errors if e.retryable]
            if remaining:
                attempt += 1
                log.warning("search sink: %d documents refused with 429/5xx, retrying (attempt %d)",
                            len(remaining), attempt)
                await self._sleep(self._backoff(attempt))
        return permanent

    async def _with_retries(self, call: Callable[[], R], what: str) -> R:
        """Run a blocking client call in a thread until it succeeds (outages are waited out, unless closing)."""

        def log_retry(state: RetryCallState) -> None:
            metrics.SINK_BACKPRESSURE.set(1)
            error = state.outcome.exception() if state.outcome else None
            log.warning("search sink: %s failed (%s: %s); retrying in %.1f s (attempt %d)", what,
                        type(error).__name__, str(error)[:200], state.upcoming_sleep, state.attempt_number)

        retrying = AsyncRetrying(retry=retry_if_exception(lambda error: not self._closing and _transient(error)),
                                 wait=lambda state: self._backoff(state.attempt_number), sleep=self._sleep,
                                 before_sleep=log_retry, reraise=True)
        result = await retrying(asyncio.to_thread, call)
        metrics.SINK_BACKPRESSURE.set(0)
        return result

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with full jitter, capped."""
        ceiling = min(self.settings.retry_max_s, self.settings.retry_initial_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def _transient(error: Exception) -> bool:
    """Outages, timeouts, 429 and 5xx are worth retrying; a 4xx on the whole request is a bug."""
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    return True
