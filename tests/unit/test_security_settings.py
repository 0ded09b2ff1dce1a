"""Security settings: Kafka SASL/TLS mappings (Faust, aiokafka), search credentials, secret files, bind address."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import faust
import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

from sinks.search import _auth, shown_url
from streams.broker.failures import ErrorLog, describe_failure
from streams.core.errors import ConfigurationError
from streams.core.settings import KafkaSettings, SearchSettings, Settings
from streams.worker.app import faust_credentials

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [n for n in os.environ if n.startswith("LEPTON_")]:
        monkeypatch.delenv(name)


def sasl(**changes: object) -> KafkaSettings:
    values = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "worker",
              "sasl_password": "pw-kafka-123", "ssl_cafile": CA} | changes
    return KafkaSettings(**values)


def test_sasl_without_a_password_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="LEPTON_KAFKA__SASL_PASSWORD"):
        sasl(sasl_password=None)


def test_faust_gets_sasl_over_tls_without_showing_the_password() -> None:
    credentials = faust_credentials(sasl())
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "worker" and credentials.password == "pw-kafka-123"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED and credentials.ssl_context.check_hostname
    assert "pw-kafka-123" not in repr(credentials)


def test_faust_gets_tls_alone_plain_sasl_or_nothing() -> None:
    assert isinstance(faust_credentials(KafkaSettings(security_protocol="SSL", ssl_cafile=CA)), faust.SSLCredentials)
    plain = faust_credentials(sasl(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN"))
    assert plain.protocol.value == "SASL_PLAINTEXT" and plain.ssl_context is None
    assert faust_credentials(KafkaSettings()) is None


def test_aiokafka_options_match_the_workers() -> None:
    options = sasl().aiokafka_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "worker" and options["sasl_plain_password"] == "pw-kafka-123"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert KafkaSettings().aiokafka_options() == {"bootstrap_servers": "127.0.0.1:9092",
                                                  "security_protocol": "PLAINTEXT"}


def test_a_missing_ca_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LEPTON_KAFKA__SSL_CAFILE"):
        sasl(ssl_cafile=tmp_path / "nope.pem").ssl_context()


def test_a_refused_password_names_the_credentials_settings() -> None:
    log = ErrorLog()
    log(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    log(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed"))
    log(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    failure = KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))
    message = describe_failure(sasl(), failure, log)
    assert "Authentication failed" in message and "LEPTON_KAFKA__SASL_PASSWORD" in message
    assert "LEPTON_KAFKA__SSL_CAFILE" in describe_failure(sasl(), KafkaException(
        KafkaError(KafkaError._SSL, "SSL handshake failed: certificate verify failed")))
    assert "lepton up" in describe_failure(KafkaSettings(), failure)


def test_search_basic_auth_needs_both_halves() -> None:
    with pytest.raises(ValidationError, match="LEPTON_SEARCH__PASSWORD"):
        SearchSettings(username="lepton")


def test_search_client_options_honour_ca_verify_and_credentials(tmp_path: Path) -> None:
    options = _auth(SearchSettings(url="https://s:9200", username="u", password="pw-search", ca_certs=CA))
    assert options["ca_certs"] == str(CA) and options["verify_certs"] is True
    assert options["http_auth"] == ("u", "pw-search")
    assert _auth(SearchSettings(api_key="a2V5", verify_certs=False, ca_certs=CA)) == {
        "verify_certs": False, "request_timeout": 30.0, "api_key": "a2V5"}
    with pytest.raises(Exception, match="LEPTON_SEARCH__CA_CERTS"):
        _auth(SearchSettings(ca_certs=tmp_path / "missing.pem"))


def test_credentials_in_a_url_are_masked_in_messages() -> None:
    assert shown_url("https://user:pw@search:9200/x") == "https://***@search:9200/x"
    assert shown_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200"


def test_secrets_are_read_from_files_and_the_environment_wins(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "lepton_kafka__sasl_password").write_text("pw-from-file\n")
    (secrets / "LEPTON_PII_KEY").write_text("pii-key-from-file-0123456789\n")
    (secrets / "lepton_search__api_key").write_text("api-key-from-file")
    monkeypatch.setenv("LEPTON_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("LEPTON_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("LEPTON_KAFKA__SASL_USERNAME", "worker")
    s = Settings()
    assert s.kafka.sasl_password is not None and s.kafka.sasl_password.get_secret_value() == "pw-from-file"
    assert s.pii_key is not None and s.pii_key.get_secret_value() == "pii-key-from-file-0123456789"
    assert s.search.api_key is not None and s.search.api_key.get_secret_value() == "api-key-from-file"
    assert "pw-from-file" not in repr(s) and "api-key-from-file" not in str(s.model_dump())
    monkeypatch.setenv("LEPTON_KAFKA__SASL_PASSWORD", "pw-from-env")
    assert Settings().kafka.sasl_password.get_secret_value() == "pw-from-env"  # type: ignore[union-attr]


def test_a_missing_secrets_dir_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEPTON_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(ConfigurationError, match="LEPTON_SECRETS_DIR"):
        Settings()


def test_the_worker_app_gets_the_credentials_and_binds_to_loopback() -> None:
    from streams.worker.app import create_app

    settings = Settings(kafka=sasl(), pipelines="sentiment")
    app, _ = create_app(settings)
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert app.conf.broker_credentials.username == "worker"
    assert app.conf.web_bind == "127.0.0.1" and app.conf.web_host == "127.0.0.1"
    assert "pw-kafka-123" not in repr(app.conf.broker_credentials) + str(app.conf.broker)
    # Faust's data folder goes under the state folder, not into the working directory.
    assert app.conf.datadir == settings.local.state_dir / "faust" / f"{settings.worker_id}-data"
