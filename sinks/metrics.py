"""Every Prometheus metric of lepton-streams, in one place, on the default prometheus_client registry.

Labels stay bounded: `model` is a model name, `stream` a topic name, `error_type` an exception class name,
`status` an HTTP status, `type`/`severity` the alert kind. Durations are in seconds.
Workers expose them with `serve_metrics`; tests read them with `REGISTRY.get_sample_value`.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

__all__ = [
    "AGENT_UP",
    "ALERTS",
    "BATCH_INFERENCE_SECONDS",
    "BATCH_QUEUE_WAIT_SECONDS",
    "BATCH_SIZE",
    "CONSUMER_GENERATION",
    "CONSUMER_LAG_OFFSETS",
    "CONSUMER_LAG_SECONDS",
    "DOCS_INDEXED",
    "EVENTS_CONSUMED",
    "EVENTS_DEADLETTERED",
    "EVENTS_SCORED",
    "ITEM_INDEX_ITEMS",
    "ITEM_STATS_ITEMS",
    "ITEM_STATS_READ",
    "MODEL_SCORES",
    "REBALANCES",
    "REGISTRY",
    "SECONDS_SINCE_COMMIT",
    "SINK_BACKPRESSURE",
    "SINK_BULK_SECONDS",
    "SINK_ITEM_FAILURES",
    "SINK_LAST_WRITE",
    "batch_observer",
    "serve_metrics",
]

# Powers of two up to the largest allowed max_batch_size (BatchingSettings).
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(13))
# Sub-millisecond to seconds: the batcher waits max_wait_ms (default 10 ms), more when the model is behind.
QUEUE_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One device batch: about a millisecond on a GPU, up to seconds for a large batch on a small CPU.
INFERENCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# One bulk request to the search engine, retries included.
BULK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BATCH_SIZE = Histogram(
    "lepton_batch_size",
    "Inputs per device batch run by the dynamic batcher.",
    ["model"],
    buckets=BATCH_SIZE_BUCKETS,
)
BATCH_QUEUE_WAIT_SECONDS = Histogram(
    "lepton_batch_queue_wait_seconds",
    "How long the oldest input of a batch waited in the batcher queue.",
    ["model"],
    buckets=QUEUE_WAIT_BUCKETS,
)
BATCH_INFERENCE_SECONDS = Histogram(
    "lepton_batch_inference_seconds",
    "Time the model function took for one device batch.",
    ["model"],
    buckets=INFERENCE_BUCKETS,
)


def batch_observer(model: str) -> Callable[[int, float, float], None]:
    """The dynamic batcher's `observe` callback for `model`: batch size, queue wait and inference time histograms."""
    size, wait, inference = (h.labels(model) for h in (BATCH_SIZE, BATCH_QUEUE_WAIT_SECONDS, BATCH_INFERENCE_SECONDS))

    def observe(batch_size: int, queue_wait_s: float, inference_s: float) -> None:
        size.observe(batch_size)
        wait.observe(queue_wait_s)
        inference.observe(inference_s)

    return observe


EVENTS_CONSUMED = Counter("lepton_events_consumed_total", "Events read from an input topic.", ["stream"])
EVENTS_SCORED = Counter("lepton_events_scored_total", "Events scored by a model.", ["stream"])
EVENTS_DEADLETTERED = Counter(
    "lepton_events_deadlettered_total",
    "Events sent to the dead-letter topic, by error type.",
    ["stream", "error_type"],
)
SINK_BULK_SECONDS = Histogram(
    "lepton_sink_bulk_seconds",
    "Duration of one bulk write to the search engine, retries included.",
    buckets=BULK_BUCKETS,
)
SINK_ITEM_FAILURES = Counter(
    "lepton_sink_item_failures_total", "Bulk items the search engine rejected, by HTTP status.", ["status"]
)
SINK_LAST_WRITE = Gauge(
    "lepton_sink_last_write_timestamp_seconds",
    "Unix time of the last bulk write the search engine answered (stale while events arrive: the sink is stuck).",
)
SINK_BACKPRESSURE = Gauge(
    "lepton_sink_backpressure", "1 while the search sink is waiting out an outage (consumption paused)."
)
DOCS_INDEXED = Counter("lepton_documents_indexed_total", "Documents written to the search engine, by kind.", ["kind"])
ITEM_INDEX_ITEMS = Gauge("lepton_item_index_items", "Live catalog items in the recommender's item index.")
ITEM_STATS_ITEMS = Gauge("lepton_item_stats_items", "Items in this worker's view of the item statistics (item-stats).")
ITEM_STATS_READ = Counter("lepton_item_stats_read_total", "Records of the item-stats topic this worker applied.")
MODEL_SCORES = Histogram(
    "lepton_model_score",
    "Scores the models gave (sentiment in [-1, 1], fraud in [0, 1]); watch for drift.",
    ["model"],
    buckets=tuple(round(-1 + i / 10, 1) for i in range(21)),
)
ALERTS = Counter("lepton_alerts_total", "Alerts published, by alert type and severity.", ["type", "severity"])
# Consumer health, refreshed every few seconds by the worker's health timer (streams/worker/health.py).
CONSUMER_LAG_OFFSETS = Gauge(
    "lepton_consumer_lag_offsets",
    "Messages behind: the partition's high watermark minus this worker's committed (or consumed) position.",
    ["topic", "partition"],
)
CONSUMER_LAG_SECONDS = Gauge(
    "lepton_consumer_lag_seconds",
    "Age of the last message processed on a partition while it lags (0 when caught up).",
    ["topic", "partition"],
)
SECONDS_SINCE_COMMIT = Gauge(
    "lepton_seconds_since_commit",
    "Seconds since this worker last committed offsets (0 before its first assignment); grows when stalled.",
)
AGENT_UP = Gauge("lepton_agent_up", "1 while an agent runs, 0 once it crashed or stopped.", ["agent"])
REBALANCES = Counter("lepton_rebalances_total", "Consumer-group rebalances this worker went through (partitions "
                     "handed out again when a worker joins, leaves or dies).")
CONSUMER_GENERATION = Gauge(
    "lepton_consumer_generation",
    "The consumer group's generation at this worker's last assignment: one more with each rebalance of the group.")


def serve_metrics(host: str, port: int) -> None:
    """Expose the default registry on http://host:port/metrics from a background thread."""
    start_http_server(port, addr=host)
