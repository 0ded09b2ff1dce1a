"""Batched next-item scoring: transitions by position, repeats, text for new items, popularity over days, exclusions."""

from __future__ import annotations

import pytest
import torch

from models.item_index import ItemIndex, embed_items
from models.item_stats import ItemStats, StatsView
from models.recs import Scorer, UserState, update
from streams.core.settings import RecsSettings
from tests.unit.recs_fakes import T0, FakeEncoder, click, item

S = RecsSettings(recent_items=5)
CATEGORIES = ("books", "toys", "garden")
DAY = 86_400.0


@pytest.fixture
def index() -> ItemIndex:
    """Six items in each of three categories."""
    records = [item(f"{category}-{n}", category) for category in CATEGORIES for n in range(6)]
    index = ItemIndex("cpu")
    index.upsert([r.item_id for r in records], embed_items(records, FakeEncoder()))
    return index


def view_of(*stats: ItemStats) -> StatsView:
    view = StatsView()
    for entry in stats:
        view.put(entry)
    return view


def state_after(index: ItemIndex, *clicks: tuple[str, str], settings: RecsSettings = S) -> UserState:
    """A user who did (item, action) in order, one second apart, in one session."""
    state = None
    for second, (item_id, action) in enumerate(clicks):
        state = update(state, click(item_id, second, action), index.vector(item_id), settings)
    assert state is not None
    return state


def test_the_items_that_followed_the_item_in_view_come_first(index: ItemIndex) -> None:
    view = view_of(ItemStats("toys-0", at=T0.timestamp(), next={"garden-2": 5.0, "books-4": 2.0}))
    state = state_after(index, ("toys-0", "view"))
    [ranked] = Scorer(index, view, S).recommend([state], k=4)
    assert [item_id for item_id, _ in ranked[:2]] == ["garden-2", "books-4"]
    scores = [score for _, score in ranked]
    assert len(ranked) == 4 and scores == sorted(scores, reverse=True)


def test_recent_items_of_the_session_weigh_more_than_older_ones(index: ItemIndex) -> None:
    view = view_of(ItemStats("books-0", next={"garden-0": 3.0}), ItemStats("toys-0", next={"garden-5": 3.0}))
    older_first = state_after(index, ("books-0", "view"), ("toys-0", "view"))
    newer_first = state_after(index, ("toys-0", "view"), ("books-0", "view"))
    ranked = Scorer(index, view, S).recommend([older_first, newer_first], k=2)
    assert (ranked[0][0][0], ranked[1][0][0]) == ("garden-5", "garden-0")


def test_the_item_in_view_and_purchases_are_never_recommended_but_earlier_views_may_be(index: ItemIndex) -> None:
    view = view_of(ItemStats("toys-1", next={"toys-0": 9.0, "books-1": 8.0, "toys-2": 1.0}))
    state = state_after(index, ("toys-0", "view"), ("books-1", "purchase"), ("toys-1", "view"))
    [ranked] = Scorer(index, view, S).recommend([state], k=len(index))
    ids = [item_id for item_id, _ in ranked]
    assert "toys-1" not in ids and "books-1" not in ids
    assert ids[0] == "toys-0"  # a repeat view of the session's earlier item is allowed
    assert len(ids) == len(index) - 2


def test_a_new_item_without_behaviour_is_recommended_by_its_text(index: ItemIndex) -> None:
    state = state_after(index, ("garden-0", "view"))
    [ranked] = Scorer(index, StatsView(), S).recommend([state], k=5)
    assert {item_id for item_id, _ in ranked} == {f"garden-{n}" for n in range(1, 6)}


def test_popularity_counts_over_days_and_fades(index: ItemIndex) -> None:
    settings = RecsSettings(weight_text=0.0, weight_interest=0.0, weight_repeat=0.0, popularity_half_life_s=DAY)
    now = T0.timestamp()
    view = view_of(ItemStats("books-3", at=now - 10 * DAY, pop=100.0), ItemStats("toys-4", at=now, pop=2.0),
                   ItemStats("garden-1", at=now, pop=1.0))
    [ranked] = Scorer(index, view, settings).recommend([state_after(index, ("books-0", "view"))], k=3)
    assert [item_id for item_id, _ in ranked] == ["toys-4", "garden-1", "books-3"]  # 100 ten half-lives ago < 1


def test_live_mask_limits_the_candidates(index: ItemIndex) -> None:
    live = torch.tensor([item_id.startswith("toys") for item_id in index.ids])
    [ranked] = Scorer(index, StatsView(), S).recommend([state_after(index, ("books-0", "view"))], k=20, live=live)
    assert {item_id for item_id, _ in ranked} == {f"toys-{n}" for n in range(6)}


def test_one_batch_gives_what_one_user_at_a_time_gives(index: ItemIndex) -> None:
    view = view_of(ItemStats("books-0", pop=3.0, next={"toys-2": 2.0}, co={"garden-3": 4.0}),
                   ItemStats("toys-2", pop=5.0, next={"books-5": 1.0}))
    states = [state_after(index, ("books-0", "view")), state_after(index, ("books-0", "view"), ("toys-2", "click")),
              state_after(index, ("garden-4", "purchase"))]
    scorer = Scorer(index, view, S)
    batched = scorer.recommend(states, k=6)
    for state, expected in zip(states, batched, strict=True):
        [alone] = scorer.recommend([state], k=6)
        assert [i for i, _ in alone] == [i for i, _ in expected]
        assert [s for _, s in alone] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_changed_statistics_and_catalog_changes_are_picked_up(index: ItemIndex) -> None:
    view = view_of(ItemStats("books-0", next={"toys-1": 5.0}))
    scorer = Scorer(index, view, S)
    state = state_after(index, ("books-0", "view"))
    assert scorer.recommend([state], k=1)[0][0][0] == "toys-1"
    view.put(ItemStats("books-0", next={"toys-1": 5.0, "garden-5": 10.0}))
    assert scorer.recommend([state], k=1)[0][0][0] == "garden-5"
    index.delete(["garden-5"])  # rows move: the cached neighbour rows must follow
    assert scorer.recommend([state], k=1)[0][0][0] == "toys-1"
