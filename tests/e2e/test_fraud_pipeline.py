"""Fraud, end to end: card transactions and chargebacks -> worker (card stage, merchant stage, batched model) ->
index + alerts.

A legitimate-only stretch of traffic is followed by traffic with every kind of injected fraud, on the same cards:
every transaction gets exactly one document, legitimate traffic stays within the alert budget, the fraud that shows
in the payments themselves is alerted, and no card number appears in the index or the alert topic. A merchant whose
payments are confirmed as fraud by chargebacks is alerted on its next payments, citing its confirmed-fraud rate.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import timedelta
from itertools import islice
from pathlib import Path

from sinks.search import SearchClient, connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.malformed import valid_transaction
from streams.generators.transactions import TransactionGenerator
from streams.tools.deadletters import read_topic
from streams.tools.worker_process import WorkerProcess, free_port, isolated

LEGIT, MIXED, CARDS, RATE, SEED = 3000, 3000, 300, 2.0, 21
VISIBLE = {"card_testing", "account_takeover", "large_amount", "impossible_travel"}  # fraud the payments show


def wait_indexed(client: SearchClient, index: str, total: int, worker: WorkerProcess, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while client.count(index) < total and time.monotonic() < deadline:
        assert worker.running, worker.log_tail()
        time.sleep(1)
        client.refresh(index)
    assert client.count(index) == total, worker.log_tail()


def test_transactions_to_scores_and_explained_alerts(settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "fraud")
    create_topics(s)
    # a fixed time of day: the generator's traffic follows the hour, and the alert budget holds over a day, not in every
    # 25-minute window (legitimate payments from 12:50-13:00 or 18:00 drew 22-24 alerts in 3,000, over the 0.5% budget)
    start = utc_now().replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
    legit = list(islice(TransactionGenerator(seed=SEED, start=start, rate_per_s=RATE, fraud_rate=0.0,
                                             n_cards=CARDS), LEGIT))
    mixed = list(islice(TransactionGenerator(seed=SEED, start=start + timedelta(seconds=LEGIT / RATE + 5),
                                             rate_per_s=RATE, fraud_rate=0.2, n_cards=CARDS), MIXED))
    for generated in mixed:  # same seed, same cards, but also the same id sequence: keep ids unique
        generated.record["id"] += "-m"
    card_numbers = {g.record["card_number"] for g in legit + mixed}
    with EventProducer(s) as producer:
        for generated in legit + mixed:
            producer.send_record("transactions", generated.record)
        producer.flush()

    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    client = connect(s.search)
    index = f"{s.search.index_prefix}-transactions-*"
    try:
        worker.start()
        worker.wait_ready()
        wait_indexed(client, index, LEGIT + MIXED, worker)
        hits = client.search(index, {"size": LEGIT + MIXED, "query": {"match_all": {}}})["hits"]["hits"]
        docs = {hit["_id"]: hit["_source"] for hit in hits}
        assert set(docs) == {g.record["id"] for g in legit + mixed}

        legit_flagged = sum(docs[g.record["id"]]["flagged"] for g in legit)
        assert legit_flagged / LEGIT <= s.fraud.alert_budget, f"{legit_flagged} alerts on legitimate traffic"

        by_scenario: dict[str, list[bool]] = defaultdict(list)
        for g in mixed:
            by_scenario[g.truth["scenario"] or "legitimate"].append(docs[g.record["id"]]["flagged"])
        assert VISIBLE | {"compromised_card"} <= set(by_scenario)
        for scenario in VISIBLE | {"compromised_card"}:
            assert any(by_scenario[scenario]), f"no alert for {scenario}"
        visible = [flag for scenario in VISIBLE for flag in by_scenario[scenario]]
        assert sum(visible) / len(visible) >= 0.8

        flagged = [doc for doc in docs.values() if doc["flagged"]]
        assert all(doc["reasons"] and doc["decision"] in ("review", "block") for doc in flagged)
        alerts = [json.loads(value) for value in read_topic(s, s.topics.alerts_fraud)]
        assert sorted(a["event_ids"][0] for a in alerts) == sorted(d["event_id"] for d in flagged)
        assert len({a["alert_id"] for a in alerts}) == len(alerts)

        written = json.dumps(hits) + "".join(value.decode() for value in read_topic(s, s.topics.alerts_fraud))
        assert not [number for number in card_numbers if number in written]
        assert all(doc["card_token"].startswith("tok_") for doc in docs.values())
    finally:
        assert worker.stop() == 0, worker.log_tail()
        client.delete_prefix(s.search.index_prefix)
        client.close()


def payment(i: int, when: object, merchant: str, card: str) -> dict:
    """An ordinary card-present payment (no device: a terminal, not a phone)."""
    record = valid_transaction(when, f"pay-{i}") | {"merchant_id": merchant, "card_token": card,
                                                    "amount": 30.0 + (i * 7) % 25}
    del record["device_id"]
    return record


def test_a_compromised_merchant_is_alerted_after_its_first_confirmed_chargebacks(
        settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "fraud")
    create_topics(s)
    today = utc_now().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    skimmed, usual = f"m-skimmed-{unique}", f"m-usual-{unique}"
    cards = [f"tok_e2ecard{i:04d}" for i in range(40)]
    # two weeks of ordinary traffic at both merchants, in time order; half of the skimmed one's payments of the
    # first week were fraud, which chargebacks confirm two days before "today"
    history = [payment(i, today - timedelta(days=14) + timedelta(hours=1.3 * i), (skimmed, usual)[i % 2],
                       cards[i % 40]) for i in range(240)]
    reported = today - timedelta(days=2)
    frauds = [p for p in history if p["merchant_id"] == skimmed and p["ts"] < (today - timedelta(days=7)).isoformat()]
    chargebacks = [{"transaction_id": p["id"], "merchant_id": skimmed, "transaction_ts": p["ts"], "fraud": True,
                    "reported_at": reported.isoformat(), "card_token": p["card_token"]} for p in frauds[::2]]
    later = [payment(1000 + i, today + timedelta(minutes=10 * i), (skimmed, usual)[i % 2], cards[(i * 7) % 40])
             for i in range(20)]
    worker = WorkerProcess(env, tmp_path / "worker.log", free_port())
    client = connect(s.search)
    index = f"{s.search.index_prefix}-transactions-*"
    try:
        worker.start()
        worker.wait_ready()
        with EventProducer(s) as producer:
            for record in history:
                producer.send_record("transactions", record)
            producer.flush()
        wait_indexed(client, index, len(history), worker)
        with EventProducer(s) as producer:
            for label in chargebacks:
                producer.send_record("labels", label)
            producer.flush()
        time.sleep(3)  # the chargebacks are consumed before the next payments arrive, as in life
        with EventProducer(s) as producer:
            for record in later:
                producer.send_record("transactions", record)
            producer.flush()
        wait_indexed(client, index, len(history) + len(later), worker)
        hits = client.search(index, {"size": 300, "query": {"match_all": {}}})["hits"]["hits"]
        docs = {hit["_id"]: hit["_source"] for hit in hits}
        before = [docs[p["id"]] for p in history if p["ts"] < reported.isoformat()]
        assert not any(d["flagged"] for d in before)  # nothing was known yet: no alert
        at_skimmed = [docs[p["id"]] for p in later if p["merchant_id"] == skimmed]
        at_usual = [docs[p["id"]] for p in later if p["merchant_id"] == usual]
        assert all(d["flagged"] for d in at_skimmed) and not any(d["flagged"] for d in at_usual)
        alerts = {a["alert_id"]: a for a in map(json.loads, read_topic(s, s.topics.alerts_fraud))}
        alert = alerts[f"fraud-{at_skimmed[0]['event_id']}"]
        assert "merchant's confirmed fraud" in alert["summary"] and alert["evidence"]["merchant_fraud_rate_7d"] > 0.3
    finally:
        assert worker.stop() == 0, worker.log_tail()
        client.delete_prefix(s.search.index_prefix)
        client.close()
