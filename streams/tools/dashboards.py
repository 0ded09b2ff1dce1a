"""The analysts' dashboards, defined once: data views, and panels whose aggregations are plain query bodies.

Each `Panel` says what it aggregates (metrics and bucket levels over one data view); from that one definition
`streams/tools/dashboards_saved_objects.py` renders Kibana / OpenSearch Dashboards saved objects (legacy aggregation
visualizations, which both import), and `Panel.query` builds the Elasticsearch/OpenSearch request body behind
the panel, so a test can run every panel against a real index. Field names are those of sinks/templates.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MetricType = Literal["count", "avg", "max", "sum", "cardinality"]
BucketType = Literal["date_histogram", "terms", "histogram"]
VisType = Literal["line", "area", "histogram", "pie", "table", "metric"]


@dataclass(frozen=True)
class DataView:
    """An index pattern over one kind of index the pipeline writes (`<prefix>-<kind>-*`, or undated)."""

    kind: str
    time_field: str
    monthly: bool = True

    def id(self, prefix: str = "lepton") -> str:
        """Stable saved-object id, so a second import overwrites instead of duplicating."""
        return f"{prefix}-{self.kind}"

    def pattern(self, prefix: str = "lepton") -> str:
        """The index pattern, as sinks/templates.py names the indices."""
        return f"{prefix}-{self.kind}-*" if self.monthly else f"{prefix}-{self.kind}"


NEWS = DataView("news", "event_time")
TRANSACTIONS = DataView("transactions", "event_time")
RECOMMENDATIONS = DataView("recommendations", "updated_at", monthly=False)
ALERTS = DataView("alerts", "created_at")
DATA_VIEWS = (NEWS, TRANSACTIONS, RECOMMENDATIONS, ALERTS)


@dataclass(frozen=True)
class Metric:
    """One value per bucket: a document count or a field aggregation."""

    id: str
    type: MetricType
    field: str | None = None
    label: str | None = None

    def body(self) -> dict[str, Any]:
        return {self.type: {"field": self.field}}


@dataclass(frozen=True)
class Bucket:
    """One bucket level. `schema` is the legacy visualization role: segment (x axis / slices / rows),
    group (split series); `order_by` is a metric id or `_count` (terms only)."""

    id: str
    type: BucketType
    field: str
    schema: Literal["segment", "group", "bucket"] = "segment"
    size: int = 10
    order_by: str = "_count"
    interval: float | None = None  # histogram only
    bounds: tuple[float, float] | None = None  # histogram only: always draw this range
    label: str | None = None


@dataclass(frozen=True)
class Panel:
    """One visualization: its data view, metrics, bucket levels (outermost first) and an optional DSL filter."""

    id: str
    title: str
    description: str
    data_view: DataView
    vis: VisType
    metrics: tuple[Metric, ...]
    buckets: tuple[Bucket, ...] = ()
    filter: dict[str, Any] | None = None
    filter_label: str | None = None
    percentage: bool = False  # xy charts: stack series to 100%
    options: dict[str, Any] = field(default_factory=dict)

    def metric(self, metric_id: str) -> Metric:
        return next(m for m in self.metrics if m.id == metric_id)

    def query(self, fixed_interval: str = "1h") -> dict[str, Any]:
        """The search body behind the panel: the filter, bucket levels nested in order, metrics innermost.

        Kibana picks the date histogram's interval from the time range; here it is given.
        """
        inner = {m.id: m.body() for m in self.metrics if m.type != "count"}
        for bucket in reversed(self.buckets):
            spec = self._bucket_body(bucket, fixed_interval)
            if bucket.type == "terms" and bucket.order_by != "_count":
                inner = {bucket.order_by: self.metric(bucket.order_by).body(), **inner}
            inner = {bucket.id: {**spec, **({"aggs": inner} if inner else {})}}
        return {"size": 0, "track_total_hits": True, "query": self.filter or {"match_all": {}}, "aggs": inner}

    def _bucket_body(self, bucket: Bucket, fixed_interval: str) -> dict[str, Any]:
        if bucket.type == "date_histogram":
            return {"date_histogram": {"field": bucket.field, "fixed_interval": fixed_interval, "min_doc_count": 1}}
        if bucket.type == "histogram":
            spec: dict[str, Any] = {"field": bucket.field, "interval": bucket.interval, "min_doc_count": 0}
            if bucket.bounds:
                spec["extended_bounds"] = {"min": bucket.bounds[0], "max": bucket.bounds[1]}
            return {"histogram": spec}
        order = {"_count": "desc"} if bucket.order_by == "_count" else {bucket.order_by: "desc"}
        return {"terms": {"field": bucket.field, "size": bucket.size, "order": order}}


COUNT = Metric("1", "count", label="events")

SENTIMENT_BY_TICKER = Panel(
    "lepton-sentiment-by-ticker", "Sentiment over time per ticker",
    "Mean sentiment score (P(bullish) - P(bearish), in [-1, 1]) of the most mentioned tickers.",
    NEWS, "line",
    metrics=(Metric("1", "avg", "score", "mean sentiment score"),),
    buckets=(Bucket("2", "date_histogram", "event_time", label="event time"),
             Bucket("3", "terms", "tickers", schema="group", size=10, label="ticker")),
)
NEGATIVE_SHARE = Panel(
    "lepton-negative-share", "Negative share of news",
    "Share of headlines per sentiment label over time; the bearish band is the negative share.",
    NEWS, "area", percentage=True,
    metrics=(Metric("1", "count", label="headlines"),),
    buckets=(Bucket("2", "date_histogram", "event_time", label="event time"),
             Bucket("3", "terms", "label", schema="group", size=3, label="sentiment")),
)
ALERTS_TIMELINE = Panel(
    "lepton-alerts-timeline", "Alerts timeline",
    "Alerts raised per time bucket, by kind (sentiment surges, fraud reviews and blocks).",
    ALERTS, "histogram",
    metrics=(Metric("1", "count", label="alerts"),),
    buckets=(Bucket("2", "date_histogram", "created_at", label="created at"),
             Bucket("3", "terms", "kind", schema="group", size=5, label="kind")),
)
FRAUD_SCORE_DISTRIBUTION = Panel(
    "lepton-fraud-score-distribution", "Fraud score distribution by decision",
    "How many transactions fall in each fraud-score band, stacked by decision (approve, review, block).",
    TRANSACTIONS, "histogram",
    metrics=(Metric("1", "count", label="transactions"),),
    buckets=(Bucket("2", "histogram", "fraud_score", interval=0.05, bounds=(0.0, 1.0), label="fraud score"),
             Bucket("3", "terms", "decision", schema="group", size=3, label="decision")),
)
FRAUD_DECISIONS = Panel(
    "lepton-fraud-decisions", "Fraud decisions",
    "Share of transactions approved, sent to review, and blocked.",
    TRANSACTIONS, "pie",
    metrics=(Metric("1", "count", label="transactions"),),
    buckets=(Bucket("2", "terms", "decision", size=3, label="decision"),),
)
RISKIEST_MERCHANTS = Panel(
    "lepton-riskiest-merchants", "Riskiest merchants",
    "Merchants with the most transactions sent to review or blocked, with their mean and highest fraud score.",
    TRANSACTIONS, "table",
    metrics=(Metric("1", "count", label="flagged transactions"),
             Metric("4", "avg", "fraud_score", "mean fraud score"),
             Metric("5", "max", "fraud_score", "highest fraud score")),
    buckets=(Bucket("2", "terms", "merchant_id", schema="bucket", size=10, label="merchant"),),
    filter={"terms": {"decision": ["review", "block"]}},
    filter_label="review or block",
)
RECOMMENDATION_COVERAGE = Panel(
    "lepton-recommendation-coverage", "Recommendation coverage",
    "Users with recommendations, and how many distinct catalog items the recommendations cover.",
    RECOMMENDATIONS, "metric",
    metrics=(Metric("1", "cardinality", "user_id", "users with recommendations"),
             Metric("2", "cardinality", "items.item_id", "distinct items recommended")),
)
MOST_RECOMMENDED_ITEMS = Panel(
    "lepton-most-recommended-items", "Most recommended items",
    "Items found in the most users' current top-K (a few items everywhere means little personalisation).",
    RECOMMENDATIONS, "table",
    metrics=(Metric("1", "count", label="users"),),
    buckets=(Bucket("2", "terms", "items.item_id", schema="bucket", size=20, label="item"),),
)

PANELS = (SENTIMENT_BY_TICKER, NEGATIVE_SHARE, ALERTS_TIMELINE, FRAUD_SCORE_DISTRIBUTION, FRAUD_DECISIONS,
          RISKIEST_MERCHANTS, RECOMMENDATION_COVERAGE, MOST_RECOMMENDED_ITEMS)


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: panels laid out two per row, and the time range it opens with."""

    id: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    time_from: str = "now-24h"


DASHBOARDS = (
    Dashboard("lepton-dashboard-news", "Lepton: news sentiment", "Sentiment per ticker, negative share and alerts.",
              (SENTIMENT_BY_TICKER, NEGATIVE_SHARE, ALERTS_TIMELINE)),
    Dashboard("lepton-dashboard-fraud", "Lepton: fraud", "Fraud scores, decisions, riskiest merchants and alerts.",
              (FRAUD_SCORE_DISTRIBUTION, FRAUD_DECISIONS, RISKIEST_MERCHANTS, ALERTS_TIMELINE)),
    Dashboard("lepton-dashboard-recommendations", "Lepton: recommendations", "Coverage of users and catalog items.",
              (RECOMMENDATION_COVERAGE, MOST_RECOMMENDED_ITEMS), time_from="now-7d"),
)
