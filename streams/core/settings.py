"""The one configuration object: frozen, read from `LEPTON_*` environment variables and an optional `.env`.

Nested sections use a double underscore: `LEPTON_KAFKA__BOOTSTRAP_SERVERS=broker:9092`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import NestedSecretsSettingsSource

from streams.core.errors import ConfigurationError

if TYPE_CHECKING:
    import ssl

REPO_ROOT = Path(__file__).resolve().parents[2]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(Section):
    """How workers, producers and admin tools reach the broker."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    replication_factor: int = Field(1, ge=1)
    session_timeout_s: float = Field(
        15.0, ge=6, le=300, description="a crashed worker's partitions move to the others after this long")

    def confluent_config(self) -> dict[str, str]:
        """The same settings in librdkafka's vocabulary (confluent-kafka producers and admin)."""
        config = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            config["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            config["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            config["ssl.key.location"] = str(self.ssl_keyfile)
        return config

    @property
    def uses_sasl(self) -> bool:
        """Whether connections authenticate with SASL (SASL_PLAINTEXT or SASL_SSL)."""
        return self.security_protocol.startswith("SASL_")

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        """SASL needs a mechanism, a user and a password (checked here, not at the first connection)."""
        fields = ("sasl_mechanism", "sasl_username", "sasl_password")
        if self.uses_sasl and not all(getattr(self, name) for name in fields):
            missing = ", ".join(f"LEPTON_KAFKA__{name.upper()}" for name in fields if not getattr(self, name))
            raise ValueError(f"security_protocol {self.security_protocol} needs {missing} to be set")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL / SASL_SSL connections (aiokafka, Faust); None for the plaintext protocols.

        The CA file verifies the broker (hostname included); without one the system's CAs do. A client
        certificate (mutual TLS) is loaded when LEPTON_KAFKA__SSL_CERTFILE is set.
        """
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        import ssl

        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigurationError(f"LEPTON_KAFKA__{name.upper()}={path} is not a readable file")
        try:
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except ssl.SSLError as error:
            raise ConfigurationError(f"cannot load the Kafka TLS files ({error}); check LEPTON_KAFKA__SSL_CAFILE, "
                                     "__SSL_CERTFILE and __SSL_KEYFILE (PEM)") from None
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Connection options for plain aiokafka clients (benches, tools), the same as the workers use."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                   "security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked by _sasl_complete
            options |= {"sasl_mechanism": self.sasl_mechanism, "sasl_plain_username": self.sasl_username,
                        "sasl_plain_password": self.sasl_password.get_secret_value()}
        return options

    def failure_hint(self, error_text: str) -> str:
        """What to check, given a Kafka client's error: the credentials, the TLS files, or reachability."""
        text = error_text.lower()
        if "handshake" in text or "certificate" in text:
            return ("the TLS handshake failed: check LEPTON_KAFKA__SSL_CAFILE (the CA that signed the broker's "
                    "certificate) and LEPTON_KAFKA__SECURITY_PROTOCOL")
        if "authenticat" in text or "credentials" in text:
            return (f"the broker refused the credentials of {self.sasl_username!r} ({self.sasl_mechanism}): check "
                    "LEPTON_KAFKA__SASL_USERNAME, LEPTON_KAFKA__SASL_PASSWORD and LEPTON_KAFKA__SASL_MECHANISM")
        return ("is the broker running (`lepton up`), and are LEPTON_KAFKA__BOOTSTRAP_SERVERS and "
                "LEPTON_KAFKA__SECURITY_PROTOCOL right?")


class SearchSettings(Section):
    """The Elasticsearch or OpenSearch cluster that holds the score indices."""

    url: str = "http://127.0.0.1:9200"
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    request_timeout_s: float = Field(30.0, gt=0)
    index_prefix: str = Field("lepton", pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    bulk_max_docs: int = Field(500, ge=1, description="documents per bulk request")
    refresh_interval_s: float = Field(
        5.0, gt=0, description="new documents become searchable within this time (the index templates' "
        "refresh_interval; applies to indices created afterwards); each refresh writes a segment, so a shorter one "
        "costs the search engine more CPU per document")
    retry_initial_s: float = Field(0.5, gt=0, description="first back-off after a 429/5xx or outage")
    retry_max_s: float = Field(30.0, gt=0, description="longest back-off between retries")

    @model_validator(mode="after")
    def _credentials_complete(self) -> SearchSettings:
        """Basic auth needs both halves; a lone username or password would silently send no credentials."""
        if bool(self.username) != bool(self.password):
            missing = "LEPTON_SEARCH__PASSWORD" if self.username else "LEPTON_SEARCH__USERNAME"
            raise ValueError(f"search basic auth needs both LEPTON_SEARCH__USERNAME and LEPTON_SEARCH__PASSWORD; "
                             f"set {missing} (or use LEPTON_SEARCH__API_KEY alone)")
        return self


class TopicSettings(Section):
    """Topic names and partition counts (the data flow of docs/architecture.md)."""

    news: str = "news"
    transactions: str = "transactions"
    clicks: str = "clicks"
    catalog: str = "catalog"
    alerts_sentiment: str = "alerts.sentiment"
    alerts_fraud: str = "alerts.fraud"
    recommendations: str = "recommendations"
    item_deltas: str = Field("item-deltas", description="internal topic of item-statistic deltas from clicks, "
                             "keyed by item")
    item_stats: str = Field("item-stats", description="item statistics per item (compacted), read in full by every "
                            "recommendation worker")
    deadletter: str = "deadletter"
    labels: str = Field("labels", description="confirmed outcomes (chargebacks), keyed by merchant; it has as "
                        "many partitions as transactions")
    transactions_by_merchant: str = Field("transactions.by-merchant", description="internal: transactions with "
                                          "their card features, from the card stage to the scoring stage")
    labels_by_card: str = Field("labels.by-card", description="internal: confirmed frauds naming a card, back to "
                                "the card stage")
    news_by_ticker: str = Field("news.by-ticker", description="internal: scored headlines per ticker, from the "
                                "sentiment stage to the surge stage; it has as many partitions as news")
    news_partitions: int = Field(3, ge=1)
    transactions_partitions: int = Field(3, ge=1)
    clicks_partitions: int = Field(3, ge=1)
    catalog_partitions: int = Field(1, ge=1)
    item_stats_partitions: int = Field(
        3, ge=1, description="partitions of item-deltas and of the compacted item-stats (both keyed by item)")
    output_partitions: int = Field(1, ge=1)


class SurgeSettings(Section):
    """Negative-news surge detection per ticker: a recent window tested against the ticker's trailing baseline."""

    window_s: int = Field(300, ge=60, description="the recent window, in event time")
    baseline_s: int = Field(3600, ge=60, description="the trailing baseline before the window")
    min_negative: int = Field(8, ge=1, description="at least this many negative items in the window")
    min_share: float = Field(0.4, gt=0, le=1, description="and at least this share of the window's items")
    max_p_value: float = Field(1e-5, gt=0, lt=1, description="and this unlikely under the baseline's share")
    prior_share: float = Field(0.3, gt=0, lt=1, description="negative share assumed before a ticker has history")
    prior_weight: int = Field(50, ge=1, description="how many items the prior counts for in the baseline")


# Units of EUR per unit of each currency (approximate, for comparing amounts across currencies; set your own
# with LEPTON_FRAUD__RATES, JSON).
DEFAULT_RATES = {
    "EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.05, "SEK": 0.087, "NOK": 0.086, "DKK": 0.134, "PLN": 0.23,
    "CZK": 0.04, "HUF": 0.0025, "CAD": 0.68, "MXN": 0.05, "BRL": 0.17, "JPY": 0.0062, "KRW": 0.00068,
    "CNY": 0.13, "HKD": 0.12, "SGD": 0.69, "AUD": 0.61, "NZD": 0.56, "INR": 0.011, "ZAR": 0.05, "AED": 0.25,
    "TRY": 0.027,
}


class FraudSettings(Section):
    """Fraud decisions from the calibrated score, the alert budget training meets, and the features' inputs."""

    alert_budget: float = Field(0.005, gt=0, lt=1, description="share of legitimate traffic allowed to raise "
                                "alerts (review or block): training sets the review threshold that meets it")
    block_budget: float = Field(0.001, gt=0, lt=1, description="share of legitimate traffic allowed to be "
                                "blocked: training sets the block threshold that meets it")
    review_threshold: float | None = Field(None, gt=0, lt=1, description="override the artifact's review threshold")
    block_threshold: float | None = Field(None, gt=0, le=1, description="override the artifact's block threshold")
    label_delay_days: int = Field(7, ge=0, le=60, description="merchant fraud windows end this many days before "
                                  "the transaction (outcomes arrive late); training stores it in the artifact")
    reference_currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="amounts are compared in this currency")
    rates: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_RATES),
                                    description="units of the reference currency per unit of each currency (JSON)")

    @model_validator(mode="after")
    def _ordered(self) -> FraudSettings:
        """Blocking needs at least as much evidence as a review, and fits in the alert budget."""
        if self.block_budget > self.alert_budget:
            raise ValueError("fraud.block_budget must be <= fraud.alert_budget")
        if self.review_threshold and self.block_threshold and self.block_threshold < self.review_threshold:
            raise ValueError("fraud.block_threshold must be >= fraud.review_threshold")
        if self.reference_currency not in self.rates:
            raise ValueError(f"fraud.rates has no rate for the reference currency {self.reference_currency}")
        return self


class ModelSettings(Section):
    """Where trained artifacts live, and where the models run."""

    dir: Path = REPO_ROOT / "models" / "artifacts"
    device: Literal["auto", "cpu", "cuda"] = "auto"


class BatchingSettings(Section):
    """Limits of the dynamic batcher: a device batch closes when full or when its oldest input waited this long."""

    max_batch_size: int = Field(32, ge=1, le=4096)
    max_wait_ms: float = Field(10.0, ge=0)
    model_threads: int = Field(
        2, ge=1, le=16, description="batches each model runs at once, each in its own thread; on the CPU they "
        "share the cores equally (see models/batcher.py)")
    take_max: int = Field(128, ge=1)
    sentiment_batches_in_flight: int = Field(
        4, ge=1, le=8, description="micro-batches the sentiment agent works on at once, so the model threads always "
        "have the next one queued while the last is indexed (offsets are committed only up to the oldest unfinished "
        "one)")
    take_within_s: float = Field(0.2, gt=0)
    fraud_batch_size: int = Field(
        512, ge=1, le=4096, description="micro-batch and device batch of the fraud agent (a small MLP: large "
        "batches cost little latency and save per-batch overhead)")
    fraud_batches_in_flight: int = Field(
        8, ge=1, le=8, description="micro-batches each fraud stage works on at once once a batch comes full (a "
        "backlog; while none does, 2): each is prepared from the states the batch before it staged and scored while "
        "the ones before it are indexed; states are written and offsets committed in order, each batch once it is "
        "durable (docs/performance.md)")
    fraud_model_threads: int = Field(
        0, ge=0, le=16, description="threads the fraud model runs in; 0: in the event loop, each stage batch in one "
        "call (a small MLP: a model thread waited longer for the interpreter lock than the model took, see "
        "models/batcher.py)")
    fraud_take_within_s: float = Field(
        0.02, gt=0, description="the longest a fraud stage waits to fill a micro-batch: with a backlog, a fetch fills "
        "it at once; at moderate load a payment does not wait for others (an alert is wanted before the next payment)")


class RecsSettings(Section):
    """Recommendations: session context, item statistics (neighbours, decay), score weights, publishing rate."""

    top_k: int = Field(10, ge=1, le=1000)
    half_life_s: float = Field(604_800.0, gt=0, description="event-time half-life of a user's interest vector")
    weight_view: float = Field(1.0, gt=0)
    weight_click: float = Field(1.25, gt=0)
    weight_add_to_cart: float = Field(1.5, gt=0)
    weight_purchase: float = Field(2.0, gt=0, description="must exceed weight_view")
    session_items: int = Field(10, ge=1, le=100, description="items of the current session kept in order per user")
    recent_items: int = Field(20, ge=0, le=1000, description="recent items kept per user, any session (context)")
    purchased_items: int = Field(50, ge=0, le=1000, description="purchased items kept per user (excluded)")
    sequence_gap: int = Field(3, ge=1, le=10, description="a view counts as following each of this many before it")
    neighbours: int = Field(100, ge=1, le=1000, description="strongest neighbours published per item and kind")
    neighbour_half_life_s: float = Field(
        1_209_600.0, gt=0, description="event-time half-life of transition and co-occurrence counts")
    popularity_half_life_s: float = Field(259_200.0, gt=0, description="event-time half-life of item popularity")
    position_decay: float = Field(0.5, gt=0, le=1, description="weight of a context item per step back")
    history_weight: float = Field(0.1, ge=0, description="weight of items of earlier sessions, against the session")
    weight_transition: float = Field(1.0, ge=0, description="items that followed a context item")
    weight_cooccurrence: float = Field(0.2, ge=0, description="items seen in sessions with a context item")
    weight_repeat: float = Field(0.3, ge=0, description="a context item itself (views repeat)")
    weight_text: float = Field(0.05, ge=0, description="text similarity to the session's items")
    weight_interest: float = Field(0.05, ge=0, description="text similarity to the user's interest vector")
    weight_popularity: float = Field(0.05, ge=0, description="decayed popularity, relative to the most popular")
    shrinkage: float = Field(8.0, ge=0, description="added to a context item's total: little evidence, less weight")
    publish_interval_s: float = Field(10.0, ge=0, description="at most one topic message per user per interval")

    @model_validator(mode="after")
    def _purchases_outweigh_views(self) -> RecsSettings:
        """A purchase says more about interest than a view."""
        if self.weight_purchase <= self.weight_view:
            raise ValueError("recs.weight_purchase must be greater than recs.weight_view")
        return self

    def action_weight(self, action: str) -> float:
        """How much one event of `action` adds to the interest vector."""
        return float(getattr(self, f"weight_{action}"))


class LocalStackSettings(Section):
    """The local default stack started by `lepton up` (ports on 127.0.0.1)."""

    state_dir: Path = REPO_ROOT / ".lepton"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    search_port: int = 9200
    search_transport_port: int = 9300
    prometheus_port: int = 9090
    kafka_heap_mb: int = Field(512, ge=128, le=512)
    search_heap_mb: int = Field(1024, ge=256, le=1024)
    health_timeout_s: float = Field(180.0, gt=0)
    download_attempts: int = Field(3, ge=1)
    scrape_interval_s: int = Field(5, ge=1)


class Settings(BaseSettings):
    """Everything lepton-streams reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="LEPTON_", env_nested_delimiter="__", env_file=".env", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    search: SearchSettings = SearchSettings()
    topics: TopicSettings = TopicSettings()
    models: ModelSettings = ModelSettings()
    batching: BatchingSettings = BatchingSettings()
    local: LocalStackSettings = LocalStackSettings()
    surge: SurgeSettings = SurgeSettings()
    fraud: FraudSettings = FraudSettings()
    recs: RecsSettings = RecsSettings()
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(6066, ge=1, le=65535)
    stall_after_s: float = Field(120.0, gt=0, description="/live fails after lagging this long without a commit")
    worker_id: str = "lepton-worker"
    pipelines: str = Field("sentiment,fraud,recs", pattern=r"^(sentiment|fraud|recs)(,(sentiment|fraud|recs))*$",
                           description="the pipelines this worker runs, comma-separated")

    def runs(self, pipeline: str) -> bool:
        """Whether this worker runs the named pipeline."""
        return pipeline in self.pipelines.split(",")
    mode: Literal["development", "production"] = "development"
    pii_key: SecretStr | None = None  # HMAC key for card tokens; required in production (streams/core/pii.py)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment, then `.env`, then secret files (one file per variable, e.g. `lepton_search__password`)."""
        secrets = NestedSecretsSettingsSource(file_secret_settings, secrets_dir=secrets_dir(), secrets_dir_missing="ok")
        return init_settings, env_settings, dotenv_settings, secrets


SECRETS_DIR_ENV = "LEPTON_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """Where secret files are read from: LEPTON_SECRETS_DIR, else /run/secrets (Docker, Kubernetes) when present.

    Each file is named like the variable it replaces (case-insensitive) and holds just the value, for example
    `lepton_kafka__sasl_password`, `lepton_search__password`, `lepton_search__api_key`, `lepton_pii_key`.
    An environment variable of the same name wins over the file.
    """
    configured = os.environ.get(SECRETS_DIR_ENV)
    if configured:
        if not Path(configured).is_dir():
            raise ConfigurationError(f"{SECRETS_DIR_ENV}={configured} is not a directory: create it, or unset "
                                     f"{SECRETS_DIR_ENV} to read secrets from the environment only")
        return Path(configured)
    return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
