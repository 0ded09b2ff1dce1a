"""Search seam: 1,000 documents bulk-indexed are counted; indexing the same 1,000 again keeps the count; the
project's index templates reach the engine with the configured refresh interval; a run's indices and templates are
deleted by prefix."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from sinks.search import Doc, connect
from sinks.templates import templates
from streams.core.settings import Settings


def test_bulk_index_is_idempotent(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    index = f"it-seam-{unique}"
    docs = [Doc.of(index, f"evt-{i}", {"event_id": f"evt-{i}", "score": i / 1000}) for i in range(1000)]
    try:
        first = client.bulk_index(docs)
        client.refresh(index)
        assert (first.indexed, first.errors) == (1000, [])
        assert client.count(index) == 1000

        again = client.bulk_index(docs)
        client.refresh(index)
        assert (again.indexed, again.errors) == (1000, [])
        assert client.count(index) == 1000
        hits = client.search(index, {"query": {"ids": {"values": ["evt-7"]}}})["hits"]["hits"]
        assert hits[0]["_source"] == {"event_id": "evt-7", "score": 0.007}
    finally:
        client.delete_index(index)
        client.close()


def test_create_index_applies_its_template_and_leaves_an_existing_index_alone(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    prefix = f"it-create-{unique}"
    index = f"{prefix}-news-2026.11"
    try:
        client.put_index_template(f"{prefix}-news", {
            "index_patterns": [f"{prefix}-news-*"],
            "template": {"mappings": {"properties": {"score": {"type": "float"}}}},
        })
        client.create_index(index)
        assert client.bulk_index([Doc.of(index, "a", {"score": 0.5})]).indexed == 1
        client.create_index(index)  # exists: kept as it is, with its document
        client.refresh(index)
        assert client.count(index) == 1
        refused = client.bulk_index([Doc.of(index, "b", {"score": "high"})]).errors  # the template's mapping holds
        assert [(e.doc_id, e.status) for e in refused] == [("b", 400)]
        with pytest.raises(Exception, match="invalid_index_name_exception"):  # other refusals are not swallowed
            client.create_index(f"{prefix}-News")
    finally:
        client.delete_prefix(prefix)
        client.close()


def test_the_projects_templates_set_the_configured_refresh_interval(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    prefix = f"it-refresh-{unique}"
    try:
        for name, body in templates(prefix, refresh_interval_s=2.5).items():
            client.put_index_template(name, body)
        client.create_index(f"{prefix}-news-2026.11")
        with urllib.request.urlopen(f"{settings.search.url}/{prefix}-news-2026.11/_settings", timeout=10) as answer:
            index = json.load(answer)[f"{prefix}-news-2026.11"]["settings"]["index"]
        assert (index["refresh_interval"], index["number_of_replicas"]) == ("2500ms", "0")
    finally:
        client.delete_prefix(prefix)
        client.close()


def test_mapping_error_is_reported_per_item(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    index = f"it-mapping-{unique}"
    try:
        client.put_index_template(f"it-{unique}", {
            "index_patterns": [f"{index}*"],
            "template": {"mappings": {"properties": {"amount": {"type": "float"}}}},
        })
        result = client.bulk_index([Doc.of(index, "good", {"amount": 1.5}), Doc.of(index, "bad", {"amount": "lots"})])
        assert result.indexed == 1
        assert [(e.doc_id, e.status, e.retryable) for e in result.errors] == [("bad", 400, False)]
        assert "mapper_parsing_exception" in result.errors[0].reason
    finally:
        client.delete_index(index)
        client.close()


def _names(settings: Settings, path: str, key: str) -> list[str]:
    """Names listed by a GET on the engine's REST API (an absent pattern answers 404: none)."""
    try:
        with urllib.request.urlopen(f"{settings.search.url}/{path}", timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise
    return sorted(item[key] for item in (body if isinstance(body, list) else body["index_templates"]))


def test_delete_prefix_removes_a_runs_indices_and_templates_and_nothing_else(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    run, other = f"it-run-{unique}", f"it-keep-{unique}"
    try:
        for prefix in (run, other):
            client.put_index_template(f"{prefix}-news", {"index_patterns": [f"{prefix}-news-*"], "template": {}})
            assert client.bulk_index([Doc.of(f"{prefix}-news-2026.11", "a", {"x": 1})]).indexed == 1
        client.delete_prefix(run)
        client.delete_prefix(run)  # nothing left to delete is not an error
        for prefix, left in ((run, []), (other, [f"{other}-news"])):
            assert _names(settings, f"_index_template/{prefix}-*", "name") == left
            assert _names(settings, f"_cat/indices/{prefix}-*?format=json&h=index", "index") == [
                f"{name}-2026.11" for name in left]
    finally:
        client.delete_prefix(other)
        client.close()
