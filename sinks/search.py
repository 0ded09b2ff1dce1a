"""The search seam: ask the server what it is, then talk to it with its own official client.

Elasticsearch 8.x gets the `elasticsearch` client, OpenSearch gets `opensearch-py`; both sit behind
`SearchClient`, a small interface with just what the pipeline and its tests need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import requests

from streams.errors import SearchError
from streams.settings import SearchSettings

Distribution = Literal["elasticsearch", "opensearch"]


@dataclass(frozen=True)
class Doc:
    """One document to index: its index, its deterministic id, and its body."""

    index: str
    id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BulkItemError:
    """One document the server refused, with the HTTP status and reason it gave."""

    doc_id: str
    index: str
    status: int
    reason: str

    @property
    def retryable(self) -> bool:
        """429 and 5xx can succeed later; anything else (a mapping error, say) will not."""
        return self.status == 429 or self.status >= 500


@dataclass(frozen=True)
class BulkResult:
    """What a bulk request did: how many documents were written, and which ones failed."""

    indexed: int
    errors: list[BulkItemError] = field(default_factory=list)


class SearchClient(Protocol):
    """What lepton needs from a search engine."""

    distribution: Distribution
    version: str

    def bulk_index(self, docs: Iterable[Doc]) -> BulkResult: ...
    def put_index_template(self, name: str, body: dict[str, Any]) -> None: ...
    def count(self, index: str, query: dict[str, Any] | None = None) -> int: ...
    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def refresh(self, index: str) -> None: ...
    def delete_index(self, index: str) -> None: ...
    def close(self) -> None: ...


def _auth(settings: SearchSettings) -> dict[str, Any]:
    """Credentials and TLS options shared by both clients and the probe."""
    options: dict[str, Any] = {"verify_certs": settings.verify_certs, "request_timeout": settings.request_timeout_s}
    if settings.ca_certs:
        options["ca_certs"] = str(settings.ca_certs)
    if settings.username and settings.password:
        options["http_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.api_key:
        options["api_key"] = settings.api_key.get_secret_value()
    return options


def identify(settings: SearchSettings) -> tuple[Distribution, str]:
    """Ask the server at the URL what it is: ('opensearch' | 'elasticsearch', version number)."""
    headers = {}
    if settings.api_key:
        headers["Authorization"] = f"ApiKey {settings.api_key.get_secret_value()}"
    auth = (settings.username, settings.password.get_secret_value()) if settings.username and settings.password \
        else None
    verify: bool | str = str(settings.ca_certs) if settings.ca_certs else settings.verify_certs
    try:
        response = requests.get(settings.url, headers=headers, auth=auth, verify=verify,
                                timeout=settings.request_timeout_s)
        response.raise_for_status()
        version = response.json()["version"]
    except (requests.RequestException, ValueError, KeyError) as error:
        raise SearchError(
            f"could not identify the search engine at {settings.url}: {error}. "
            "Is it running (`lepton up --only search`), and are LEPTON_SEARCH__* credentials right?"
        ) from error
    distribution: Distribution = "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
    return distribution, str(version["number"])


def connect(settings: SearchSettings) -> SearchClient:
    """A client for whatever answers at settings.url."""
    distribution, version = identify(settings)
    if distribution == "opensearch":
        from sinks.search_opensearch import OpenSearchClient

        return OpenSearchClient(settings, version, _auth(settings))
    if not version.startswith(("8.", "9.")):
        raise SearchError(f"Elasticsearch {version} at {settings.url} is not supported; use 8.x or 9.x.")
    from sinks.search_elasticsearch import ElasticsearchClient

    return ElasticsearchClient(settings, version, _auth(settings))


def bulk_result(items: list[dict[str, Any]]) -> BulkResult:
    """Check every item of a bulk response (both engines answer in the same shape)."""
    indexed, errors = 0, []
    for item in items:
        outcome = next(iter(item.values()))
        if outcome.get("error"):
            error = outcome["error"]
            reason = f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict) else str(error)
            errors.append(BulkItemError(str(outcome.get("_id")), str(outcome.get("_index")),
                                        int(outcome.get("status", 500)), reason))
        else:
            indexed += 1
    return BulkResult(indexed, errors)


def bulk_body(docs: Iterable[Doc]) -> list[dict[str, Any]]:
    """The NDJSON lines of a bulk request: deterministic ids make a replay overwrite, not duplicate."""
    body: list[dict[str, Any]] = []
    for doc in docs:
        body.append({"index": {"_index": doc.index, "_id": doc.id}})
        body.append(doc.body)
    return body
