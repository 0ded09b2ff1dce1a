"""Kafka over SASL_SSL: a second, throwaway broker with test-made certificates and SCRAM-SHA-512/PLAIN users.

(a) the project's producer, admin and reader get through with the right settings; (b) a real worker consumes,
scores and indexes over the secured broker and a TLS + basic-auth search proxy, its secrets read from files,
and none of them shows up in its log, its /metrics, or this process's output, and its web server answers on
loopback only; (c) a wrong password or CA fails with an error naming the setting to fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from infra.local.secured_kafka import SecuredKafka
from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics, read_records
from streams.core.errors import ProduceError, ServiceError
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.malformed import valid_transaction
from streams.tools.worker_process import WorkerProcess, free_port, isolated
from tests.integration.auth_proxy import AuthProxy
from tests.integration.tls import ServerTls, make_ca, make_server_tls

KAFKA_PASSWORD = "kafkapw7e1c94b2"
SEARCH_PASSWORD = "searchpw3d8a61f0"
PII_KEY = "piikey-0b5e2f7c9a1d4e68"
SECRETS = (KAFKA_PASSWORD, SEARCH_PASSWORD, PII_KEY)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    return make_server_tls(tmp_path_factory.mktemp("kafka-tls"))


@pytest.fixture(scope="module")
def broker(settings: Settings, tls: ServerTls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    kafka = SecuredKafka(settings.local, tmp_path_factory.mktemp("kafka-secured"), free_port(), free_port(),
                         tls.pkcs12, tls.pkcs12_password, tls.ca_cert, {"lepton": KAFKA_PASSWORD}, heap_mb=384)
    try:
        kafka.start()
        kafka.wait_healthy("lepton")
        yield kafka
    finally:
        kafka.stop()


def secured(settings: Settings, broker: SecuredKafka, password: str = KAFKA_PASSWORD,
            mechanism: str = "SCRAM-SHA-512") -> Settings:
    return settings.model_copy(update={"kafka": broker.client_settings("lepton", password, mechanism)})


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_producer_and_reader_round_trip_over_sasl_ssl(settings: Settings, broker: SecuredKafka, unique: str,
                                                      mechanism: str) -> None:
    s = secured(settings, broker, mechanism=mechanism)
    topic = f"secure-{mechanism.lower()}-{unique}"
    sent = [valid_transaction(utc_now(), f"txn-{i}") for i in range(25)]
    with EventProducer(s, pii_key=PII_KEY.encode()) as producer:
        producer.check_connection()
        for record in sent:
            producer.send_record("transactions", record, topic)
    assert producer.stats.sent == 25 and producer.stats.failed == 0
    received = read_records(s, topic, timeout_s=20)
    assert sorted(json.loads(r.value)["id"] for r in received) == sorted(r["id"] for r in sent)


def test_a_wrong_password_fails_naming_the_credentials(settings: Settings, broker: SecuredKafka) -> None:
    s = secured(settings, broker, password="not-the-password")
    with pytest.raises(ProduceError, match="LEPTON_KAFKA__SASL_PASSWORD") as failure:
        EventProducer(s, pii_key=PII_KEY.encode()).check_connection(timeout_s=5)
    assert "Authentication failed" in str(failure.value) and "not-the-password" not in str(failure.value)
    with pytest.raises(ServiceError, match="LEPTON_KAFKA__SASL_PASSWORD"):
        read_records(s, "anything", timeout_s=5)
    with pytest.raises(ServiceError, match="LEPTON_KAFKA__SASL_PASSWORD"):
        create_topics(s, timeout_s=5)


def test_a_wrong_ca_fails_naming_the_ca_setting(settings: Settings, broker: SecuredKafka, tmp_path: Path) -> None:
    other_ca, _ = make_ca(tmp_path, "not-the-broker-ca")
    s = secured(settings, broker)
    s = s.model_copy(update={"kafka": s.kafka.model_copy(update={"ssl_cafile": other_ca})})
    with pytest.raises(ProduceError, match="LEPTON_KAFKA__SSL_CAFILE") as failure:
        EventProducer(s, pii_key=PII_KEY.encode()).check_connection(timeout_s=5)
    assert "certificate verify failed" in str(failure.value)


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.x (from the route the kernel would use, and the hostname)."""
    found: set[str] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe, contextlib.suppress(OSError):
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a source address
        found.add(probe.getsockname()[0])
    with contextlib.suppress(OSError):
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    return sorted(address for address in found if not address.startswith("127."))


def listening_addresses(port: int) -> set[str]:
    """The local addresses of TCP sockets listening on `port` (Linux /proc/net/tcp, state 0A = LISTEN)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def test_worker_end_to_end_over_sasl_ssl_with_secret_files_never_logs_them(
    settings: Settings, broker: SecuredKafka, tls: ServerTls, tmp_path: Path, unique: str,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "lepton_kafka__sasl_password").write_text(KAFKA_PASSWORD + "\n")
    (secrets_dir / "lepton_search__password").write_text(SEARCH_PASSWORD + "\n")
    (secrets_dir / "lepton_pii_key").write_text(PII_KEY + "\n")
    s, env = isolated(secured(settings, broker), f"sec{unique}", "fraud")
    env |= {
        "LEPTON_SECRETS_DIR": str(secrets_dir),
        "LEPTON_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap, "LEPTON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LEPTON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512", "LEPTON_KAFKA__SASL_USERNAME": "lepton",
        "LEPTON_KAFKA__SSL_CAFILE": str(tls.ca_cert),
        "LEPTON_SEARCH__USERNAME": "lepton", "LEPTON_SEARCH__CA_CERTS": str(tls.ca_cert),
        "LEPTON_MODELS__DEVICE": "cpu",
    }
    for name in ("LEPTON_KAFKA__SASL_PASSWORD", "LEPTON_SEARCH__PASSWORD", "LEPTON_PII_KEY"):
        env.pop(name, None)
    count = 12
    now = utc_now()
    events = [valid_transaction(now - timedelta(minutes=count - i), f"txn-{unique}-{i}") for i in range(count)]
    for i, event in enumerate(events):
        event["card_token"] = f"tok_{unique}{i % 3:02d}"
    events[0] |= {"card_number": "4111 1111 1111 1111"}
    events[0].pop("card_token")
    direct = connect(settings.search)
    index_pattern = f"{s.search.index_prefix}-transactions-*"
    with AuthProxy(settings.search.url, tls.cert, tls.key, user="lepton", password=SEARCH_PASSWORD,
                   api_key="unused-in-this-test") as proxy:
        env["LEPTON_SEARCH__URL"] = proxy.url
        metrics_port = free_port()
        worker = WorkerProcess(env, tmp_path / "worker.log", metrics_port)
        create_topics(s)
        worker.start()
        try:
            worker.wait_ready(timeout_s=240)
            with EventProducer(s, pii_key=PII_KEY.encode()) as producer:
                for event in events:
                    producer.send_record("transactions", event)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and direct.count(index_pattern) < count:
                time.sleep(1)
                direct.refresh(index_pattern)
            assert direct.count(index_pattern) == count, worker.log_tail()
            assert proxy.outcomes["forwarded"] > 0 and proxy.outcomes["refused"] == 0

            # /metrics and /ready answer on loopback only.
            assert listening_addresses(metrics_port) == {"127.0.0.1"}
            for address in non_loopback_addresses():
                with socket.socket() as sock, pytest.raises(OSError):
                    sock.settimeout(2)
                    sock.connect((address, metrics_port))
            metrics_text = _get(worker.metrics_url)
        finally:
            worker.stop()
            direct.delete_prefix(s.search.index_prefix)
            direct.close()
    out, err = capfd.readouterr()
    captured = {"worker log": worker.log_path.read_text(errors="replace"), "/metrics": metrics_text,
                "stdout": out, "stderr": err, "python logging": caplog.text}
    assert "Authenticated as lepton via SCRAM-SHA-512" in captured["worker log"]  # the password from the file
    for where, text in captured.items():
        for secret in SECRETS:
            assert secret not in text, f"a secret appears in the {where}"
    assert len(captured["worker log"]) > 200  # the worker did log (so the check above looked at something)


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_a_worker_with_a_wrong_password_exits_saying_why(settings: Settings, broker: SecuredKafka, tls: ServerTls,
                                                         tmp_path: Path, unique: str) -> None:
    _, env = isolated(settings, f"bad{unique}", "fraud")
    env |= {"LEPTON_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap, "LEPTON_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "LEPTON_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512", "LEPTON_KAFKA__SASL_USERNAME": "lepton",
            "LEPTON_KAFKA__SASL_PASSWORD": "wrongpw-1f2e3d", "LEPTON_KAFKA__SSL_CAFILE": str(tls.ca_cert),
            "LEPTON_MODELS__DEVICE": "cpu"}
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while worker.running and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not worker.running, "a worker with a refused password kept running"
    finally:
        code = worker.stop(timeout_s=20)
    log = worker.log_path.read_text(errors="replace")
    assert code != 0 and "Authentication failed" in log and "LEPTON_KAFKA__SASL_PASSWORD" in log, log[-2000:]
    assert "wrongpw-1f2e3d" not in log
