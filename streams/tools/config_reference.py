"""The configuration reference, generated from the settings object: every `LEPTON_*` variable as Markdown.

`lepton config reference` prints it; `--write` replaces the block between the markers below in docs/operations.md,
and a unit test fails when the docs and the settings drift apart. A setting's description comes from its
`Field(description=...)` in streams/core/settings.py, else from DESCRIPTIONS here.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from streams.core.errors import LeptonError
from streams.core.settings import REPO_ROOT, Settings

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
REFERENCE_DOC = REPO_ROOT / "docs" / "operations.md"
PREFIX = "LEPTON_"

# For settings whose Field has no description (the settings module stays terse); keyed by variable name.
DESCRIPTIONS = {
    "LEPTON_KAFKA__BOOTSTRAP_SERVERS": "Kafka brokers, comma-separated host:port",
    "LEPTON_KAFKA__SECURITY_PROTOCOL": "how clients connect to the brokers",
    "LEPTON_KAFKA__SASL_MECHANISM": "SASL mechanism (with a SASL_* protocol)",
    "LEPTON_KAFKA__SASL_USERNAME": "SASL user",
    "LEPTON_KAFKA__SASL_PASSWORD": "SASL password",
    "LEPTON_KAFKA__SSL_CAFILE": "CA certificate (PEM) that signed the brokers' certificates",
    "LEPTON_KAFKA__SSL_CERTFILE": "client certificate (PEM) for mutual TLS",
    "LEPTON_KAFKA__SSL_KEYFILE": "client private key (PEM) for mutual TLS",
    "LEPTON_KAFKA__REPLICATION_FACTOR": "replication factor of the topics and changelogs lepton creates",
    "LEPTON_SEARCH__URL": "Elasticsearch 8.x/9.x or OpenSearch; the server says which",
    "LEPTON_SEARCH__USERNAME": "search engine user (basic auth)",
    "LEPTON_SEARCH__PASSWORD": "search engine password",
    "LEPTON_SEARCH__API_KEY": "search engine API key (instead of user and password)",
    "LEPTON_SEARCH__CA_CERTS": "CA bundle that signed the search engine's certificate",
    "LEPTON_SEARCH__VERIFY_CERTS": "verify the search engine's TLS certificate",
    "LEPTON_SEARCH__REQUEST_TIMEOUT_S": "timeout of one request to the search engine",
    "LEPTON_SEARCH__INDEX_PREFIX": "prefix of every index the pipeline writes (and of the dashboards' data views)",
    "LEPTON_TOPICS__NEWS": "input topic of news items",
    "LEPTON_TOPICS__TRANSACTIONS": "input topic of card transactions",
    "LEPTON_TOPICS__CLICKS": "input topic of clickstream events",
    "LEPTON_TOPICS__CATALOG": "input topic of catalog items (compacted)",
    "LEPTON_TOPICS__ALERTS_SENTIMENT": "output topic of negative-news surge alerts",
    "LEPTON_TOPICS__ALERTS_FRAUD": "output topic of fraud alerts",
    "LEPTON_TOPICS__RECOMMENDATIONS": "output topic of recommendation updates",
    "LEPTON_TOPICS__DEADLETTER": "output topic of dead letters",
    "LEPTON_TOPICS__NEWS_PARTITIONS": "partitions of the news topic (the unit of parallelism)",
    "LEPTON_TOPICS__TRANSACTIONS_PARTITIONS": "partitions of the transactions topic (the unit of parallelism)",
    "LEPTON_TOPICS__CLICKS_PARTITIONS": "partitions of the clicks topic (the unit of parallelism)",
    "LEPTON_TOPICS__CATALOG_PARTITIONS": "partitions of the catalog topic",
    "LEPTON_TOPICS__OUTPUT_PARTITIONS": "partitions of the alert, recommendation and dead-letter topics",
    "LEPTON_MODELS__DIR": "trained model artifacts",
    "LEPTON_MODELS__DEVICE": "where models run: auto picks CUDA when present",
    "LEPTON_BATCHING__MAX_BATCH_SIZE": "most inputs in one device batch",
    "LEPTON_BATCHING__MAX_WAIT_MS": "longest wait of a batch's oldest input before the batch runs",
    "LEPTON_BATCHING__TAKE_MAX": "most events an agent reads into one micro-batch",
    "LEPTON_BATCHING__TAKE_WITHIN_S": "longest wait to fill a micro-batch",
    "LEPTON_LOCAL__STATE_DIR": "artifacts, data and logs of the local stack",
    "LEPTON_LOCAL__KAFKA_PORT": "local Kafka broker port",
    "LEPTON_LOCAL__KAFKA_CONTROLLER_PORT": "local Kafka controller port",
    "LEPTON_LOCAL__SEARCH_PORT": "local OpenSearch HTTP port",
    "LEPTON_LOCAL__SEARCH_TRANSPORT_PORT": "local OpenSearch transport port",
    "LEPTON_LOCAL__PROMETHEUS_PORT": "local Prometheus port",
    "LEPTON_LOCAL__KAFKA_HEAP_MB": "local Kafka heap",
    "LEPTON_LOCAL__SEARCH_HEAP_MB": "local OpenSearch heap",
    "LEPTON_LOCAL__HEALTH_TIMEOUT_S": "how long `lepton up` waits for each service",
    "LEPTON_LOCAL__DOWNLOAD_ATTEMPTS": "attempts at each artifact download",
    "LEPTON_LOCAL__SCRAPE_INTERVAL_S": "scrape and rule evaluation interval of the local Prometheus",
    "LEPTON_RECS__TOP_K": "recommendations kept per user",
    "LEPTON_RECS__WEIGHT_VIEW": "interest weight of a view",
    "LEPTON_RECS__WEIGHT_CLICK": "interest weight of a click",
    "LEPTON_RECS__WEIGHT_ADD_TO_CART": "interest weight of an add-to-cart",
    "LEPTON_METRICS_HOST": "address the worker serves /metrics and /ready on (0.0.0.0 in containers)",
    "LEPTON_METRICS_PORT": "port of the worker's /metrics and /ready",
    "LEPTON_WORKER_ID": "Faust app id, which is also the Kafka consumer group",
    "LEPTON_MODE": "production refuses to start without LEPTON_PII_KEY",
    "LEPTON_PII_KEY": "HMAC key of card tokens (16+ characters); generated in .lepton/pii.key in development",
}


@dataclass(frozen=True)
class Row:
    """One setting as the reference shows it."""

    variable: str
    type: str
    default: str
    description: str


def _type_name(annotation: Any) -> str:
    """`int`, `float`, `path`, `secret`, `one of a, b`; `optional` when it may stay unset."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [arg for arg in args if arg is not type(None)]
        return _type_name(inner[0]) + (", optional" if len(inner) < len(args) else "")
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in args)
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    """The numeric limits a value must respect, e.g. `>= 1, <= 4096`."""
    kinds = {annotated_types.Ge: (">=", "ge"), annotated_types.Gt: (">", "gt"),
             annotated_types.Le: ("<=", "le"), annotated_types.Lt: ("<", "lt")}
    parts = [f"{symbol} {getattr(constraint, attr)}" for constraint in info.metadata
             for kind, (symbol, attr) in kinds.items() if isinstance(constraint, kind)]
    return ", ".join(parts)


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value.relative_to(REPO_ROOT)}`" if value.is_relative_to(REPO_ROOT) else f"`{value}`"
    return f"`{value}`"


def _row(variable: str, info: FieldInfo) -> Row:
    kind, bounds = _type_name(info.annotation), _bounds(info)
    return Row(variable, f"{kind} ({bounds})" if bounds else kind, _default(info.default),
               info.description or DESCRIPTIONS.get(variable, ""))


def sections() -> Iterator[tuple[str, str, list[Row]]]:
    """(title, what the section is for, rows): the top-level settings first, then each nested section."""
    top, nested = [], []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows = [_row(f"{PREFIX}{name.upper()}__{field.upper()}", field_info)
                    for field, field_info in annotation.model_fields.items()]
            doc = (annotation.__doc__ or "").strip().splitlines()[0]
            nested.append((f"`{PREFIX}{name.upper()}__*`", doc, rows))
        else:
            top.append(_row(f"{PREFIX}{name.upper()}", info))
    yield "General", "The worker as a whole.", top
    yield from nested


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    """The Markdown reference: one table per section."""
    out = []
    for title, doc, rows in sections():
        out += [f"**{title}**: {doc}", "", "| variable | type | default | description |", "| --- | --- | --- | --- |"]
        out += [f"| `{r.variable}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.description)} |" for r in rows]
        out.append("")
    return "\n".join(out)


def reference_block(text: str) -> str:
    """What the document holds between the markers (without them)."""
    match = re.search(re.escape(START) + r"\n(.*?)" + re.escape(END), text, flags=re.DOTALL)
    if match is None:
        raise LeptonError(f"the document has no {START} ... {END} block; add the two markers where the reference goes")
    return match.group(1)


def write_reference(path: Path = REFERENCE_DOC) -> bool:
    """Replace the document's block with the current reference; True when the file changed."""
    text = path.read_text()
    reference_block(text)  # the markers must exist
    updated = re.sub(re.escape(START) + r"\n.*?" + re.escape(END), lambda _: f"{START}\n{render()}{END}", text,
                     flags=re.DOTALL)
    path.write_text(updated)
    return updated != text
