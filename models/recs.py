"""Recommendations: per-user session state, and batched next-item scoring from item statistics and text.

A user's state (`UserState`, a Faust table value) holds the current session's items in order, their recent items
from earlier sessions, purchases, and a decayed interest vector of item embeddings. `Scorer.recommend` scores every
user of a micro-batch against the whole item index at once: behaviour first (for each context item, weighted by its
position in the session, the items that followed it and co-occurred with it in other sessions, and the item itself
as a repeat view), then text similarity to the session and the user's longer-term interest (so new items with no
behaviour are still recommendable), then popularity over days. The item in view and purchased items are excluded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import torch

from models.batcher import to_device
from models.item_index import ItemIndex
from models.item_stats import Delta, StatsView, decay, session_deltas
from streams.core.events import ClickEvent, Recommendation, RecommendationDoc
from streams.core.settings import RecsSettings, get_settings

MODEL_NAME = "recs-session-graph"
MODEL_VERSION = "2"


def _settings(settings: RecsSettings | None) -> RecsSettings:
    return settings or get_settings().recs


def _bounded_append(items: list[str], item_id: str, bound: int) -> list[str]:
    """`items` with `item_id` moved to the end (most recent last), keeping at most `bound` entries."""
    if bound <= 0:
        return []
    return [*(i for i in items if i != item_id), item_id][-bound:]


@dataclass(frozen=True)
class UserState:
    """One user's state: a Faust table value (`to_dict`/`from_dict` are plain JSON)."""

    user_id: str
    vector: list[float] = field(default_factory=list)  # decayed weighted sum of item embeddings; empty: none yet
    weight: float = 0.0  # decayed sum of the action weights folded into `vector`
    interactions: int = 0  # events seen, decay aside
    recent: list[str] = field(default_factory=list)  # items touched, any session, most recent last (bounded)
    purchased: list[str] = field(default_factory=list)  # purchased items, most recent last (bounded)
    updated_at: float | None = None  # event time (Unix seconds) that `vector` and `weight` are decayed to
    published_at: float | None = None  # processing time (Unix seconds) of the last topic message
    session_id: str | None = None  # the current session
    session: list[str] = field(default_factory=list)  # its items in order, repeats in a row collapsed (bounded)

    def excluded(self) -> set[str]:
        """Items never to recommend: the item in view and purchased items."""
        return {*self.session[-1:], *self.purchased}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserState:
        """The state from `to_dict` output (as read back from a table; older values lack the session fields)."""
        return cls(**data)


def due_for_publish(state: UserState, now: float, settings: RecsSettings | None = None) -> bool:
    """Whether a `recommendations` message may go out now (at most one per user per publish interval)."""
    interval = _settings(settings).publish_interval_s
    return state.published_at is None or now - state.published_at >= interval


def mark_published(state: UserState, now: float) -> UserState:
    """The state after a topic message went out at processing time `now`."""
    return replace(state, published_at=now)


def recommendation_doc(state: UserState, ranked: list[tuple[str, float]], click: ClickEvent, *, topic: str,
                       partition: int, offset: int, processed_at: datetime) -> RecommendationDoc:
    """The user's document (its id is the user id, so each refresh overwrites it) after `click`."""
    return RecommendationDoc(
        event_id=click.id, event_time=click.ts, processed_at=processed_at, model_name=MODEL_NAME,
        model_version=MODEL_VERSION, topic=topic, partition=partition, offset=offset, user_id=state.user_id,
        session_id=click.session_id, trigger_item_id=click.item_id,
        items=[Recommendation(item_id=i, score=score, rank=rank) for rank, (i, score) in enumerate(ranked, 1)],
        updated_at=processed_at,
    )


def update(state: UserState | None, click: ClickEvent, item_vector: torch.Tensor | Sequence[float] | None,
           settings: RecsSettings | None = None) -> UserState:
    """The state after `click`, given the item's CPU embedding (None when the item is not in the index yet).

    The interest vector decays in event time (a late event is added already decayed, so arrival order does not
    matter); the session's item sequence follows arrival order, which is the order of the user's partition.
    """
    s = _settings(settings)
    state = state or UserState(user_id=click.user_id)
    ts = click.ts.timestamp()
    previous = state.updated_at if state.updated_at is not None else ts
    now = max(previous, ts)
    old_factor = decay(now - previous, s.half_life_s)
    add = s.action_weight(click.action) * decay(now - ts, s.half_life_s)
    vector = np.asarray(state.vector, dtype=np.float64) * old_factor
    weight = state.weight * old_factor
    if item_vector is not None:
        item = np.asarray(item_vector, dtype=np.float64).reshape(-1)
        vector = item * add if vector.size == 0 else vector + item * add
        weight += add
    purchased = state.purchased
    if click.action == "purchase":
        purchased = _bounded_append(purchased, click.item_id, s.purchased_items)
    session = state.session if click.session_id == state.session_id else []
    if not session or session[-1] != click.item_id:
        session = [*session, click.item_id][-s.session_items:]
    return replace(state, vector=vector.tolist(), weight=weight, interactions=state.interactions + 1,
                   recent=_bounded_append(state.recent, click.item_id, s.recent_items), purchased=purchased,
                   updated_at=now, session_id=click.session_id, session=session)


def click_deltas(state: UserState | None, click: ClickEvent, partition: int, offset: int,
                 settings: RecsSettings | None = None) -> list[Delta]:
    """The item-statistic deltas of `click`, given the user's state before it."""
    same = state is not None and state.session_id == click.session_id
    session = state.session if same and state is not None else []
    return session_deltas(session, click.item_id, click.ts.timestamp(), partition, offset, _settings(settings))


def context(state: UserState, settings: RecsSettings) -> dict[str, float]:
    """The user's context items and their weights: the session's items by position (the item in view weighs 1),
    then items of earlier sessions, fainter."""
    weights: dict[str, float] = {}
    for distance, item_id in enumerate(reversed(state.session)):
        weights[item_id] = weights.get(item_id, 0.0) + settings.position_decay ** distance
    earlier = [i for i in reversed(state.recent) if i not in weights]
    for rank, item_id in enumerate(earlier):
        weights[item_id] = settings.history_weight * settings.position_decay ** rank
    return weights


def user_vectors(states: Sequence[UserState], dim: int) -> torch.Tensor:
    """The states' interest vectors, L2-normalised, as a float32 CPU matrix [n, dim] (zeros: no evidence)."""
    matrix = torch.zeros(len(states), dim)
    rows = [row for row, state in enumerate(states) if state.vector]
    if rows:
        matrix[rows] = torch.from_numpy(np.asarray([states[row].vector for row in rows], dtype=np.float32))
    return torch.nn.functional.normalize(matrix, dim=-1)


class Scorer:
    """Batched scoring against the item index, from the statistics view; caches each item's neighbour row."""

    def __init__(self, index: ItemIndex, view: StatsView, settings: RecsSettings | None = None) -> None:
        self.index, self.view, self.settings = index, view, _settings(settings)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # item -> (index rows, weights)
        self._pop = np.full(0, -np.inf)  # log decayed popularity per index row, shifted to a fixed time origin
        self._version = -1

    def _sync(self) -> None:
        """Drop cached rows of items whose statistics changed; rebuild everything when the index changed."""
        s, index = self.settings, self.index
        dirty = self.view.take_dirty()
        if self._version != index.version:
            self._rows.clear()
            self._pop = np.full(len(index), -np.inf)
            dirty = set(self.view.items)
            self._version = index.version
        log2 = math.log(2) / s.popularity_half_life_s
        for item_id in dirty:
            self._rows.pop(item_id, None)
            row, stats = index.row(item_id), self.view.get(item_id)
            if row is not None and stats is not None and stats.pop > 0:
                self._pop[row] = math.log(stats.pop) + stats.at * log2  # decays alike for all: ranks hold

    def _neighbours(self, item_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The item's row of the behaviour matrix: transitions and co-occurrence (each a shrunk conditional
        distribution) and the item itself (a repeat view)."""
        cached = self._rows.get(item_id)
        if cached is not None:
            return cached
        s, stats = self.settings, self.view.get(item_id)
        weights: dict[int, float] = {}
        row = self.index.row(item_id)
        if row is not None:
            weights[row] = s.weight_repeat
        for table, strength in ((stats.next, s.weight_transition), (stats.co, s.weight_cooccurrence)) if stats else ():
            total = sum(table.values()) + s.shrinkage
            for other, value in table.items():
                other_row = self.index.row(other)
                if other_row is not None:
                    weights[other_row] = weights.get(other_row, 0.0) + strength * value / total
        cached = (np.fromiter(weights, np.int64, len(weights)), np.fromiter(weights.values(), np.float32, len(weights)))
        self._rows[item_id] = cached
        return cached

    @torch.inference_mode()
    def scores(self, states: Sequence[UserState]) -> torch.Tensor:
        """Scores [users, items] on the device: one sparse product for behaviour, one dense product for text."""
        s, index, device = self.settings, self.index, self.index.device
        self._sync()
        columns: dict[str, int] = {}  # context item -> column of the user x context matrices
        entries: list[tuple[int, int, float, bool]] = []  # (user, column, weight, in the session)
        for user, state in enumerate(states):
            in_session = set(state.session)
            for item_id, weight in context(state, s).items():
                entries.append((user, columns.setdefault(item_id, len(columns)), weight, item_id in in_session))
        users = torch.tensor([e[0] for e in entries], dtype=torch.long)
        cols = torch.tensor([e[1] for e in entries], dtype=torch.long)
        weights = torch.tensor([e[2] for e in entries], dtype=torch.float32)
        a = torch.zeros(len(states), len(columns))
        a[users, cols] = weights
        rows = [self._neighbours(item_id) for item_id in columns]
        b_rows = np.repeat(np.arange(len(rows)), [len(r[0]) for r in rows]) if rows else np.zeros(0, np.int64)
        b_cols = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
        b_vals = np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.float32)
        b_t = torch.sparse_coo_tensor(torch.from_numpy(np.stack([b_cols, b_rows])), torch.from_numpy(b_vals),
                                      (len(index), len(columns)), check_invariants=False).coalesce()
        behaviour = torch.sparse.mm(to_device(b_t, device), to_device(a.t(), device)).t()  # [users, items]
        # text: the session's items (by position) and the user's interest vector, against every item
        session = torch.zeros(len(states), len(columns))
        in_session = torch.tensor([e[3] for e in entries], dtype=torch.bool)
        session[users[in_session], cols[in_session]] = weights[in_session]
        known = [index.row(item_id) for item_id in columns]
        embedded = torch.zeros(len(columns), index.dim)
        present = [c for c, row in enumerate(known) if row is not None]
        if present:
            embedded[present] = index.matrix[[known[c] for c in present]].to("cpu", torch.float32)
        queries = torch.cat([s.weight_text * torch.nn.functional.normalize(session @ embedded, dim=-1),
                             s.weight_interest * user_vectors(states, index.dim)])
        text = (to_device(queries.to(index.dtype), device) @ index.matrix.T).float().clamp(min=0)
        scores = behaviour + text[: len(states)] + text[len(states):]
        if len(self._pop) and np.isfinite(self._pop.max()):
            prior = torch.from_numpy(np.exp(self._pop - self._pop.max())).float()
            scores += s.weight_popularity * to_device(prior, device).unsqueeze(0)
        return scores

    @torch.inference_mode()
    def recommend(self, states: Sequence[UserState], k: int | None = None, live: torch.Tensor | None = None,
                  excluded: Sequence[set[str] | frozenset[str]] | None = None) -> list[list[tuple[str, float]]]:
        """Top-k (item_id, score) per state, best first; `live` (bool per index row) limits the candidates. Excluded
        items (by default each state's: the item in view and purchased items) are never returned; fewer than k only
        when fewer items are eligible."""
        s, index = self.settings, self.index
        k = s.top_k if k is None else k
        if not states or len(index) == 0 or k <= 0:
            return [[] for _ in states]
        scores = self.scores(states)
        if live is not None:
            scores[:, ~to_device(live, index.device)] = float("-inf")
        masks = [index.rows(e) for e in (excluded if excluded is not None else [st.excluded() for st in states])]
        user_rows = [row for row, rows in enumerate(masks) for _ in rows]
        item_rows = [r for rows in masks for r in rows]
        if item_rows:
            scores[torch.tensor(user_rows, device=index.device), torch.tensor(item_rows, device=index.device)] = \
                float("-inf")
        values, rows = scores.topk(min(k, len(index)), dim=1)
        ids = index.ids
        return [[(ids[r], v) for r, v in zip(user_rows_, user_values, strict=True) if v != float("-inf")]
                for user_rows_, user_values in zip(rows.cpu().tolist(), values.cpu().tolist(), strict=True)]
