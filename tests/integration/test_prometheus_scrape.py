"""Prometheus: the real server scrapes a test target and its HTTP API returns the scraped value."""

from __future__ import annotations

import json
import random
import socket
import time

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from infra.local.services import Prometheus
from streams.core.settings import Settings


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


def test_prometheus_loads_the_alerting_rules(settings: Settings) -> None:
    """The local Prometheus, configured by `lepton up`, reports every rule of infra/prometheus/rules/lepton.yml."""
    import yaml

    from infra.local import stack
    from infra.local.services import RULES_DIR

    (prometheus,) = stack.services(settings, ["prometheus"])
    prometheus.prepare()  # the config `lepton up` writes; a Prometheus started before the rules existed reloads it
    requests.post(f"{prometheus.url}/-/reload", timeout=30).raise_for_status()
    expected = {rule["alert"] for group in yaml.safe_load((RULES_DIR / "lepton.yml").read_text())["groups"]
                for rule in group["rules"]}
    response = requests.get(f"{prometheus.url}/api/v1/rules", params={"type": "alert"}, timeout=10).json()
    groups = response["data"]["groups"]
    assert {group["file"] for group in groups} == {str(RULES_DIR / "lepton.yml")}, "lepton_test.yml must not load"
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == expected
    assert all(rule["health"] in ("ok", "unknown") and rule["labels"]["severity"] for rule in loaded.values())
