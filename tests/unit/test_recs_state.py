"""User interest state: event-time decay, action weights, bounded recent/purchased lists, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from models.item_stats import decay
from models.recs import (
    MODEL_NAME,
    MODEL_VERSION,
    UserState,
    click_deltas,
    context,
    due_for_publish,
    mark_published,
    recommendation_doc,
    update,
)
from streams.core.settings import RecsSettings
from tests.unit.recs_fakes import T0, click

S = RecsSettings(half_life_s=100.0, weight_view=1.0, weight_click=2.0, weight_add_to_cart=3.0, weight_purchase=5.0,
                 recent_items=3, purchased_items=2)


def unit(i: int, dim: int = 8) -> np.ndarray:
    vector = np.zeros(dim)
    vector[i] = 1.0
    return vector


def test_first_click_adds_the_action_weighted_item_vector() -> None:
    state = update(None, click("a", 0, "click"), unit(0), S)
    assert state.user_id == "user-1"
    assert state.vector == pytest.approx(2.0 * unit(0))
    assert state.weight == pytest.approx(2.0)
    assert state.interactions == 1
    assert state.recent == ["a"] and state.purchased == []
    assert state.updated_at == pytest.approx(T0.timestamp())


def test_older_interest_halves_every_half_life() -> None:
    state = update(None, click("a", 0), unit(0), S)
    state = update(state, click("b", 100), unit(1), S)
    assert state.vector == pytest.approx(0.5 * unit(0) + unit(1))
    assert state.weight == pytest.approx(1.5)
    state = update(state, click("c", 300), unit(2), S)
    assert state.vector == pytest.approx(0.125 * unit(0) + 0.25 * unit(1) + unit(2))
    assert decay(200, 100) == pytest.approx(0.25)


def test_a_late_event_is_added_already_decayed_so_order_does_not_matter() -> None:
    in_order = update(update(None, click("a", 0), unit(0), S), click("b", 100, "purchase"), unit(1), S)
    late = update(update(None, click("b", 100, "purchase"), unit(1), S), click("a", 0), unit(0), S)
    assert late.vector == pytest.approx(in_order.vector)
    assert late.weight == pytest.approx(in_order.weight)
    assert late.updated_at == pytest.approx(T0.timestamp() + 100)


def test_purchases_weigh_more_than_views() -> None:
    viewed = update(None, click("a", 0, "view"), unit(0), S)
    bought = update(None, click("a", 0, "purchase"), unit(0), S)
    assert np.linalg.norm(bought.vector) == pytest.approx(5.0 * np.linalg.norm(viewed.vector))
    assert bought.purchased == ["a"] and viewed.purchased == []


def test_recent_and_purchased_lists_are_bounded_and_most_recent_last() -> None:
    state = None
    for second, item_id in enumerate(["a", "b", "c", "d", "b"]):
        state = update(state, click(item_id, second), unit(0), S)
    assert state is not None
    assert state.recent == ["c", "d", "b"]  # `b` moved to the end, not duplicated; `a` fell off
    for second, item_id in enumerate(["x", "y", "z"], start=10):
        state = update(state, click(item_id, second, "purchase"), unit(1), S)
    assert state.purchased == ["y", "z"]
    assert state.excluded() == {"y", "z"}  # the item in view (z) and the last 2 buys; seen items may come back


def test_an_item_not_yet_embedded_still_counts_as_seen_but_adds_no_interest() -> None:
    state = update(None, click("a", 0), unit(0), S)
    state = update(state, click("ghost", 100), None, S)
    assert state.vector == pytest.approx(0.5 * unit(0))
    assert state.interactions == 2 and "ghost" in state.recent
    assert update(None, click("ghost", 0), None, S).vector == []


def test_the_session_keeps_its_items_in_order_and_starts_over_with_a_new_session() -> None:
    state = None
    for second, (item_id, action) in enumerate([("a", "view"), ("a", "click"), ("b", "view"), ("a", "view")]):
        state = update(state, click(item_id, second, action), None, S)
    assert state is not None and state.session_id == "sess-1"
    assert state.session == ["a", "b", "a"]  # a second action on the item in view is no step; going back is
    later = update(state, click("c", 100).model_copy(update={"session_id": "sess-2"}), None, S)
    assert later.session == ["c"] and later.recent == ["b", "a", "c"]
    assert context(later, RecsSettings(position_decay=0.5, history_weight=0.3)) == pytest.approx(
        {"c": 1.0, "a": 0.3, "b": 0.15})  # the session by position, earlier sessions fainter


def test_a_click_sends_popularity_transitions_and_co_occurrence_deltas() -> None:
    settings = RecsSettings(sequence_gap=2)
    state = None
    for second, item_id in enumerate(["a", "b", "c"]):
        state = update(state, click(item_id, second), None, settings)
    deltas = click_deltas(state, click("d", 9), partition=1, offset=42, settings=settings)
    by_item = {(d.item_id, "pop" if d.pop else "next" if d.next else "co"): d for d in deltas}
    assert by_item[("d", "pop")].pop == 1.0
    assert by_item[("c", "next")].next == {"d": 1.0} and by_item[("b", "next")].next == {"d": 0.5}
    assert ("a", "next") not in by_item  # beyond the gap
    assert by_item[("d", "co")].co == {"a": 1.0, "b": 1.0, "c": 1.0} and by_item[("a", "co")].co == {"d": 1.0}
    assert {(d.partition, d.offset) for d in deltas} == {(1, 42)}
    again = click_deltas(state, click("c", 10, "click"), partition=1, offset=43, settings=settings)
    assert [(d.item_id, d.pop) for d in again] == [("c", 1.0)]  # an action on the item in view: popularity only


def test_state_round_trips_through_json() -> None:
    state = update(update(None, click("a", 0), np.linspace(-1, 1, 384), S), click("b", 5, "purchase"), None, S)
    restored = UserState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    assert len(restored.vector) == 384


def test_settings_refuse_purchases_worth_no_more_than_views() -> None:
    with pytest.raises(ValidationError):
        RecsSettings(weight_view=2.0, weight_purchase=2.0)
    assert RecsSettings().weight_purchase > RecsSettings().weight_view


def test_topic_messages_go_out_at_most_once_per_interval() -> None:
    settings = RecsSettings(publish_interval_s=10)
    state = update(None, click("a", 0), unit(0), S)
    assert due_for_publish(state, 1000.0, settings)
    state = mark_published(state, 1000.0)
    assert not due_for_publish(state, 1009.9, settings)
    assert due_for_publish(state, 1010.0, settings)
    assert UserState.from_dict(json.loads(json.dumps(state.to_dict()))).published_at == 1000.0


def test_the_document_carries_ranked_items_model_and_the_triggering_click() -> None:
    event = click("a", 5, "purchase")
    state = update(None, event, unit(0), S)
    doc = recommendation_doc(state, [("x", 0.9), ("y", 0.5)], event, topic="clicks", partition=2, offset=17,
                             processed_at=T0)
    assert [(r.item_id, r.rank, r.score) for r in doc.items] == [("x", 1, 0.9), ("y", 2, 0.5)]
    assert (doc.user_id, doc.event_id, doc.trigger_item_id) == ("user-1", event.id, "a")
    assert (doc.model_name, doc.model_version) == (MODEL_NAME, MODEL_VERSION)
    assert doc.updated_at == T0 and doc.offset == 17
