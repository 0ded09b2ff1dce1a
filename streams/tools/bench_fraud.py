"""`lepton bench fraud`: the fraud pipeline against a plain Kafka consume->produce ceiling, plus alert latency.

Everything runs on one pre-produced transactions topic of fresh, isolated topics (cards with history: 300 cards, 2
simulated transactions per second of event time, back-dated; production speed is ours). (a) Ceiling: a plain
aiokafka loop with a fresh group reads the topic from the beginning and forwards each value to a scratch topic
(acks=all, each fetched batch delivered before the next fetch), first record received to last delivery acknowledged.
(b) Pipeline: a real fraud worker on the same topic, from the moment it is ready (models up, partitions held) to the
last document built (the latest `processed_at` in the index). (c) Sink ceiling: the documents (b) indexed, read back
and bulk-indexed alone into a fresh index of the same template, in the sink's bulk size, first request to last
response. (d) Alert latency: the same worker, now caught up, gets the same mix at half of (b)'s rate for a fixed
time; per alert on `alerts.fraud`, latency = arrival at our consumer minus the moment its transaction was handed to
the producer (matched by `event_ids[0]`), and its parts: until the card stage handed the payment on (the Kafka
timestamp of its message on `transactions.by-merchant`, read alongside), until the merchant stage built the alert
(its `created_at`), and delivery to our consumer. In (b) and (d) the cores each process used are read from /proc,
and with them the worker's CPU milliseconds per transaction draining a backlog and at the paced rate
(docs/performance.md compares them).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from confluent_kafka.admin import NewTopic
from rich.console import Console

from sinks.search import Doc, SearchClient, connect
from streams.broker.producer import EventProducer
from streams.broker.topics import admin_client, create_topics, delete_run
from streams.core.errors import ServiceError
from streams.core.events import utc_now
from streams.core.settings import KafkaSettings, Settings, get_settings
from streams.generators.transactions import TransactionGenerator
from streams.tools.core_shares import stack_shares
from streams.tools.worker_process import WorkerProcess, free_port, isolated

console = Console(stderr=True)
SEED, CARDS, SIM_RATE = 7, 300, 2.0
FRAUD_RATE = 0.02  # of the payments, in every phase: half load is half the rate of the same traffic
INDEXED = "lepton_documents_indexed_total"


def transactions(count: int, start: datetime, fraud_rate: float, suffix: str = "") -> list[dict[str, Any]]:
    """`count` generated wire records of the same 300 cards from `start`; `suffix` keeps ids of a second run unique."""
    generator = TransactionGenerator(seed=SEED, start=start, rate_per_s=SIM_RATE, fraud_rate=fraud_rate,
                                     n_cards=CARDS)
    records = [record for record, _ in islice(generator, count)]
    for record in records:
        record["id"] += suffix
    return records


def alert_event_id(value: bytes | None) -> str | None:
    """The transaction id behind an alert message (its first `event_ids`), None when unreadable."""
    try:
        ids = json.loads(value or b"").get("event_ids")
    except (ValueError, AttributeError):
        return None
    return str(ids[0]) if isinstance(ids, list) and ids else None


def alert_times(value: bytes | None) -> tuple[str, float] | None:
    """The transaction id behind an alert message and the moment the worker built the alert (`created_at`, Unix
    seconds), None when unreadable."""
    event_id = alert_event_id(value)
    try:
        created = datetime.fromisoformat(json.loads(value or b"")["created_at"]).timestamp()
    except (ValueError, TypeError, KeyError):
        return None
    return None if event_id is None else (event_id, created)


def stage_message_id(value: bytes | None) -> str | None:
    """The transaction id of a card stage's message on `transactions.by-merchant`, None when unreadable."""
    try:
        return str(json.loads(value or b"")["transaction"]["id"])
    except (ValueError, TypeError, KeyError):
        return None


def latency_parts(sent: Mapping[str, float], left_cards: Mapping[str, float], alerted: Mapping[str, float],
                  arrived: Mapping[str, float]) -> dict[str, dict[str, float | None]]:
    """Where alerts' latency goes (wall-clock seconds, p50 and p99 of each part, over the alerts seen at every
    point): the card stage (sent until the card stage handed the payment on), the merchant stage (until the
    alert was built) and delivery (until our consumer read it)."""
    ids = [i for i in arrived if i in sent and i in left_cards and i in alerted]
    parts = {"card_stage": [left_cards[i] - sent[i] for i in ids],
             "merchant_stage": [alerted[i] - left_cards[i] for i in ids],
             "delivery": [arrived[i] - alerted[i] for i in ids]}
    return {name: {"p50": _rounded(percentile(values, 50)), "p99": _rounded(percentile(values, 99))}
            for name, values in parts.items()}


def match_latencies(sent: Mapping[str, float], arrived: Mapping[str, float]) -> list[float]:
    """Arrival minus send time of every alerted transaction we sent (alerts for others are ignored)."""
    return sorted(arrived[i] - sent[i] for i in arrived if i in sent)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100, linear interpolation between ranks, as numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection options for aiokafka clients from the Kafka settings (SASL and TLS as the workers use them)."""
    return kafka.aiokafka_options()


async def ceiling_rate(s: Settings, count: int, scratch: str) -> float:
    """Records per second of a plain consume->produce loop over the transactions topic (fresh group)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    options = aiokafka_options(s.kafka)
    consumer = AIOKafkaConsumer(s.topics.transactions, group_id=f"{s.worker_id}-ceiling",
                                auto_offset_reset="earliest", **options)
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **options)
    await consumer.start()
    await producer.start()
    try:
        done, started = 0, 0.0
        async with asyncio.timeout(300):
            while done < count:
                batches = await consumer.getmany(timeout_ms=500)
                if batches and not started:
                    started = time.perf_counter()
                sends = [await producer.send(scratch, r.value, key=r.key) for rs in batches.values() for r in rs]
                await asyncio.gather(*sends)
                done += len(sends)
        return done / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def indexed(worker: WorkerProcess) -> float:
    """Transaction documents the worker has written so far."""
    return worker.metric(INDEXED, {"kind": "transactions"})


def wait_indexed(worker: WorkerProcess, total: int, timeout_s: float, every_s: float = 0.5) -> float:
    """Poll the worker until `total` documents are indexed; returns the wall time (time.time) it saw that. Every
    poll renders the worker's whole /metrics page in the worker (about 5% of its CPU at 10 polls a second), so
    polls are sparse and rates end at the documents' own `processed_at`."""
    deadline = time.monotonic() + timeout_s
    while indexed(worker) < total:
        if not worker.running or time.monotonic() > deadline:
            raise ServiceError(f"bench worker stopped short of {total} documents:\n{worker.log_tail()}")
        time.sleep(every_s)
    return time.time()


def cpu_ms_per_payment(cores: Mapping[str, float], elapsed_s: float, payments: int) -> float:
    """The worker's CPU milliseconds per payment from its share of the cores over `elapsed_s`."""
    return round(cores["worker"] * elapsed_s * 1000 / max(payments, 1), 3)


def pipeline_rate(s: Settings, worker: WorkerProcess, client: SearchClient, count: int
                  ) -> tuple[float, dict[str, float], float]:
    """Transactions per second of the worker on the pre-produced topic, from the moment it is ready (models up,
    partitions held) to the last document built; the cores each process used over that time, and the worker's CPU ms
    per transaction. Timed from the first document instead, a rate leaves out the card stage's head start: it had
    taken most of the backlog before the merchant stage's first document (4.6 s of an 11 s drain)."""
    worker.start()
    worker.wait_ready(every_s=0.05)
    began = time.time()
    shares = stack_shares(s, {"worker": worker.pid})
    shares.start()
    ended = wait_indexed(worker, count, 600)
    cores = shares.over(ended - began)
    index = f"{s.search.index_prefix}-transactions-*"
    client.refresh(index)
    if client.count(index) != count:
        raise ServiceError(f"expected {count} documents in {index}, found {client.count(index)}")
    last = client.search(index, {"size": 0, "aggs": {"last": {"max": {"field": "processed_at"}}}})["aggregations"]
    return count / (last["last"]["value"] / 1000 - began), cores, cpu_ms_per_payment(cores, ended - began, count)


def indexed_documents(client: SearchClient, index: str, page: int = 5_000) -> list[dict[str, Any]]:
    """Every document's source in `index`, paged by event id."""
    docs: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": page, "sort": [{"event_id": "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index, body)["hits"]["hits"]
        docs.extend(hit["_source"] for hit in hits)
        if len(hits) < page:
            return docs
        after = hits[-1]["sort"]


def sink_rate(s: Settings, client: SearchClient, docs: list[dict[str, Any]]) -> tuple[float, dict[str, float]]:
    """Documents per second the search engine takes alone: `docs` bulk-indexed into a fresh index of the same
    template, in the sink's bulk size, one request after the other as the worker's sink sends them; and the cores
    each process used meanwhile."""
    index = f"{s.search.index_prefix}-transactions-sink-ceiling"
    batch = s.search.bulk_max_docs
    shares = stack_shares(s, {})
    shares.start()
    written, started = 0, time.perf_counter()
    for start in range(0, len(docs), batch):
        result = client.bulk_index(Doc.of(index, doc["event_id"], doc) for doc in docs[start:start + batch])
        if result.errors:
            raise ServiceError(f"the search engine refused {len(result.errors)} documents: {result.errors[0]}")
        written += result.indexed
    elapsed = time.perf_counter() - started
    return written / elapsed, shares.over(elapsed)


def paced_send(s: Settings, records: list[dict[str, Any]], rate: float, sent: dict[str, float],
               sent_wall: dict[str, float] | None = None) -> None:
    """Produce `records` at `rate` per second, noting each id's send moment (perf_counter) in `sent` (and the wall
    clock's in `sent_wall`)."""
    wall = {} if sent_wall is None else sent_wall
    with EventProducer(s) as producer:
        began = time.perf_counter()
        for i, record in enumerate(records):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[record["id"]], wall[record["id"]] = time.perf_counter(), time.time()
            producer.send_record("transactions", record)


async def alert_latencies(s: Settings, worker: WorkerProcess, records: list[dict[str, Any]], rate: float,
                          total: int) -> tuple[list[float], dict[str, Any], dict[str, float], float]:
    """Send `records` at `rate` while timing each alert's arrival; stops once `total` docs are in and alerts settle.
    Also where the latency goes (`latency_parts`, from the card stage's messages read alongside), the cores each
    process used from the first send to the last document, and the worker's CPU ms per transaction over that time."""
    from aiokafka import AIOKafkaConsumer

    hop = s.topics.transactions_by_merchant
    consumer = AIOKafkaConsumer(s.topics.alerts_fraud, hop, group_id=None, auto_offset_reset="earliest",
                                **aiokafka_options(s.kafka))
    await consumer.start()
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    left_cards: dict[str, float] = {}  # when the card stage produced each payment's message (its Kafka timestamp)
    alerted: dict[str, float] = {}
    arrived_wall: dict[str, float] = {}

    async def poll() -> bool:
        """Read what alerts (and card stage messages) are there (up to 100 ms), stamping first arrivals; True when
        any alert came."""
        batches = await consumer.getmany(timeout_ms=100)
        now, wall, any_alert = time.perf_counter(), time.time(), False
        for record in (r for rs in batches.values() for r in rs):
            if record.topic == hop:
                if (payment := stage_message_id(record.value)) is not None:
                    left_cards.setdefault(payment, record.timestamp / 1000)
            elif (times := alert_times(record.value)) is not None:
                any_alert = True
                arrived.setdefault(times[0], now)
                arrived_wall.setdefault(times[0], wall)
                alerted.setdefault(*times)
        return any_alert

    async def produce_and_drain() -> float:
        await asyncio.to_thread(paced_send, s, records, rate, sent, sent_wall)
        return await asyncio.to_thread(wait_indexed, worker, total, 300, 0.2)

    shares = stack_shares(s, {"worker": worker.pid})
    try:
        shares.start()
        began = time.time()
        feeding = asyncio.create_task(produce_and_drain())
        while not feeding.done():
            await poll()
        elapsed = await feeding - began
        cores = shares.over(elapsed)
        quiet_since = time.perf_counter()
        while time.perf_counter() - quiet_since < 3.0:  # the last batch's alerts follow its documents
            if await poll():
                quiet_since = time.perf_counter()
    finally:
        await consumer.stop()
    parts = latency_parts(sent_wall, left_cards, alerted, arrived_wall)
    return match_latencies(sent, arrived), parts, cores, cpu_ms_per_payment(cores, elapsed, len(records))


def run(count: int = 10_000, seconds: float = 20.0, device: str = "auto", latency_rate: float | None = None
        ) -> dict[str, Any]:
    """Fraud pipeline vs a plain consume->produce ceiling on the same topic, and alert latency at half its rate (or
    at `latency_rate`; the `_half_load` keys only when at half rate)."""
    settings = get_settings()
    run = f"bench{uuid.uuid4().hex[:8]}"
    s, env = isolated(settings, run, "fraud")
    scratch = f"{s.topics.transactions}-ceiling"
    history = transactions(count, utc_now() - timedelta(hours=6), fraud_rate=FRAUD_RATE)
    worker = WorkerProcess(env | {"LEPTON_MODELS__DEVICE": device},
                           settings.local.state_dir / "run" / f"{run}.log", free_port())
    client = connect(s.search)
    try:
        create_topics(s)
        admin = admin_client(s)
        spec = NewTopic(scratch, s.topics.transactions_partitions, s.kafka.replication_factor)
        admin.create_topics([spec])[scratch].result(timeout=30)
        console.print(f"producing {count} transactions...")
        with EventProducer(s) as producer:
            for record in history:
                producer.send_record("transactions", record)
            if producer.flush() or producer.stats.failed:
                raise ServiceError(f"could not produce the transactions: {dict(producer.stats.errors)}")
        console.print("(a) ceiling: plain aiokafka consume->produce...")
        ceiling = asyncio.run(ceiling_rate(s, count, scratch))
        console.print("(b) pipeline: fraud worker...")
        pipeline, pipeline_cores, draining_ms = pipeline_rate(s, worker, client, count)
        console.print("(c) sink ceiling: the same documents bulk-indexed alone...")
        sink, sink_cores = sink_rate(s, client, indexed_documents(client, f"{s.search.index_prefix}-transactions-*"))
        rate = latency_rate or pipeline / 2
        start = datetime.fromisoformat(history[-1]["ts"]) + timedelta(seconds=5)
        mixed = transactions(int(rate * seconds) + 1, start, fraud_rate=FRAUD_RATE, suffix="-l")
        console.print(f"(d) alert latency: {len(mixed)} transactions at {rate:.0f}/s...")
        latencies, parts, latency_cores, paced_ms = asyncio.run(
            alert_latencies(s, worker, mixed, rate, count + len(mixed)))
    finally:
        worker.stop()
        client.delete_prefix(s.search.index_prefix)
        client.close()
        delete_run(s, run)
    result = {
        "pipeline_per_s": round(pipeline, 1), "ceiling_per_s": round(ceiling, 1),
        "pipeline_vs_ceiling": round(pipeline / ceiling, 3),
        "sink_ceiling_per_s": round(sink, 1), "pipeline_vs_sink": round(pipeline / sink, 3),
        "pipeline_cores": pipeline_cores, "sink_cores": sink_cores, "latency_cores": latency_cores,
        "worker_cpu_ms_per_payment": {"draining": draining_ms, "at_latency_rate": paced_ms},
        "alert_latency_p50_s": _rounded(percentile(latencies, 50)),
        "alert_latency_p99_s": _rounded(percentile(latencies, 99)), "alert_latency_parts_s": parts,
        "count": count, "latency_rate_per_s": round(rate, 1), "latency_alerts": len(latencies), "device": device,
    }
    if latency_rate is None:
        result["alert_latency_p50_s_half_load"] = result["alert_latency_p50_s"]
        result["alert_latency_p99_s_half_load"] = result["alert_latency_p99_s"]
    return result


def run_workers(counts: list[int], count: int = 10_000, rounds: int = 3, device: str = "auto") -> dict[str, Any]:
    """The fraud pipeline with each number of worker processes in `counts`, on the same transactions, in one run
    (bench_workers.py)."""
    from streams.tools.bench_workers import scaling

    history = transactions(count, utc_now() - timedelta(hours=6), fraud_rate=FRAUD_RATE)
    return scaling(get_settings(), "fraud", counts, history, rounds, device)
