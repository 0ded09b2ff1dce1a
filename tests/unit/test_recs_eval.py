"""`lepton eval recs`: the protocol on a hand-made log gives exact figures, no query sees its own future, the
baselines are the standard ones, and a shop's own files go through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from models.recs_baselines import Catalog, CoOccurrence, Popularity, Query, SessionKNN
from models.recs_eval import METHODS, EvalDataError, Metrics, evaluate, replay
from streams.cli.main import app
from streams.core.events import CatalogItem, ClickEvent
from streams.core.settings import RecsSettings
from streams.tools.generated_data import shop_data
from tests.unit.recs_fakes import T0, FakeEncoder, item

# (second, user, session, item, action): the queries are the clicks whose session has a later view
LOG = [(0, "u1", "s1", "a", "view"), (1, "u1", "s1", "b", "view"), (2, "u1", "s1", "c", "view"),
       (3, "u2", "s2", "a", "view"), (4, "u2", "s2", "b", "view"), (5, "u2", "s2", "b", "purchase"),
       (6, "u2", "s2", "a", "view"), (7, "u2", "s2", "b", "view"), (8, "u3", "s3", "d", "view")]
CATALOG = [item("a"), item("b"), item("c"), item("d"),
           item("e").model_copy(update={"updated_at": T0 + timedelta(seconds=4)})]
# Worked by hand for each baseline at K=2: queries at seconds 0, 1, 3, 4, 5, 6 with truths b, c, b, a, a, b; ranks
# 1, 2, 1, 1, 1 and a miss (the truth b at second 6 was bought by u2: unreachable for every method).
EXACT = {"hit_rate_at_2": round(5 / 6, 4), "ndcg_at_2": round((4 + 1 / 1.5849625) / 6, 4), "mrr_at_2": 0.75}


def clicks(log: Iterable[tuple[int, str, str, str, str]] = LOG) -> list[ClickEvent]:
    return [ClickEvent(id=f"c{n}", ts=T0 + timedelta(seconds=second), user_id=user, session_id=session,
                       item_id=item_id, action=action)
            for n, (second, user, session, item_id, action) in enumerate(log)]


def baselines(catalog: Catalog) -> list:
    popularity = Popularity(catalog)
    return [popularity, CoOccurrence(popularity), SessionKNN(popularity)]


@pytest.mark.parametrize("micro_batch", [1, 256])
def test_the_baselines_score_exactly_what_was_worked_out_by_hand(micro_batch: int) -> None:
    report = replay(clicks(), CATALOG, None, RecsSettings(), k=2, micro_batch=micro_batch, methods=baselines)
    assert report.results == {"popularity": EXACT, "cooccurrence": EXACT, "sknn": EXACT}
    assert report.counts == {"events": 9, "queries": 6, "unreachable": 1}


class Spy:
    """A method that keeps, like the model, a snapshot of its per-click state for each query, and records what it
    had learned whenever it ranks."""

    name = "spy"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog, self.learned, self.observed, self.snapshots, self.seen = catalog, [], [], [], []

    def observe(self, click: ClickEvent) -> None:
        self.observed.append(click.id)
        self.snapshots.append(list(self.observed))

    def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
        for query, snapshot in zip(queries, self.snapshots, strict=True):
            self.seen.append((query.click.id, list(self.learned), snapshot, set(self.catalog.live), query.session))
        self.snapshots = []
        return [list(query.session)[:k] for query in queries]

    def learn(self, batch: Iterable[ClickEvent]) -> None:
        self.learned += [click.id for click in batch]


def test_no_query_sees_its_own_future() -> None:
    spies: list[Spy] = []
    log = clicks()
    replay(log, CATALOG, None, RecsSettings(), k=2, micro_batch=3,
           methods=lambda catalog: spies.append(Spy(catalog)) or spies)  # type: ignore[func-returns-value]
    order = [c.id for c in log]
    assert len(spies[0].seen) == len(log)  # every click is ranked; those with a later view in the session count
    for query_id, learned, observed, live, session in spies[0].seen:
        position = order.index(query_id)
        assert set(learned) <= set(order[:position])  # shared statistics: only clicks before the query
        assert observed == order[:position + 1]  # per-click state: up to the query click, nothing after
        same = [c.item_id for c in log[:position + 1] if c.session_id == log[position].session_id]
        assert list(session) == same
        assert ("e" in live) == (position >= 6)  # e goes live at second 4: from the micro-batch that starts after it


def test_the_models_user_state_at_a_query_holds_the_users_clicks_up_to_it() -> None:
    from models.item_index import ItemIndex
    from models.recs_eval import ModelMethod

    index = ItemIndex("cpu")
    index.upsert([r.item_id for r in CATALOG], FakeEncoder().encode([r.item_id for r in CATALOG]))
    log, captured = clicks(), []

    class Capturing(ModelMethod):
        def rank(self, queries: Sequence[Query], k: int) -> list[list[str]]:
            captured.extend(zip(queries, self.snapshots, strict=True))
            return super().rank(queries, k)

    replay(log, CATALOG, index, RecsSettings(), k=2, micro_batch=4,
           methods=lambda catalog: [Capturing(index, catalog, RecsSettings())])
    for query, state in captured:
        mine = [c for c in log[:log.index(query.click) + 1] if c.user_id == query.click.user_id]
        assert state.interactions == len(mine) and state.recent[-1] == query.click.item_id


def test_the_model_is_scored_on_the_same_queries_and_exclusions() -> None:
    report = evaluate(CATALOG, clicks(), FakeEncoder(), torch.device("cpu"), RecsSettings(), k=2, micro_batch=1)
    assert list(report.results) == list(METHODS) and report.counts["queries"] == 6
    assert set(report.results["model"]) == set(EXACT)
    assert report.results["model"]["hit_rate_at_2"] <= 5 / 6  # the bought truth is unreachable for the model too


def test_clicks_out_of_time_order_are_refused() -> None:
    log = clicks([(5, "u1", "s1", "a", "view"), (4, "u1", "s1", "b", "view")])
    with pytest.raises(EvalDataError, match="event-time order"):
        replay(log, CATALOG, None, RecsSettings(), methods=baselines)


def test_metrics_score_rank_one_fully_and_misses_zero() -> None:
    metrics = Metrics()
    for truth in ("a", "b", "z"):
        metrics.add(["a", "b"], truth)
    assert metrics.as_dict(10) == {"hit_rate_at_10": round(2 / 3, 4), "ndcg_at_10": round((1 + 1 / 1.5849625) / 3, 4),
                                   "mrr_at_10": 0.5}


def test_sknn_takes_the_most_recent_sessions_and_weighs_them_by_cosine() -> None:
    catalog = Catalog(list("abcdxyz"))
    catalog.live |= set(catalog.order)
    sknn = SessionKNN(Popularity(catalog), k=1, sample=2)
    sknn.learn(clicks([(0, "u", "old", "a", "view"), (1, "u", "old", "z", "view"),
                       (2, "v", "mid", "a", "view"), (3, "v", "mid", "x", "view"), (3, "v", "mid", "b", "view"),
                       (4, "w", "new", "a", "view"), (5, "w", "new", "y", "view")]))
    query = Query(clicks([(9, "q", "q", "a", "view")])[0], ("a", "b"), frozenset({"b"}))
    # "old" is not among the 2 most recent; "mid" shares a and b: cosine 2/sqrt(2*3) beats "new" at 1/sqrt(2*2)
    assert [s for _, s in sknn.neighbours({"a", "b"}, "q")] == ["mid"]
    assert sknn.rank([query], 2) == [["a", "x"]]


def catalog_line(record: CatalogItem) -> str:
    return record.model_dump_json(exclude_none=True)


def test_a_shops_own_files_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.encoder.get_encoder", lambda device=None: FakeEncoder())
    catalog, log = tmp_path / "catalog.jsonl", tmp_path / "clicks.jsonl"
    catalog.write_text("\n".join([*map(catalog_line, CATALOG), '{"item_id": "broken"}']) + "\n")
    log.write_text("\n".join([*(c.model_dump_json() for c in clicks()), "not json"]) + "\n")
    result = CliRunner().invoke(app, ["eval", "recs", "--catalog", str(catalog), "--clicks", str(log), "--k", "2",
                                      "--json", "--device", "cpu", "--threads", "1"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(figures) == [*METHODS, "counts"]
    assert figures["popularity"] == figures["sknn"] == EXACT  # one micro-batch of 256: nothing learned yet
    assert figures["counts"] == {"events": 9, "queries": 6, "unreachable": 1, "skipped": 2}
    assert "met" not in result.stdout and "bar" not in result.stdout


def test_cli_refuses_half_a_file_pair_and_unordered_files(tmp_path: Path) -> None:
    log = tmp_path / "clicks.jsonl"
    result = CliRunner().invoke(app, ["eval", "recs", "--clicks", str(log)])
    assert result.exit_code != 0 and "both --catalog and --clicks" in result.output
    unordered = clicks([(5, "u1", "s1", "a", "view"), (4, "u1", "s1", "b", "view")])
    log.write_text("\n".join(c.model_dump_json() for c in unordered) + "\n")
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(catalog_line(CATALOG[0]) + "\n")
    with pytest.raises(EvalDataError, match=r"clicks\.jsonl:2"):
        from models.recs_data import ClickFile

        list(ClickFile(log))


def test_generated_runs_report_every_method_and_are_deterministic() -> None:
    figures = []
    for _ in range(2):
        catalog, stream = shop_data(seed=3, items=40, users=15, events=800)
        figures.append(evaluate(catalog, stream, FakeEncoder(), torch.device("cpu"), RecsSettings()).as_dict())
    assert figures[0] == figures[1]
    assert set(figures[0]) == {*METHODS, "counts"} and figures[0]["counts"]["queries"] > 300
    sim_catalog, sim_stream = shop_data(seed=3, items=60, users=30, events=600, simulator="sessions")
    sim = evaluate(sim_catalog, sim_stream, FakeEncoder(), torch.device("cpu"), RecsSettings())
    assert sim.counts["events"] == 600 and all(0 <= f["hit_rate_at_10"] <= 1 for f in sim.results.values())


def test_real_encoder_recommends_a_new_items_category_from_its_text() -> None:
    """One test loads MiniLM: with no behaviour at all, a user viewing a tent is shown outdoor items."""
    from models.encoder import get_encoder
    from models.item_index import ItemIndex, embed_items
    from models.item_stats import StatsView
    from models.recs import Scorer, update
    from tests.unit.recs_fakes import click

    titles = {
        "outdoor": ["Northpeak ultralight tent", "Velde weatherproof rain shell", "Quayside packable sleeping bag"],
        "kitchen": ["Larkspur cast iron skillet", "Ostrava stainless chef's knife", "Velde pour-over kettle"],
        "audio": ["Tamsin & Co hi-fi turntable", "Quayside noise-cancelling earbuds", "Velde bookshelf speaker"],
    }
    records = [item(f"{c}-{n}", c, title) for c, names in titles.items() for n, title in enumerate(names)]
    index = ItemIndex("cpu")
    index.upsert([r.item_id for r in records], embed_items(records, get_encoder("cpu")))
    state = update(None, click("outdoor-0", 0), index.vector("outdoor-0"))
    [ranked] = Scorer(index, StatsView()).recommend([state], k=2)
    assert {item_id for item_id, _ in ranked} == {"outdoor-1", "outdoor-2"}
