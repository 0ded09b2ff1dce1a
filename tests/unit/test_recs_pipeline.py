"""The recommendation pipelines with a fake encoder, sink and publisher: index upkeep, sessions, item deltas folded
into shared statistics, outputs, replays."""

from __future__ import annotations

import json

import pytest
import torch

from models.item_index import ItemIndex, embed_items
from models.item_stats import ItemStats, StatsView
from models.recs import Scorer
from streams.core.decoding import Decoder
from streams.core.record import Record
from streams.core.settings import RecsSettings, Settings
from streams.worker.checkpoint import Checkpoint
from streams.worker.item_stats import ItemStatsPipeline, StatsFeed
from streams.worker.recs import CatalogPipeline, ClicksPipeline
from tests.unit.recs_fakes import FakeEncoder
from tests.unit.test_sentiment_pipeline import FakeSink

KEY = b"k" * 32


def catalog_record(offset: int, value: dict | None, key: str) -> Record:
    return Record("catalog", 0, offset, key.encode(), json.dumps(value).encode() if value is not None else None)


def item_json(item_id: str, category: str) -> dict:
    return {"item_id": item_id, "title": f"{category} thing {item_id}", "description": "nice", "category": category,
            "price": 12.5}


def click_record(offset: int, user: str, item_id: str, action: str = "view", second: int = 0,
                 partition: int = 0) -> Record:
    value = {"id": f"c-{offset}", "ts": f"2026-11-02T10:00:{second:02d}Z", "user_id": user, "session_id": f"s-{user}",
             "item_id": item_id, "action": action}
    return Record("clicks", partition, offset, user.encode(), json.dumps(value).encode())


class Harness:
    def __init__(self, publish_interval_s: float = 10.0) -> None:
        self.settings = Settings(recs=RecsSettings(publish_interval_s=publish_interval_s))
        self.decoder = Decoder(self.settings, pii_key=KEY)
        self.index = ItemIndex("cpu")
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.sink = FakeSink()
        self.states: dict[bytes, dict] = {}
        self.item_table: dict[bytes, dict] = {}
        self.view = StatsView()
        encoder = FakeEncoder()

        async def embed(items: list) -> list[torch.Tensor]:
            return list(embed_items(items, encoder))

        async def publish(topic: str, key: bytes, value: bytes) -> None:
            self.sent.append((topic, key, value))

        checkpoint = Checkpoint(self.settings, self.sink, publish, self.decoder.pii_key)
        self.catalog = CatalogPipeline(self.settings, self.decoder, checkpoint, embed, self.index)
        self.clicks = ClicksPipeline(self.settings, self.decoder, checkpoint, self.index,
                                     Scorer(self.index, self.view, self.settings.recs), self.states)
        self.item_stats = ItemStatsPipeline(self.settings, self.decoder, checkpoint, self.item_table)

    async def propagate(self) -> None:
        """What the topics do between workers: item-deltas to the item-stats stage, item-stats to every view."""
        deltas = [Record("item-deltas", 0, n, k, v) for n, (t, k, v) in enumerate(self.sent) if t == "item-deltas"]
        self.sent = [m for m in self.sent if m[0] != "item-deltas"]
        await self.item_stats.process(deltas)
        StatsFeed(self.view).apply([Record("item-stats", 0, n, k, v) for n, (t, k, v) in enumerate(self.sent)
                                    if t == "item-stats"])


async def test_catalog_upserts_and_deletes_by_flag_and_tombstone() -> None:
    h = Harness()
    categories = ["books", "garden", "books", "garden"]
    await h.catalog.process([catalog_record(i, item_json(f"item-{i}", c), f"item-{i}")
                             for i, c in enumerate(categories)])
    assert len(h.index) == 4
    outcome = await h.catalog.process([catalog_record(10, {"item_id": "item-0", "deleted": True}, "item-0"),
                                       catalog_record(11, None, "item-1"),
                                       catalog_record(12, {"item_id": "oops"}, "oops")])
    assert set(h.index.ids) == {"item-2", "item-3"}
    assert outcome.dead_letters == 1
    assert json.loads(h.sent[0][2])["error_type"] == "validation"


async def test_clicks_refresh_recommendations_in_the_users_category() -> None:
    h = Harness()
    items = [(f"b-{i}", "books") for i in range(6)] + [(f"g-{i}", "garden") for i in range(6)]
    await h.catalog.process([catalog_record(i, item_json(item_id, c), item_id) for i, (item_id, c) in enumerate(items)])
    await h.clicks.process([click_record(i, "user-1", f"g-{i}", "purchase" if i == 2 else "view", i)
                            for i in range(3)])
    doc = next(d for d in h.sink.written if d.id == "user-1")
    recommended = [r["item_id"] for r in doc.body["items"]]
    assert recommended[:3] == [i for i in recommended if i.startswith("g-")][:3]  # garden first
    assert not {"g-2"} & set(recommended)  # the item in view, bought, is excluded
    messages = [(k, json.loads(v)) for topic, k, v in h.sent if topic == "recommendations"]
    assert messages == [(b"user-1", json.loads(json.dumps(doc.body)))]  # topic and index agree
    state = h.states[b"user-1"]["state"]
    assert state["interactions"] == 3 and state["purchased"] == ["g-2"] and state["session"] == ["g-0", "g-1", "g-2"]


async def test_what_one_user_did_is_recommended_to_another_through_the_shared_statistics() -> None:
    h = Harness()
    items = [(f"b-{i}", "books") for i in range(6)] + [(f"g-{i}", "garden") for i in range(6)]
    await h.catalog.process([catalog_record(i, item_json(item_id, c), item_id) for i, (item_id, c) in enumerate(items)])
    # users on two partitions go from b-0 to g-5 (another category: text alone would never suggest it)
    await h.clicks.process([click_record(n, f"u{n}", item_id, second=n, partition=n % 2)
                            for n, item_id in enumerate(["b-0", "b-0", "b-0"])])
    await h.clicks.process([click_record(10 + n, f"u{n}", "g-5", second=10 + n, partition=n % 2) for n in range(3)])
    deltas = [json.loads(v) for t, _, v in h.sent if t == "item-deltas"]
    assert {d["item_id"] for d in deltas} == {"b-0", "g-5"}
    await h.propagate()
    assert h.item_table[b"b-0"]["next"] == {"g-5": pytest.approx(3.0, rel=1e-5)}
    assert h.item_table[b"b-0"]["sources"] == {"0": 12, "1": 11}
    assert h.view.get("b-0") == ItemStats.from_dict(h.item_table[b"b-0"] | {"sources": {}})
    await h.clicks.process([click_record(20, "newcomer", "b-0", second=30)])
    doc = next(d for d in reversed(h.sink.written) if d.id == "newcomer")
    assert doc.body["items"][0]["item_id"] == "g-5"


async def test_a_replayed_delta_batch_is_not_folded_twice() -> None:
    h = Harness()
    await h.catalog.process([catalog_record(0, item_json("b-0", "books"), "b-0"),
                             catalog_record(1, item_json("b-1", "books"), "b-1")])
    await h.clicks.process([click_record(0, "u", "b-0"), click_record(1, "u", "b-1", second=1)])
    deltas = [Record("item-deltas", 0, n, k, v) for n, (t, k, v) in enumerate(h.sent) if t == "item-deltas"]
    await h.item_stats.process(deltas)
    before = {key: json.loads(json.dumps(value)) for key, value in h.item_table.items()}
    published = len([1 for t, _, _ in h.sent if t == "item-stats"])
    outcome = await h.item_stats.process(deltas)  # redelivered after a crash, or re-sent by a replayed click batch
    assert h.item_table == before and outcome.scored == 0
    assert len([1 for t, _, _ in h.sent if t == "item-stats"]) == published
    bad = await h.item_stats.process([Record("item-deltas", 0, 99, b"x", b'{"item_id": "x", "deltas": []}')])
    assert bad.dead_letters == 1


async def test_at_most_one_message_per_user_per_interval() -> None:
    h = Harness(publish_interval_s=3600)
    await h.catalog.process([catalog_record(0, item_json("b-0", "books"), "b-0"),
                             catalog_record(1, item_json("b-1", "books"), "b-1")])
    await h.clicks.process([click_record(0, "user-1", "b-0")])
    await h.clicks.process([click_record(1, "user-1", "b-1", second=5)])
    assert len([1 for topic, _, _ in h.sent if topic == "recommendations"]) == 1
    assert len([d for d in h.sink.written if d.id == "user-1"]) == 2  # the document is still refreshed


async def test_a_replayed_batch_is_not_absorbed_twice() -> None:
    h = Harness()
    await h.catalog.process([catalog_record(0, item_json("b-0", "books"), "b-0")])
    batch = [click_record(7, "user-1", "b-0", "purchase")]
    await h.clicks.process(batch)
    before = dict(h.states[b"user-1"])
    sent = len(h.sent)
    await h.clicks.process(batch)  # redelivered after a crash
    assert h.states[b"user-1"] == before and before["offset"] == 7
    assert before["state"]["interactions"] == 1
    assert len(h.sent) == sent  # and no item deltas go out again


async def test_malformed_click_is_dead_lettered() -> None:
    h = Harness()
    outcome = await h.clicks.process([Record("clicks", 0, 5, b"u", b'{"id": "c"}')])
    assert outcome.dead_letters == 1 and h.sink.written == []
    assert json.loads(h.sent[0][2])["source_offset"] == 5


def test_the_stats_feed_keeps_the_latest_record_per_item_and_forgets_tombstones() -> None:
    view = StatsView()
    feed = StatsFeed(view)
    feed.apply([Record("item-stats", 0, 0, b"a", json.dumps(ItemStats("a", pop=1.0).to_dict(False)).encode()),
                Record("item-stats", 1, 0, b"b", json.dumps(ItemStats("b", pop=2.0).to_dict(False)).encode()),
                Record("item-stats", 0, 1, b"a", json.dumps(ItemStats("a", pop=3.0).to_dict(False)).encode()),
                Record("item-stats", 1, 1, b"b", None), Record("item-stats", 2, 0, b"c", b"{broken")])
    assert view.get("a") == ItemStats("a", pop=3.0) and view.get("b") is None and len(view) == 1
    assert feed.invalid == 1
