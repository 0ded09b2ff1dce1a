"""Per-card state survives a worker restart: features continue as if the worker had never stopped."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest

from models.fraud_features import FEATURE_NAMES, featurize_stream
from sinks.search import connect
from streams.broker.producer import EventProducer
from streams.broker.topics import create_topics
from streams.core.events import Transaction, utc_now
from streams.core.pii import resolve_key
from streams.core.settings import Settings
from streams.generators.transactions import TransactionGenerator
from streams.tools.worker_process import WorkerProcess, free_port, isolated

FIRST, SECOND = 400, 400


def test_features_continue_across_a_restart(settings: Settings, unique: str, tmp_path: Path) -> None:
    s, env = isolated(settings, unique, "fraud")
    create_topics(s)
    generated = [g.record for g in islice(TransactionGenerator(
        seed=5, start=utc_now() - timedelta(hours=6), rate_per_s=1.0, fraud_rate=0.0, n_cards=40), FIRST + SECOND)]
    client = connect(s.search)
    index = f"{s.search.index_prefix}-transactions-*"
    port = free_port()
    try:
        for run, batch in enumerate((generated[:FIRST], generated[FIRST:])):
            with EventProducer(s) as producer:
                for record in batch:
                    producer.send_record("transactions", record)
                producer.flush()
            worker = WorkerProcess(env, tmp_path / f"worker-{run}.log", port)
            worker.start()
            try:
                worker.wait_ready()
                deadline = time.monotonic() + 120
                while client.count(index) < FIRST * (run + 1) and time.monotonic() < deadline:
                    time.sleep(0.5)
                    client.refresh(index)
            finally:
                assert worker.stop() == 0, worker.log_tail()  # graceful: the table changelog is flushed
        assert client.count(index) == FIRST + SECOND

        expected_states, expected = featurize_stream(
            Transaction.model_validate(r, context={"pii_key": resolve_key(s)}) for r in generated)
        hits = client.search(index, {"size": FIRST + SECOND, "query": {"match_all": {}}})["hits"]["hits"]
        features = {hit["_id"]: hit["_source"]["features"] for hit in hits}
        for row, record in enumerate(generated[FIRST:], start=FIRST):
            got = features[record["id"]]
            for column, name in enumerate(FEATURE_NAMES):
                assert got[name] == pytest.approx(expected[row, column], rel=1e-5, abs=1e-5), (record["id"], name)
        carried = {r["card_number"] for r in generated[:FIRST]} & {r["card_number"] for r in generated[FIRST:]}
        assert len(carried) >= 20  # most cards have history from before the restart that the features used
        assert len(expected_states) == len({r["card_number"] for r in generated})
    finally:
        client.delete_prefix(s.search.index_prefix)
        client.close()
