"""Search seam: 1,000 documents bulk-indexed are counted; indexing the same 1,000 again keeps the count."""

from __future__ import annotations

from sinks.search import Doc, connect
from streams.settings import Settings


def test_bulk_index_is_idempotent(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    index = f"it-seam-{unique}"
    docs = [Doc(index, f"evt-{i}", {"event_id": f"evt-{i}", "score": i / 1000}) for i in range(1000)]
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


def test_mapping_error_is_reported_per_item(settings: Settings, unique: str) -> None:
    client = connect(settings.search)
    index = f"it-mapping-{unique}"
    try:
        client.put_index_template(f"it-{unique}", {
            "index_patterns": [f"{index}*"],
            "template": {"mappings": {"properties": {"amount": {"type": "float"}}}},
        })
        result = client.bulk_index([Doc(index, "good", {"amount": 1.5}), Doc(index, "bad", {"amount": "lots"})])
        assert result.indexed == 1
        assert [(e.doc_id, e.status, e.retryable) for e in result.errors] == [("bad", 400, False)]
        assert "mapper_parsing_exception" in result.errors[0].reason
    finally:
        client.delete_index(index)
        client.close()
