"""`lepton bench fraud --json` on the real stack, small: every key the docs quote, each measured in the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

KEYS = {"pipeline_per_s", "ceiling_per_s", "pipeline_vs_ceiling", "sink_ceiling_per_s", "pipeline_vs_sink",
        "pipeline_cores", "sink_cores", "alert_latency_p50_s", "alert_latency_p99_s",
        "alert_latency_p50_s_half_load", "alert_latency_p99_s_half_load", "latency_rate_per_s", "latency_alerts",
        "latency_cores", "worker_cpu_ms_per_payment", "alert_latency_parts_s"}


def test_bench_fraud_reports_the_sink_ceiling_and_half_load_latency() -> None:
    lepton = Path(sys.executable).parent / "lepton"
    done = subprocess.run([str(lepton), "bench", "fraud", "--count", "1000", "--seconds", "5", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result.keys() >= KEYS
    assert result["pipeline_per_s"] > 0 and result["sink_ceiling_per_s"] > 0
    assert result["pipeline_vs_sink"] == round(result["pipeline_per_s"] / result["sink_ceiling_per_s"], 3)
    assert abs(result["latency_rate_per_s"] - result["pipeline_per_s"] / 2) <= 0.1
    # the same mix (2% fraud) at half rate for 5 s raises alerts, each timed from its own send
    assert result["latency_alerts"] > 0
    assert 0 < result["alert_latency_p50_s_half_load"] <= result["alert_latency_p99_s_half_load"] < 60
    assert result["sink_cores"]["search"] > 0  # the engine did the sink phase's work
    # the worker's own CPU, read from /proc in both phases it worked in
    assert result["pipeline_cores"]["worker"] > 0 and result["latency_cores"]["worker"] > 0
    assert result["worker_cpu_ms_per_payment"]["draining"] > 0
    assert result["worker_cpu_ms_per_payment"]["at_latency_rate"] > 0
    # each alert split where its card stage message was read: every part measured, the card stage takes time
    parts = result["alert_latency_parts_s"]
    assert set(parts) == {"card_stage", "merchant_stage", "delivery"}
    assert all(part["p50"] is not None for part in parts.values())
    assert parts["card_stage"]["p50"] > 0
