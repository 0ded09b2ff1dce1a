"""`lepton eval recs`: the figures' JSON shape on a tiny generated world, replay causality, and the real encoder."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from models.recs_eval import METHODS, CoOccurrence, EvalConfig, Metrics, evaluate
from streams.cli.main import app
from streams.core.settings import RecsSettings
from streams.tools.generated_data import shop_sessions
from tests.unit.recs_fakes import FakeEncoder

TINY = EvalConfig(seed=3, n_items=40, n_users=15, n_events=800, micro_batch=64)
KEYS = {"hit_rate_at_10", "ndcg_at_10"}


def test_tiny_evaluation_reports_every_method_with_both_metrics() -> None:
    report = evaluate(TINY, *shop_sessions(TINY), FakeEncoder(), torch.device("cpu"), RecsSettings())
    assert set(report.results) == set(METHODS)
    for figures in report.results.values():
        assert set(figures) == KEYS
        assert 0.0 <= figures["ndcg_at_10"] <= figures["hit_rate_at_10"] <= 1.0
    assert 0 < report.evaluated < TINY.n_events and report.users <= TINY.n_users
    assert report.results["model"]["hit_rate_at_10"] > 0
    again = evaluate(TINY, *shop_sessions(TINY), FakeEncoder(), torch.device("cpu"), RecsSettings())
    assert again.results == report.results  # a seed means the same figures


def test_cli_json_prints_exactly_the_three_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.encoder.get_encoder", lambda device=None: FakeEncoder())
    result = CliRunner().invoke(app, ["eval", "recs", "--seed", "3", "--json", "--items", "40", "--users", "15",
                                      "--events", "600", "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(figures) == ["model", "popularity", "cooccurrence"]
    assert all(set(v) == KEYS and all(isinstance(x, float) for x in v.values()) for v in figures.values())


def test_metrics_score_rank_one_fully_and_misses_zero() -> None:
    metrics = Metrics()
    metrics.add(["a", "b"], "a")
    metrics.add(["a", "b"], "b")
    metrics.add(["a", "b"], "z")
    assert metrics.as_dict() == {"hit_rate_at_10": round(2 / 3, 4), "ndcg_at_10": round((1 + 1 / 1.58496) / 3, 4)}


def test_cooccurrence_counts_each_pair_once_per_session_and_tops_up_from_popularity() -> None:
    pairs = CoOccurrence()
    for session, item_id in [("s1", "a"), ("s1", "b"), ("s1", "b"), ("s2", "a"), ("s2", "c"), ("s3", "a"), ("s3", "c")]:
        pairs.add(session, item_id)
    assert pairs.pairs["a"] == {"c": 2, "b": 1}
    assert pairs.top("a", 3, exclude={"b"}, fallback=["b", "p", "c"]) == ["c", "p"]


def test_generated_samples_carry_the_sessions_next_viewed_item() -> None:
    _, samples = shop_sessions(TINY)
    checked = 0
    for position, sample in enumerate(samples):
        later = [s.click.item_id for s in samples[position + 1 :]
                 if s.click.session_id == sample.click.session_id and s.click.action == "view"]
        if sample.next_item_id is not None and later:
            assert later[0] == sample.next_item_id
            checked += 1
    assert checked > 100


def test_real_encoder_groups_the_catalog_by_category() -> None:
    """One test loads MiniLM: a user who views only outdoor items is recommended outdoor items."""
    from models.encoder import get_encoder
    from models.item_index import ItemIndex, embed_items
    from models.recs import Popularity, recommend, update
    from tests.unit.recs_fakes import click, item

    titles = {
        "outdoor": ["Northpeak ultralight tent", "Velde weatherproof rain shell", "Quayside packable sleeping bag"],
        "kitchen": ["Larkspur cast iron skillet", "Ostrava stainless chef's knife", "Velde pour-over kettle"],
        "audio": ["Tamsin & Co hi-fi turntable", "Quayside noise-cancelling earbuds", "Velde bookshelf speaker"],
    }
    records = [item(f"{c}-{n}", c, title) for c, names in titles.items() for n, title in enumerate(names)]
    index = ItemIndex("cpu")
    index.upsert([r.item_id for r in records], embed_items(records, get_encoder("cpu")))
    state = update(None, click("outdoor-0", 0, "purchase"), index.vector("outdoor-0"))
    [ranked] = recommend([state], index, Popularity(window_s=60), k=2)
    assert {item_id for item_id, _ in ranked} == {"outdoor-1", "outdoor-2"}
