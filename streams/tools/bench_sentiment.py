"""`lepton bench sentiment`: raw model, batched pipeline and unbatched pipeline, measured in one run.

All three use the same generated headlines. (a) is the model alone at the configured batch size; (b) and (c) run a
real worker against the local stack, each on fresh topics, index prefix and consumer group: the clock starts when
the first headline is produced (the worker is up: model loaded, partitions assigned) and stops when the search
engine has acknowledged the last document (then the index is checked to hold every one). The run's indices are
created before the clock starts, as a running deployment writes into indices that exist (the month's first document
created its index). (c) differs from (b) only by batch size 1 and micro-batches of one event (and one model thread,
on every core). Each round measures (a) right before and right after (b), and (b)'s baseline is the mean of the two,
so a drift in the machine's speed (other tenants of a shared host moved the raw rate by up to 15% between minutes
here) weighs on both sides alike; (c) follows. Before the first round headlines go through the pipeline unmeasured,
in chunks of 8,000, until the search engine's and broker's CPU per headline changes by 10% or less from one chunk to
the next (`--warmup`: at most 40,000): on a freshly started stack their JVMs compile their hot paths under load for
a long while (measured here: the search engine spent 4.25 ms of CPU per document in a first run, 0.59-0.73 ms after
14,000 documents, 0.27-0.33 ms after 28,000). The JSON lists that CPU per chunk (`warmup_stack_ms_per_event`). A
long-running deployment runs on warm JVMs, as its model threads are warm (they score warm-up batches before the
worker is ready); this measures that. Ratios against the baseline measured in the same run are what to compare
across machines.
`--rounds N` (3 unless told) repeats all three and reports the round with the median pipeline_vs_raw, listing every
round's ratios: one round's ratio moves by several hundredths with the machine's speed.

With the local stack, each round also reports how the host's cores were shared while (b) ran (Linux /proc, in cores
over the measured time): the worker (model threads and event loop), the search engine, the broker, everything else
(the bench's producer, Prometheus, the system) and idle. The model alone has every core, so what the others take is
about what (b) loses against (a).

The worker runs `batching.model_threads` batches at once, each on its share of the cores (models/batcher.py). (a)
measures the model both ways, that way and one batch at a time on every core, and takes the faster: the pipeline
is compared with the best the model alone does on this machine.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, TypeVar

from rich.console import Console

from sinks.search import connect
from sinks.templates import monthly_index
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, delete_run
from streams.core.errors import ServiceError
from streams.core.events import utc_now
from streams.core.settings import Settings, get_settings
from streams.generators.news import NewsGenerator
from streams.tools.core_shares import stack_shares
from streams.tools.worker_process import WorkerProcess, free_port, isolated

console = Console(stderr=True)


def headlines(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """`count` generated news records, back-dated so they all lie in the past."""
    generator = NewsGenerator(seed=seed, start=utc_now() - timedelta(seconds=count / 2.0 + 60), rate_per_s=2.0)
    return [record for record, _ in islice(generator, count)]


def news_indices(prefix: str, records: list[dict[str, Any]]) -> set[str]:
    """The monthly indices the documents of these news records go to."""
    return {monthly_index(prefix, "news", datetime.fromisoformat(r["published_at"])) for r in records}


def raw_model_rate(texts: list[str], batch_size: int, device: str, model_threads: int) -> tuple[dict[str, float], str]:
    """Texts per second of the model alone, after a warm-up: one batch at a time on every core, and
    `model_threads` batches at once on equal shares of the cores (as the worker runs it)."""
    from models.batcher import WARMUP_RUNS, share_cpu_threads
    from models.sentiment import SentimentModel

    model = SentimentModel.load(device=device)
    batches = [texts[start:start + batch_size] for start in range(0, len(texts), batch_size)]
    rates = {}
    for way, threads in (("sequential", 1), ("threads", model_threads)):
        share_cpu_threads(threads)
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(WARMUP_RUNS):  # warm-up, as the worker's model threads do
                list(pool.map(model.predict, batches[:threads]))
            started = time.perf_counter()
            list(pool.map(model.predict, batches))
            rates[way] = len(texts) / (time.perf_counter() - started)
    return rates, str(model.encoder.device)


def pipeline_rate(
    settings: Settings, records: list[dict[str, Any]], batched: bool, device: str,
) -> tuple[float, dict[str, float]]:
    """Headlines per second from first produce to last indexed document, through a real worker, and how the cores
    were shared meanwhile (core_shares.py)."""
    run = uuid.uuid4().hex[:8]
    s, env = isolated(settings, f"bench{run}", "sentiment")
    create_topics(s)
    env["LEPTON_MODELS__DEVICE"] = device
    if not batched:
        # One event per model call, each on every core.
        env |= {"LEPTON_BATCHING__MAX_BATCH_SIZE": "1", "LEPTON_BATCHING__TAKE_MAX": "1",
                "LEPTON_BATCHING__MODEL_THREADS": "1"}
    worker = WorkerProcess(env, settings.local.state_dir / "run" / f"bench-{run}.log", free_port())
    client = connect(s.search)
    index = f"{s.search.index_prefix}-news-*"
    try:
        # The producer connects while the worker starts: an idempotent producer's first message waits for its
        # producer id (0.1-1 s here), a one-time cost of the client, not of the pipeline.
        with EventProducer(s) as producer:
            worker.start()
            worker.wait_ready()  # the worker has installed the index templates
            for name in news_indices(s.search.index_prefix, records):
                client.create_index(name)
            shares = stack_shares(settings, {"worker": worker.pid})
            shares.start()
            started = time.time()
            for record in records:
                producer.send_record("news", record)
            producer.flush()
        # The clock stops when the search engine acknowledged the last document: once the worker counts them all
        # (bulk items accepted), its sink's last-write time is that moment. Polling the index instead would force
        # a refresh every poll and load the engine that shares these cores with the model; each scrape costs the
        # worker CPU and its GIL, so poll twice a second and take the exact time from the gauge.
        while worker.metric("lepton_documents_indexed_total", {"kind": "news"}) < len(records):
            if not worker.running:
                raise ServiceError(f"bench worker died:\n{worker.log_tail()}")
            time.sleep(0.5)
        elapsed = worker.metric("lepton_sink_last_write_timestamp_seconds") - started
        cores = shares.over(elapsed)
        client.refresh(index)
        if (found := client.count(index)) != len(records):
            raise ServiceError(f"bench: {found} of {len(records)} documents in {index}:\n{worker.log_tail()}")
        return len(records) / elapsed, cores
    finally:
        worker.stop()
        client.delete_prefix(s.search.index_prefix)
        client.close()
        delete_run(s, run)  # its topics, consumer group and the worker's internal topic


WARMUP_CHUNK = 8000
SETTLED = 0.1  # the stack's CPU per headline changed by at most this fraction from one warm-up chunk to the next


def stack_ms_per_event(rate: float, cores: dict[str, float]) -> float:
    """CPU milliseconds the local stack's search engine and broker spent per headline (0 without a local stack)."""
    return sum(cores.get(name, 0.0) for name in ("search", "broker")) / rate * 1000


def warm_up(settings: Settings, most: int, device: str) -> list[float]:
    """Chunks of WARMUP_CHUNK headlines through the pipeline until the stack's CPU per headline settles (two chunks
    at least, `most` headlines at most); returns that CPU per chunk, in ms."""
    costs: list[float] = []
    for n, start in enumerate(range(0, most, WARMUP_CHUNK), 1):
        size = min(WARMUP_CHUNK, most - start)
        console.print(f"warm-up {n}: {size} headlines through the pipeline, not measured...")
        rate, cores = pipeline_rate(settings, headlines(size, seed=1 + n), batched=True, device=device)
        costs.append(round(stack_ms_per_event(rate, cores), 3))
        if len(costs) >= 2 and abs(costs[-1] - costs[-2]) <= SETTLED * costs[-2]:
            break
    return costs


Round = TypeVar("Round", bound=tuple[Any, ...])


def median_round(rounds: list[Round]) -> Round:
    """The (raw, batched, unbatched, ...) round with the median pipeline_vs_raw (the lower middle one of an even
    count)."""
    return sorted(rounds, key=lambda r: r[1] / r[0])[(len(rounds) - 1) // 2]


def run(count: int = 2000, rounds: int = 3, warmup: int = 40_000, device: str = "auto") -> dict[str, Any]:
    """Raw model vs batched pipeline vs unbatched pipeline, on the same headlines, in one run."""
    settings = get_settings()
    records = headlines(count)
    batch, threads = settings.batching.max_batch_size, settings.batching.model_threads
    texts = [r["headline"] for r in records]
    warmup_costs = warm_up(settings, warmup, device)
    raws, measured, used = [], [], device
    for n in range(1, rounds + 1):
        console.print(f"round {n} of {rounds}: (a) raw model, batch {batch}, {count} headlines, one batch at a time "
                      f"and {threads} at once...")
        rates, used = raw_model_rate(texts, batch, device, threads)
        raws.append(rates)
        console.print(f"round {n} of {rounds}: (b) pipeline, batched...")
        batched, cores = pipeline_rate(settings, records, batched=True, device=device)
        console.print(f"round {n} of {rounds}: (a) raw model again (the baseline is the mean of the runs around b)...")
        raws.append(raw_model_rate(texts, batch, device, threads)[0])
        console.print(f"round {n} of {rounds}: (c) pipeline, one event per model call...")
        unbatched = pipeline_rate(settings, records, batched=False, device=device)[0]
        measured.append(((max(raws[-2].values()) + max(raws[-1].values())) / 2, batched, unbatched, cores))
    raw, batched, unbatched, cores = median_round(measured)
    result = {
        "raw_model_per_s": round(raw, 1), "pipeline_per_s": round(batched, 1),
        "unbatched_pipeline_per_s": round(unbatched, 1),
        "pipeline_vs_raw": round(batched / raw, 3), "batched_vs_unbatched": round(batched / unbatched, 3),
        "pipeline_vs_raw_rounds": [round(b / a, 3) for a, b, _, _ in measured],
        "batched_vs_unbatched_rounds": [round(b / c, 3) for _, b, c, _ in measured],
        "pipeline_cores": cores, "pipeline_cores_rounds": [c for *_, c in measured],
        **{f"raw_model_{way}_per_s": [round(r[way], 1) for r in raws] for way in raws[0]},
        "warmup_stack_ms_per_event": warmup_costs,
        "count": count, "rounds": rounds, "batch_size": batch, "model_threads": threads, "device": used,
    }
    return result


def run_workers(counts: list[int], count: int = 2000, rounds: int = 3, warmup: int = 40_000,
                device: str = "auto") -> dict[str, Any]:
    """The batched pipeline with each number of worker processes in `counts`, on the same headlines, in one run
    (bench_workers.py), after the same warm-up of the stack."""
    from streams.tools.bench_workers import scaling

    settings = get_settings()
    warmup_costs = warm_up(settings, warmup, device)
    return scaling(settings, "sentiment", counts, headlines(count), rounds, device) | {
        "warmup_stack_ms_per_event": warmup_costs, "batch_size": settings.batching.max_batch_size,
        "model_threads": settings.batching.model_threads}
