"""The decoding boundary: every corpus sample gets its documented outcome, nothing raises, nothing leaks."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.core.decoding import MAX_KEPT_BYTES, Decoder
from streams.core.events import INPUT_MODELS, DeadLetter, InputEvent, Transaction
from streams.core.settings import Settings
from streams.generators.malformed import TEST_PAN, corpus, malformed, valid_transaction

KEY = b"unit-test-key-0123456789abcdef"
DECODER = Decoder(Settings(), pii_key=KEY)
SAMPLES = corpus()


def decode(payload: bytes | None, kind: str = "transactions", **where: Any) -> InputEvent | DeadLetter:
    return DECODER.decode(payload, topic=kind, **where)


def test_corpus_is_big_enough() -> None:
    assert len({sample.name for sample in malformed()}) >= 30
    assert len({sample.expected for sample in malformed()}) >= 8


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.name for sample in SAMPLES])
def test_corpus_sample_gets_documented_outcome(sample: Any) -> None:
    result = decode(sample.payload, sample.kind, partition=2, offset=41, key=b"k")
    if sample.expected == "valid":
        assert isinstance(result, INPUT_MODELS[sample.kind])
        return
    assert isinstance(result, DeadLetter), f"{sample.name} was accepted"
    assert result.error_type == sample.expected, result.reason
    assert result.reason and len(result.reason) <= 1000
    assert (result.source_topic, result.source_partition, result.source_offset) == (sample.kind, 2, 41)
    assert result.id == f"{sample.kind}:2:41" and base64.b64decode(result.key_b64 or "") == b"k"
    if not result.original_truncated and not result.redacted:
        assert base64.b64decode(result.original_b64) == sample.payload  # the original bytes, untouched


def test_no_dead_letter_carries_a_card_number() -> None:
    for sample in SAMPLES:
        result = decode(sample.payload, sample.kind)
        if isinstance(result, DeadLetter):
            text = result.model_dump_json()
            assert TEST_PAN not in text and TEST_PAN not in base64.b64decode(result.original_b64).decode("latin-1")


def test_card_number_in_a_rejected_event_is_replaced_by_its_token() -> None:
    payload = json.dumps(valid_transaction_with_pan(amount=-1)).encode()
    letter = decode(payload)
    assert isinstance(letter, DeadLetter) and letter.redacted
    original = json.loads(base64.b64decode(letter.original_b64))
    assert "card_number" not in original and original["card_token"].startswith("tok_")
    # once the amount is fixed, the scrubbed original is a valid event of the same card
    fixed = json.dumps(original | {"amount": 1.0}).encode()
    event = decode(fixed)
    assert isinstance(event, Transaction) and event.card_token == original["card_token"]


def valid_transaction_with_pan(**changes: Any) -> dict[str, Any]:
    from streams.core.events import utc_now

    event = valid_transaction(utc_now())
    event.pop("card_token")
    return event | {"card_number": TEST_PAN} | changes


def test_pan_inside_broken_json_is_masked() -> None:
    letter = decode(b'{"card_number": "4111111111111111", "amount": ')
    assert isinstance(letter, DeadLetter) and letter.error_type == "invalid_json" and letter.redacted
    assert b"4111111111111111" not in base64.b64decode(letter.original_b64)


def test_oversized_original_is_cut_and_marked() -> None:
    letter = decode(b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert isinstance(letter, DeadLetter) and letter.error_type == "oversized" and letter.original_truncated
    assert letter.original_size == 2 * 1024 * 1024 + 2
    assert len(base64.b64decode(letter.original_b64)) == MAX_KEPT_BYTES
    assert len(letter.model_dump_json()) < 1_000_000  # fits a default Kafka message


def test_none_value_unknown_topic_and_positionless_ids() -> None:
    assert decode(None).error_type == "empty"  # type: ignore[union-attr]
    unknown = DECODER.decode(b"{}", topic="no-such-topic")
    assert isinstance(unknown, DeadLetter) and unknown.error_type == "unknown_topic"
    first, second = decode(b"x", origin="f.jsonl:1"), decode(b"x", origin="f.jsonl:2")
    assert first.id != second.id and first.id == decode(b"x", origin="f.jsonl:1").id  # type: ignore[union-attr]


def test_explicit_model_overrides_topic_lookup() -> None:
    payload = json.dumps(valid_transaction_with_pan()).encode()
    assert isinstance(DECODER.decode(payload, topic="it-123-anything", model=Transaction), Transaction)


def test_duplicate_ids_are_valid_events_with_the_same_document_id() -> None:
    """Policy: duplicates are not dead-lettered; the document id is the event id, so a rewrite overwrites."""
    sample = next(s for s in SAMPLES if s.name == "duplicate_id")
    first, second = decode(sample.payload), decode(sample.payload)
    assert isinstance(first, Transaction) and isinstance(second, Transaction) and first.id == second.id


def test_internal_failures_become_dead_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(Transaction, "model_validate", boom)
    letter = decode(json.dumps(valid_transaction_with_pan()).encode())
    assert isinstance(letter, DeadLetter) and letter.error_type == "internal"
    monkeypatch.setattr("streams.core.decoding.dead_letter", boom)
    letter = decode(b"{}")
    assert isinstance(letter, DeadLetter) and letter.error_type == "internal"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=30,
)
FIELDS = [
    "id",
    "ts",
    "card_number",
    "card_token",
    "amount",
    "currency",
    "merchant_id",
    "mcc",
    "country",
    "lat",
    "lon",
    "channel",
    "device_id",
    "user_id",
    "item_id",
    "action",
    "headline",
    "tickers",
    "price",
    "deleted",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=300), kind=st.sampled_from(list(INPUT_MODELS)))
def test_decoder_never_raises_on_bytes(payload: bytes, kind: str) -> None:
    assert isinstance(DECODER.decode(payload, topic=kind), InputEvent | DeadLetter)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=12), kind=st.sampled_from(list(INPUT_MODELS))
)
def test_decoder_never_raises_on_json_objects(fields: dict[str, Any], kind: str) -> None:
    payload = json.dumps(fields).encode()  # NaN/Infinity included: json.dumps writes them
    result = DECODER.decode(payload, topic=kind, partition=0, offset=1)
    assert isinstance(result, InputEvent | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason and result.error_type != "internal", result.reason


@settings(max_examples=200, deadline=None)
@given(mutation=st.sampled_from(FIELDS), value=json_values)
def test_mutated_valid_transactions_never_raise(mutation: str, value: Any) -> None:
    record = valid_transaction_with_pan() | {mutation: value}
    result = decode(json.dumps(record).encode())
    assert isinstance(result, Transaction | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.error_type != "internal", result.reason
