"""The alerting rules are valid Prometheus rules, and each alert fires on its crafted series (promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streams.core.settings import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "infra" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "lepton.yml"
RULE_TESTS = PROMETHEUS_DIR / "rules" / "lepton_test.yml"
REQUIRED = {"LeptonConsumerStalled", "LeptonConsumerLagGrowing", "LeptonDeadLetterRateHigh", "LeptonSinkBackpressure",
            "LeptonSinkRejectingDocuments", "LeptonInferenceLatencyHigh", "LeptonModelScoreDrift"}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian's `prometheus` package; `make setup` installs it)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


def _alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check() -> None:
    result = _run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_each_alert_fires_on_crafted_series() -> None:
    result = _run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_and_explained() -> None:
    tested = {case["alertname"] for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"] if case.get("exp_alerts")}
    names = {alert["alert"] for alert in _alerts()}
    assert names >= REQUIRED
    assert names == tested, f"alerts without a firing test: {sorted(names - tested)}"
    for alert in _alerts():
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"] and len(alert["annotations"]["description"]) > 80, alert["alert"]


def test_production_config_is_valid_and_loads_the_rules() -> None:
    result = _run("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout and "lepton_test" not in result.stdout


def test_local_stack_loads_rule_files_but_not_rule_tests(tmp_path: Path) -> None:
    import json

    from infra.local.services import Prometheus
    from streams.core.settings import LocalStackSettings

    _promtool()  # prepare() needs the prometheus binary from the same package
    prometheus = Prometheus(LocalStackSettings(state_dir=tmp_path), ("127.0.0.1:6066",))
    prometheus.prepare()
    config = json.loads((tmp_path / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == [str(RULES)]
