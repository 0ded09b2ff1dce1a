"""The card-transaction generator over simulated days: valid records, every fraud scenario in the shape it is meant to
have, delayed chargebacks, amounts in each currency's scale, and normal night-time shopping."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from streams.core.events import ChargebackLabel, Transaction
from streams.core.settings import DEFAULT_RATES
from streams.generators import Generated, TransactionGenerator
from streams.generators.fraud_scenarios import SHARES, chargeback_delay_s
from streams.generators.transactions import CITIES, local_amount

START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 8
KEY = {"pii_key": b"k" * 32}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def eur(record: dict) -> float:
    return record["amount"] * DEFAULT_RATES[record["currency"]]


@pytest.fixture(scope="module")
def run() -> tuple[TransactionGenerator, list[Generated]]:
    """Eight simulated days at 0.05 events/s (about 35,000 events) of 600 cards, 5% fraud."""
    generator = TransactionGenerator(seed=11, start=START, rate_per_s=0.05, fraud_rate=0.05, n_cards=600)
    end = START + timedelta(days=DAYS)
    return generator, list(itertools.takewhile(lambda g: at(g.record["ts"]) < end, generator))


def local_hour(generator: TransactionGenerator, record: dict) -> int:
    city = generator.merchant_info[record["merchant_id"]][0]
    return (at(record["ts"]) + timedelta(hours=CITIES[city][4])).hour


def test_records_are_valid_transactions_in_time_order(run: tuple[TransactionGenerator, list[Generated]]) -> None:
    _, generated = run
    assert 30_000 < len(generated) < 40_000  # 0.05/s for 8 days: rate_per_s counts all events
    for item in generated[::3]:
        Transaction.model_validate(item.record, context=KEY)
    times = [item.record["ts"] for item in generated]
    assert times == sorted(times)
    assert len({item.record["id"] for item in generated}) == len(generated)


def test_same_seed_same_stream_and_cards_independent_of_rate() -> None:
    def take(seed: int, **options: float) -> list[Generated]:
        return list(itertools.islice(TransactionGenerator(seed=seed, start=START, n_cards=200, **options), 2000))

    assert take(3, rate_per_s=0.05) == take(3, rate_per_s=0.05)
    assert [g.record for g in take(3, rate_per_s=0.05)] != [g.record for g in take(4, rate_per_s=0.05)]
    numbers = [c.number for c in TransactionGenerator(seed=3, start=START, rate_per_s=0.05, fraud_rate=0.2).cards]
    assert numbers == [c.number for c in TransactionGenerator(seed=3, start=START, rate_per_s=50, fraud_rate=0).cards]


def test_every_scenario_appears_at_about_its_share(run: tuple[TransactionGenerator, list[Generated]]) -> None:
    _, generated = run
    scenarios = Counter(item.truth["scenario"] for item in generated if item.truth["is_fraud"])
    assert set(scenarios) == set(SHARES)
    frauds = sum(scenarios.values())
    assert 0.03 < frauds / len(generated) < 0.07
    for name, share in SHARES.items():
        assert share / 3 < scenarios[name] / frauds < share * 2.5, (name, scenarios)
    assert all(item.truth["scenario"] is None for item in generated if not item.truth["is_fraud"])


def test_compromises_are_scheduled_in_simulated_days_whatever_the_rate() -> None:
    slow = TransactionGenerator(seed=5, start=START, rate_per_s=0.05, n_cards=2000)
    fast = TransactionGenerator(seed=5, start=START, rate_per_s=50.0, n_cards=2000)
    assert slow.onset_rate == pytest.approx(fast.onset_rate)
    per_day = {kind: rate * 86_400 for kind, rate in slow.onset_rate.items()}
    assert 0.03 < per_day["merchant"] < 5 and 0.2 < per_day["card"] < 10
    assert slow.hot_merchants and slow.hot_cards  # the stream starts with compromises under way
    none = TransactionGenerator(seed=5, start=START, rate_per_s=1.0, fraud_rate=0.0, n_cards=100)
    assert not none.hot_merchants and not none.hot_cards
    assert not any(g.truth["is_fraud"] for g in itertools.islice(none, 3000))


def test_frauds_are_reported_days_later_and_legitimate_events_never(
    run: tuple[TransactionGenerator, list[Generated]],
) -> None:
    _, generated = run
    delays = []
    for record, truth in generated:
        assert truth["merchant_id"] == record["merchant_id"] and truth["card_ref"].startswith("card-")
        if truth["is_fraud"]:
            assert set(truth) == {"id", "is_fraud", "scenario", "card_ref", "merchant_id", "reported_at"}
            delays.append((at(truth["reported_at"]) - at(record["ts"])) / timedelta(days=1))
            if len(delays) % 10 == 0:  # what a chargeback feed built from the truth would carry
                ChargebackLabel.model_validate({"transaction_id": record["id"], "merchant_id": truth["merchant_id"],
                                                "transaction_ts": record["ts"], "fraud": True,
                                                "reported_at": truth["reported_at"]}, context=KEY)
        else:
            assert "reported_at" not in truth
    assert min(delays) >= 2 and max(delays) <= 90
    assert 5 < statistics.median(delays) < 9 and sum(d > 14 for d in delays) > len(delays) / 20


def test_chargeback_delays_a_week_with_a_tail_of_weeks() -> None:
    rng = random.Random(0)
    days = sorted(chargeback_delay_s(rng) / 86_400 for _ in range(5000))
    assert days[0] >= 2 and days[-1] <= 90
    assert 6 < days[2500] < 8 and days[4750] > 14 and days[4950] > 21


def test_compromised_merchants_keep_their_ordinary_traffic(run: tuple[TransactionGenerator, list[Generated]]) -> None:
    generator, generated = run
    fraud_at: dict[str, list[dict]] = defaultdict(list)
    usual: dict[tuple[int, str], list[float]] = defaultdict(list)  # legitimate card-present EUR per (city, mcc)
    for record, truth in generated:
        if truth["scenario"] == "compromised_merchant":
            fraud_at[record["merchant_id"]].append(record)
        elif not truth["is_fraud"] and record["channel"] != "online":
            usual[generator.merchant_info[record["merchant_id"]][:2]].append(eur(record))
    counts, relative = [0, 0], []
    for merchant, frauds in fraud_at.items():
        assert all(r["channel"] != "online" and "lat" in r for r in frauds)  # cloned cards, card present
        median = statistics.median(usual[generator.merchant_info[merchant][:2]])
        relative += [eur(r) / median for r in frauds]
        if len(frauds) < 5:
            continue
        first, last = frauds[0]["ts"], frauds[-1]["ts"]
        legit = [g.record for g in generated if g.record["merchant_id"] == merchant and not g.truth["is_fraud"]
                 and first <= g.record["ts"] <= last and g.record["channel"] != "online"]
        assert legit  # its ordinary traffic goes on
        assert len({r["card_number"] for r in frauds}) >= min(5, len(frauds) // 2)  # many cards, one merchant
        counts = [counts[0] + len(frauds), counts[1] + len(legit)]
    assert counts[0] >= 50
    assert 0.1 < counts[0] / sum(counts) < 0.85  # a large share of its card-present payments, not all of them
    assert 0.7 < statistics.median(relative) < 1.4  # ordinary amounts: the amount does not give it away


def test_card_fraud_shapes(run: tuple[TransactionGenerator, list[Generated]]) -> None:
    _, generated = run
    by: dict[str, list[dict]] = defaultdict(list)
    devices: dict[str, set[str]] = defaultdict(set)
    for record, truth in generated:
        if truth["is_fraud"] and truth["scenario"] == "account_takeover":
            assert record["device_id"] not in devices[truth["card_ref"]]  # a device the card never used
        if not truth["is_fraud"] and "device_id" in record:
            devices[truth["card_ref"]].add(record["device_id"])
        by[truth["scenario"] or "legit"].append(record)
    testing = by["card_testing"]
    assert {r["channel"] for r in testing} == {"online"} and max(map(eur, testing)) < 3.01
    assert {r["channel"] for r in by["account_takeover"]} == {"online"}
    assert min(map(eur, by["account_takeover"])) > 100
    assert statistics.median(map(eur, by["large_amount"])) > 2000
    legit_eur = list(map(eur, by["legit"]))
    assert sum(a > 1000 for a in legit_eur) > 20  # large is not always fraud
    # a compromised card spends several times its usual amount
    assert statistics.median(map(eur, by["compromised_card"])) > 3 * statistics.median(legit_eur)


def test_amounts_are_in_the_currency_scale(run: tuple[TransactionGenerator, list[Generated]]) -> None:
    assert local_amount(10, "EUR") == 10.0 and local_amount(10, "USD") == 10.87
    assert local_amount(10, "KRW") == 14706.0 and local_amount(10, "JPY") == 1613.0
    assert local_amount(0.0001, "KRW") == 1.0 and local_amount(0.0001, "GBP") == 0.01
    _, generated = run
    groceries: dict[str, list[float]] = defaultdict(list)
    for record, truth in generated:
        digits = 0 if record["currency"] in ("JPY", "KRW") else 2
        assert round(record["amount"], digits) == record["amount"]
        if not truth["is_fraud"] and record["mcc"] == "5411":
            groceries[record["currency"]].append(record["amount"])
    korea, euro = statistics.median(groceries["KRW"]), statistics.median(groceries["EUR"])
    assert 0.5 / 0.00068 < korea / euro < 2 / 0.00068  # the same basket, in won
    for currency, amounts in groceries.items():
        assert 15 < statistics.median(amounts) * DEFAULT_RATES[currency] < 100, currency


def test_night_shopping_is_normal_and_fraud_is_not_mostly_at_night(
    run: tuple[TransactionGenerator, list[Generated]],
) -> None:
    generator, generated = run
    legit = [local_hour(generator, g.record) for g in generated if not g.truth["is_fraud"]]
    fraud = [local_hour(generator, g.record) for g in generated if g.truth["is_fraud"]]
    assert sum(h < 5 for h in legit) / len(legit) > 0.03
    assert sum(h < 5 for h in fraud) / len(fraud) < 0.25
    assert len(set(fraud)) == 24  # fraud at every hour
    night_categories = Counter(g.record["mcc"] for g in generated if not g.truth["is_fraud"]
                               and local_hour(generator, g.record) < 5)
    assert {"5813", "4121", "6011", "5499"} <= set(night_categories)
