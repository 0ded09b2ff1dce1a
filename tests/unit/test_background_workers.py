"""`lepton up --workers N`: background workers managed like the services (pid files, logs, ports, Prometheus
targets), scaled up and down, stopped by `lepton down`. A stand-in `lepton` answers /ready on its port."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infra.local.process import port_open
from streams.core.errors import ServiceError
from streams.core.settings import LocalStackSettings, Settings
from streams.tools import workers
from streams.tools.worker_process import free_port

STAND_IN = """#!{python}
import http.server, os, sys
if os.environ.get("STAND_IN_FAILS"):
    sys.exit("no broker")
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'{{"ready": true}}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["LEPTON_METRICS_PORT"])), Ready).serve_forever()
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lepton").write_text(STAND_IN.format(python=sys.executable))
    (bin_dir / "lepton").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))  # `lepton` is found beside the interpreter
    port = free_port()
    while port_open(port + 1) or port_open(port + 2):
        port = free_port()
    return Settings(local=LocalStackSettings(state_dir=tmp_path / "state", health_timeout_s=20), metrics_port=port)


def test_workers_start_on_consecutive_ports_show_in_status_and_scale_down(settings: Settings) -> None:
    seen: list[str] = []
    try:
        workers.up(settings, 3, report=seen.append)
        assert workers.numbers(settings) == [1, 2, 3]
        rows = workers.status(settings)
        assert [(r.name, r.port, r.health) for r in rows] == [
            (f"worker-{n}", settings.metrics_port + n - 1, "healthy") for n in (1, 2, 3)]
        assert all(r.pid and r.log.name == f"{r.name}.log" for r in rows)
        targets = settings.local.state_dir / "prometheus" / "targets" / workers.TARGETS_FILE
        # the first is Prometheus' static target; the others are discovered from the file
        assert json.loads(targets.read_text()) == [{"targets": [f"127.0.0.1:{settings.metrics_port + n}"
                                                                for n in (1, 2)]}]
        assert sum("ready" in line for line in seen) == 3
        workers.up(settings, 1, report=seen.append)
        assert workers.numbers(settings) == [1] and "worker-3: stopped (asked for 1)" in seen
        assert not port_open(settings.metrics_port + 2) and not targets.exists()
    finally:
        workers.down(settings, report=seen.append)
    assert workers.numbers(settings) == [] and workers.status(settings) == []
    assert not port_open(settings.metrics_port)


def test_a_worker_that_exits_at_start_fails_with_its_log(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_FAILS", "1")
    with pytest.raises(ServiceError, match=r"(?s)worker-1 is not ready.*no broker"):
        workers.up(settings, 1, report=lambda _: None)
    workers.down(settings, report=lambda _: None)
