"""`lepton chaos --scenario scale-out`: several workers, one SIGKILLed with batches in flight, one more started.

Three worker processes (`ScaleConfig.workers`) share a consumer group on topics of six partitions, so each holds two
partitions of every topic. Mixed traffic flows at a steady rate: news with negative surges planted on three tickers
(each surge's headlines keyed by news id, so spread over every partition and worker) and card transactions with
fraud. At 40% of it, the first original worker seen with headlines consumed and not yet scored (micro-batches in
flight) is killed with SIGKILL, and a fourth worker is started: the group rebalances while traffic flows, and the
dead worker's partitions, its unfinished batches and the surge windows of its tickers move to the others. The
traffic's last 20% waits, where needed, until the fourth worker has loaded its models and joined, so it takes part.
Then the books are balanced against what was produced:
- `lost`: valid events without a document, flagged transactions without their alert (on alerts.fraud and in the
  alerts index), alerts on a topic missing from the index, planted surges without an alert;
- `duplicated`: documents beyond one per event, alerts for no flagged transaction, a planted surge's alert ids
  beyond one (an alert sent again under the same id is a repeat, `alert_repeats`: consumers de-duplicate on it);
- `workers`: how many consumed events; `rebalances`: the group generations the workers reported, from the three
  settled until the end; `surges_planted`, `surge_alerts` (distinct alert ids matching a planted surge) and
  `alerts_per_surge`; `in_flight_at_kill`: headlines the killed worker had consumed and not scored at its last scrape.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sinks.search import SearchClient, connect
from streams.broker.topics import create_topics, delete_run, group_lag, read_records
from streams.core.errors import ConfigurationError
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.news import NewsGenerator
from streams.generators.transactions import TransactionGenerator
from streams.tools.chaos import Message, Traffic, document_ids, interleave
from streams.tools.worker_process import WorkerGroup, isolated

SCALE_OUT = "scale-out"
PIPELINES = "sentiment,fraud"
SURGE_TICKERS = ("KSTR", "NGP", "OKRM")
SURGE_AT = (0.1, 0.35, 0.6)  # where the planted surges start, as shares of the background news span (the kill at
# 40% of the traffic falls in the second)
SURGE_S = 60.0
PER_SURGE = 50  # headlines of a planted surge, at least
SURGE = {"max_p_value": 1e-3}  # the workers' surge settings in this scenario
KILL_AT = 0.4  # share of the traffic's time
LOOK_FOR = 0.3  # share of the traffic's time spent looking for a worker with headlines in flight
HOLD_FROM = 0.8  # share of the messages after which the traffic waits until the worker started at the kill is in the
# group (it loads its models first: 20 s on a busy host), so that it takes part of the traffic
SHOWN = 20  # ids named per list in the figures


@dataclass(frozen=True)
class ScaleConfig:
    """The size of a scale-out run."""

    events: int = 2000
    seconds: float = 60.0
    workers: int = 3
    partitions: int = 6
    seed: int = 7
    drain_timeout_s: float = 300.0


@dataclass(frozen=True)
class PlantedSurge:
    """A planted surge: its ticker and the event time of its first and last headline."""

    ticker: str
    first: datetime
    last: datetime

    def matches(self, alert: dict[str, Any], window_s: int) -> bool:
        """Whether a sentiment alert is about this surge (its ticker, started within a window of the surge)."""
        started = datetime.fromisoformat(alert.get("evidence", {}).get("started_at", "1970-01-01T00:00:00+00:00"))
        slack = timedelta(seconds=window_s)
        return alert.get("subject") == self.ticker and self.first - slack <= started <= self.last + slack


@dataclass
class ScaleFigures:
    """What the scale-out scenario measured; `ok` when nothing was lost or duplicated, at least three workers took
    part, every planted surge raised exactly one alert and every worker not killed is still running."""

    produced: int
    valid: int
    documents: int
    lost: int
    duplicated: int
    rewritten: int  # documents written more than once under the same id (replays after the kill; harmless)
    dead_letters: int
    workers: int
    workers_started: int
    workers_running: int
    rebalances: int
    surges_planted: int
    surge_alerts: int
    alerts_per_surge: dict[str, int]
    other_surge_alerts: int  # alerts for tickers or times without a planted surge (the background news)
    fraud_alerts: int
    alert_repeats: int
    in_flight_at_kill: int
    produce_failures: int
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.workers >= 3 and self.produce_failures == 0
                and self.surge_alerts == self.surges_planted and all(n == 1 for n in self.alerts_per_surge.values())
                and self.workers_running == self.workers_started - 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def scale_workload(events: int, seed: int) -> tuple[list[Message], list[PlantedSurge]]:
    """`events` valid news and transactions, interleaved; the news carry whole negative surges on three tickers."""
    per_surge = max(PER_SURGE, events // 16)  # the model flags about 60% of the generator's negative headlines
    news_count = events // 2
    background = news_count - per_surge * len(SURGE_TICKERS)  # news seconds at one background headline a second
    if background < 4 * SURGE_S:
        least = 2 * (4 * int(SURGE_S) + len(SURGE_TICKERS) * PER_SURGE)
        raise ConfigurationError(f"scale-out needs at least {least} events for its planted surges; raise --events")
    start = utc_now() - timedelta(seconds=background + 60)
    news = NewsGenerator(seed=seed, start=start, rate_per_s=1.0, surge_duration_s=SURGE_S, surge_count=per_surge,
                         surges=[(ticker, background * at) for ticker, at in zip(SURGE_TICKERS, SURGE_AT, strict=True)])
    cards = TransactionGenerator(seed=seed, start=start, rate_per_s=1.0, fraud_rate=0.03, n_cards=300)
    headlines = list(islice(news, news_count))
    planted = []
    for ticker in SURGE_TICKERS:
        times = [datetime.fromisoformat(str(g.record["published_at"])) for g in headlines
                 if g.truth["scenario"] == "surge" and g.truth["ticker"] == ticker]
        if len(times) != per_surge:
            raise ConfigurationError(f"the {ticker} surge does not fit in {news_count} headlines; raise --events")
        planted.append(PlantedSurge(ticker, min(times), max(times)))
    valid = interleave((Message("news", g.record) for g in headlines),
                       (Message("transactions", g.record) for g in islice(cards, events - news_count)))
    return valid, planted


class ScaleOutRun:
    """One scale-out run: its topics and indices, the worker group, the traffic, the kill."""

    def __init__(self, settings: Settings, config: ScaleConfig, log_dir: Path) -> None:
        self.config = config
        self.run = f"chaos{uuid.uuid4().hex[:8]}"
        s, env = isolated(settings, self.run, PIPELINES)
        partitions = {"news_partitions": config.partitions, "transactions_partitions": config.partitions}
        self.s = s.model_copy(update={"topics": s.topics.model_copy(update=partitions)})
        env |= {f"LEPTON_TOPICS__{name.upper()}": str(value) for name, value in partitions.items()}
        # The scenario tests exactly-once alerting through a kill, not the detector's sensitivity: its planted surges
        # must clear the bar by far (at the default p <= 1e-5 some only just did, depending on the company).
        env |= {f"LEPTON_SURGE__{name.upper()}": str(value) for name, value in SURGE.items()}
        self.group = WorkerGroup(env, log_dir, f"{self.run}-{SCALE_OUT}")
        self.messages, self.surges = scale_workload(config.events, config.seed)
        self.traffic = Traffic(self.s, self.messages, config.seconds, hold_from=int(HOLD_FROM * len(self.messages)))
        self.consumed: dict[int, float] = {}  # worker number -> events it consumed, last seen
        self.started = 0.0

    def observe(self) -> None:
        """Note what each running worker has consumed so far (a killed worker keeps what was last seen)."""
        for n, worker in enumerate(self.group.workers):
            if worker.running:
                with contextlib.suppress(OSError):  # not listening (yet, or any more): nothing to note
                    self.consumed[n] = max(self.consumed.get(n, 0.0), worker.metric("lepton_events_consumed_total"))

    def at(self, share: float) -> None:
        """Sleep until `share` of the traffic's duration has passed, noting the workers' progress."""
        while time.monotonic() < self.started + share * self.config.seconds:
            self.observe()
            time.sleep(min(1.0, max(0.0, self.started + share * self.config.seconds - time.monotonic())))

    def kill_one_in_flight(self) -> int:
        """SIGKILL the first original worker seen with headlines consumed and not scored (batches in flight), or,
        when none is seen in time, the one seen with the most; returns how many its last scrape showed."""
        news = {"stream": self.s.topics.news}
        deadline = time.monotonic() + LOOK_FOR * self.config.seconds
        most, target = -1, self.group.workers[0]
        while time.monotonic() < deadline:
            for worker in self.group.workers[:self.config.workers]:
                try:
                    consumed, scored = worker.metrics(("lepton_events_consumed_total", news),
                                                      ("lepton_events_scored_total", news))
                except OSError:
                    continue
                in_flight = int(consumed - scored)
                if in_flight >= 2:
                    most, target = in_flight, worker
                    break
                if in_flight > most:
                    most, target = in_flight, worker
            else:
                time.sleep(0.02)
                continue
            break
        self.observe()
        target.kill()
        return most

    def drain(self, report: Callable[[str], None]) -> None:
        """Let the traffic end, then wait until every stage of the group has committed everything."""
        self.traffic.join()
        t = self.s.topics
        topics = [t.news, t.news_by_ticker, t.transactions, t.transactions_by_merchant, t.labels, t.labels_by_card]
        deadline = time.monotonic() + self.config.drain_timeout_s
        while (lag := group_lag(self.s, self.s.worker_id, topics)) > 0:
            self.observe()
            if time.monotonic() > deadline:
                report(f"{SCALE_OUT}: {lag} messages still uncommitted after {self.config.drain_timeout_s:.0f} s")
                break
            time.sleep(1.0)
        time.sleep(2 * self.s.batching.take_within_s + 1.0)  # let a late duplicate show up, if any
        self.observe()

    def measure(self, client: SearchClient, rebalances: int, in_flight: int) -> ScaleFigures:
        """Balance the books: documents, fraud alerts and planted surges against what was produced."""
        prefix, t = self.s.search.index_prefix, self.s.topics
        client.refresh(f"{prefix}-*")
        valid = {m.record["id"]: m.kind for m in self.messages if m.record is not None}
        found, rewritten = document_ids(client, f"{prefix}-news-*,{prefix}-transactions-*")
        lost = [f"{valid[i]}:{i}" for i in sorted(valid.keys() - found.keys())]
        duplicated = [f"document:{i}" for i, n in sorted(found.items()) for _ in range(n - 1)]
        flagged = {f"fraud-{i}" for i in _ids(client, f"{prefix}-transactions-*", "event_id",
                                               {"term": {"flagged": True}})}
        indexed = set(_ids(client, f"{prefix}-alerts-*", "alert_id", {"match_all": {}}))
        sentiment = [json.loads(r.value or b"{}") for r in read_records(self.s, t.alerts_sentiment, None, 30.0)]
        fraud = [json.loads(r.value or b"{}") for r in read_records(self.s, t.alerts_fraud, None, 30.0)]
        fraud_ids = {a.get("alert_id") for a in fraud}
        lost += [f"alert:{i}" for i in sorted(flagged - (fraud_ids & indexed))]
        lost += [f"alert-index:{i}" for i in sorted({a.get("alert_id") for a in sentiment} - indexed)]
        duplicated += [f"alert:{i}" for i in sorted(fraud_ids - flagged)]
        window_s, per_surge = self.s.surge.window_s, {}
        for surge in self.surges:
            ids = sorted({a["alert_id"] for a in sentiment if surge.matches(a, window_s)})
            per_surge[surge.ticker] = len(ids)
            lost += [f"surge:{surge.ticker}"] if not ids else []
            duplicated += [f"surge:{i}" for i in ids[1:]]
        planted = {a["alert_id"] for a in sentiment if any(s.matches(a, window_s) for s in self.surges)}
        repeats = Counter(a.get("alert_id") for a in sentiment + fraud)
        stats = self.traffic.producer.stats
        return ScaleFigures(
            produced=stats.sent, valid=len(valid), documents=sum(found.values()), lost=len(lost),
            duplicated=len(duplicated), rewritten=rewritten,
            dead_letters=len(read_records(self.s, t.deadletter, None, 30.0)),
            workers=sum(1 for n in self.consumed.values() if n > 0), workers_started=len(self.group.workers),
            workers_running=len(self.group.running), rebalances=rebalances, surges_planted=len(self.surges),
            surge_alerts=len(planted), alerts_per_surge=per_surge,
            other_surge_alerts=len({a.get("alert_id") for a in sentiment} - planted), fraud_alerts=len(fraud_ids),
            alert_repeats=sum(n - 1 for n in repeats.values()), in_flight_at_kill=in_flight,
            produce_failures=stats.failed, lost_ids=lost[:SHOWN], duplicated_ids=duplicated[:SHOWN],
        )

    def cleanup(self) -> None:
        """Stop the workers; delete the run's indices and topics."""
        self.group.stop()
        client = connect(self.s.search)
        try:
            client.delete_prefix(self.s.search.index_prefix)
        finally:
            client.close()
        delete_run(self.s, self.run)


def _ids(client: SearchClient, index: str, field: str, query: dict[str, Any]) -> list[str]:
    """The `field` (a keyword) of every document matching `query`, paged in its order."""
    ids: list[str] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "_source": [field], "sort": [{field: "asc"}], "query": query}
        if after:
            body["search_after"] = after
        hits = client.search(index, body)["hits"]["hits"]
        if not hits:
            return ids
        ids += [hit["_source"][field] for hit in hits]
        after = hits[-1]["sort"]


def run_scale_out(settings: Settings, config: ScaleConfig, log_dir: Path,
                  report: Callable[[str], None] = print) -> ScaleFigures:
    """Run the scale-out scenario end to end and return its figures (its topics and indices are removed after)."""
    run = ScaleOutRun(settings, config, log_dir)
    report(f"{SCALE_OUT}: {len(run.messages)} messages over {config.seconds:.0f} s, {config.workers} workers on "
           f"{config.partitions} partitions (logs {log_dir}/{run.run}-{SCALE_OUT}-worker-*.log)")
    try:
        create_topics(run.s)
        for _ in range(config.workers):
            run.group.add()
        first = run.group.wait_settled()
        report(f"{SCALE_OUT}: {config.workers} workers settled in group generation {first}; traffic starts")
        run.started = time.monotonic()
        run.traffic.start()
        run.at(KILL_AT)
        in_flight = run.kill_one_in_flight()
        run.group.add()
        report(f"{SCALE_OUT}: killed a worker with {in_flight} headlines in flight; a worker started in its place")
        try:
            joined = run.group.wait_settled()
        finally:
            run.traffic.resume.set()
        report(f"{SCALE_OUT}: the started worker is in the group at generation {joined}")
        run.drain(report)
        last = run.group.wait_settled()
        held = f" (the traffic's last {1 - HOLD_FROM:.0%} waited {run.traffic.held_s:.0f} s for it)"
        report(f"{SCALE_OUT}: drained; the group is at generation {last}" + (held if run.traffic.held_s else ""))
        client = connect(run.s.search)
        try:
            return run.measure(client, last - first, in_flight)
        finally:
            client.close()
    finally:
        run.cleanup()
