"""Prometheus: the real server scrapes a test target and its HTTP API returns the scraped value."""

from __future__ import annotations

import json
import random
import socket
import time

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from infra.local.services import Prometheus
from streams.settings import Settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_prometheus_scrapes_a_target(settings: Settings, unique: str) -> None:
    registry = CollectorRegistry()
    value = round(random.uniform(1, 1000), 3)
    Gauge("lepton_it_probe", "integration-test probe", registry=registry).set(value)
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)

    prometheus = Prometheus(settings.local, ())
    target_file = prometheus.targets_dir / f"it-{unique}.json"
    target_file.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"run": unique}}]))
    try:
        deadline, result = time.monotonic() + 120, []
        while time.monotonic() < deadline and not result:
            response = requests.get(f"{prometheus.url}/api/v1/query",
                                    params={"query": f'lepton_it_probe{{run="{unique}"}}'}, timeout=5)
            result = response.json()["data"]["result"]
            time.sleep(1)
        assert result, "Prometheus never scraped the test target"
        assert float(result[0]["value"][1]) == value
        assert result[0]["metric"]["job"] == "lepton-discovered"
    finally:
        target_file.unlink(missing_ok=True)
        server.shutdown()
        thread.join(5)
