"""Negative-news surge detection per ticker, in event time, from state that can be stored and restored.

Each ticker keeps one-minute buckets of (items, negative items, a few negative event ids) in a `TickerWindow`. A
surge starts when the recent window holds at least `min_negative` negative items, they are at least `min_share` of
the window's items, and so many negatives would be very unlikely (binomial tail below `max_p_value`) if the ticker's
trailing-baseline share held. The baseline share is smoothed towards `prior_share`, so a ticker without history is
not alarming after a few unlucky items. One alert is raised per surge; the surge ends once the condition has not held
for a whole window, and a later surge raises a new alert. The alert id is derived from the ticker and the minute the
surge started, so a replay raises the same id (consumers de-duplicate on it).

A window is a plain value (`to_dict` / `from_dict`), so a worker keeps it in a table keyed by ticker and a restart
continues it. Each bucket remembers the ids it counted: an item seen again (a headline scored twice after a crash)
is not counted twice. Items come in the order the sentiment stage's workers finish them, not quite in event time: an
item from before the latest minute seen is tested in each window it falls in, not only the latest one (in event-time
order the two are the same). Items older than the baseline (their buckets already forgotten) are ignored; they
could not change the window or the baseline anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, StrictBool
from scipy.stats import binom

from streams.core.events import InputEvent
from streams.core.events.base import Identifier, Ticker, UtcTime
from streams.core.settings import SurgeSettings

BUCKET_S = 60
MAX_EXAMPLES = 5


@dataclass
class _Bucket:
    ids: set[str] = field(default_factory=set)  # every event counted in this minute
    negative: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Surge:
    """A detected surge: what the alert says about it."""

    alert_id: str
    ticker: str
    started_at: datetime
    negative: int
    items: int
    share: float
    baseline_share: float
    p_value: float
    event_ids: list[str]


@dataclass
class TickerWindow:
    """One ticker's state: minute buckets of the window and the baseline, the latest minute seen, and the minute up
    to which the current surge counts as ongoing."""

    buckets: dict[int, _Bucket] = field(default_factory=dict)
    latest: int = -1
    surge_until: int = -1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"latest", "surge_until", "buckets": {minute: [negative, examples, sorted ids]}}."""
        return {"latest": self.latest, "surge_until": self.surge_until,
                "buckets": {str(minute): [b.negative, b.examples, sorted(b.ids)]
                            for minute, b in sorted(self.buckets.items())}}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TickerWindow:
        buckets = {int(minute): _Bucket(set(ids), int(negative), list(examples))
                   for minute, (negative, examples, ids) in value["buckets"].items()}
        return cls(buckets, int(value["latest"]), int(value["surge_until"]))


class SurgeDetector:
    """Feeds on (ticker, event time, negative?, event id) and returns the surges that begin."""

    def __init__(self, settings: SurgeSettings) -> None:
        self.settings = settings
        self._windows: dict[str, TickerWindow] = {}  # for `observe`: windows kept in this object

    def observe(self, ticker: str, event_time: datetime, negative: bool, event_id: str) -> Surge | None:
        """Count one scored item in a window this detector keeps; return a Surge when this item starts one."""
        return self.step(self._windows.setdefault(ticker, TickerWindow()), ticker, event_time, negative, event_id)

    def step(self, window: TickerWindow, ticker: str, event_time: datetime, negative: bool, event_id: str
             ) -> Surge | None:
        """Count one scored item in `window` (updated in place); return a Surge when this item starts one. An id
        the window already counted, or an item older than the baseline, changes nothing. Every window the item
        falls in that has ended by the latest minute seen is tested, earliest first: in event-time order that is
        the latest window alone, and a late item (its partition was behind the others) counts where it belongs."""
        minute = int(event_time.timestamp()) // BUCKET_S
        if window.latest >= 0 and minute < self._horizon(window.latest):
            return None
        bucket = window.buckets.setdefault(minute, _Bucket())
        if event_id in bucket.ids:
            return None
        bucket.ids.add(event_id)
        if negative:
            bucket.negative += 1
            if len(bucket.examples) < MAX_EXAMPLES:
                bucket.examples.append(event_id)
        if minute > window.latest:
            window.latest = minute
            horizon = self._horizon(minute)
            for old in [m for m in window.buckets if m < horizon]:
                del window.buckets[old]
        window_min = max(1, self.settings.window_s // BUCKET_S)
        surges = [self._evaluate(ticker, window, end) for end in range(minute, min(minute + window_min - 1,
                                                                                  window.latest) + 1)]
        return next((surge for surge in surges if surge is not None), None)

    def _horizon(self, latest: int) -> int:
        """The oldest minute still kept: buckets before it are outside the window and the baseline."""
        return latest - (self.settings.window_s + self.settings.baseline_s) // BUCKET_S - 1

    def _evaluate(self, ticker: str, state: TickerWindow, end: int) -> Surge | None:
        """Test the window that ends with minute `end` against its baseline; a Surge when one begins there."""
        s = self.settings
        window_min, baseline_min = max(1, s.window_s // BUCKET_S), max(1, s.baseline_s // BUCKET_S)
        window = [state.buckets[m] for m in range(end - window_min + 1, end + 1) if m in state.buckets]
        items = sum(b.items for b in window)
        negative = sum(b.negative for b in window)
        share = negative / items if items else 0.0
        if not (negative >= s.min_negative and share >= s.min_share):
            return None  # the common case: no need for the baseline or the binomial tail
        baseline = [state.buckets[m] for m in range(end - window_min - baseline_min + 1, end - window_min + 1)
                    if m in state.buckets]
        baseline_share = (sum(b.negative for b in baseline) + s.prior_share * s.prior_weight) / (
            sum(b.items for b in baseline) + s.prior_weight)
        p_value = float(binom.sf(negative - 1, items, baseline_share))
        if p_value > s.max_p_value:
            return None
        started = end > state.surge_until
        state.surge_until = max(state.surge_until, end + window_min)  # quiet for a whole window ends it
        if not started:
            return None
        started_at = datetime.fromtimestamp(end * BUCKET_S, UTC)
        examples = [event_id for b in window for event_id in b.examples][-MAX_EXAMPLES:]
        return Surge(
            alert_id=surge_alert_id(ticker, started_at),
            ticker=ticker,
            started_at=started_at,
            negative=negative,
            items=items,
            share=round(share, 4),
            baseline_share=round(baseline_share, 4),
            p_value=p_value,
            event_ids=examples,
        )


def surge_alert_id(ticker: str, started_at: datetime) -> str:
    """Stable id: the same surge (ticker, start minute) always gets the same id."""
    digest = hashlib.sha256(f"sentiment-surge|{ticker}|{started_at.isoformat()}".encode()).hexdigest()[:16]
    return f"sentiment-surge-{ticker.lower()}-{digest}"


class Mention(InputEvent):
    """One scored headline naming a ticker: its event id, event time and whether it was negative."""

    id: Identifier
    t: UtcTime
    neg: StrictBool


class TickerMentions(InputEvent):
    """A message of the news.by-ticker topic (keyed by ticker): the ticker's scored headlines of one micro-batch of
    the sentiment stage, in event-time order, with the model that scored them."""

    ticker: Ticker
    model_name: str
    model_version: str
    mentions: Annotated[list[Mention], Field(min_length=1)]

    @staticmethod
    def encode(ticker: str, model_name: str, model_version: str,
               mentions: Sequence[tuple[str, datetime, bool]]) -> bytes:
        """The message value for `mentions` (event id, event time, negative) of one ticker."""
        import json

        return json.dumps({"ticker": ticker, "model_name": model_name, "model_version": model_version,
                           "mentions": [{"id": i, "t": t.isoformat(), "neg": n} for i, t, n in mentions]},
                          separators=(",", ":")).encode()
