"""Generators: deterministic per seed, always valid, scenarios present, ground truth kept out of events."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.core.decoding import Decoder
from streams.core.events import DeadLetter
from streams.core.settings import DEFAULT_RATES, Settings
from streams.generators import GENERATORS, build_catalog, make_generator
from streams.generators.transactions import CITIES, distance_km

START = datetime.now(UTC) - timedelta(hours=6)
DECODER = Decoder(Settings(), pii_key=b"unit-test-key-0123456789abcdef")


def take(kind: str, n: int, seed: int = 1, start: datetime = START, **options: object) -> list:
    return list(itertools.islice(make_generator(kind, seed=seed, start=start, **options), n))


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_same_seed_same_events_other_seed_other_events(kind: str) -> None:
    first, again, other = take(kind, 300), take(kind, 300), take(kind, 300, seed=2)
    assert first == again
    assert [g.record for g in first] != [g.record for g in other]


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_every_generated_event_is_valid_and_in_time_order(kind: str) -> None:
    generated = take(kind, 3000)
    times = []
    for item in generated:
        result = DECODER.decode(json.dumps(item.record).encode(), topic=kind)
        assert not isinstance(result, DeadLetter), result.reason
        times.append(item.record.get("ts") or item.record.get("published_at") or item.record["updated_at"])
    assert times == sorted(times)


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_truth_never_travels_in_events(kind: str) -> None:
    for item in take(kind, 2000, **({"fraud_rate": 0.2} if kind == "transactions" else {})):
        assert not {"label", "is_fraud", "scenario", "next_item_id", "user_preferences", "change"} & set(item.record)


def test_fraud_scenarios_are_mixed_in_at_about_the_requested_rate() -> None:
    # At the demo's rate (50/s, about 13 simulated minutes): the stream starts with compromised merchants and cards
    # and bursts under way, so every scenario shows up and the fraud share is about fraud_rate from the start.
    generated = take("transactions", 40_000, fraud_rate=0.05)
    scenarios = Counter(item.truth["scenario"] for item in generated if item.truth["is_fraud"])
    assert set(scenarios) == {"compromised_merchant", "compromised_card", "card_testing", "account_takeover",
                              "large_amount", "impossible_travel"}
    assert 0.025 < sum(scenarios.values()) / len(generated) < 0.07
    testing = [item.record for item in generated if item.truth["scenario"] == "card_testing"]
    assert max(r["amount"] * DEFAULT_RATES[r["currency"]] for r in testing) < 3.01  # tiny amounts, in euros
    assert {r["channel"] for r in testing} == {"online"}
    assert all(item.truth["card_ref"].startswith("card-") for item in generated)


def test_impossible_travel_is_far_and_fast() -> None:
    generated = take("transactions", 60_000, fraud_rate=0.1)
    by_card: dict[str, list[dict]] = {}
    for item in generated:
        by_card.setdefault(item.record["card_number"], []).append(item.record | item.truth)
    cities = {(c[1], round(c[2], 1)): (c[2], c[3]) for c in CITIES}
    checked = 0
    for events in by_card.values():
        for before, after in itertools.pairwise(events):
            if after["scenario"] == "impossible_travel" and before["scenario"] != "impossible_travel" \
                    and before.get("lat") is not None:  # a second trip may start where the first one ended
                minutes = (datetime.fromisoformat(after["ts"]) - datetime.fromisoformat(before["ts"])).seconds / 60
                km = distance_km((before["lat"], before["lon"]), (after["lat"], after["lon"]))
                checked += 1
                assert km / max(minutes / 60, 1e-6) > 1000  # faster than any airliner
    assert checked and cities


def test_negative_surge_about_one_ticker() -> None:
    generated = take("news", 400, rate_per_s=2.0, surge_ticker="QFL", surge_at_s=10, surge_duration_s=30)
    surge = [item for item in generated if item.truth["scenario"] == "surge"]
    assert len(surge) == 20 and all(item.record["tickers"] == ["QFL"] for item in surge)
    assert all(item.truth["label"] == "negative" for item in surge)
    first = datetime.fromisoformat(surge[0].record["published_at"])
    assert timedelta(seconds=9) < first - START < timedelta(seconds=11)
    assert Counter(item.truth["label"] for item in generated).keys() == {"negative", "neutral", "positive"}
    with pytest.raises(ValueError, match="unknown ticker"):
        take("news", 1, surge_ticker="NOPE")


def test_several_surges_each_on_its_ticker_at_its_time() -> None:
    generated = take("news", 600, rate_per_s=2.0, surges=[("KSTR", 20), ("NGP", 100)], surge_count=15)
    for ticker, at_s in (("KSTR", 20), ("NGP", 100)):
        surge = [item for item in generated if item.truth["scenario"] == "surge" and item.truth["ticker"] == ticker]
        assert len(surge) == 15 and all(item.record["tickers"] == [ticker] for item in surge)
        first = datetime.fromisoformat(surge[0].record["published_at"])
        assert timedelta(seconds=at_s - 1) < first - START < timedelta(seconds=at_s + 1)
    with pytest.raises(ValueError, match="unknown ticker"):
        take("news", 1, surges=[("NOPE", 1.0)])


def test_clicks_follow_latent_preferences_and_use_catalog_items() -> None:
    catalog = {item.item_id: item.category for item in build_catalog(1)}
    generated = take("clicks", 20_000)
    assert {item.record["item_id"] for item in generated} <= set(catalog)
    prefs = {
        item.truth["user_id"]: item.truth["user_preferences"] for item in generated if "user_preferences" in item.truth
    }
    assert len(prefs) > 100
    hits = total = 0
    for item in generated:
        top = max(prefs[item.record["user_id"]].items(), key=lambda kv: kv[1])[0]
        hits += catalog[item.record["item_id"]] == top
        total += 1
    assert hits / total > 0.35  # ten categories: chance would be about 0.1
    actions = Counter(item.record["action"] for item in generated)
    assert actions["view"] > actions["click"] > actions["add_to_cart"] > actions["purchase"] > 0


def test_catalog_emits_every_item_then_updates_and_deletions() -> None:
    generated = take("catalog", 1500, n_items=500)
    assert [item.record["item_id"] for item in generated[:500]] == [f"item-{i:05d}" for i in range(500)]
    changes = Counter(item.truth["change"] for item in generated[500:])
    assert changes["updated"] > 0 and changes["deleted"] > 0


def test_generate_command_writes_events_and_truth(tmp_path: Path) -> None:
    from streams.cli.main import app

    out, truth = tmp_path / "txn.jsonl", tmp_path / "truth.jsonl"
    result = CliRunner().invoke(
        app, ["generate", "transactions", "--count", "500", "--seed", "3", "--out", str(out), "--truth-out", str(truth)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    truths = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(records) == len(truths) == 500 and [r["id"] for r in records] == [t["id"] for t in truths]
    assert "4" not in "".join(t["card_ref"][0] for t in truths)  # truth has card references, not numbers


def _sessions(records: list[dict]) -> dict[str, list[dict]]:
    sessions: dict[str, list[dict]] = {}
    for record in records:
        sessions.setdefault(record["session_id"], []).append(record)
    return sessions


def test_shop_clicks_span_days_with_a_daily_rhythm_in_sequences() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    records = [g.record for g in take("clicks", 20_000, start=start, rate_per_s=0.022)]
    times = [datetime.fromisoformat(r["ts"]) for r in records]
    assert (times[-1] - times[0]).days >= 7
    hours = Counter(t.hour for t in times)
    assert hours[20] > 3 * hours[5]  # evenings busy, before dawn quiet
    by_user: dict[str, list[datetime]] = {}
    for session in _sessions(records).values():
        by_user.setdefault(session[0]["user_id"], []).append(datetime.fromisoformat(session[0]["ts"]))
    gaps = sorted((b - a).total_seconds() for starts in by_user.values() for a, b in itertools.pairwise(starts))
    assert gaps[0] >= 3600 and gaps[len(gaps) // 2] > 6 * 3600  # a user's sessions are hours to days apart
    catalog = {item.item_id: item for item in build_catalog(1)}
    steps = same_kind = 0
    for session in _sessions(records).values():
        views = [catalog[r["item_id"]] for r in session if r["action"] == "view"]
        for before, after in itertools.pairwise(views):
            steps += 1
            same_kind += before.category == after.category
        actions = [r["action"] for r in session]
        if "purchase" in actions:  # purchases come at checkout, at the end of the session
            assert actions[-1] == "purchase" and actions[-2] == "add_to_cart"
    assert same_kind / steps > 0.6  # one item leads to its substitutes and complements


def test_the_session_simulator_matches_its_published_descriptions() -> None:
    from streams.generators.session_shop import SessionShopSimulator, catalog_records

    start = datetime(2024, 1, 1, tzinfo=UTC)
    simulator = SessionShopSimulator(seed=2, start=start)
    records = [g.record for g in itertools.islice(simulator, 20_000)]
    again = [g.record for g in itertools.islice(SessionShopSimulator(seed=2, start=start), 300)]
    assert records[:300] == again
    for record in records[:3000]:
        assert not isinstance(DECODER.decode(json.dumps(record).encode(), topic="clicks"), DeadLetter)
    for record in catalog_records(simulator.items, start)[:200]:
        assert not isinstance(DECODER.decode(json.dumps(record).encode(), topic="catalog"), DeadLetter)
    sessions = [[r["item_id"] for r in s if r["action"] == "view"] for s in _sessions(records).values()]
    assert 3.5 < sum(map(len, sessions)) / len(sessions) < 6  # 3.5-5 events per session, a long tail
    assert max(map(len, sessions)) >= 20
    repeats = [v[i] in v[:i] for v in sessions for i in range(1, len(v))]
    assert 0.15 < sum(repeats) / len(repeats) < 0.3  # about a fifth of next items were seen in the session
    actions = Counter(r["action"] for r in records)
    assert actions["view"] / len(records) > 0.9 and actions["purchase"] > 0
    users = Counter(s[0]["user_id"] for s in _sessions(records).values())
    assert sum(1 for n in users.values() if n == 1) / len(users) > 0.6  # most visitors come once
    popularity = sorted(Counter(r["item_id"] for r in records).values(), reverse=True)
    assert popularity[0] > 10 * popularity[len(popularity) // 2]  # a power law, not a uniform catalog
