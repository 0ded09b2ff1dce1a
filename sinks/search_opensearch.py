"""OpenSearch behind the search seam, with the official `opensearch-py` client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opensearchpy import NotFoundError, OpenSearch, RequestError

from sinks.search import ALREADY_EXISTS, BULK_FILTER_PATH, BulkResult, Doc, bulk_body, bulk_result
from streams.core.settings import SearchSettings

POOL_SIZE = 10  # connections kept open: as many as elasticsearch-py keeps per node by default


class OpenSearchClient:
    """SearchClient for OpenSearch 1.x-3.x."""

    distribution = "opensearch"

    def __init__(self, settings: SearchSettings, version: str, options: dict[str, Any]) -> None:
        self.version = version
        timeout = options.pop("request_timeout")
        api_key = options.pop("api_key", None)  # opensearch-py has no api_key option: send the header itself
        headers = {"authorization": f"ApiKey {api_key}"} if api_key else None
        # pool_maxsize: opensearch-py keeps one connection by default; bulks run concurrently (one per micro-batch
        # in flight, in threads), and each one past the first would open and then discard a connection.
        self._client = OpenSearch(hosts=[settings.url], timeout=timeout, headers=headers, pool_maxsize=POOL_SIZE,
                                  ssl_show_warn=options["verify_certs"], **options)

    def bulk_index(self, docs: Iterable[Doc]) -> BulkResult:
        body = bulk_body(docs)
        if not body:
            return BulkResult(0)
        return bulk_result(self._client.bulk(body=body, filter_path=BULK_FILTER_PATH)["items"])

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self._client.indices.put_index_template(name=name, body=body)

    def create_index(self, index: str) -> None:
        try:
            self._client.indices.create(index=index)
        except RequestError as error:
            if error.error != ALREADY_EXISTS:
                raise

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        try:
            return int(self._client.count(index=index, body={"query": query} if query else None)["count"])
        except NotFoundError:
            return 0

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._client.search(index=index, body=body)

    def refresh(self, index: str) -> None:
        self._client.indices.refresh(index=index, ignore_unavailable=True)

    def delete_index(self, index: str) -> None:
        self._client.indices.delete(index=index, ignore_unavailable=True)

    def delete_prefix(self, prefix: str) -> None:
        self._client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        self._client.indices.delete_index_template(name=f"{prefix}-*", ignore=404)

    def close(self) -> None:
        self._client.close()
