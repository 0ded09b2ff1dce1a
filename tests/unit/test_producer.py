"""Producer keys follow the event contracts (docs/architecture.md), and card numbers only ever become tokens."""

from __future__ import annotations

from streams.broker.producer import key_for
from streams.core import pii

KEY = b"unit-test-key-0123456789abcdef"


def test_keys_per_kind() -> None:
    assert key_for("news", {"id": "n-1"}, KEY) == b"n-1"
    assert key_for("clicks", {"id": "c-1", "user_id": "u-9"}, KEY) == b"u-9"
    assert key_for("catalog", {"item_id": "item-3"}, KEY) == b"item-3"
    assert key_for("transactions", {"card_token": "tok_abcdefgh"}, KEY) == b"tok_abcdefgh"


def test_transactions_with_card_numbers_are_keyed_by_their_token() -> None:
    key = key_for("transactions", {"card_number": "4111 1111 1111 1111"}, KEY)
    assert key == pii.tokenize("4111111111111111", KEY).encode() and b"4111" not in key
    assert key_for("transactions", {"card_number": "4111111111111112"}, KEY) is None  # invalid: no key at all
    assert key_for("clicks", {"id": "c-1"}, KEY) is None
