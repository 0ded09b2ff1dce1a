"""Bring the local stack up and down, idempotently, and report each service's state."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.local.process import port_open, tail
from infra.local.services import Kafka, Prometheus, Search, Service, process_of
from streams.core.errors import LeptonError, ServiceError
from streams.core.settings import Settings

SERVICE_NAMES = ("kafka", "search", "prometheus")


@dataclass(frozen=True)
class ServiceStatus:
    """What `lepton status` shows for one service."""

    name: str
    ports: list[int]
    pid: int | None
    health: str
    version: str
    rss_mb: float | None
    log: Path


def services(settings: Settings, only: list[str] | None = None) -> list[Service]:
    """The services of the local stack, in start order, optionally restricted by name."""
    target = f"{settings.metrics_host}:{settings.metrics_port}"
    every: list[Service] = [Kafka(settings.local), Search(settings.local), Prometheus(settings.local, (target,))]
    if not only:
        return every
    unknown = set(only) - set(SERVICE_NAMES)
    if unknown:
        raise LeptonError(f"unknown service(s) {sorted(unknown)}; choose from {', '.join(SERVICE_NAMES)}")
    return [service for service in every if service.name in only]


def up(settings: Settings, only: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    """Start each service that is not already healthy and wait until all are healthy."""
    timeout = settings.local.health_timeout_s
    for service in services(settings, only):
        process = process_of(service)
        if process.pid() is not None and service.health() is None:
            report(f"{service.name}: already running (pid {process.pid()})")
            continue
        if process.pid() is None and port_open(service.ports[0]) and service.health() is None:
            report(f"{service.name}: a healthy instance not started by lepton answers on port "
                   f"{service.ports[0]}; using it")
            continue
        if process.pid() is None:
            report(f"{service.name}: preparing (the first run downloads artifacts)...")
            service.prepare()
            pid = process.start(service.command(), service.ports)
            report(f"{service.name}: started (pid {pid}), waiting for health (up to {timeout:.0f} s)...")
        _wait_healthy(service, timeout)
        report(f"{service.name}: healthy on 127.0.0.1:{service.ports[0]} ({service.version()})")


def _wait_healthy(service: Service, timeout_s: float) -> None:
    process = process_of(service)
    deadline = time.monotonic() + timeout_s
    reason = "not checked yet"
    while time.monotonic() < deadline:
        if process.pid() is None:
            raise ServiceError(
                f"{service.name} exited during start-up. Last lines of {process.log_file}:\n"
                f"{tail(process.log_file)}"
            )
        reason = service.health()
        if reason is None:
            return
        time.sleep(1.0)
    raise ServiceError(
        f"{service.name} did not become healthy within {timeout_s:.0f} s ({reason}). "
        f"Last lines of {process.log_file}:\n{tail(process.log_file)}\n"
        "Raise LEPTON_LOCAL__HEALTH_TIMEOUT_S on a slow machine, or `lepton down` and retry."
    )


def down(settings: Settings, only: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    """Stop the services lepton started, in reverse order; stopping a stopped service is fine."""
    for service in reversed(services(settings, only)):
        stopped = process_of(service).stop()
        report(f"{service.name}: {'stopped' if stopped else 'not running'}")


def status(settings: Settings, only: list[str] | None = None) -> list[ServiceStatus]:
    """Each service's ports, pid, health, version, memory and log path."""
    rows = []
    for service in services(settings, only):
        process = process_of(service)
        reason = service.health()
        rows.append(ServiceStatus(
            name=service.name,
            ports=service.ports,
            pid=process.pid(),
            health="healthy" if reason is None else f"down: {reason}",
            version=service.version() if reason is None else "-",
            rss_mb=process.rss_mb(),
            log=process.log_file,
        ))
    return rows
