"""Background workers of the local stack: `lepton up --workers N` starts them, `lepton down` stops them.

They are managed like the stack's services (infra/local/process.py): worker n has a pid file and a log in the state
folder's run/ directory (`worker-1.pid`, `worker-1.log`, ...) and a session of its own. All join one consumer group
(`LEPTON_WORKER_ID`), so Kafka spreads the partitions over them; worker n serves /metrics, /ready and /console on
`LEPTON_METRICS_PORT` + n - 1. The local Prometheus scrapes the first on its static target and the others through a
file_sd target file written here. Asking for fewer workers than run stops the extra ones (the last first).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.local.process import ManagedProcess, tail
from infra.local.services import Prometheus
from streams.core.errors import ServiceError
from streams.core.settings import Settings

PREFIX = "worker-"
TARGETS_FILE = "lepton-background-workers.json"


@dataclass(frozen=True)
class WorkerStatus:
    """What `lepton status` shows for one background worker."""

    name: str
    port: int
    pid: int | None
    health: str
    rss_mb: float | None
    log: Path


def process(settings: Settings, n: int) -> ManagedProcess:
    """The pid file and log of background worker n (1-based)."""
    return ManagedProcess(f"{PREFIX}{n}", settings.local.state_dir / "run")


def port_of(settings: Settings, n: int) -> int:
    """The web port (metrics, health, console) of background worker n."""
    return settings.metrics_port + n - 1


def numbers(settings: Settings) -> list[int]:
    """The numbers of the background workers that run now, in order."""
    run_dir = settings.local.state_dir / "run"
    found = [int(path.stem.removeprefix(PREFIX)) for path in run_dir.glob(f"{PREFIX}*.pid")
             if path.stem.removeprefix(PREFIX).isdigit()]
    return sorted(n for n in found if process(settings, n).pid() is not None)


def health(settings: Settings, n: int) -> str:
    """'healthy' when the worker's /ready says so (models up, partitions held), else why not."""
    if process(settings, n).pid() is None:
        return "down: not running"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port_of(settings, n)}/ready", timeout=2):
            return "healthy"
    except OSError as error:
        return f"starting: /ready {getattr(error, 'code', None) or 'not answering'}"


def up(settings: Settings, count: int, report: Callable[[str], None] = print) -> None:
    """Run exactly `count` background workers (start the missing, stop the extra) and wait until each is ready."""
    for n in reversed([n for n in numbers(settings) if n > count]):
        process(settings, n).stop()
        report(f"{PREFIX}{n}: stopped (asked for {count})")
    lepton = str(Path(sys.executable).parent / "lepton")
    for n in range(1, count + 1):
        worker, port = process(settings, n), port_of(settings, n)
        if worker.pid() is not None:
            report(f"{PREFIX}{n}: already running (pid {worker.pid()})")
            continue
        env = {"LEPTON_METRICS_PORT": str(port), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        pid = worker.start([lepton, "worker"], [port], env)
        report(f"{PREFIX}{n}: started (pid {pid}), web on 127.0.0.1:{port}, log {worker.log_file}")
    write_targets(settings, count)
    deadline = time.monotonic() + settings.local.health_timeout_s
    for n in range(1, count + 1):
        while (state := health(settings, n)) != "healthy":
            if state.startswith("down") or time.monotonic() > deadline:
                raise ServiceError(f"{PREFIX}{n} is not ready ({state}). Last lines of "
                                   f"{process(settings, n).log_file}:\n{tail(process(settings, n).log_file, 20)}")
            time.sleep(1.0)
        report(f"{PREFIX}{n}: ready (models loaded, partitions held)")


def down(settings: Settings, report: Callable[[str], None] = print) -> None:
    """Stop every background worker (a graceful stop finishes the batches in flight) and forget their targets."""
    for n in reversed(numbers(settings)):
        process(settings, n).stop()
        report(f"{PREFIX}{n}: stopped")
    write_targets(settings, 0)


def status(settings: Settings) -> list[WorkerStatus]:
    """Each running background worker's port, pid, health, memory and log."""
    return [WorkerStatus(f"{PREFIX}{n}", port_of(settings, n), process(settings, n).pid(), health(settings, n),
                         process(settings, n).rss_mb(), process(settings, n).log_file) for n in numbers(settings)]


def write_targets(settings: Settings, count: int) -> None:
    """Tell the local Prometheus about the workers beyond its static target (the first); none: remove the file."""
    path = Prometheus(settings.local, ()).targets_dir / TARGETS_FILE
    targets = [f"127.0.0.1:{port_of(settings, n)}" for n in range(2, count + 1)]
    if not targets:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"targets": targets}], indent=2))

