"""Negative-news surge detection per ticker, in event time.

Each ticker keeps one-minute buckets of (items, negative items, a few negative event ids). A surge starts
when the recent window holds at least `min_negative` negative items, they are at least `min_share` of the
window's items, and so many negatives would be very unlikely (binomial tail below `max_p_value`) if the
ticker's trailing-baseline share held. The baseline share is smoothed towards `prior_share`, so a ticker
without history is not alarming after a few unlucky items. One alert is raised per surge; the surge ends
once the condition has not held for a whole window, and a later surge raises a new alert. The alert id is
derived from the ticker and the minute the surge started, so a replay raises the same id (consumers
de-duplicate on it).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from scipy.stats import binom

from streams.core.settings import SurgeSettings

BUCKET_S = 60
MAX_EXAMPLES = 5


@dataclass
class _Bucket:
    items: int = 0
    negative: int = 0
    examples: list[str] = field(default_factory=list)


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
class _Ticker:
    buckets: dict[int, _Bucket] = field(default_factory=lambda: defaultdict(_Bucket))
    latest: int = -1  # the latest minute seen
    surge_until: int = -1  # the minute up to which the current surge counts as ongoing


class SurgeDetector:
    """Feeds on (ticker, event time, negative?, event id) and returns the surges that begin."""

    def __init__(self, settings: SurgeSettings) -> None:
        self.settings = settings
        self._tickers: dict[str, _Ticker] = defaultdict(_Ticker)

    def observe(self, ticker: str, event_time: datetime, negative: bool, event_id: str) -> Surge | None:
        """Count one scored item; return a Surge when this item starts one."""
        state = self._tickers[ticker]
        minute = int(event_time.timestamp()) // BUCKET_S
        bucket = state.buckets[minute]
        bucket.items += 1
        if negative:
            bucket.negative += 1
            if len(bucket.examples) < MAX_EXAMPLES:
                bucket.examples.append(event_id)
        if minute > state.latest:
            state.latest = minute
            self._forget_before(state, minute)
        return self._evaluate(ticker, state, minute)

    def _forget_before(self, state: _Ticker, minute: int) -> None:
        horizon = minute - (self.settings.window_s + self.settings.baseline_s) // BUCKET_S - 1
        for old in [m for m in state.buckets if m < horizon]:
            del state.buckets[old]

    def _evaluate(self, ticker: str, state: _Ticker, minute: int) -> Surge | None:
        s = self.settings
        window_min, baseline_min = max(1, s.window_s // BUCKET_S), max(1, s.baseline_s // BUCKET_S)
        latest = state.latest
        window = [state.buckets[m] for m in range(latest - window_min + 1, latest + 1) if m in state.buckets]
        items = sum(b.items for b in window)
        negative = sum(b.negative for b in window)
        share = negative / items if items else 0.0
        if not (negative >= s.min_negative and share >= s.min_share):
            return None  # the common case: no need for the baseline or the binomial tail
        baseline = [state.buckets[m] for m in range(latest - window_min - baseline_min + 1, latest - window_min + 1)
                    if m in state.buckets]
        baseline_share = (sum(b.negative for b in baseline) + s.prior_share * s.prior_weight) / (
            sum(b.items for b in baseline) + s.prior_weight)
        p_value = float(binom.sf(negative - 1, items, baseline_share))
        if p_value > s.max_p_value:
            return None
        started = minute > state.surge_until
        state.surge_until = max(state.surge_until, minute + window_min)  # quiet for a whole window ends it
        if not started:
            return None
        started_at = datetime.fromtimestamp(minute * BUCKET_S, UTC)
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
