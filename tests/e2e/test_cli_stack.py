"""The operator's view: `lepton status` and `lepton topics` against the running stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LEPTON = str(Path(sys.executable).parent / "lepton")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEPTON, *args], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})


def test_status_reports_every_service_healthy() -> None:
    result = run("status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    for service in ("kafka", "search", "prometheus"):
        assert "healthy" in lines[service]
    assert "opensearch 2.19" in lines["search"]


def test_topics_create_is_idempotent_and_listed() -> None:
    assert run("topics", "create").returncode == 0
    again = run("topics", "create")
    assert again.returncode == 0 and "created" not in again.stdout
    listing = run("topics", "list")
    assert listing.returncode == 0
    for topic in ("news", "transactions", "clicks", "catalog", "alerts.sentiment", "alerts.fraud",
                  "recommendations", "deadletter"):
        assert topic in listing.stdout
    catalog_row = next(line for line in listing.stdout.splitlines() if " catalog " in line)
    assert "compact" in catalog_row
