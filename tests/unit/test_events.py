"""Every schema rule of the input events and output documents, one case per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from streams.core import pii
from streams.core.events import Alert, CatalogItem, ClickEvent, DeadLetter, FraudDoc, NewsEvent, Transaction
from streams.generators.malformed import TEST_PAN, valid_catalog, valid_click, valid_news, valid_transaction

KEY = b"unit-test-key-0123456789abcdef"
NOW = datetime.now(UTC)


def txn(**changes: Any) -> dict[str, Any]:
    event = valid_transaction(NOW)
    for name, value in changes.items():
        if value is None:
            event.pop(name)
        else:
            event[name] = value
    return event


def validate(model: type, data: dict[str, Any]) -> Any:
    return model.model_validate(data, context={"pii_key": KEY})


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (NewsEvent, valid_news(NOW)),
        (Transaction, valid_transaction(NOW)),
        (ClickEvent, valid_click(NOW)),
        (CatalogItem, valid_catalog(NOW)),
    ],
)
def test_valid_events_pass(model: type, data: dict[str, Any]) -> None:
    assert validate(model, data)


REJECTED: list[tuple[str, type, dict[str, Any]]] = [
    ("amount zero", Transaction, txn(amount=0)),
    ("amount negative", Transaction, txn(amount=-0.01)),
    ("amount over ten billion", Transaction, txn(amount=10_000_000_000.01)),
    ("amount NaN", Transaction, txn(amount=float("nan"))),
    ("amount infinite", Transaction, txn(amount=float("inf"))),
    ("amount as string", Transaction, txn(amount="10")),
    ("amount as bool", Transaction, txn(amount=True)),
    ("ts naive", Transaction, txn(ts="2024-01-01T00:00:00")),
    ("ts before 2000", Transaction, txn(ts="1999-12-31T23:59:59Z")),
    ("ts over a day ahead", Transaction, txn(ts=(NOW + timedelta(days=1, minutes=5)).isoformat())),
    ("ts garbage", Transaction, txn(ts="soon")),
    ("no card at all", Transaction, txn(card_token=None)),
    ("card number fails Luhn", Transaction, txn(card_token=None, card_number="4111111111111112")),
    ("card number too short", Transaction, txn(card_token=None, card_number="411111111")),
    ("card number not a string", Transaction, txn(card_token=None, card_number=4111111111111111)),
    ("card number and token", Transaction, txn(card_number=TEST_PAN)),
    ("token all digits", Transaction, txn(card_token="12345678901234")),
    ("token too short", Transaction, txn(card_token="tok_1")),
    ("currency lowercase", Transaction, txn(currency="eur")),
    ("mcc not 4 digits", Transaction, txn(mcc="541")),
    ("country 3 letters", Transaction, txn(country="DEU")),
    ("lat over 90", Transaction, txn(lat=90.5)),
    ("lon under -180", Transaction, txn(lon=-180.5)),
    ("lat without lon", Transaction, txn(lon=None)),
    ("unknown channel", Transaction, txn(channel="mail")),
    ("id empty", Transaction, txn(id="")),
    ("id with slash", Transaction, txn(id="a/b")),
    ("id too long", Transaction, txn(id="a" * 129)),
    ("news headline blank", NewsEvent, valid_news(NOW) | {"headline": "  "}),
    ("news headline too long", NewsEvent, valid_news(NOW) | {"headline": "h" * 501}),
    ("news source missing", NewsEvent, {k: v for k, v in valid_news(NOW).items() if k != "source"}),
    ("news ticker pattern", NewsEvent, valid_news(NOW) | {"tickers": ["1ABC"]}),
    ("news too many tickers", NewsEvent, valid_news(NOW) | {"tickers": [f"A{i}" for i in range(21)]}),
    ("news body too long", NewsEvent, valid_news(NOW) | {"body": "b" * 20_001}),
    ("click action", ClickEvent, valid_click(NOW) | {"action": "hover"}),
    ("click user missing", ClickEvent, {k: v for k, v in valid_click(NOW).items() if k != "user_id"}),
    ("catalog live item without title", CatalogItem, {k: v for k, v in valid_catalog(NOW).items() if k != "title"}),
    ("catalog price negative", CatalogItem, valid_catalog(NOW) | {"price": -1.0}),
    ("catalog deleted not bool", CatalogItem, valid_catalog(NOW) | {"deleted": "yes"}),
]


@pytest.mark.parametrize(("model", "data"), [(m, d) for _, m, d in REJECTED], ids=[n for n, _, _ in REJECTED])
def test_rule_violations_are_rejected(model: type, data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        validate(model, data)


def test_card_number_becomes_keyed_token_and_is_never_kept() -> None:
    event = validate(Transaction, txn(card_token=None, card_number="4111-1111-1111-1111"))
    assert event.card_token == pii.tokenize(TEST_PAN, KEY)
    assert TEST_PAN not in event.model_dump_json() and TEST_PAN not in repr(event)
    other = Transaction.model_validate(txn(card_token=None, card_number=TEST_PAN), context={"pii_key": b"x" * 32})
    assert other.card_token != event.card_token  # the key matters


def test_error_messages_never_quote_the_card_number() -> None:
    with pytest.raises(ValidationError) as caught:
        validate(Transaction, txn(card_number="4111111111111111", amount=-1))
    from streams.core.decoding import describe_validation

    assert "4111" not in describe_validation(caught.value)


def test_unknown_fields_are_dropped() -> None:
    event = validate(ClickEvent, valid_click(NOW) | {"referrer": "ad", "pan": TEST_PAN})
    assert "referrer" not in event.model_dump() and not event.model_extra


def test_timestamps_normalised_to_utc_and_epochs_accepted() -> None:
    event = validate(ClickEvent, valid_click(NOW) | {"ts": "2024-05-01T12:00:00+02:00"})
    assert event.ts == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert validate(ClickEvent, valid_click(NOW) | {"ts": 1_714_557_600}).ts == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert validate(ClickEvent, valid_click(NOW) | {"ts": 1_714_557_600_000}).ts.year == 2024


def test_tickers_upper_cased_and_deduplicated() -> None:
    assert validate(NewsEvent, valid_news(NOW) | {"tickers": ["qfl", "QFL", "abc"]}).tickers == ["QFL", "ABC"]


def test_catalog_deletion_needs_only_the_id() -> None:
    assert validate(CatalogItem, {"item_id": "item-9", "deleted": True}).deleted


def test_events_are_immutable() -> None:
    event = validate(ClickEvent, valid_click(NOW))
    with pytest.raises(ValidationError):
        event.action = "purchase"  # type: ignore[misc]


def test_outputs_forbid_unknown_fields_and_check_ranges() -> None:
    base = {
        "event_id": "t1",
        "event_time": NOW,
        "processed_at": NOW,
        "model_name": "fraud",
        "model_version": "1",
        "topic": "transactions",
        "partition": 0,
        "offset": 5,
        "card_token": "tok_abcdefgh",
        "amount": 3.0,
        "currency": "EUR",
        "merchant_id": "m",
        "mcc": "5411",
        "country": "DE",
        "channel": "pos",
        "fraud_score": 0.9,
        "flagged": True,
    }
    assert FraudDoc(**base).fraud_score == 0.9
    with pytest.raises(ValidationError):
        FraudDoc(**base | {"fraud_score": 1.5})
    with pytest.raises(ValidationError):
        FraudDoc(**base | {"card_number": TEST_PAN})
    with pytest.raises(ValidationError):
        Alert(alert_id="a1", kind="fraud", severity="high", created_at=NOW, subject="tok", summary="s", event_ids=[])
    with pytest.raises(ValidationError):
        DeadLetter(
            id="x", source_topic="t", original_b64="", original_size=0, error_type="nope", reason="r", received_at=NOW
        )
