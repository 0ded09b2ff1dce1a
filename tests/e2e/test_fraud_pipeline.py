"""Fraud, end to end: card transactions -> worker (per-card table state, batched model) -> index + alerts.

A legitimate-only stretch of traffic is followed by traffic with every kind of injected fraud, on the same
cards. Every transaction must get exactly one document; legitimate traffic must stay under the alert budget;
each fraud scenario must be alerted; no card number may appear in the index or the alert topic.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import timedelta
from itertools import islice
from pathlib import Path

from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import utc_now
from streams.core.settings import Settings
from streams.generators.transactions import TransactionGenerator
from streams.tools.deadletters import read_topic
from streams.tools.worker_process import WorkerProcess, free_port, isolated

LEGIT, MIXED, CARDS, RATE, SEED = 3000, 3000, 300, 2.0, 21


def test_transactions_to_scores_and_explained_alerts(settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "fraud")
    create_topics(s)
    # Night sprees need a cardholder between midnight and 5 am local time: the traffic starts at 02:00 UTC the day
    # before (night in Europe), not at a time of day when no city on the card list is asleep (13:00-14:00 UTC).
    start = (utc_now() - timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
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
        deadline = time.monotonic() + 300
        while client.count(index) < LEGIT + MIXED and time.monotonic() < deadline:
            assert worker.running, worker.log_tail()
            time.sleep(1)
            client.refresh(index)
        time.sleep(2)
        client.refresh(index)
        assert client.count(index) == LEGIT + MIXED, worker.log_tail()

        hits = client.search(index, {"size": LEGIT + MIXED, "query": {"match_all": {}}})["hits"]["hits"]
        docs = {hit["_id"]: hit["_source"] for hit in hits}
        assert set(docs) == {g.record["id"] for g in legit + mixed}

        legit_flagged = sum(docs[g.record["id"]]["flagged"] for g in legit)
        assert legit_flagged / LEGIT <= s.fraud.alert_budget, f"{legit_flagged} alerts on legitimate traffic"

        by_scenario: dict[str, list[bool]] = defaultdict(list)
        for g in mixed:
            by_scenario[g.truth["scenario"] or "legitimate"].append(docs[g.record["id"]]["flagged"])
        scenarios = set(by_scenario) - {"legitimate"}
        assert scenarios == {"card_testing", "account_takeover", "night_spree", "impossible_travel"}
        for scenario in scenarios:
            assert any(by_scenario[scenario]), f"no alert for {scenario}"
        frauds = [flag for scenario in scenarios for flag in by_scenario[scenario]]
        assert sum(frauds) / len(frauds) >= 0.8

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
