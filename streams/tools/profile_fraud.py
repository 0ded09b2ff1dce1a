"""`lepton bench fraud --profile`: where a fraud worker's CPU goes per transaction, by pipeline step.

A real worker on fresh isolated topics drains a backlog of generated transactions (the bench's cards) while py-spy
samples every thread of it 200 times a second. Each sample is charged to one step: the deepest frame of its stack
that names a step (so a JSON parse inside the decoder counts as decoding, a socket write inside the producer as
publishing); samples in no step are Faust's, aiokafka's and the event loop's own work. Milliseconds per transaction
= samples x 5 ms / transactions, per thread. py-spy (a dev dependency) needs permission to read the worker's memory:
run as the same user, with ptrace allowed (`kernel.yama.ptrace_scope` 0 or 1 for a child).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, delete_run
from streams.core.errors import ConfigurationError, ServiceError
from streams.core.events import utc_now
from streams.core.settings import get_settings
from streams.tools.bench_fraud import indexed, transactions, wait_indexed
from streams.tools.worker_process import WorkerProcess, free_port, isolated

console = Console(stderr=True)
SAMPLE_MS = 5.0  # py-spy at 200 Hz
STEPS: list[tuple[str, str]] = [  # step, frame pattern; the deepest matching frame of a stack names its step
    ("decode and validate", r"Decoder\.decode|parse_json_object|Stage\.decode|Pipeline\.decode|model_validate"),
    ("card features and state", r"card_step|card_features\.py|CardStage\.prepare|CardStage\.commit"),
    ("merchant features and state", r"merchant_step|merchant_features\.py|FraudPipeline\.prepare|"
                                    r"FraudPipeline\.commit"),
    ("model and reasons", r"models/fraud\.py|fraud_reasons|batcher\.py|torch/"),
    ("documents and alerts built", r"\.outputs |_document|_alert |model_dump"),
    ("bulk request", r"search_sink\.py|opensearchpy/|elasticsearch/|urllib3/"),
    ("publish (alerts, stage messages, changelogs)", r"Runtime\.publish|producer|sender\.py|Topic\.publish"),
    ("checkpoint and acks", r"checkpoint\.py|\.ack "),
]
OWN_WORK = "Faust, aiokafka and the event loop"


def step_of(frames: Iterable[str]) -> str:
    """The step a sampled stack (outermost frame first) is charged to."""
    for frame in reversed(list(frames)):
        for step, pattern in STEPS:
            if re.search(pattern, frame):
                return step
    return OWN_WORK


def thread_of(header: str) -> str:
    """`thread (123): batcher-fraud_0` -> `batcher-fraud` (threads of one pool counted together)."""
    name = header.split(": ", 1)[-1].strip()
    name = re.sub(r"\s+\d+$", "", name)
    return "event loop" if name == "MainThread" else re.sub(r"[_-]\d+$", "", name)


def summarise(raw: Iterable[str], events: int) -> dict[str, Any]:
    """Milliseconds per event by thread and by step, from py-spy's raw output (`frame;frame;... count` lines)."""
    by_step: Counter[tuple[str, str]] = Counter()
    for line in raw:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        by_step[(thread_of(frames[0]), step_of(frames[1:]))] += int(count)
    per_event = SAMPLE_MS / max(events, 1)
    threads: Counter[str] = Counter()
    for (thread, _), samples in by_step.items():
        threads[thread] += samples
    return {
        "events": events,
        "cpu_ms_per_event": round(sum(threads.values()) * per_event, 3),
        "threads_ms_per_event": {thread: round(n * per_event, 3) for thread, n in threads.most_common()},
        "steps_ms_per_event": {f"{thread}: {step}": round(n * per_event, 3)
                               for (thread, step), n in by_step.most_common() if n * per_event >= 0.001},
    }


def run(count: int = 20_000, device: str = "auto") -> dict[str, Any]:
    """Profile one fraud worker draining `count` transactions; the summary, with its rate."""
    beside = Path(sys.executable).parent / "py-spy"  # the project's environment, activated or not
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise ConfigurationError("py-spy is not installed: run `make setup` (it is a dev dependency)")
    settings = get_settings()
    run_id = f"prof{uuid.uuid4().hex[:8]}"
    s, env = isolated(settings, run_id, "fraud")
    state = settings.local.state_dir / "run"
    worker = WorkerProcess(env | {"LEPTON_MODELS__DEVICE": device}, state / f"{run_id}.log", free_port())
    raw = state / f"{run_id}.pyspy"
    try:
        create_topics(s)
        worker.start()
        worker.wait_ready()
        records = transactions(count, utc_now() - timedelta(hours=6), fraud_rate=0.02)
        sampler = subprocess.Popen([spy, "record", "--pid", str(worker.pid), "--rate", "200", "--format", "raw",
                                    "--threads", "--nonblocking", "--duration", "900", "-o", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        console.print(f"profiling a fraud worker draining {count} transactions...")
        started = time.time()
        with EventProducer(s) as producer:
            for record in records:
                producer.send_record("transactions", record)
        ended = wait_indexed(worker, count, 600)
        sampler.send_signal(signal.SIGINT)
        _, error = sampler.communicate(timeout=60)
        if not raw.exists():
            raise ServiceError(f"py-spy wrote no profile ({error.decode(errors='replace').strip()}); it needs "
                               "ptrace permission on the worker (same user, kernel.yama.ptrace_scope 0 or 1)")
        result = summarise(raw.read_text().splitlines(), int(indexed(worker)))
    finally:
        worker.stop()
        delete_run(s, run_id)
    return {**result, "rate_per_s": round(count / (ended - started), 1), "device": device, "profile": str(raw)}
