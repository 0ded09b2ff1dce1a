"""Chaos runs: a mixed workload against the running stack, one fault injected, then the books balanced.

Each scenario runs in its own topics and indices (`isolated`) with a worker in a child process. Traffic (news
and card transactions, plus the malformed corpus in `poison`) is produced at a steady rate while the fault
strikes; afterwards every valid event must have exactly one document, and the figures say so or not:
`lost` (valid events without a document), `duplicated` (documents beyond one per valid event), dead letters,
alerts and repeated alert ids (allowed: consumers de-duplicate on `alert_id`), and `recovery_s`, the longest
time from the end of a fault until documents flowed again. `search-outage` and `broker-restart` stop and
start services of the local stack (`lepton up`), so they need it; the other scenarios run against any stack.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from infra.local import stack
from sinks.search import SearchClient, connect
from streams.broker.producer import EventProducer, Kind
from streams.broker.topics import create_topics, delete_run, read_records
from streams.core.errors import ServiceError
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.malformed import malformed
from streams.generators.news import NewsGenerator
from streams.generators.transactions import TransactionGenerator
from streams.tools.worker_process import WorkerProcess, free_port, isolated

SCENARIOS = ("kill-worker", "search-outage", "broker-restart", "poison", "sigterm")
PIPELINES = "sentiment,fraud,recs"  # every input topic has a consumer, so poison of every kind is decoded
INDEXED = "lepton_documents_indexed_total"
LOST_IDS_SHOWN = 20  # a red run names this many of its lost events
MAX_PAYLOAD = 900_000  # the producer refuses messages over ~1 MB (message.max.bytes) before they reach a worker


@dataclass(frozen=True)
class ChaosConfig:
    """The size of a run and of its faults."""

    events: int = 2000
    seconds: float = 60.0  # how long the traffic is spread over (faults strike while it flows)
    outage_s: float = 60.0
    kills: int = 3
    seed: int = 7
    drain_timeout_s: float = 300.0
    shutdown_bound_s: float = 30.0


@dataclass(frozen=True)
class Message:
    """One message of the workload: a valid wire record, or raw malformed bytes (with a key, if any)."""

    kind: Kind
    record: dict[str, Any] | None = None
    raw: bytes | None = None
    key: bytes | None = None


@dataclass
class Figures:
    """What a scenario measured; `ok` when nothing was lost or duplicated and the worker is still up."""

    produced: int
    valid: int
    documents: int
    lost: int
    duplicated: int
    rewritten: int  # documents written more than once under the same id (a replay after a fault; harmless)
    dead_letters: int
    expected_dead_letters: int
    alerts: int
    duplicate_alert_ids: int
    recovery_s: float | None
    produce_failures: int
    worker_running: bool
    shutdown_s: float | None = None
    lost_ids: list[str] = field(default_factory=list)  # "kind:event id" of the first lost events, for a red run

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.duplicated == 0 and self.worker_running and self.produce_failures == 0
                and self.dead_letters >= self.expected_dead_letters)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def workload(events: int, seed: int, poison: bool) -> list[Message]:
    """`events` valid news and transactions, interleaved, with the malformed corpus spread through it."""
    span = events / 2.0  # two simulated events per second of event time, ending about now
    start = utc_now() - timedelta(seconds=span + 60)
    news = NewsGenerator(seed=seed, start=start, rate_per_s=1.0, surge_ticker="KSTR",
                         surge_at_s=span * 0.5, surge_duration_s=60, surge_count=max(40, events // 25))
    cards = TransactionGenerator(seed=seed, start=start, rate_per_s=1.0, fraud_rate=0.03, n_cards=300)
    valid = interleave(
        (Message("news", g.record) for g in islice(news, events // 2)),
        (Message("transactions", g.record) for g in islice(cards, events - events // 2)),
    )
    if not poison:
        return valid
    # The compacted catalog topic refuses messages without a key, so its poison comes keyed.
    bad = [Message(s.kind, raw=s.payload, key=f"poison-{i}".encode() if s.kind == "catalog" else None)
           for i, s in enumerate(malformed()) if len(s.payload) < MAX_PAYLOAD]
    every = max(1, len(valid) // (len(bad) + 1))
    mixed: list[Message] = []
    for i, message in enumerate(valid):
        mixed.append(message)
        if bad and i % every == every - 1:
            mixed.append(bad.pop())
    return mixed + bad


def interleave(*streams: Iterator[Message]) -> list[Message]:
    out: list[Message] = []
    live = list(streams)
    while live:
        for stream in list(live):
            item = next(stream, None)
            if item is None:
                live.remove(stream)
            else:
                out.append(item)
    return out


class Traffic(threading.Thread):
    """Produces the workload at a steady rate; rides out a broker restart (long delivery timeout). With `hold_from`,
    the messages from that index on wait until `resume` is set, then go on at the same rate."""

    def __init__(self, settings: Settings, messages: list[Message], seconds: float,
                 hold_from: int | None = None) -> None:
        super().__init__(daemon=True, name="chaos-traffic")
        self.settings, self.messages, self.seconds = settings, messages, seconds
        self.producer = EventProducer(settings, config={"message.timeout.ms": 600_000})
        self.hold_from = len(messages) if hold_from is None else hold_from
        self.resume = threading.Event()
        self.held_s = 0.0  # how long the held messages waited for `resume`

    def run(self) -> None:
        started = time.monotonic()
        rate = len(self.messages) / self.seconds
        for i, message in enumerate(self.messages):
            if i == self.hold_from and not self.resume.is_set():
                waited = time.monotonic()
                self.resume.wait()
                self.held_s = time.monotonic() - waited
                started += self.held_s
            if message.record is not None:
                self.producer.send_record(message.kind, message.record)
            else:
                self.producer.send_raw(getattr(self.settings.topics, message.kind), message.raw, message.key)
            pause = started + (i + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self.producer.flush(600)


class ChaosRun:
    """One scenario's topics, indices, worker and traffic; `measure` balances the books."""

    def __init__(self, settings: Settings, scenario: str, config: ChaosConfig, log_dir: Path) -> None:
        self.base, self.scenario, self.config = settings, scenario, config
        self.run = f"chaos{uuid.uuid4().hex[:8]}"
        self.s, env = isolated(settings, self.run, PIPELINES)
        self.worker = WorkerProcess(env, log_dir / f"{self.run}-{scenario}.log", free_port())
        self.messages = workload(config.events, config.seed, poison=scenario == "poison")
        self.traffic = Traffic(self.s, self.messages, config.seconds)
        self.started = 0.0

    def start(self) -> None:
        """Topics, a ready worker, then the traffic."""
        create_topics(self.s)
        self.worker.start()
        self.worker.wait_ready()
        self.started = time.monotonic()
        self.traffic.start()

    def at(self, share: float) -> None:
        """Sleep until `share` of the traffic's duration has passed."""
        time.sleep(max(0.0, self.started + share * self.config.seconds - time.monotonic()))

    def indexed(self) -> float:
        """Documents the worker reports written since it started (0 while it is down)."""
        try:
            return sum(self.worker.metric(INDEXED, {"kind": kind}) for kind in ("news", "transactions"))
        except OSError:
            return 0.0

    def wait_flowing(self, since: float, baseline: float) -> float:
        """Seconds from `since` until the worker indexes beyond `baseline` (the end of a fault to recovery)."""
        timeout_s = self.config.drain_timeout_s
        deadline = time.monotonic() + timeout_s
        while self.indexed() <= baseline:
            if time.monotonic() > deadline:
                raise ServiceError(f"no documents within {timeout_s:.0f} s of the fault's end:\n"
                                   f"{self.worker.log_tail()}")
            time.sleep(0.2)
        return time.monotonic() - since

    def restart_worker(self) -> float:
        """Start the worker again; seconds until documents flow."""
        since = time.monotonic()
        self.worker.start()
        return self.wait_flowing(since, 0.0)

    def finish(self, client: SearchClient) -> None:
        """Let the traffic end and the worker catch up (or the drain timeout pass)."""
        self.traffic.join()
        valid = sum(1 for m in self.messages if m.record is not None)
        deadline = time.monotonic() + self.config.drain_timeout_s
        while time.monotonic() < deadline and self.worker.running:
            client.refresh(self._indices())
            if client.count(self._indices()) >= valid:
                break
            time.sleep(1.0)
        time.sleep(2 * self.base.batching.take_within_s + 1.0)  # let a late duplicate show up, if any

    def measure(self, client: SearchClient, recovery_s: float | None, shutdown_s: float | None = None) -> Figures:
        """Count documents, dead letters and alerts of this run."""
        client.refresh(self._indices())
        valid = {m.record["id"]: m.kind for m in self.messages if m.record is not None}
        valid_ids = valid.keys()
        found, rewritten = self._document_ids(client)
        alert_ids = [_alert_id(r.value) for topic in (self.s.topics.alerts_sentiment, self.s.topics.alerts_fraud)
                     for r in read_records(self.s, topic, None, 30.0)]
        stats = self.traffic.producer.stats
        return Figures(
            produced=stats.sent, valid=len(valid_ids), documents=sum(found.values()),
            lost=len(valid_ids - found.keys()),
            duplicated=sum(found.values()) - len(valid_ids & found.keys()),
            rewritten=rewritten,
            dead_letters=len(read_records(self.s, self.s.topics.deadletter, None, 30.0)),
            expected_dead_letters=sum(1 for m in self.messages if m.raw is not None),
            alerts=len(alert_ids), duplicate_alert_ids=sum(n - 1 for n in Counter(alert_ids).values() if n > 1),
            recovery_s=None if recovery_s is None else round(recovery_s, 1), produce_failures=stats.failed,
            worker_running=self.worker.running, shutdown_s=None if shutdown_s is None else round(shutdown_s, 1),
            lost_ids=[f"{valid[i]}:{i}" for i in sorted(valid_ids - found.keys())[:LOST_IDS_SHOWN]],
        )

    def _indices(self) -> str:
        prefix = self.s.search.index_prefix
        return f"{prefix}-news-*,{prefix}-transactions-*"

    def _document_ids(self, client: SearchClient) -> tuple[Counter[str], int]:
        return document_ids(client, self._indices())

    def cleanup(self) -> None:
        """Stop the worker; delete the run's indices and topics."""
        self.worker.stop()
        client = connect(self.s.search)
        try:
            client.delete_prefix(self.s.search.index_prefix)
        finally:
            client.close()
        delete_run(self.s, self.run)


def document_ids(client: SearchClient, indices: str) -> tuple[Counter[str], int]:
    """How many documents carry each event id, and how many were written more than once."""
    found: Counter[str] = Counter()
    rewritten = 0
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "_source": ["event_id"], "version": True,
                                "sort": [{"event_id": "asc"}, {"_index": "asc"}], "query": {"match_all": {}}}
        if after:
            body["search_after"] = after
        hits = client.search(indices, body)["hits"]["hits"]
        if not hits:
            return found, rewritten
        for hit in hits:
            found[hit["_source"]["event_id"]] += 1
            rewritten += hit.get("_version", 1) > 1
        after = hits[-1]["sort"]


def _alert_id(value: bytes | None) -> str:
    try:
        return str(json.loads(value or b"")["alert_id"])
    except (ValueError, KeyError, TypeError):
        return "<unreadable>"


# The faults. Each runs while the traffic flows and returns (recovery_s, shutdown_s).
Fault = Callable[[ChaosRun], tuple[float | None, float | None]]


def kill_worker(run: ChaosRun) -> tuple[float | None, float | None]:
    """SIGKILL the worker at random moments, restarting it each time."""
    rng = random.Random(run.config.seed)
    recoveries = []
    for k in range(run.config.kills):
        window = (k + 0.2) / (run.config.kills + 0.5), (k + 0.8) / (run.config.kills + 0.5)
        run.at(rng.uniform(*window))
        run.worker.kill()
        recoveries.append(run.restart_worker())
    return max(recoveries), None


def search_outage(run: ChaosRun) -> tuple[float | None, float | None]:
    """Stop the search engine for `outage_s`, then start it again."""
    run.at(0.25)
    stack.down(run.base, ["search"], report=lambda _: None)
    time.sleep(run.config.outage_s)
    baseline = run.indexed()
    stack.up(run.base, ["search"], report=lambda _: None)
    return run.wait_flowing(time.monotonic(), baseline), None


def broker_restart(run: ChaosRun) -> tuple[float | None, float | None]:
    """Restart the Kafka broker."""
    run.at(0.3)
    stack.down(run.base, ["kafka"], report=lambda _: None)
    baseline = run.indexed()
    stack.up(run.base, ["kafka"], report=lambda _: None)
    return run.wait_flowing(time.monotonic(), baseline), None


def poison(run: ChaosRun) -> tuple[float | None, float | None]:
    """No fault beyond the malformed messages already mixed into the traffic."""
    return None, None


def sigterm(run: ChaosRun) -> tuple[float | None, float | None]:
    """Graceful stop mid-run (flush, commit, exit 0 within the bound), then a restart."""
    run.at(0.4)
    since = time.monotonic()
    code = run.worker.stop(timeout_s=run.config.shutdown_bound_s)
    shutdown_s = time.monotonic() - since
    if code != 0:
        raise ServiceError(f"graceful stop ended with exit code {code} after {shutdown_s:.1f} s "
                           f"(bound {run.config.shutdown_bound_s:.0f} s):\n{run.worker.log_tail()}")
    return run.restart_worker(), shutdown_s


FAULTS: dict[str, Fault] = {"kill-worker": kill_worker, "search-outage": search_outage,
                            "broker-restart": broker_restart, "poison": poison, "sigterm": sigterm}


def run_scenario(settings: Settings, scenario: str, config: ChaosConfig, log_dir: Path,
                 report: Callable[[str], None] = print) -> Figures:
    """Run one scenario end to end and return its figures (the run's topics and indices are removed after)."""
    run = ChaosRun(settings, scenario, config, log_dir)
    report(f"{scenario}: {len(run.messages)} messages over {config.seconds:.0f} s (worker log {run.worker.log_path})")
    try:
        run.start()
        recovery_s, shutdown_s = FAULTS[scenario](run)
        report(f"{scenario}: fault done, draining...")
        client = connect(run.s.search)
        try:
            run.finish(client)
            return run.measure(client, recovery_s, shutdown_s)
        finally:
            client.close()
    finally:
        run.cleanup()
