"""`lepton demo` ends once every event is accounted for, not once it was merely consumed."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from streams.tools.demo import _settled


def feed(sent: int, done: bool = True) -> Any:
    event = threading.Event()
    if done:
        event.set()
    return SimpleNamespace(sent=sent, done=event)


def figures(consumed: int, scored: int, dead: int) -> dict[str, float]:
    return {"consumed": consumed, "scored": scored, "dead letters": dead}


def test_the_demo_waits_until_consumed_events_are_scored_or_dead_lettered() -> None:
    feeds = {"news": feed(100), "transactions": feed(300)}
    # All consumed, but a 512-event fraud batch is still being scored: not settled (the summary would under-count).
    busy = {"news": figures(100, 98, 2), "transactions": figures(300, 0, 1)}
    assert not _settled(feeds, busy, quiet_s=0.0)
    done = {"news": figures(100, 98, 2), "transactions": figures(300, 299, 1)}
    assert _settled(feeds, done, quiet_s=0.0)


def test_the_demo_does_not_end_before_every_feed_is_sent_and_consumed() -> None:
    all_scored = {"news": figures(100, 100, 0)}
    assert not _settled({"news": feed(100, done=False)}, all_scored, quiet_s=60.0)
    assert not _settled({"news": feed(120)}, all_scored, quiet_s=60.0)


def test_skipped_replays_do_not_hold_the_demo_forever() -> None:
    # A replay after a rebalance is neither scored nor dead-lettered: once nothing moves for 5 s, it is settled.
    feeds, stuck = {"news": feed(100)}, {"news": figures(100, 95, 0)}
    assert not _settled(feeds, stuck, quiet_s=4.0)
    assert _settled(feeds, stuck, quiet_s=5.0)
