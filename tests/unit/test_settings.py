"""Settings: defaults, LEPTON_* environment variables, nested sections, validation, immutability."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.core.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    for name in [n for n in __import__("os").environ if n.startswith("LEPTON_")]:
        monkeypatch.delenv(name)


def test_defaults_describe_the_local_stack() -> None:
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.search.url == "http://127.0.0.1:9200"
    assert (s.topics.news_partitions, s.topics.transactions_partitions, s.topics.clicks_partitions) == (3, 3, 3)
    assert s.topics.deadletter == "deadletter"
    assert s.models.device == "auto"
    assert s.local.kafka_heap_mb <= 512 and s.local.search_heap_mb <= 1024


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9093,broker-2:9093")
    monkeypatch.setenv("LEPTON_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_USERNAME", "worker")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("LEPTON_TOPICS__NEWS_PARTITIONS", "12")
    monkeypatch.setenv("LEPTON_BATCHING__MAX_BATCH_SIZE", "128")
    monkeypatch.setenv("LEPTON_MODELS__DEVICE", "cuda")
    s = Settings()
    assert s.topics.news_partitions == 12
    assert s.batching.max_batch_size == 128
    assert s.models.device == "cuda"
    config = s.kafka.confluent_config()
    assert config["bootstrap.servers"] == "broker-1:9093,broker-2:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret"


def test_secrets_are_hidden_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_SEARCH__USERNAME", "lepton")
    monkeypatch.setenv("LEPTON_SEARCH__PASSWORD", "hunter2")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_PASSWORD", "s3cret")
    text = repr(Settings()) + str(Settings().model_dump())
    assert "hunter2" not in text and "s3cret" not in text


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("LEPTON_SEARCH__URL=https://search.example:9200\n")
    assert Settings().search.url == "https://search.example:9200"


@pytest.mark.parametrize(("name", "value"), [
    ("LEPTON_MODELS__DEVICE", "tpu"),
    ("LEPTON_TOPICS__NEWS_PARTITIONS", "0"),
    ("LEPTON_BATCHING__MAX_BATCH_SIZE", "-1"),
    ("LEPTON_LOCAL__KAFKA_HEAP_MB", "4096"),
    ("LEPTON_KAFKA__SECURITY_PROTOCOL", "TLS"),
])
def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.kafka.bootstrap_servers = "elsewhere:9092"  # type: ignore[misc]
