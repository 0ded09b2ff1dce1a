"""The production compose file and Dockerfile: parseable, health-checked, and configured with real settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from streams.cli.dashboards import install_command
from streams.core.settings import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "infra" / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ONE_SHOT = {"es-setup", "topics", "dashboards"}
LEPTON_IMAGE_SERVICES = {"topics", "worker", "worker-gpu", "dashboards"}


def _interpolate(text: str) -> str:
    """Compose's variable syntax: ${X:-default} -> default, ${X:?error} / ${X} -> a placeholder, $$ -> $."""
    text = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    text = re.sub(r"\$\{[A-Z0-9_]+(:\?[^}]*)?\}", "placeholder-value-0123456789", text)
    return text.replace("$$", "$")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load(_interpolate(COMPOSE.read_text()))["services"]


def _settings_variables() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            names |= {f"LEPTON_{name.upper()}__{field.upper()}" for field in info.annotation.model_fields}
        else:
            names.add(f"LEPTON_{name.upper()}")
    return names


def test_the_stack_is_complete_and_every_long_running_service_is_health_checked(services: dict[str, Any]) -> None:
    assert {"kafka", "elasticsearch", "kibana", "prometheus", "worker"} <= set(services)
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        else:
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_wait_for_health_or_completion(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on a missing service {dependency}"
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    assert set(services["worker"]["depends_on"]) >= {"kafka", "elasticsearch", "topics"}


def test_workers_scale_by_replicas_and_use_the_image(services: dict[str, Any]) -> None:
    assert int(services["worker"]["deploy"]["replicas"]) == 3
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    for name in LEPTON_IMAGE_SERVICES:
        assert services[name]["build"] == {"context": "..", "dockerfile": "Dockerfile"}, name
    assert (COMPOSE.parent / services["worker"]["build"]["context"] / "Dockerfile").exists()
    assert services["prometheus"]["volumes"][0].startswith("./prometheus:/etc/prometheus")


@pytest.mark.parametrize("name", sorted(LEPTON_IMAGE_SERVICES - {"dashboards"}))
def test_worker_environment_is_made_of_real_settings(services: dict[str, Any], name: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = {key: str(value) for key, value in services[name]["environment"].items()}
    unknown = set(env) - _settings_variables()
    assert not unknown, f"{name}: not settings of streams/core/settings.py: {sorted(unknown)}"
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        settings = Settings(_env_file=None)
    except ValidationError as error:
        pytest.fail(f"{name}: the environment does not parse: {error}")
    assert settings.mode == "production" and settings.pii_key is not None
    assert settings.kafka.bootstrap_servers == "kafka:9092" and settings.metrics_host == "0.0.0.0"
    assert settings.topics.news_partitions == 6


def test_dashboards_job_uses_the_install_commands_variables(services: dict[str, Any]) -> None:
    import typer

    declared = {param.envvar for param in typer.main.get_command_from_info(
        typer.models.CommandInfo(callback=install_command), pretty_exceptions_short=True,
        rich_markup_mode=None).params if getattr(param, "envvar", None)}
    assert set(services["dashboards"]["environment"]) <= declared
    assert services["dashboards"]["command"][:2] == ["dashboards", "install"]


def test_dockerfile_builds_from_the_lock_runs_unprivileged_and_checks_readiness() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("FROM python:3.11-slim") == 2
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER lepton$", text, flags=re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in text and "LEPTON_METRICS_HOST=0.0.0.0" in text
    assert re.search(r"^HEALTHCHECK .*\n.*/ready", text, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["lepton"]' in text and 'CMD ["worker"]' in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".lepton", ".env", ".git"} <= set(ignored)


def test_one_partition_count_covers_every_keyed_topic(services: dict[str, Any]) -> None:
    """LEPTON_PARTITIONS bounds how many replicas get work: every stage's topics must take it, or a stage would stay
    at the default of 3 whatever the replicas."""
    raw = yaml.safe_load(COMPOSE.read_text())["x-lepton-env"]
    counts = {key: value for key, value in raw.items() if key.endswith("_PARTITIONS")}
    partitioned = {f"LEPTON_TOPICS__{name.upper()}" for name in type(Settings().topics).model_fields
                   if name.endswith("_partitions") and name not in ("catalog_partitions", "output_partitions")}
    assert set(counts) == partitioned and set(counts.values()) == {"${LEPTON_PARTITIONS:-6}"}
