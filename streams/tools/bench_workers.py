"""`lepton bench sentiment|fraud --workers 1,2,3`: events per second with 1, 2, 3 worker processes, in one run.

Every measurement uses the same events on fresh isolated topics with as many partitions as every worker count
divides (6 for 1, 2 and 3), so each worker holds an equal share. The workers are started and settled in one group
generation (each join rebalances the group) before the clock starts; the events are then produced as fast as the
producer goes, and the clock stops when the search engine acknowledged the last document (the latest
`lepton_sink_last_write_timestamp_seconds` of the workers, once together they count every document indexed; the
index is then checked to hold each one). Each round measures every count, in alternating order, so a drift of the
machine's speed weighs on all of them; the median of the rounds is reported per count, with its ratio to one worker,
and how the cores were shared (the workers together, the search engine, the broker, everything else, idle).
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from sinks.search import connect
from sinks.templates import monthly_index
from streams.broker.producer import EventProducer, Kind
from streams.broker.topics import create_topics, delete_run
from streams.core.errors import ConfigurationError, ServiceError
from streams.core.settings import Settings
from streams.tools.core_shares import stack_shares
from streams.tools.worker_process import WorkerGroup, isolated

console = Console(stderr=True)
INDEXED, LAST_WRITE = "lepton_documents_indexed_total", "lepton_sink_last_write_timestamp_seconds"
PIPELINES: dict[str, tuple[Kind, str, str]] = {  # pipeline -> (input kind, index kind, event time field)
    "sentiment": ("news", "news", "published_at"),
    "fraud": ("transactions", "transactions", "ts"),
}


def parse_counts(text: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: distinct worker counts of at least one, in order."""
    try:
        counts = list(dict.fromkeys(int(part) for part in text.split(",") if part.strip()))
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or max(counts) > 8:
        raise ConfigurationError(f"--workers {text!r}: give worker counts from 1 to 8, comma-separated (1,2,3)")
    return counts


def partitions_for(counts: list[int]) -> int:
    """The fewest partitions every worker count divides (each worker an equal share)."""
    return math.lcm(*counts)


def rate_with(settings: Settings, pipeline: str, workers: int, partitions: int, records: list[dict[str, Any]],
              device: str, log_dir: Path) -> tuple[float, dict[str, float]]:
    """Events per second of `workers` worker processes on `records`, first produce to last acknowledged document,
    and the cores each part used meanwhile."""
    kind, index_kind, time_field = PIPELINES[pipeline]
    run = f"bench{uuid.uuid4().hex[:8]}"
    s, env = isolated(settings, run, pipeline)
    counts = {"news_partitions": partitions, "transactions_partitions": partitions}
    s = s.model_copy(update={"topics": s.topics.model_copy(update=counts)})
    env |= {f"LEPTON_TOPICS__{name.upper()}": str(value) for name, value in counts.items()}
    env["LEPTON_MODELS__DEVICE"] = device
    create_topics(s)
    group = WorkerGroup(env, log_dir, run)
    client = connect(s.search)
    index = f"{s.search.index_prefix}-{index_kind}-*"
    try:
        with EventProducer(s) as producer:  # connected while the workers start (its producer id is a one-time cost)
            for _ in range(workers):
                group.add()
            group.wait_settled()
            for name in {monthly_index(s.search.index_prefix, index_kind, datetime.fromisoformat(r[time_field]))
                         for r in records}:
                client.create_index(name)  # a running deployment writes into indices that exist
            shares = stack_shares(settings, {f"worker-{n}": w.pid for n, w in enumerate(group.workers)})
            shares.start()
            started = time.time()
            for record in records:
                producer.send_record(kind, record)
            producer.flush()
        while group.metric(INDEXED, {"kind": index_kind}) < len(records):
            if len(group.running) < workers:
                raise ServiceError("a bench worker died:\n" + "\n".join(w.log_tail(20) for w in group.workers))
            time.sleep(0.5)
        elapsed = max(w.metric(LAST_WRITE) for w in group.workers) - started
        cores = shares.over(elapsed)
        cores = {"workers": round(sum(v for k, v in cores.items() if k.startswith("worker-")), 3)} | {
            k: v for k, v in cores.items() if not k.startswith("worker-")}
        client.refresh(index)
        if (found := client.count(index)) != len(records):
            raise ServiceError(f"bench: {found} of {len(records)} documents in {index}")
        return len(records) / elapsed, cores
    finally:
        group.stop()
        client.delete_prefix(s.search.index_prefix)
        client.close()
        delete_run(s, run)


def scaling(settings: Settings, pipeline: str, counts: list[int], records: list[dict[str, Any]], rounds: int,
            device: str, report: Callable[[str], None] = console.print) -> dict[str, Any]:
    """Each worker count measured `rounds` times (alternating the order), medians and ratios to the first count."""
    partitions = partitions_for(counts)
    log_dir = settings.local.state_dir / "run"
    measured: dict[int, list[tuple[float, dict[str, float]]]] = {n: [] for n in counts}
    for r in range(rounds):
        for n in counts if r % 2 == 0 else list(reversed(counts)):
            report(f"round {r + 1} of {rounds}: {len(records)} events through {n} worker(s) on {partitions} "
                   "partitions...")
            measured[n].append(rate_with(settings, pipeline, n, partitions, records, device, log_dir))
    medians = {n: statistics.median(rate for rate, _ in runs) for n, runs in measured.items()}
    base = medians[counts[0]]
    return {
        "workers": counts, "per_s": {str(n): round(rate, 1) for n, rate in medians.items()},
        f"vs_{counts[0]}_worker{'s' if counts[0] > 1 else ''}": {str(n): round(rate / base, 3)
                                                                  for n, rate in medians.items()},
        "per_s_rounds": {str(n): [round(rate, 1) for rate, _ in runs] for n, runs in measured.items()},
        "cores": {str(n): min(runs, key=lambda run: abs(run[0] - medians[n]))[1] for n, runs in measured.items()},
        "count": len(records), "partitions": partitions, "rounds": rounds, "device": device,
    }
