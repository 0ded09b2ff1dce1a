"""A throwaway Kafka with a SASL_SSL listener, for checking the clients' security settings against a real broker.

Same Maven artifacts as the local stack's Kafka (one KRaft node), but its own ports, state folder and config:
clients authenticate with SCRAM-SHA-512 or PLAIN over TLS (the broker's certificate comes from the caller,
as a PKCS#12 keystore). The default stack (`lepton up`) is not touched.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from infra.local import artifacts
from infra.local.process import ManagedProcess, tail
from infra.local.services import HERE, Kafka
from streams.core.errors import ServiceError
from streams.core.settings import KafkaSettings, LocalStackSettings

INTER_BROKER_USER = "broker"


@dataclass(frozen=True)
class SecuredKafka:
    """One KRaft node whose only client listener is SASL_SSL (SCRAM-SHA-512 and PLAIN), on 127.0.0.1:port."""

    local: LocalStackSettings
    home: Path
    port: int
    controller_port: int
    keystore: Path  # PKCS#12: the broker's key and certificate (SAN 127.0.0.1)
    keystore_password: str
    ca_file: Path  # PEM: the CA that signed the keystore's certificate
    users: dict[str, str] = field(default_factory=dict)  # client user -> password (alphanumeric)
    heap_mb: int = 384

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("kafka-secured", self.home / "run")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_settings(self, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> KafkaSettings:
        """Settings that reach this broker as `user` (the password need not be right: tests try wrong ones)."""
        return KafkaSettings(bootstrap_servers=self.bootstrap, security_protocol="SASL_SSL", sasl_mechanism=mechanism,
                             sasl_username=user, sasl_password=password, ssl_cafile=self.ca_file)

    def properties(self, inter_broker_password: str) -> str:
        """server.properties: SASL_SSL for clients and the broker itself, a plaintext controller on loopback."""
        plain_users = {INTER_BROKER_USER: inter_broker_password, **self.users}
        plain_jaas = " ".join(f'user_{user}="{password}"' for user, password in plain_users.items())
        return "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=SASL_SSL://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
            f'required username="{INTER_BROKER_USER}" password="{inter_broker_password}" {plain_jaas};',
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={self.keystore}",
            f"ssl.keystore.password={self.keystore_password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.ca_file}",
            "ssl.client.auth=none",
            f"log.dirs={self.home / 'data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.cleaner.dedupe.buffer.size=8388608",
            "",
        ])

    def start(self) -> None:
        """Fetch the jars (cached), write the config, format the storage with the SCRAM users, start the node."""
        java = artifacts.require_java()
        lib = Kafka(self.local).lib
        artifacts.resolve("kafka", lib, self.local.download_attempts, self.home / "maven.log")
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(self.properties(uuid.uuid4().hex))
        scram = [arg for user, password in self.users.items()
                 for arg in ("--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]")]
        formatted = subprocess.run(
            [java, "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format", "-t", uuid.uuid4().hex[:22],
             "-c", str(props), *scram], capture_output=True, text=True, check=False)
        if formatted.returncode != 0:
            raise ServiceError(f"could not format the secured Kafka's storage: {formatted.stderr[-2000:]}")
        self.process.start([
            java, "-Xms128m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{lib}/*", "kafka.Kafka", str(props),
        ], [self.port, self.controller_port])

    def wait_healthy(self, user: str, timeout_s: float = 120.0) -> None:
        """Wait until `user` gets metadata over SASL_SSL; fail with the broker's log when it does not."""
        from confluent_kafka.admin import AdminClient

        config = self.client_settings(user, self.users[user]).confluent_config() | {"log_level": 0}
        deadline, last = time.monotonic() + timeout_s, "not asked yet"
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise ServiceError(f"the secured Kafka exited:\n{tail(self.process.log_file)}")
            try:
                if AdminClient(config).list_topics(timeout=3).brokers:
                    return
            except Exception as error:  # noqa: BLE001 - not up yet
                last = str(error)
            time.sleep(0.5)
        raise ServiceError(f"the secured Kafka was not healthy after {timeout_s:.0f} s ({last}):\n"
                           f"{tail(self.process.log_file)}")

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL)."""
        self.process.stop(timeout_s=20)
