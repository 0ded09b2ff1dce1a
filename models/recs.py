"""Recommendations: per-user interest state, a windowed popularity prior, and batched top-K scoring.

A user's interest is an event-time-decayed, action-weighted sum of the embeddings of the items they touched
(`update`); it is a plain JSON-serialisable value so it can live in a Faust table. `recommend` scores every
affected user against the whole item index in one matrix product on the device, blends in the popularity
prior (mostly for users with little evidence: cold start), masks recently seen and purchased items, and
takes the top K.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import torch

from models.batcher import to_device
from models.item_index import ItemIndex
from streams.core.events import ClickEvent, Recommendation, RecommendationDoc
from streams.core.settings import RecsSettings, get_settings

MODEL_NAME = "recs-minilm-interest"
MODEL_VERSION = "1"


def _settings(settings: RecsSettings | None) -> RecsSettings:
    return settings or get_settings().recs


def _bounded_append(items: list[str], item_id: str, bound: int) -> list[str]:
    """`items` with `item_id` moved to the end (most recent last), keeping at most `bound` entries."""
    if bound <= 0:
        return []
    return [*(i for i in items if i != item_id), item_id][-bound:]


@dataclass(frozen=True)
class UserState:
    """One user's interest: a Faust table value (`to_dict`/`from_dict` are plain JSON)."""

    user_id: str
    vector: list[float] = field(default_factory=list)  # decayed weighted sum (unnormalised); empty: no evidence
    weight: float = 0.0  # decayed sum of the action weights folded into `vector`
    interactions: int = 0  # events seen, decay aside
    recent: list[str] = field(default_factory=list)  # recently touched items, most recent last (bounded)
    purchased: list[str] = field(default_factory=list)  # purchased items, most recent last (bounded)
    updated_at: float | None = None  # event time (Unix seconds) that `vector` and `weight` are decayed to
    published_at: float | None = None  # processing time (Unix seconds) of the last topic message

    def excluded(self) -> set[str]:
        """Items never to recommend to this user: recently seen or purchased."""
        return {*self.recent, *self.purchased}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserState:
        """The state from `to_dict` output (as read back from a table)."""
        return cls(**data)


def due_for_publish(state: UserState, now: float, settings: RecsSettings | None = None) -> bool:
    """Whether a `recommendations` message may go out now (at most one per user per publish interval)."""
    interval = _settings(settings).publish_interval_s
    return state.published_at is None or now - state.published_at >= interval


def mark_published(state: UserState, now: float) -> UserState:
    """The state after a topic message went out at processing time `now`."""
    return replace(state, published_at=now)


def recommendation_doc(
    state: UserState,
    ranked: list[tuple[str, float]],
    click: ClickEvent,
    *,
    topic: str,
    partition: int,
    offset: int,
    processed_at: datetime,
) -> RecommendationDoc:
    """The user's document (its id is the user id, so each refresh overwrites it) after `click`."""
    return RecommendationDoc(
        event_id=click.id,
        event_time=click.ts,
        processed_at=processed_at,
        model_name=MODEL_NAME,
        model_version=MODEL_VERSION,
        topic=topic,
        partition=partition,
        offset=offset,
        user_id=state.user_id,
        session_id=click.session_id,
        trigger_item_id=click.item_id,
        items=[Recommendation(item_id=i, score=score, rank=rank) for rank, (i, score) in enumerate(ranked, 1)],
        updated_at=processed_at,
    )


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """2 ** (-elapsed / half_life): what one unit of interest is worth `elapsed_s` later."""
    return 0.5 ** (elapsed_s / half_life_s)


def update(
    state: UserState | None,
    click: ClickEvent,
    item_vector: torch.Tensor | Sequence[float] | None,
    settings: RecsSettings | None = None,
) -> UserState:
    """The state after `click`, given the item's CPU embedding (None when the item is not in the index yet).

    Decay runs on event time: the stored vector is decayed to the newest event's time before the new item is
    added; a late event is added already decayed, so the result does not depend on arrival order.
    """
    s = _settings(settings)
    state = state or UserState(user_id=click.user_id)
    ts = click.ts.timestamp()
    previous = state.updated_at if state.updated_at is not None else ts
    now = max(previous, ts)
    old_factor = decay_factor(now - previous, s.half_life_s)
    add = s.action_weight(click.action) * decay_factor(now - ts, s.half_life_s)
    vector = np.asarray(state.vector, dtype=np.float64) * old_factor
    weight = state.weight * old_factor
    if item_vector is not None:
        item = np.asarray(item_vector, dtype=np.float64).reshape(-1)
        vector = item * add if vector.size == 0 else vector + item * add
        weight += add
    purchased = state.purchased
    if click.action == "purchase":
        purchased = _bounded_append(purchased, click.item_id, s.purchased_items)
    return replace(
        state,
        vector=vector.tolist(),
        weight=weight,
        interactions=state.interactions + 1,
        recent=_bounded_append(state.recent, click.item_id, s.recent_items),
        purchased=purchased,
        updated_at=now,
    )


class Popularity:
    """Weighted item counts over a sliding event-time window, kept in a fixed number of time buckets."""

    def __init__(self, window_s: float, buckets: int = 12, max_items: int = 200_000) -> None:
        if window_s <= 0 or buckets < 1 or max_items < 1:
            raise ValueError("Popularity needs window_s > 0, buckets >= 1, max_items >= 1")
        self.bucket_s = window_s / buckets
        self.buckets = buckets
        self.max_items = max_items
        self._buckets: deque[tuple[int, Counter[str]]] = deque()  # (bucket number, counts), oldest first
        self._totals: Counter[str] = Counter()
        self.version = 0
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None

    @classmethod
    def from_settings(cls, settings: RecsSettings | None = None) -> Popularity:
        """A counter with the window of the `recs` settings."""
        s = _settings(settings)
        return cls(s.popularity_window_s, s.popularity_buckets)

    def add(self, item_id: str, ts: float, weight: float = 1.0) -> None:
        """Count one event at event time `ts` (Unix seconds); events older than the window are ignored."""
        number = math.floor(ts / self.bucket_s)
        if self._buckets and number <= self._buckets[-1][0] - self.buckets:
            return
        if not self._buckets or number > self._buckets[-1][0]:
            self._buckets.append((number, Counter()))
            self._expire(number)
        bucket = self._bucket(number)
        bucket[item_id] += weight
        self._totals[item_id] += weight
        if len(self._totals) > self.max_items:
            self._prune()
        self.version += 1

    def _bucket(self, number: int) -> Counter[str]:
        """The counts of bucket `number`, created in order for a late event."""
        for n, counts in reversed(self._buckets):
            if n == number:
                return counts
        counts: Counter[str] = Counter()
        self._buckets = deque(sorted([*self._buckets, (number, counts)], key=lambda entry: entry[0]))
        return counts

    def _expire(self, newest: int) -> None:
        """Drop buckets that fell out of the window."""
        while self._buckets and self._buckets[0][0] <= newest - self.buckets:
            _, counts = self._buckets.popleft()
            self._totals.subtract(counts)
            for item_id in counts:
                if self._totals[item_id] <= 1e-9:
                    del self._totals[item_id]

    def _prune(self) -> None:
        """Forget the least counted items when more than `max_items` are tracked (keeps memory bounded)."""
        keep = {item_id for item_id, _ in self._totals.most_common(self.max_items // 2)}
        self._totals = Counter({i: c for i, c in self._totals.items() if i in keep})
        for _, counts in self._buckets:
            for item_id in [i for i in counts if i not in keep]:
                del counts[item_id]

    def count(self, item_id: str) -> float:
        """The item's weighted count in the window."""
        return self._totals.get(item_id, 0.0)

    def top(self, k: int, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
        """The k most counted items (ties by id), skipping `exclude`."""
        excluded = set(exclude)
        ranked = sorted(self._totals.items(), key=lambda entry: (-entry[1], entry[0]))
        return [(item_id, count) for item_id, count in ranked if item_id not in excluded][:k]

    def prior(self, index: ItemIndex) -> torch.Tensor:
        """log(1 + count) / log(1 + max count) per index row, in [0, 1], on the index's device (cached)."""
        key = (index.version, self.version)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        counts = torch.tensor([self._totals.get(item_id, 0.0) for item_id in index.ids], dtype=torch.float32)
        prior = torch.log1p(counts.clamp(min=0))
        top = float(prior.max()) if len(prior) else 0.0
        prior = prior / top if top > 0 else prior
        prior = to_device(prior, index.device)
        self._cache = (key, prior)
        return prior

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot (for a checkpoint or a table)."""
        return {
            "bucket_s": self.bucket_s,
            "buckets": self.buckets,
            "counts": [[number, dict(counts)] for number, counts in self._buckets],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Popularity:
        """The counter from `to_dict` output."""
        popularity = cls(data["bucket_s"] * data["buckets"], data["buckets"])
        for number, counts in data["counts"]:
            bucket = Counter({item_id: float(c) for item_id, c in counts.items()})
            popularity._buckets.append((int(number), bucket))
            popularity._totals.update(bucket)
        return popularity


def cold_start_weight(state: UserState, settings: RecsSettings | None = None) -> float:
    """How much the popularity prior replaces personal interest: c / (c + evidence), 1 with no evidence."""
    c = _settings(settings).cold_start_interactions
    return c / (c + state.weight) if state.vector else 1.0


def user_matrix(states: Sequence[UserState], dim: int) -> torch.Tensor:
    """The states' interest vectors, L2-normalised, as a float32 CPU matrix [n, dim] (zeros: no evidence)."""
    matrix = torch.zeros(len(states), dim)
    rows = [row for row, state in enumerate(states) if state.vector]
    if rows:
        matrix[rows] = torch.from_numpy(np.asarray([states[row].vector for row in rows], dtype=np.float32))
    return torch.nn.functional.normalize(matrix, dim=-1)


@torch.inference_mode()
def recommend(
    states: Sequence[UserState],
    index: ItemIndex,
    popularity: Popularity,
    k: int | None = None,
    settings: RecsSettings | None = None,
) -> list[list[tuple[str, float]]]:
    """Top-k (item_id, score) per state, best first, in one batched product against the whole index.

    score = (1 - b) * cosine(user, item) + (b + popularity_weight) * prior(item), where b is the user's
    cold-start weight; recently seen and purchased items are never returned. Fewer than k results only
    when the index holds fewer eligible items.
    """
    s = _settings(settings)
    k = s.top_k if k is None else k
    if not states or len(index) == 0 or k <= 0:
        return [[] for _ in states]
    users = to_device(user_matrix(states, index.dim).to(index.dtype), index.device)
    similarity = (users @ index.matrix.T).float()  # [users, items]: the one matrix product
    blend = torch.tensor([cold_start_weight(state, s) for state in states], device=index.device).unsqueeze(1)
    scores = (1 - blend) * similarity + (blend + s.popularity_weight) * popularity.prior(index).unsqueeze(0)
    user_rows: list[int] = []
    item_rows: list[int] = []
    for row, state in enumerate(states):
        masked = index.rows(state.excluded())
        user_rows.extend([row] * len(masked))
        item_rows.extend(masked)
    if item_rows:
        where = (torch.tensor(user_rows, device=index.device), torch.tensor(item_rows, device=index.device))
        scores.index_put_(where, torch.tensor(float("-inf"), device=index.device))
    values, rows = scores.topk(min(k, len(index)), dim=1)
    values, rows = values.cpu().tolist(), rows.cpu().tolist()
    ids = index.ids
    return [
        [(ids[r], v) for r, v in zip(user_rows_, user_values, strict=True) if v != float("-inf")]
        for user_rows_, user_values in zip(rows, values, strict=True)
    ]
