"""The surge stage on news.by-ticker: one alert per surge whatever the batches, workers, restarts and replays."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from models.surge import SurgeDetector, TickerMentions
from sinks.search import BulkItemError, Doc
from streams.core.decoding import Decoder
from streams.core.record import Record
from streams.core.settings import Settings, SurgeSettings
from streams.worker.checkpoint import Checkpoint
from streams.worker.surge import SurgePipeline

KEY = b"k" * 32
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
SURGE = SurgeSettings(min_negative=8, max_p_value=1e-6)
TOPIC = "news.by-ticker"


class Sink:
    def __init__(self) -> None:
        self.written: list[Doc] = []

    def add(self, docs: list[Doc]) -> None:
        self.written += docs

    async def flush(self) -> list[BulkItemError]:
        return []


def stage(table: dict[bytes, dict], sent: list[tuple[str, bytes, bytes]]) -> SurgePipeline:
    """A surge stage whose table is `table` (a restarted worker gets the same dict: what its changelog restores)."""
    settings = Settings()

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    return SurgePipeline(settings, Decoder(settings, pii_key=KEY), Checkpoint(settings, Sink(), publish, KEY), table,
                         SurgeDetector(SURGE))


def message(offset: int, ticker: str, first: int, pattern: str, partition: int = 0) -> Record:
    """A news.by-ticker record of `ticker`: headlines n-<first>... one every 20 s, 'n' negative, '.' not."""
    mentions = [(f"n-{first + i}", T0 + timedelta(seconds=20 * (first + i)), mark == "n")
                for i, mark in enumerate(pattern)]
    return Record(TOPIC, partition, offset, ticker.encode(), TickerMentions.encode(ticker, "fake", "1", mentions))


def alert_ids(sent: list[tuple[str, bytes, bytes]]) -> list[str]:
    return [json.loads(value)["alert_id"] for topic, _, value in sent if topic == "alerts.sentiment"]


CALM = "....n....." * 3  # 30 headlines, 10% negative: the baseline
LOG = [message(0, "ACME", 0, CALM), message(1, "BOLT", 0, "..."), message(2, "ACME", 30, "nnnnn"),
       message(3, "ACME", 35, "nnnn."), message(4, "BOLT", 3, "nn"), message(5, "ACME", 40, "nnnnnn")]


async def test_a_surge_spread_over_messages_raises_one_alert_with_the_model_that_scored_it() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    outcome = await stage({}, sent).process(LOG)
    assert [a.subject for a in outcome.alerts] == ["ACME"]
    assert outcome.alerts[0].model_name == "fake" and outcome.alerts[0].evidence["negative"] >= 8
    assert alert_ids(sent) == [outcome.alerts[0].alert_id]


async def test_batch_boundaries_do_not_change_the_alert() -> None:
    """A batch replayed after a crash may be cut elsewhere: every cut of the same log gives the same alert."""
    whole: list[tuple[str, bytes, bytes]] = []
    await stage({}, whole).process(LOG)
    for cut in range(1, len(LOG)):
        sent: list[tuple[str, bytes, bytes]] = []
        surge = stage({}, sent)
        await surge.process(LOG[:cut])
        await surge.process(LOG[cut:])
        assert alert_ids(sent) == alert_ids(whole), cut


async def test_a_restarted_worker_continues_the_window_from_its_table() -> None:
    table: dict[bytes, dict] = {}
    first: list[tuple[str, bytes, bytes]] = []
    await stage(table, first).process(LOG[:3])  # calm, then 5 negatives: not yet a surge
    assert alert_ids(first) == [] and set(table) == {b"ACME", b"BOLT"}
    later: list[tuple[str, bytes, bytes]] = []
    await stage(table, later).process(LOG[3:])  # a new process, the table restored: the window goes on
    fresh: list[tuple[str, bytes, bytes]] = []
    await stage({}, fresh).process(LOG[3:])  # what a forgetting worker would do
    assert len(alert_ids(later)) == 1 and alert_ids(fresh) == []


async def test_a_replayed_message_is_skipped_and_a_headline_scored_twice_counts_once() -> None:
    table: dict[bytes, dict] = {}
    sent: list[tuple[str, bytes, bytes]] = []
    surge = stage(table, sent)
    await surge.process(LOG)
    stored = copy.deepcopy(table)
    replay = await surge.process(LOG[2:])  # redelivered after a crash before the commit: positions say absorbed
    assert replay.alerts == [] and table == stored
    # The sentiment stage scored n-30..n-34 again (its batch replayed): new offsets, the same headlines.
    again = await surge.process([message(6, "ACME", 30, "nnnnn")])
    assert again.alerts == []
    window = table[b"ACME"]["state"]
    assert sum(negative for negative, _, _ in window["buckets"].values()) == 1 * 3 + 15  # each counted once
    assert table[b"ACME"]["positions"] == {TOPIC: [0, 6]}


async def test_tickers_have_windows_of_their_own() -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    table: dict[bytes, dict] = {}
    await stage(table, sent).process([message(0, "BOLT", 0, CALM), message(1, "ACME", 30, "nnnnnnnnnnnnnnn")])
    assert {json.loads(value)["subject"] for topic, _, value in sent if topic == "alerts.sentiment"} == {"ACME"}
    assert table[b"BOLT"]["state"]["surge_until"] == -1
