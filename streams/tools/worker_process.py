"""Run `lepton worker` as child processes with their own settings (the demo, the bench, chaos and tests use it):
one `WorkerProcess`, or a `WorkerGroup` of several in one consumer group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.core.errors import ServiceError
from streams.core.settings import Settings, get_settings


class WorkerProcess:
    """A pipeline worker in a child process; `env` overrides LEPTON_* settings for it alone."""

    def __init__(self, env: dict[str, str], log_path: Path, metrics_port: int) -> None:
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env,
                    "LEPTON_METRICS_PORT": str(metrics_port)}
        self.log_path = log_path
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.ready_url = f"http://127.0.0.1:{metrics_port}/ready"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the worker; its output goes to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        lepton = Path(sys.executable).parent / "lepton"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen([str(lepton), "worker"], stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)

    def wait_ready(self, timeout_s: float = 180.0, every_s: float = 0.5) -> None:
        """Wait until the worker's /ready says yes (models up, partitions held), asking every `every_s`; fail with
        its log if it dies or hangs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServiceError(f"worker exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2):
                    return
            except OSError:
                time.sleep(every_s)
        raise ServiceError(f"worker not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of the samples of one metric on the worker's /metrics matching `labels` (0 when absent)."""
        return self.metrics((name, labels))[0]

    def metrics(self, *queries: tuple[str, dict[str, str] | None]) -> list[float]:
        """`metric` for each (name, labels), from one scrape (the figures belong to the same moment)."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
        return [sum(float(sample.value) for sample in samples
                    if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()))
                for name, labels in queries]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful: flush, commit), then SIGKILL after the timeout; returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._tidy()
        return self._proc.returncode

    def kill(self) -> None:
        """SIGKILL, no goodbye (for crash tests)."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._tidy()

    def _tidy(self) -> None:
        settings = get_settings()
        worker_id = self.env.get("LEPTON_WORKER_ID") or settings.worker_id
        remove_empty_folders(settings.local.state_dir / "faust" / f"{worker_id}-data")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no worker log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class WorkerGroup:
    """Worker processes sharing one consumer group (the same `env`), each with a metrics port of its own."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, ports: list[int] | None = None) -> None:
        self.env, self.log_dir, self.name = env, log_dir, name
        self.ports = list(ports or [])  # the metrics ports of the first workers (free ports after them)
        self.workers: list[WorkerProcess] = []

    def add(self) -> WorkerProcess:
        """Start one more worker (not waiting for it)."""
        n = len(self.workers)
        port = self.ports[n] if n < len(self.ports) else free_port()
        worker = WorkerProcess(self.env, self.log_dir / f"{self.name}-worker-{n + 1}.log", port)
        worker.start()
        self.workers.append(worker)
        return worker

    @property
    def running(self) -> list[WorkerProcess]:
        return [worker for worker in self.workers if worker.running]

    def wait_settled(self, timeout_s: float = 300.0) -> int:
        """Wait until every running worker is ready in the same group generation (every rebalance done); returns
        that generation. Each worker joining rebalances the group, so one ready worker is not yet the group."""
        deadline = time.monotonic() + timeout_s
        for worker in self.running:
            worker.wait_ready(max(1.0, deadline - time.monotonic()))
        while True:
            generations = set()
            for worker in self.running:
                try:
                    with urllib.request.urlopen(worker.ready_url, timeout=2):
                        generations.add(worker.metric("lepton_consumer_generation"))
                except OSError:
                    generations.add(-1.0)  # rebalancing: not ready right now
            if len(generations) == 1 and -1.0 not in generations:
                return int(generations.pop())
            if time.monotonic() > deadline:
                tails = "\n".join(worker.log_tail(10) for worker in self.running)
                raise ServiceError(f"the workers did not settle in one group generation within {timeout_s:.0f} s "
                                   f"(saw {sorted(generations)}):\n{tails}")
            time.sleep(0.5)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The sum of one metric over the running workers (a stopped worker's counts are gone with it)."""
        total = 0.0
        for worker in self.running:
            with contextlib.suppress(OSError):  # stopping or not listening yet: counts nothing now
                total += worker.metric(name, labels)
        return total

    def stop(self) -> None:
        """Stop every worker (graceful first), in parallel."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, len(self.workers))) as pool:
            list(pool.map(lambda worker: worker.stop(), self.workers))


def isolated(settings: Settings, run: str, pipelines: str) -> tuple[Settings, dict[str, str]]:
    """Settings with topics, index prefix and consumer group of their own, and the env that gives a worker them.

    Benchmarks and tests use this so that runs never see each other's data.
    """
    topics = settings.topics.model_copy(update={
        name: f"{getattr(settings.topics, name)}-{run}"
        for name, field in type(settings.topics).model_fields.items() if field.annotation is str
    })
    search = settings.search.model_copy(update={"index_prefix": f"{settings.search.index_prefix}-{run}"})
    isolated_settings = settings.model_copy(update={
        "topics": topics, "search": search, "worker_id": f"{settings.worker_id}-{run}", "pipelines": pipelines,
    })
    env = {f"LEPTON_TOPICS__{name.upper()}": value for name, value in topics.model_dump().items()
           if isinstance(value, str)}
    env |= {"LEPTON_SEARCH__INDEX_PREFIX": search.index_prefix, "LEPTON_WORKER_ID": isolated_settings.worker_id,
            "LEPTON_PIPELINES": pipelines}
    return isolated_settings, env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def remove_empty_folders(folder: Path) -> None:
    """Remove `folder` and the folders in it, bottom up, as far as they hold no files.

    Faust makes a data folder per worker id; with tables in memory it stays empty, and every isolated run (bench,
    chaos, tests) has a worker id of its own: without this, `.lepton/faust` collects one empty folder per run. The
    workers of a group share their id and stop side by side, so a folder may vanish under this: that is fine.
    """
    with contextlib.suppress(FileNotFoundError):
        for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(FileNotFoundError, OSError):
                if not any(path.iterdir()):
                    path.rmdir()
        if not any(folder.iterdir()):
            folder.rmdir()
