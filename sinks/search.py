"""The search seam: ask the server what it is, then talk to it with its own official client.

Elasticsearch 8.x gets the `elasticsearch` client, OpenSearch gets `opensearch-py`; both sit behind
`SearchClient`, a small interface with just what the pipeline and its tests need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
import requests
from pydantic import BaseModel

from streams.core.errors import SearchError
from streams.core.settings import SearchSettings

Distribution = Literal["elasticsearch", "opensearch"]


@dataclass(frozen=True)
class Doc:
    """One document to index: its index, its deterministic id, and its body as JSON (serialised where it is built,
    by pydantic's serialiser for the pipelines' documents, so the sink only joins bytes)."""

    index: str
    id: str
    source: bytes

    @classmethod
    def of(cls, index: str, id: str, body: BaseModel | dict[str, Any]) -> Doc:
        """A document from a pydantic model (serialised by pydantic, in Rust) or a plain JSON-ready dict."""
        source = body.model_dump_json().encode() if isinstance(body, BaseModel) else orjson.dumps(body)
        return cls(index, id, source)

    @property
    def body(self) -> dict[str, Any]:
        """The body, parsed (for readers and tests; the sink never parses it)."""
        return json.loads(self.source)


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
    def create_index(self, index: str) -> None: ...  # from its template; an existing index is left as it is
    def count(self, index: str, query: dict[str, Any] | None = None) -> int: ...
    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]: ...
    def refresh(self, index: str) -> None: ...
    def delete_index(self, index: str) -> None: ...
    def delete_prefix(self, prefix: str) -> None: ...  # the indices and index templates named `prefix-*`
    def close(self) -> None: ...


def shown_url(url: str) -> str:
    """The URL as it may appear in messages and logs: credentials written into it are masked."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _tls_verify(settings: SearchSettings) -> bool | str:
    """What `requests` calls `verify`: False, True (the system's CAs), or the CA bundle from the settings."""
    if not settings.verify_certs:
        return False
    if settings.ca_certs is None:
        return True
    if not settings.ca_certs.is_file():
        raise SearchError(f"LEPTON_SEARCH__CA_CERTS={settings.ca_certs} is not a readable file "
                          "(the PEM bundle of the CA that signed the search engine's certificate)")
    return str(settings.ca_certs)


def _auth(settings: SearchSettings) -> dict[str, Any]:
    """Credentials and TLS options shared by both clients (each renames what it calls differently)."""
    verify = _tls_verify(settings)
    options: dict[str, Any] = {"verify_certs": verify is not False, "request_timeout": settings.request_timeout_s}
    if isinstance(verify, str):
        options["ca_certs"] = verify
    if settings.username and settings.password:
        options["http_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.api_key:
        options["api_key"] = settings.api_key.get_secret_value()
    return options


def _auth_fix(settings: SearchSettings) -> str:
    """Which settings hold the credentials the server refused."""
    if settings.api_key:
        return "check LEPTON_SEARCH__API_KEY (the base64 `id:key` form)"
    if settings.username:
        return "check LEPTON_SEARCH__USERNAME and LEPTON_SEARCH__PASSWORD"
    return "set LEPTON_SEARCH__USERNAME and LEPTON_SEARCH__PASSWORD, or LEPTON_SEARCH__API_KEY"


def identify(settings: SearchSettings) -> tuple[Distribution, str]:
    """Ask the server at the URL what it is: ('opensearch' | 'elasticsearch', version number)."""
    headers = {}
    if settings.api_key:
        headers["Authorization"] = f"ApiKey {settings.api_key.get_secret_value()}"
    auth = (settings.username, settings.password.get_secret_value()) if settings.username and settings.password \
        else None
    url = shown_url(settings.url)
    verify = _tls_verify(settings)
    try:
        response = requests.get(settings.url, headers=headers, auth=auth, verify=verify,
                                timeout=settings.request_timeout_s)
        if response.status_code in (401, 403):
            raise SearchError(f"the search engine at {url} refused the credentials ({response.status_code} "
                              f"{response.reason}): {_auth_fix(settings)}")
        response.raise_for_status()
        version = response.json()["version"]
    except requests.exceptions.SSLError as error:
        raise SearchError(
            f"TLS with the search engine at {url} failed ({_ssl_reason(error)}): check LEPTON_SEARCH__CA_CERTS "
            "(the CA that signed the server's certificate) and that the URL's host name is in that certificate"
        ) from None
    except (requests.RequestException, ValueError, KeyError) as error:
        raise SearchError(
            f"could not identify the search engine at {url}: {error}. "
            "Is it running (`lepton up --only search`), and are LEPTON_SEARCH__URL and LEPTON_SEARCH__* right?"
        ) from None
    distribution: Distribution = "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
    return distribution, str(version["number"])


def _ssl_reason(error: Exception) -> str:
    """The innermost TLS reason (e.g. `certificate verify failed: unable to get local issuer certificate`)."""
    found = re.search(r"certificate verify failed[^(')\"]*", str(error))
    return found.group(0).strip() if found else str(error)[:300]


def connect(settings: SearchSettings) -> SearchClient:
    """A client for whatever answers at settings.url."""
    distribution, version = identify(settings)
    if distribution == "opensearch":
        from sinks.search_opensearch import OpenSearchClient

        return OpenSearchClient(settings, version, _auth(settings))
    if not version.startswith(("8.", "9.")):
        raise SearchError(f"Elasticsearch {version} at {shown_url(settings.url)} is not supported; use 8.x or 9.x.")
    from sinks.search_elasticsearch import ElasticsearchClient

    return ElasticsearchClient(settings, version, _auth(settings))


ALREADY_EXISTS = "resource_already_exists_exception"  # the error type of creating an index that exists

# What the sink reads of a bulk response; the engine leaves out the rest (version, shards, sequence numbers).
BULK_FILTER_PATH = "items.*._id,items.*._index,items.*.status,items.*.error"


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


def bulk_body(docs: Iterable[Doc]) -> bytes:
    """The NDJSON body of a bulk request: deterministic ids make a replay overwrite, not duplicate."""
    lines: list[bytes] = []
    for doc in docs:
        lines.append(orjson.dumps({"index": {"_index": doc.index, "_id": doc.id}}))
        lines.append(doc.source)
    return b"\n".join(lines) + b"\n" if lines else b""
