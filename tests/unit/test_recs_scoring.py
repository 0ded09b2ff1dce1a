"""Batched top-K: order and shape, exclusion of seen and purchased items, cold start, the popularity window."""

from __future__ import annotations

import json

import pytest
import torch

from models.item_index import ItemIndex, embed_items
from models.recs import Popularity, UserState, recommend, update
from streams.core.settings import RecsSettings
from tests.unit.recs_fakes import T0, FakeEncoder, click, item

S = RecsSettings(popularity_weight=0.2, cold_start_interactions=2.0, recent_items=5)
CATEGORIES = ("books", "toys", "garden")


@pytest.fixture(scope="module")
def index() -> ItemIndex:
    """Six items in each of three categories."""
    records = [item(f"{category}-{n}", category) for category in CATEGORIES for n in range(6)]
    index = ItemIndex("cpu")
    index.upsert([r.item_id for r in records], embed_items(records, FakeEncoder()))
    return index


def popular(*item_ids: str, counts: int = 5) -> Popularity:
    """A popularity counter where earlier ids are more popular."""
    popularity = Popularity(window_s=3600)
    for rank, item_id in enumerate(item_ids):
        for _ in range(counts * (len(item_ids) - rank)):
            popularity.add(item_id, T0.timestamp())
    return popularity


def state_after(index: ItemIndex, *clicks: tuple[str, str]) -> UserState:
    """A user who did (item, action) in order, one second apart."""
    state = None
    for second, (item_id, action) in enumerate(clicks):
        state = update(state, click(item_id, second, action), index.vector(item_id), S)
    assert state is not None
    return state


def test_top_k_has_k_items_best_first(index: ItemIndex) -> None:
    state = state_after(index, ("toys-0", "view"), ("toys-1", "click"))
    [ranked] = recommend([state], index, popular(), k=4, settings=S)
    assert len(ranked) == 4
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(item_id.startswith("toys-") for item_id, _ in ranked)
    assert len({item_id for item_id, _ in ranked}) == 4


def test_seen_and_purchased_items_are_never_recommended(index: ItemIndex) -> None:
    clicks = [("books-0", "view"), ("books-1", "purchase"), *[(f"garden-{n}", "view") for n in range(5)]]
    state = state_after(index, *clicks)
    assert "books-0" not in state.recent  # fell out of the 5 recent items ...
    [ranked] = recommend([state], index, popular("books-1", "books-0"), k=len(index), settings=S)
    returned = {item_id for item_id, _ in ranked}
    assert returned.isdisjoint({f"garden-{n}" for n in range(5)} | {"books-1"})  # ... but the purchase stays out
    assert len(ranked) == len(index) - 6
    assert "books-0" in returned


def test_fewer_results_only_when_fewer_items_are_eligible(index: ItemIndex) -> None:
    state = state_after(index, *[(f"books-{n}", "view") for n in range(5)])
    [ranked] = recommend([state], index, popular(), k=100, settings=S)
    assert len(ranked) == len(index) - 5


def test_a_new_user_gets_the_popular_items(index: ItemIndex) -> None:
    popularity = popular("garden-3", "toys-2", "books-5")
    [ranked] = recommend([UserState("new")], index, popularity, k=3, settings=S)
    assert [item_id for item_id, _ in ranked] == ["garden-3", "toys-2", "books-5"]


def test_interest_takes_over_from_popularity_as_evidence_grows(index: ItemIndex) -> None:
    popularity = popular(*[f"garden-{n}" for n in range(6)])
    one = state_after(index, ("books-0", "view"))
    many = state_after(index, *[(f"books-{n % 2}", "purchase") for n in range(10)])
    [cold, warm] = recommend([one, many], index, popularity, k=3, settings=S)
    assert [item_id for item_id, _ in cold] == ["garden-0", "garden-1", "garden-2"]  # one view: still cold
    assert all(item_id.startswith("books-") for item_id, _ in warm)
    # within the user's category, popularity still orders the items
    popularity_books = popular("books-5", "books-4")
    [ranked] = recommend([many], index, popularity_books, k=2, settings=S)
    assert [item_id for item_id, _ in ranked] == ["books-5", "books-4"]


def test_batched_scoring_equals_one_user_at_a_time(index: ItemIndex) -> None:
    states = [state_after(index, (f"{c}-{n}", "view")) for c in CATEGORIES for n in range(2)] + [UserState("x")]
    popularity = popular("toys-3", "books-2")
    together = recommend(states, index, popularity, k=5, settings=S)
    alone = [recommend([state], index, popularity, k=5, settings=S)[0] for state in states]
    assert [[i for i, _ in r] for r in together] == [[i for i, _ in r] for r in alone]
    for a, b in zip(together, alone, strict=True):
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)


def test_empty_inputs_give_empty_lists(index: ItemIndex) -> None:
    assert recommend([], index, popular(), settings=S) == []
    assert recommend([UserState("u")], ItemIndex("cpu"), popular(), settings=S) == [[]]


def test_popularity_forgets_events_older_than_the_window() -> None:
    popularity = Popularity(window_s=100, buckets=10)
    t = T0.timestamp()
    popularity.add("old", t)
    popularity.add("old", t + 5)
    popularity.add("new", t + 95)
    assert popularity.count("old") == 2
    popularity.add("new", t + 150)  # the window now starts after the `old` events
    assert popularity.count("old") == 0 and popularity.count("new") == 2
    popularity.add("late", t + 10)  # older than the window: ignored
    assert popularity.count("late") == 0
    popularity.add("late", t + 120)  # late, but inside the window: counted
    assert popularity.top(2) == [("new", 2.0), ("late", 1.0)]
    assert popularity.top(2, exclude={"new"}) == [("late", 1.0)]


def test_popularity_prior_is_in_unit_range_and_follows_the_index_rows(index: ItemIndex) -> None:
    prior = popular("toys-2", "books-0").prior(index)
    assert prior.shape == (len(index),) and float(prior.max()) == 1.0 and float(prior.min()) == 0.0
    assert prior[index.row("toys-2")] > prior[index.row("books-0")] > prior[index.row("garden-0")]
    assert torch.equal(Popularity(window_s=10).prior(index), torch.zeros(len(index)))


def test_popularity_round_trips_through_json() -> None:
    popularity = Popularity(window_s=100, buckets=4)
    for second, item_id in enumerate(["a", "b", "a", "c"]):
        popularity.add(item_id, T0.timestamp() + second * 20)
    restored = Popularity.from_dict(json.loads(json.dumps(popularity.to_dict())))
    assert restored.top(3) == popularity.top(3)
    restored.add("b", T0.timestamp() + 200)  # and it keeps sliding
    assert restored.count("a") == 0
