"""Item statistics: folding deltas (decay, late deltas, pruning), exactly once per click, and the wire formats."""

from __future__ import annotations

import json

import pytest

from models.item_stats import Delta, ItemDeltas, ItemStats, StatsView, compact, fold, merge, session_deltas
from streams.core.settings import RecsSettings

S = RecsSettings(neighbour_half_life_s=100.0, popularity_half_life_s=50.0, neighbours=2)


def test_deltas_add_up_and_decay_in_event_time() -> None:
    stats, absorbed = fold(None, "a", [Delta("a", 1000.0, 0, 1, pop=1.0, next={"b": 1.0}),
                                       Delta("a", 1100.0, 0, 2, pop=1.0, next={"b": 1.0, "c": 0.5})], S)
    assert absorbed == 2 and stats.at == 1100.0
    assert stats.next == pytest.approx({"b": 1.5, "c": 0.5})  # the first b halved over one half-life
    assert stats.pop == pytest.approx(1.25)  # popularity: two half-lives of its own
    late, _ = fold(ItemStats.from_dict(stats.to_dict()), "a", [Delta("a", 1000.0, 1, 7, co={"d": 1.0})], S)
    assert late.at == 1100.0 and late.co == pytest.approx({"d": 0.5})  # a late delta is added already decayed


def test_a_replayed_click_is_absorbed_once() -> None:
    first = [Delta("a", 10.0, 0, 5, pop=1.0), Delta("a", 11.0, 1, 3, pop=1.0)]
    stats, absorbed = fold(None, "a", first, S)
    again, absorbed_again = fold(stats, "a", [*first, Delta("a", 12.0, 0, 6, pop=1.0)], S)
    assert stats.sources == {"0": 5, "1": 3}  # folding returns new statistics, the old ones are left as they were
    assert (absorbed, absorbed_again) == (2, 1)
    assert again.sources == {"0": 6, "1": 3}
    assert again.pop == pytest.approx(stats.pop * 0.5 ** (1 / 50) + 1)


def test_neighbour_lists_stay_bounded_and_compact_keeps_the_strongest() -> None:
    deltas = [Delta("a", 0.0, 0, n, next={f"x{n}": float(n)}) for n in range(10)]
    stats, _ = fold(None, "a", deltas, S)
    assert len(stats.next) <= 2 * S.neighbours
    assert compact(stats, S).next == {"x9": 9.0, "x8": 8.0} and compact(stats, S).sources == {}


def test_session_deltas_and_merge_group_by_item_in_order() -> None:
    deltas = session_deltas(["a", "b"], "c", 5.0, 2, 9, S) + session_deltas(["a", "b", "c"], "a", 6.0, 2, 10, S)
    grouped = merge(deltas)
    # a: led to c (gap 2) and shared the session with it, then its own view again (popularity; no new pair)
    assert [(d.offset, d.pop, d.next, d.co) for d in grouped["a"]] == [
        (9, 0.0, {"c": 0.5}, {}), (9, 0.0, {}, {"c": 1.0}), (10, 1.0, {}, {})]
    assert grouped["c"][0].pop == 1.0 and grouped["b"][0].next == {"c": 1.0}


def test_wire_formats_round_trip() -> None:
    deltas = session_deltas(["a"], "b", 5.0, 0, 1, S)
    message = ItemDeltas.model_validate_json(ItemDeltas.encode("b", merge(deltas)["b"]))
    assert message.item_id == "b" and message.entries() == merge(deltas)["b"]
    stats, _ = fold(None, "b", message.entries(), S)
    assert ItemStats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats
    with pytest.raises(ValueError):
        ItemDeltas.model_validate({"item_id": "b", "deltas": [{"ts": 1.0, "p": 0, "o": 1, "pop": -1}]})


def test_the_view_tracks_what_changed() -> None:
    view = StatsView()
    view.put(ItemStats("a"))
    view.put(ItemStats("b"))
    assert view.take_dirty() == {"a", "b"} and view.take_dirty() == set()
    view.put(ItemStats("a", pop=2.0))
    assert view.take_dirty() == {"a"} and view.get("a") == ItemStats("a", pop=2.0) and len(view) == 2
