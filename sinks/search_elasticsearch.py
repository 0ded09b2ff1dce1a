"""Elasticsearch 8.x/9.x behind the search seam, with the official `elasticsearch` client."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from sinks.search import ALREADY_EXISTS, BULK_FILTER_PATH, BulkResult, Doc, bulk_body, bulk_result
from streams.core.settings import SearchSettings


class ElasticsearchClient:
    """SearchClient for Elasticsearch."""

    distribution = "elasticsearch"

    def __init__(self, settings: SearchSettings, version: str, options: dict[str, Any]) -> None:
        self.version = version
        if "http_auth" in options:
            options["basic_auth"] = options.pop("http_auth")
        self._client = Elasticsearch(hosts=[settings.url], **options)

    def bulk_index(self, docs: Iterable[Doc]) -> BulkResult:
        operations = bulk_body(docs)
        if not operations:
            return BulkResult(0)
        return bulk_result(self._client.bulk(operations=operations, filter_path=BULK_FILTER_PATH)["items"])

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self._client.indices.put_index_template(name=name, **body)

    def create_index(self, index: str) -> None:
        try:
            self._client.indices.create(index=index)
        except BadRequestError as error:
            if error.error != ALREADY_EXISTS:
                raise

    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        try:
            return int(self._client.count(index=index, query=query)["count"])
        except NotFoundError:
            return 0

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._client.search(index=index, **body).body

    def refresh(self, index: str) -> None:
        self._client.indices.refresh(index=index, ignore_unavailable=True)

    def delete_index(self, index: str) -> None:
        self._client.indices.delete(index=index, ignore_unavailable=True)

    def delete_prefix(self, prefix: str) -> None:
        self._client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        self._client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")

    def close(self) -> None:
        self._client.close()
