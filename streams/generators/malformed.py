"""A corpus of malformed (and tricky-but-valid) messages with the outcome the decoding boundary must give.

Used by the unit and integration tests, and reusable by chaos tooling (`lepton chaos poison`). Each sample
names its input kind (the topic it is sent to) and its expected outcome: an ErrorType, or "valid".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from streams.core.events import ErrorType, utc_now

Kind = Literal["news", "transactions", "clicks", "catalog"]
Outcome = ErrorType | Literal["valid"]
TEST_PAN = "4111111111111111"  # the well-known Visa test number (Luhn-valid, not a real card)


@dataclass(frozen=True)
class Sample:
    """One corpus entry: raw bytes for a topic kind, and what decoding them must produce."""

    name: str
    kind: Kind
    payload: bytes
    expected: Outcome
    note: str


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def valid_news(now: datetime, event_id: str = "news-1") -> dict[str, Any]:
    """A news event that passes every rule."""
    return {
        "id": event_id,
        "published_at": _iso(now),
        "source": "Harbor Ledger",
        "headline": "Quillfeather Labs beats quarterly estimates",
        "tickers": ["QFL"],
    }


def valid_transaction(now: datetime, event_id: str = "txn-1") -> dict[str, Any]:
    """A transaction that passes every rule (with a card token, no card number)."""
    return {
        "id": event_id,
        "ts": _iso(now),
        "card_token": "tok_0123456789abcdef01234567",
        "amount": 42.5,
        "currency": "EUR",
        "merchant_id": "m-100",
        "mcc": "5411",
        "country": "DE",
        "lat": 52.52,
        "lon": 13.40,
        "channel": "pos",
        "device_id": "dev-7",
    }


def valid_click(now: datetime, event_id: str = "clk-1") -> dict[str, Any]:
    """A click event that passes every rule."""
    return {
        "id": event_id,
        "ts": _iso(now),
        "user_id": "u-1",
        "session_id": "s-1",
        "item_id": "item-1",
        "action": "view",
    }


def valid_catalog(now: datetime) -> dict[str, Any]:
    """A catalog item that passes every rule."""
    return {
        "item_id": "item-1",
        "title": "Ridgeline trail tent",
        "description": "Two-person, 1.9 kg.",
        "category": "outdoor",
        "price": 129.0,
        "updated_at": _iso(now),
    }


def _js(value: Any) -> bytes:
    return json.dumps(value).encode()


def _txn(now: datetime, **changes: Any) -> bytes:
    """A valid transaction with fields changed (None removes the field)."""
    event = valid_transaction(now)
    for name, value in changes.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return _js(event)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _samples(now: datetime) -> list[tuple[str, Kind, bytes, Outcome, str]]:
    """The corpus as plain tuples (name, kind, payload, outcome, note)."""
    txn = valid_transaction(now)
    raw_txn = json.dumps(txn)
    big_body = dict(valid_news(now), body="x" * (1024 * 1024))
    return [
        ("empty", "transactions", b"", "empty", "zero bytes"),
        ("whitespace_only", "transactions", b"  \n\t ", "invalid_json", "only whitespace"),
        ("oversized", "news", _js(big_body), "oversized", "valid JSON but over 1 MiB"),
        ("binary_garbage", "transactions", b"\xff\xfe\x00\x81garbage", "not_utf8", "random bytes"),
        ("latin1_text", "news", _js(valid_news(now))[:-1] + b', "body": "caf\xe9"}', "not_utf8", "Latin-1"),
        ("truncated_json", "transactions", raw_txn[: len(raw_txn) // 2].encode(), "invalid_json", "cut off"),
        ("trailing_comma", "clicks", _js(valid_click(now))[:-1] + b",}", "invalid_json", "comma before }"),
        ("single_quotes", "clicks", str(valid_click(now)).encode(), "invalid_json", "Python repr, not JSON"),
        ("json_comment", "news", b"// note\n" + _js(valid_news(now)), "invalid_json", "comments are not JSON"),
        ("xml_payload", "news", b"<news><id>1</id></news>", "invalid_json", "wrong format entirely"),
        ("nul_bytes", "transactions", b"\x00\x00\x00", "invalid_json", "NUL characters"),
        (
            "raw_control_char",
            "news",
            _js(valid_news(now)).replace(b"beats", b"be\x01ats"),
            "invalid_json",
            "unescaped control character inside a string",
        ),
        (
            "lone_surrogate",
            "news",
            _js(valid_news(now)).replace(b"beats", b"be\\ud800ats"),
            "invalid_json",
            "\\u escape that is not text",
        ),
        (
            "huge_integer",
            "transactions",
            raw_txn.replace("42.5", "9" * 5000).encode(),
            "invalid_json",
            "an integer literal of 5000 digits",
        ),
        ("top_level_array", "transactions", _js([txn]), "not_object", "a list of events"),
        ("top_level_string", "transactions", b'"hello"', "not_object", "a bare string"),
        ("top_level_null", "catalog", b"null", "not_object", "JSON null"),
        ("nan_amount", "transactions", raw_txn.replace("42.5", "NaN").encode(), "invalid_number", "NaN"),
        ("infinity_amount", "transactions", raw_txn.replace("42.5", "Infinity").encode(), "invalid_number", "Infinity"),
        (
            "overflow_amount",
            "transactions",
            raw_txn.replace("42.5", "1e999").encode(),
            "invalid_number",
            "a literal that overflows to infinity",
        ),
        (
            "duplicate_key",
            "transactions",
            raw_txn.replace('"amount": 42.5', '"amount": 1, "amount": 9999').encode(),
            "duplicate_key",
            "the same key twice",
        ),
        (
            "deep_nesting",
            "news",
            _js(valid_news(now))[:-1] + f', "x": {_nested(100)}}}'.encode(),
            "too_deep",
            "100 levels inside an unknown field",
        ),
        ("very_deep_nesting", "news", _nested(100_000).encode(), "too_deep", "100,000 levels"),
        ("missing_amount", "transactions", _txn(now, amount=None), "validation", "required field absent"),
        ("missing_card", "transactions", _txn(now, card_token=None), "validation", "no card number or token"),
        ("amount_as_string", "transactions", _txn(now, amount="42.50"), "validation", "strict types"),
        ("amount_as_bool", "transactions", _txn(now, amount=True), "validation", "strict types"),
        ("amount_as_object", "transactions", _txn(now, amount={"value": 4}), "validation", "wrong type"),
        ("negative_amount", "transactions", _txn(now, amount=-5.0), "validation", "amount must be > 0"),
        ("zero_amount", "transactions", _txn(now, amount=0), "validation", "amount must be > 0"),
        ("absurd_amount", "transactions", _txn(now, amount=1e12), "validation", "amount over 1,000,000"),
        (
            "far_future_ts",
            "transactions",
            _txn(now, ts=_iso(now + timedelta(days=30))),
            "validation",
            "more than a day ahead",
        ),
        ("far_past_ts", "transactions", _txn(now, ts="1970-01-02T00:00:00Z"), "validation", "before 2000"),
        ("naive_ts", "transactions", _txn(now, ts="2024-05-01T10:00:00"), "validation", "no timezone"),
        ("unparseable_ts", "transactions", _txn(now, ts="yesterday"), "validation", "not a time"),
        (
            "bad_luhn_card",
            "transactions",
            _txn(now, card_token=None, card_number="4111111111111112"),
            "validation",
            "card number fails Luhn",
        ),
        ("card_number_and_token", "transactions", _txn(now, card_number=TEST_PAN), "validation", "both card fields"),
        (
            "digits_as_token",
            "transactions",
            _txn(now, card_token=TEST_PAN),
            "validation",
            "a card number in the token field",
        ),
        ("bad_currency", "transactions", _txn(now, currency="euro"), "validation", "not ISO 4217"),
        ("bad_mcc", "transactions", _txn(now, mcc="54a1"), "validation", "MCC is 4 digits"),
        ("lat_out_of_range", "transactions", _txn(now, lat=123.0), "validation", "latitude > 90"),
        ("lat_without_lon", "transactions", _txn(now, lon=None), "validation", "half a location"),
        ("unknown_channel", "transactions", _txn(now, channel="telepathy"), "validation", "not an enum value"),
        ("id_with_spaces", "transactions", _txn(now, id="txn 1"), "validation", "id pattern"),
        ("id_too_long", "transactions", _txn(now, id="t" * 200), "validation", "id over 128 characters"),
        ("bad_click_action", "clicks", _js(dict(valid_click(now), action="like")), "validation", "enum"),
        ("empty_headline", "news", _js(dict(valid_news(now), headline="   ")), "validation", "blank text"),
        ("bad_ticker", "news", _js(dict(valid_news(now), tickers=["$$$"])), "validation", "ticker pattern"),
        (
            "too_many_tickers",
            "news",
            _js(dict(valid_news(now), tickers=[f"T{i}" for i in range(30)])),
            "validation",
            "over 20 tickers",
        ),
        (
            "catalog_missing_price",
            "catalog",
            _js({k: v for k, v in valid_catalog(now).items() if k != "price"}),
            "validation",
            "a live item without a price",
        ),
        ("catalog_negative_price", "catalog", _js(dict(valid_catalog(now), price=-1)), "validation", "price"),
        ("news_on_transactions", "transactions", _js(valid_news(now)), "validation", "wrong topic's event"),
        (
            "duplicate_id",
            "transactions",
            _js(valid_transaction(now, event_id="txn-1")),
            "valid",
            "same id as another event: valid; its document overwrites the earlier one",
        ),
        (
            "unknown_fields",
            "clicks",
            _js(dict(valid_click(now), referrer="ad", debug={"a": 1})),
            "valid",
            "unknown fields are dropped",
        ),
        ("utf8_bom", "catalog", "\ufeff".encode() + _js(valid_catalog(now)), "valid", "a leading BOM is fine"),
        (
            "card_number",
            "transactions",
            _txn(now, card_token=None, card_number="4111 1111 1111 1111"),
            "valid",
            "a card number is accepted and replaced by its token",
        ),
        ("catalog_deletion", "catalog", b'{"item_id": "item-1", "deleted": true}', "valid", "deletion marker"),
    ]


def corpus(now: datetime | None = None) -> list[Sample]:
    """The corpus with timestamps relative to `now` (so 'valid' samples stay valid whenever it runs)."""
    return [Sample(*row) for row in _samples(now or utc_now())]


def malformed(now: datetime | None = None) -> list[Sample]:
    """Only the samples that must become dead letters."""
    return [sample for sample in corpus(now) if sample.expected != "valid"]


MAKE_VALID: dict[Kind, Callable[[datetime], dict[str, Any]]] = {
    "news": valid_news,
    "transactions": valid_transaction,
    "clicks": valid_click,
    "catalog": valid_catalog,
}
