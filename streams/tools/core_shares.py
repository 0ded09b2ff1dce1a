"""How the cores are shared while a bench runs: its workers, the local stack's search engine and broker, everything
else, and nobody (idle), from Linux /proc."""

from __future__ import annotations

import os

from infra.local.process import cpu_seconds, host_busy_seconds
from infra.local.services import Kafka, Search, process_of
from streams.core.settings import Settings


class CoreShares:
    """Cores that each named process, everything else, and nobody (idle) used from `start()` on, over a given
    time."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.begin: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()} | {"host": host_busy_seconds()}

    def start(self) -> None:
        self.begin = self._now()

    def over(self, elapsed_s: float) -> dict[str, float]:
        """Cores used since start() over `elapsed_s` (the clock stopped a poll before this call: that tail is idle
        but for the poll)."""
        used = {name: value - self.begin[name] for name, value in self._now().items()}
        busy = used.pop("host")
        cores = {name: value / elapsed_s for name, value in used.items()}
        cores["other"] = max(0.0, busy / elapsed_s - sum(cores.values()))
        cores["idle"] = max(0.0, (os.cpu_count() or 1) - busy / elapsed_s)
        return {name: round(value, 3) for name, value in cores.items()}


def stack_shares(settings: Settings, workers: dict[str, int | None]) -> CoreShares:
    """`CoreShares` of the named worker processes and the local stack's search engine and broker."""
    return CoreShares(workers | {"search": process_of(Search(settings.local)).pid(),
                                 "broker": process_of(Kafka(settings.local)).pid()})
