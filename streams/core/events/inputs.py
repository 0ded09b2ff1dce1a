"""The input events producers publish (news, transactions, clicks, catalog, labels), validated at the boundary.

Every model drops unknown fields (see streams/core/events/base.py). A duplicate `id` is not an error: the event is
valid, and because stored documents use the event id as their id, a duplicate overwrites the earlier one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, StrictBool, StringConstraints, ValidationInfo, field_validator, model_validator

from streams.core import pii
from streams.core.events.base import EventTime, Identifier, InputEvent, Ticker

MAX_AMOUNT = 10_000_000_000.0  # in major units of any currency: room for large amounts in KRW, IDR or VND
CardToken = Annotated[
    str,
    StringConstraints(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$"),
    Field(description="opaque card token, 8-64 characters [A-Za-z0-9_-], never all digits"),
]


class NewsEvent(InputEvent):
    """A news item; keyed by `id`. `tickers` are upper-cased and de-duplicated (order kept)."""

    id: Identifier
    published_at: EventTime
    source: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    headline: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    body: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    tickers: Annotated[list[Ticker], Field(max_length=20)] = Field(default_factory=list)

    @field_validator("tickers")
    @classmethod
    def _dedupe(cls, tickers: list[str]) -> list[str]:
        """Same ticker twice means nothing more than once."""
        return list(dict.fromkeys(tickers))


def _swap_card_number(data: Any, info: ValidationInfo) -> Any:
    """The input with its `card_number` replaced by the keyed token (the key comes from the validation context)."""
    if not isinstance(data, dict) or "card_number" not in data:
        return data
    data = dict(data)
    raw = data.pop("card_number")
    if "card_token" in data:
        raise ValueError("give card_number or card_token, not both")
    digits = pii.normalize_card_number(raw) if isinstance(raw, str) else None
    if digits is None:
        raise ValueError("card_number must be a string of 13-19 digits that passes the Luhn check")
    context = info.context or {}
    data["card_token"] = pii.tokenize(digits, context.get("pii_key") or pii.default_key())
    return data


def _card_number_schema(schema: dict[str, Any]) -> None:
    """Document the write-only `card_number` input, which validation turns into `card_token`."""
    schema["properties"]["card_number"] = {
        "type": "string",
        "description": "13-19 digits (spaces/dashes allowed), Luhn-valid; replaced by card_token at the "
        "boundary and never stored. Give card_number or card_token, not both.",
    }
    schema["required"] = [name for name in schema.get("required", []) if name != "card_token"]
    schema["oneOf"] = [{"required": ["card_number"]}, {"required": ["card_token"]}]


def _optional_card_number_schema(schema: dict[str, Any]) -> None:
    """Document the optional write-only `card_number` of a label (replaced by card_token at the boundary)."""
    schema["properties"]["card_number"] = {
        "type": "string",
        "description": "optional: 13-19 digits, Luhn-valid; replaced by card_token at the boundary and never "
        "stored. Give card_number or card_token, not both.",
    }


class Transaction(InputEvent, json_schema_extra=_card_number_schema):
    """A card transaction; keyed by `card_token`.

    The producer sends `card_number` or `card_token`. A card number is validated (Luhn) and replaced here by
    a keyed HMAC token (streams/core/pii.py); the model never holds the number. Amounts are in major units,
    0 < amount <= 10,000,000,000 in any currency (refunds are not transactions here). `lat`/`lon` come together or
    not at all.
    """

    id: Identifier
    ts: EventTime
    card_token: CardToken
    amount: Annotated[float, Field(gt=0, le=MAX_AMOUNT)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217")]
    merchant_id: Identifier
    mcc: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$"), Field(description="merchant category code")]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(description="ISO 3166 alpha-2")]
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    channel: Literal["pos", "online", "atm", "contactless"]
    device_id: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _tokenize(cls, data: Any, info: ValidationInfo) -> Any:
        """Swap a card number for its token before anything else sees it (the key comes from the context)."""
        if isinstance(data, dict) and "card_number" not in data and "card_token" not in data:
            raise ValueError("card_number or card_token is required")
        return _swap_card_number(data, info)

    @field_validator("card_token")
    @classmethod
    def _not_a_number(cls, token: str) -> str:
        """An all-digit token is probably a card number in the wrong field: refuse to carry it."""
        if token.isdigit():
            raise ValueError("card_token is all digits (a card number?); send it as card_number instead")
        return token

    @model_validator(mode="after")
    def _location_pair(self) -> Self:
        """Half a location is a producer bug."""
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon must be given together")
        return self


class ChargebackLabel(InputEvent, json_schema_extra=_optional_card_number_schema):
    """A confirmed outcome of a transaction (a chargeback, or a confirmation that it was legitimate); keyed by
    `merchant_id`.

    `fraud` says what was confirmed and `reported_at` when it became known: features never read a label before
    that time. A later label for the same transaction replaces the earlier one. `card_number` (replaced by its
    token, as for transactions) or `card_token` is optional: with it, the card is known to have had a fraud.
    """

    transaction_id: Identifier
    merchant_id: Identifier
    transaction_ts: EventTime
    fraud: StrictBool
    reported_at: EventTime
    card_token: CardToken | None = None

    @model_validator(mode="before")
    @classmethod
    def _tokenize(cls, data: Any, info: ValidationInfo) -> Any:
        """An optional card number becomes its token, as in `Transaction`."""
        return _swap_card_number(data, info)

    @model_validator(mode="after")
    def _reported_after(self) -> Self:
        """An outcome cannot be known before the transaction happened."""
        if self.reported_at < self.transaction_ts:
            raise ValueError("reported_at is before transaction_ts")
        return self


class CardFeatures(InputEvent):
    """A transaction with its card's features: the card stage's message to the merchant stage (internal topic,
    keyed by merchant), with the Kafka coordinates the transaction was read at (its document carries them)."""

    transaction: Transaction
    features: list[float]
    topic: str
    partition: Annotated[int, Field(ge=0)]
    offset: Annotated[int, Field(ge=0)]


class ClickEvent(InputEvent):
    """One step of a shopping session; keyed by `user_id`."""

    id: Identifier
    ts: EventTime
    user_id: Identifier
    session_id: Identifier
    item_id: Identifier
    action: Literal["view", "click", "add_to_cart", "purchase"]


class CatalogItem(InputEvent):
    """A catalog entry; keyed by `item_id` on a compacted topic, so the latest record per item wins.

    A deletion is `{"item_id": ..., "deleted": true}` (title, category and price may then be omitted);
    an empty Kafka value is malformed, not a tombstone.
    """

    item_id: Identifier
    title: Annotated[str, StringConstraints(min_length=1, max_length=300)] | None = None
    description: Annotated[str, StringConstraints(max_length=5_000)] = ""
    category: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    price: Annotated[float, Field(ge=0, le=MAX_AMOUNT)] | None = None
    deleted: bool = False
    updated_at: EventTime | None = None

    @model_validator(mode="after")
    def _live_items_are_complete(self) -> Self:
        """A live item needs a title, a category and a price; a deleted one only its id."""
        if not self.deleted:
            missing = [name for name in ("title", "category", "price") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a live item needs {', '.join(missing)} (or deleted: true)")
        return self


INPUT_MODELS: dict[str, type[InputEvent]] = {
    "news": NewsEvent,
    "transactions": Transaction,
    "clicks": ClickEvent,
    "catalog": CatalogItem,
    "labels": ChargebackLabel,
}
