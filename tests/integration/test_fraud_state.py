"""Card and merchant state survive a worker restart, and confirmed outcomes reach the scores point in time: the
features of every transaction, before and after the restart, are what a point-in-time replay of the same events
computes; outcomes published while the worker was down change the later scores of their merchant, never the
earlier ones.

Transactions go in day by day, as a live stream brings them: the merchant stage sees a merchant's payments in the
order the card stage forwards them, and its windows end days before each payment, so they are exact once a day's
payments are in before those a label delay later (a bulk backfill of weeks in one go would not guarantee that).
"""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest

from models.fraud_features import FEATURE_NAMES, FeatureConfig
from models.fraud_replay import Replay
from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import ChargebackLabel, Transaction, utc_now
from streams.core.pii import resolve_key
from streams.core.settings import Settings
from streams.generators.transactions import TransactionGenerator
from streams.tools.worker_process import WorkerProcess, free_port, isolated

FIRST, SECOND = 400, 400


def wait_for(condition: object, what: str, worker: WorkerProcess, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        assert worker.running, worker.log_tail()
        time.sleep(0.5)
    assert condition(), f"{what}\n{worker.log_tail()}"  # type: ignore[operator]


def test_card_and_merchant_state_continue_across_a_restart_with_outcomes_point_in_time(
        settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "fraud")
    create_topics(s)
    key = resolve_key(s)
    start = utc_now() - timedelta(days=20)  # 800 payments over about 18 days
    generator = TransactionGenerator(seed=5, start=start, rate_per_s=0.0005, fraud_rate=0.0, n_cards=40,
                                     merchants_per_city=4)
    records = [g.record for g in islice(generator, FIRST + SECOND)]
    events = [Transaction.model_validate(r, context={"pii_key": key}) for r in records]
    # While the worker is down, chargebacks arrive for ten first-run payments, reported after every first-run one
    # (they count from the next full hour: the replay and the pipeline must agree on which second-run ones see them)
    reported = events[FIRST - 1].ts
    outcomes = [ChargebackLabel(transaction_id=e.id, merchant_id=e.merchant_id, transaction_ts=e.ts, fraud=True,
                                reported_at=reported, card_token=e.card_token)
                for e in events[:FIRST] if e.ts < reported - timedelta(days=8)][:10]
    assert len(outcomes) == 10
    client = connect(s.search)
    index = f"{s.search.index_prefix}-transactions-*"
    port = free_port()

    def indexed(n: int) -> object:
        def done() -> bool:
            client.refresh(index)
            return client.count(index) >= n
        return done

    def produce_by_day(batch: list[dict], done: int) -> None:
        for day in sorted({r["ts"][:10] for r in batch}):
            wave = [r for r in batch if r["ts"][:10] == day]
            with EventProducer(s) as producer:
                for record in wave:
                    producer.send_record("transactions", record)
                producer.flush()
            done += len(wave)
            wait_for(indexed(done), f"day {day} not indexed", worker)

    try:
        worker = WorkerProcess(env, tmp_path / "worker-0.log", port)
        worker.start()
        try:
            worker.wait_ready()
            produce_by_day(records[:FIRST], 0)
        finally:
            assert worker.stop() == 0, worker.log_tail()  # graceful: the table changelogs are flushed
        with EventProducer(s) as producer:
            for outcome in outcomes:
                producer.send_event("labels", outcome)
            producer.flush()
        worker = WorkerProcess(env, tmp_path / "worker-1.log", port)
        worker.start()
        try:
            worker.wait_ready()
            # the merchant stage reads the outcomes and sends the card stage those naming a card
            wait_for(lambda: worker.metric("lepton_events_consumed_total",
                                           {"stream": s.topics.transactions}) >= len(outcomes),
                     "the outcomes did not reach the card stage", worker)
            produce_by_day(records[FIRST:], FIRST)
        finally:
            assert worker.stop() == 0, worker.log_tail()

        fraud = s.fraud
        replay = Replay(FeatureConfig(fraud.label_delay_days, fraud.reference_currency, fraud.rates), outcomes)
        expected = {e.id: replay.features(e, _NoSkips()) for e in events}
        hits = client.search(index, {"size": FIRST + SECOND, "query": {"match_all": {}}})["hits"]["hits"]
        features = {hit["_id"]: hit["_source"]["features"] for hit in hits}
        assert set(features) == set(expected)
        for event_id, row in expected.items():
            assert row is not None
            for column, name in enumerate(FEATURE_NAMES):
                assert features[event_id][name] == pytest.approx(row[column], rel=1e-5, abs=1e-5), (event_id, name)
        rates = [features[e.id]["merchant_frauds_30d"] for e in events]
        assert max(rates[:FIRST]) == 0  # no earlier score saw an outcome
        assert max(rates[FIRST:]) > 0  # later scores of those merchants did
        carried = {e.card_token for e in events[:FIRST]} & {e.card_token for e in events[FIRST:]}
        assert len(carried) >= 20  # most cards have history from before the restart that the features used
    finally:
        client.delete_prefix(s.search.index_prefix)
        client.close()


class _NoSkips:
    def skip(self, where: str, reason: str) -> None:
        raise AssertionError(f"{where}: {reason}")
