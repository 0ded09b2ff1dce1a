"""Item index: upserts overwrite, deletions leave no holes, the id map always matches the rows."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.item_index import EMBEDDING_DIM, ItemIndex, embed_items, item_text
from streams.core.events import CatalogItem
from tests.unit.recs_fakes import FakeEncoder, item


def vectors(n: int, start: float = 0.0) -> torch.Tensor:
    """Distinct recognisable rows: row i is filled with start + i."""
    return (torch.arange(n, dtype=torch.float32) + start).unsqueeze(1).repeat(1, EMBEDDING_DIM)


def test_upsert_inserts_then_overwrites_in_place() -> None:
    index = ItemIndex("cpu", capacity=2)
    index.upsert(["a", "b", "c"], vectors(3))  # grows past the initial capacity
    assert len(index) == 3 and index.ids == ["a", "b", "c"]
    index.upsert(["b"], vectors(1, start=42))
    assert len(index) == 3
    assert torch.equal(index.vector("b"), torch.full((EMBEDDING_DIM,), 42.0))
    assert torch.equal(index.vector("a"), torch.zeros(EMBEDDING_DIM))


def test_a_repeated_id_in_one_upsert_keeps_its_last_vector() -> None:
    index = ItemIndex("cpu")
    index.upsert(["a", "a"], vectors(2, start=1))
    assert len(index) == 1 and index.vector("a")[0] == 2.0


def test_delete_swaps_the_last_row_in_and_keeps_the_map_consistent() -> None:
    index = ItemIndex("cpu")
    index.upsert(["a", "b", "c", "d"], vectors(4))
    version = index.version
    assert index.delete(["b", "unknown"]) == 1
    assert len(index) == 3 and index.matrix.shape == (3, EMBEDDING_DIM)
    assert "b" not in index and index.row("b") is None and index.vector("b") is None
    assert sorted(index.ids) == ["a", "c", "d"]
    for item_id, value in {"a": 0.0, "c": 2.0, "d": 3.0}.items():
        assert index.vector(item_id)[0] == value
        assert torch.equal(index.matrix[index.row(item_id)], index.vector(item_id))
    assert index.version > version
    assert index.delete(["unknown"]) == 0


def test_vector_is_a_copy_that_survives_later_changes() -> None:
    index = ItemIndex("cpu")
    index.upsert(["a", "b"], vectors(2))
    kept = index.vector("a")
    index.delete(["a"])
    assert kept[0] == 0.0 and index.vector("b")[0] == 1.0


def test_apply_honours_record_order_and_the_deleted_flag() -> None:
    index = ItemIndex("cpu")
    index.upsert(["old"], vectors(1))
    records = [item("x"), CatalogItem(item_id="old", deleted=True), CatalogItem(item_id="x", deleted=True), item("x")]
    index.apply(records, vectors(2, start=5))
    assert index.ids == ["x"] and index.vector("x")[0] == 6.0  # deleted, then re-created with the last vector
    with pytest.raises(ValueError):
        index.apply([item("y")], vectors(2))


def test_upsert_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError):
        ItemIndex("cpu").upsert(["a"], torch.zeros(1, 10))


def test_item_text_joins_title_description_and_category() -> None:
    record = CatalogItem(item_id="i", title="Velde ultralight tent", description="Packs small.", category="outdoor",
                         price=99.0)
    assert item_text(record) == "Velde ultralight tent Packs small. Category: outdoor."


def test_embed_items_returns_one_normalised_row_per_item() -> None:
    encoder = FakeEncoder()
    out = embed_items([item("a", "books"), item("b", "toys")], encoder)
    assert out.shape == (2, EMBEDDING_DIM)
    assert torch.allclose(out.norm(dim=1), torch.ones(2))
    assert embed_items([], encoder).shape == (0, EMBEDDING_DIM) and encoder.calls == 1


ops = st.lists(st.tuples(st.sampled_from(["upsert", "delete"]), st.lists(st.sampled_from("abcdefg"), max_size=4)),
               max_size=30)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_index_matches_a_dict_after_any_sequence_of_changes(operations: list[tuple[str, list[str]]]) -> None:
    index = ItemIndex("cpu", capacity=1)
    expected: dict[str, float] = {}
    for step, (op, ids) in enumerate(operations):
        if op == "upsert":
            index.upsert(ids, vectors(len(ids), start=step * 10))
            expected.update({item_id: step * 10 + i for i, item_id in enumerate(ids)})
        else:
            index.delete(ids)
            for item_id in ids:
                expected.pop(item_id, None)
    assert sorted(index.ids) == sorted(expected) and index.matrix.shape[0] == len(expected)
    for item_id, value in expected.items():
        assert index.matrix[index.row(item_id), 0] == value
