"""The sentiment pipeline's handling of one micro-batch, with a fake model, sink and publisher; its by-ticker messages
through the surge stage (test_surge_pipeline.py has that stage's own cases)."""

from __future__ import annotations

import json
from datetime import timedelta

from models.sentiment import SentimentResult
from models.surge import SurgeDetector, TickerMentions
from sinks.search import BulkItemError, Doc
from streams.core.decoding import Decoder
from streams.core.events import NewsEvent, utc_now
from streams.core.record import Record
from streams.core.settings import Settings, SurgeSettings
from streams.worker.checkpoint import Checkpoint
from streams.worker.sentiment import SentimentPipeline, tickers_of
from streams.worker.surge import SurgePipeline

KEY = b"k" * 32


class FakeSink:
    def __init__(self, refuse: set[str] = frozenset()) -> None:
        self.pending: list[Doc] = []
        self.written: list[Doc] = []
        self.refuse = refuse

    def add(self, docs: list[Doc]) -> None:
        self.pending.extend(docs)

    async def flush(self) -> list[BulkItemError]:
        refused = [
            BulkItemError(d.id, d.index, 400, "mapper_parsing_exception") for d in self.pending if d.id in self.refuse
        ]
        self.written += [d for d in self.pending if d.id not in self.refuse]
        self.pending = []
        return refused


THRESHOLD = 0.4  # the fake model's calibrated negative threshold


def result(text: str) -> SentimentResult:
    """"plunge": bearish; "clouded": neutral on top but P(bearish) over the threshold (negative); else bullish."""
    if "plunge" in text:
        probs = {"bearish": 0.9, "neutral": 0.05, "bullish": 0.05}
    elif "clouded" in text:
        probs = {"bearish": 0.45, "neutral": 0.5, "bullish": 0.05}
    else:
        probs = {"bearish": 0.05, "neutral": 0.15, "bullish": 0.8}
    label = max(probs, key=probs.__getitem__)
    return SentimentResult(label, probs, probs["bullish"] - probs["bearish"], "fake", "1",
                           probs["bearish"] >= THRESHOLD, THRESHOLD)


def news(i: int, headline: str, tickers: list[str], minutes_ago: float = 5) -> bytes:
    when = (utc_now() - timedelta(minutes=minutes_ago)).isoformat()
    return json.dumps(
        {"id": f"n-{i}", "published_at": when, "source": "wire", "headline": headline, "tickers": tickers}
    ).encode()


def make(score=None, sink=None) -> tuple[SentimentPipeline, FakeSink, list[tuple[str, bytes, bytes]]]:
    settings = Settings()
    sent: list[tuple[str, bytes, bytes]] = []

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    async def fake_score(texts: list[str]) -> list[SentimentResult]:
        return [result(t) for t in texts]

    sink = sink or FakeSink()
    pipeline = SentimentPipeline(
        settings,
        Decoder(settings, pii_key=KEY),
        Checkpoint(settings, sink, publish, KEY),
        score or fake_score,
    )
    return pipeline, sink, sent


def surge_stage(sink: FakeSink, sent: list[tuple[str, bytes, bytes]]) -> SurgePipeline:
    """The surge stage beside `pipeline`, with a dict for its table, writing to the same fakes."""
    settings = Settings()

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        sent.append((topic, key, value))

    return SurgePipeline(settings, Decoder(settings, pii_key=KEY), Checkpoint(settings, sink, publish, KEY), {},
                         SurgeDetector(SurgeSettings(min_negative=8, max_p_value=1e-6)))


def by_ticker(sent: list[tuple[str, bytes, bytes]], since: int = 0) -> list[Record]:
    """The news.by-ticker messages sent (from index `since` on), as the surge stage reads them."""
    messages = [(key, value) for topic, key, value in sent[since:] if topic == "news.by-ticker"]
    return [Record("news.by-ticker", 0, since + i, key, value) for i, (key, value) in enumerate(messages)]


def records(values: list[bytes]) -> list[Record]:
    return [Record("news", 1, 100 + i, None, value) for i, value in enumerate(values)]


async def test_valid_events_become_documents_with_their_coordinates() -> None:
    pipeline, sink, sent = make()
    outcome = await pipeline.process(
        records([news(1, "Acme shares rally", ["ACME"]), news(2, "Bolt stock plunge", ["BOLT"])])
    )
    assert outcome.scored == 2 and outcome.dead_letters == 0
    assert {topic for topic, _, _ in sent} == {"news.by-ticker"} and outcome.published == 2
    docs = {d.id: d for d in sink.written}
    assert set(docs) == {"n-1", "n-2"}
    assert docs["n-2"].body["label"] == "bearish" and docs["n-2"].body["score"] < 0
    assert (docs["n-2"].body["negative"], docs["n-1"].body["negative"]) == (True, False)
    assert docs["n-1"].body["negative_threshold"] == THRESHOLD
    assert (docs["n-1"].body["topic"], docs["n-1"].body["partition"], docs["n-1"].body["offset"]) == ("news", 1, 100)
    assert docs["n-1"].index.startswith("lepton-news-")


async def test_malformed_events_are_dead_lettered_and_the_rest_scored() -> None:
    pipeline, _, sent = make()
    outcome = await pipeline.process(records([b"{not json", news(1, "Acme shares rally", ["ACME"]), b""]))
    assert outcome.scored == 1 and outcome.dead_letters == 2
    letters = [json.loads(value) for topic, _, value in sent if topic == "deadletter"]
    assert sorted(letter["error_type"] for letter in letters) == ["empty", "invalid_json"]
    assert {letter["source_offset"] for letter in letters} == {100, 102}


async def test_model_failure_dead_letters_the_batch() -> None:
    async def broken(texts: list[str]) -> list[SentimentResult]:
        raise RuntimeError("CUDA out of memory")

    pipeline, sink, sent = make(score=broken)
    outcome = await pipeline.process(records([news(1, "a", []), news(2, "b", [])]))
    assert outcome.dead_letters == 2 and sink.written == []
    reasons = [json.loads(value)["reason"] for _, _, value in sent]
    assert all("CUDA out of memory" in reason for reason in reasons)


async def test_refused_document_is_dead_lettered() -> None:
    pipeline, sink, sent = make(sink=FakeSink(refuse={"n-2"}))
    outcome = await pipeline.process(records([news(1, "a", []), news(2, "b", [])]))
    assert [d.id for d in sink.written] == ["n-1"]
    assert outcome.dead_letters == 1
    letter = json.loads(sent[0][2])
    assert letter["source_offset"] == 101 and "mapper_parsing_exception" in letter["reason"]


async def test_each_ticker_named_gets_one_message_keyed_by_it_with_its_headlines_in_event_time_order() -> None:
    pipeline, _, sent = make()
    batch = [news(1, "Acme stock plunge", ["ACME"], minutes_ago=1), news(2, "$BOLT and Acme rally", ["ACME"], 3),
             news(3, "Quiet day", [])]
    await pipeline.process(records(batch))
    messages = {key: TickerMentions.model_validate_json(value) for topic, key, value in sent
                if topic == "news.by-ticker"}
    assert set(messages) == {b"ACME", b"BOLT"}
    acme = messages[b"ACME"]
    assert [(m.id, m.neg) for m in acme.mentions] == [("n-2", False), ("n-1", True)]  # the earlier one first
    assert acme.ticker == "ACME" and (acme.model_name, acme.model_version) == ("fake", "1")
    assert [m.id for m in messages[b"BOLT"].mentions] == ["n-2"]


async def test_a_surge_raises_one_alert_on_topic_and_index() -> None:
    pipeline, sink, sent = make()
    surge = surge_stage(sink, sent)
    batch = [news(i, "Acme stock plunge", ["ACME"], minutes_ago=3 - i / 10) for i in range(12)]
    await pipeline.process(records(batch))
    outcome = await surge.process(by_ticker(sent))
    assert [a.subject for a in outcome.alerts] == ["ACME"]
    alerts = [json.loads(value) for topic, _, value in sent if topic == "alerts.sentiment"]
    assert len(alerts) == 1 and alerts[0]["alert_id"] == outcome.alerts[0].alert_id
    assert alerts[0]["evidence"]["negative"] >= 8 and alerts[0]["event_ids"]
    assert alerts[0]["model_name"] == "fake"
    assert [d.id for d in sink.written if d.index.startswith("lepton-alerts-")] == [alerts[0]["alert_id"]]
    mark = len(sent)
    await pipeline.process(records([news(99, "Acme stock plunge", ["ACME"], minutes_ago=1)]))
    again = await surge.process(by_ticker(sent, mark))
    assert again.alerts == []  # the same surge does not alert twice


async def test_the_surge_detector_counts_the_calibrated_negative_flag_not_the_top_label() -> None:
    pipeline, sink, sent = make()
    batch = [news(i, "Acme outlook clouded", ["ACME"], minutes_ago=3 - i / 10) for i in range(12)]
    await pipeline.process(records(batch))
    assert {d.body["label"] for d in sink.written if d.index.startswith("lepton-news-")} == {"neutral"}
    assert {d.body["negative"] for d in sink.written if d.index.startswith("lepton-news-")} == {True}
    outcome = await surge_stage(sink, sent).process(by_ticker(sent))
    assert [a.subject for a in outcome.alerts] == ["ACME"]


def test_tickers_come_from_the_field_and_cashtags() -> None:
    event = NewsEvent.model_validate(
        {
            "id": "n",
            "published_at": utc_now().isoformat(),
            "source": "s",
            "headline": "$bolt and $ACME up",
            "tickers": ["ACME", "ZED"],
        },
        context={"pii_key": KEY},
    )
    assert tickers_of(event) == ["ACME", "ZED", "BOLT"]


async def test_every_chunk_is_scored_at_once_and_the_micro_batch_indexed_in_one_bulk_request() -> None:
    import asyncio

    log: list[str] = []
    both_submitted = asyncio.Event()

    async def score(texts: list[str]) -> list[SentimentResult]:
        log.append(f"score {len(texts)}")
        if len(log) == 2:
            both_submitted.set()
        await both_submitted.wait()  # the first chunk is still "on the device" when the second is submitted
        return [result(t) for t in texts]

    class RecordingSink(FakeSink):
        async def flush(self) -> list[BulkItemError]:
            log.append(f"flush {len(self.pending)}")
            return await super().flush()

    pipeline, sink, _ = make(score, RecordingSink())
    size = pipeline.settings.batching.max_batch_size
    outcome = await pipeline.process(records([news(i, f"Acme item {i}", ["ACME"]) for i in range(size + 3)]))
    assert outcome.scored == size + 3 and len(sink.written) == size + 3
    assert log == [f"score {size}", "score 3", f"flush {size + 3}"]


async def test_a_failed_chunk_is_dead_lettered_and_the_other_chunks_indexed() -> None:
    async def score(texts: list[str]) -> list[SentimentResult]:
        if texts[0].endswith(" 0"):
            raise RuntimeError("device lost")
        return [result(t) for t in texts]

    pipeline, sink, sent = make(score)
    size = pipeline.settings.batching.max_batch_size
    outcome = await pipeline.process(records([news(i, f"Acme item {i}", ["ACME"]) for i in range(size + 3)]))
    assert outcome.scored == 3 and outcome.dead_letters == size
    assert len(sink.written) == 3 and sum(topic == "deadletter" for topic, _, _ in sent) == size


async def test_batches_in_flight_finish_in_any_order_each_after_its_own_documents() -> None:
    """The agent works on several micro-batches at once (`sentiment_batches_in_flight`): a later batch may be done
    first; each returns (and is acked) only once its own documents are written, and the surge spanning both
    batches raises one alert in the surge stage."""
    import asyncio

    early_may_finish = asyncio.Event()

    async def score(texts: list[str]) -> list[SentimentResult]:
        if texts[0].startswith("early"):
            await early_may_finish.wait()
        return [result(t) for t in texts]

    pipeline, sink, sent = make(score)
    early = [Record("news", 1, 100 + i, None, news(i, f"early Acme stock plunge {i}", ["ACME"], 3 - i / 10))
             for i in range(6)]
    late = [Record("news", 1, 106 + i, None, news(6 + i, f"late Acme stock plunge {i}", ["ACME"], 2 - i / 10))
            for i in range(6)]
    first = asyncio.ensure_future(pipeline.process(early))
    await pipeline.process(late)
    assert not first.done()
    assert sorted(d.id for d in sink.written) == sorted(f"n-{6 + i}" for i in range(6))
    surge = surge_stage(sink, sent)
    assert (await surge.process(by_ticker(sent))).alerts == []  # the late batch: 6 negatives, 8 needed
    mark = len(sent)
    early_may_finish.set()
    await first
    news_ids = [d.id for d in sink.written if d.index.startswith("lepton-news-")]
    assert sorted(news_ids) == sorted(f"n-{i}" for i in range(12))
    outcome = await surge.process(by_ticker(sent, mark))
    assert [a.subject for a in outcome.alerts] == ["ACME"] and outcome.alerts[0].evidence["negative"] == 12
