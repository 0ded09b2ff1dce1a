"""The decoding boundary every agent uses: Kafka bytes -> a validated event, or a DeadLetter. Never raises.

Checks, in order (the first failure names the `error_type`): empty, oversized (> 1 MiB), not UTF-8 (a
leading BOM is accepted), invalid JSON, NaN/Infinity/overflowing numbers, a key repeated in one object,
nesting deeper than MAX_DEPTH, not a JSON object, schema validation. Reasons are readable and never quote
a card number. A duplicate event id is NOT an error: the event is valid and, since document ids are event
ids, writing it again overwrites the earlier document (idempotent).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from streams.core import pii
from streams.core.events import INPUT_MODELS, DeadLetter, ErrorType, InputEvent, utc_now
from streams.core.settings import Settings, get_settings

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_KEPT_BYTES = 512 * 1024  # dead letters must fit in a default 1 MB Kafka message after base64
MAX_DEPTH = 32
MAX_REASON = 1000
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class Rejected(Exception):
    """Internal signal: the payload is malformed (caught inside `decode`, never escapes)."""

    def __init__(self, error_type: ErrorType, reason: str) -> None:
        super().__init__(reason)
        self.error_type: ErrorType = error_type
        self.reason = reason


def _reject_constant(name: str) -> float:
    """json hook: NaN, Infinity and -Infinity are not JSON."""
    raise Rejected("invalid_number", f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    """json hook: a literal like 1e999 would silently become infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise Rejected("invalid_number", f"number {text[:40]} is too large to be finite")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json hook: `{"amount": 1, "amount": 9999}` is ambiguous, so it is refused."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        dupes = sorted({key for key, _ in pairs if key in seen or seen.add(key)})
        raise Rejected("duplicate_key", f"key repeated in one object: {', '.join(dupes)[:200]}")
    return result


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether nesting stays within `limit` levels (iterative, so it cannot itself overflow)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def parse_json_object(data: bytes) -> dict[str, Any]:
    """Bytes -> a JSON object, or Rejected with the first problem found."""
    if not data:
        raise Rejected("empty", "empty message (no bytes)")
    if len(data) > MAX_MESSAGE_BYTES:
        raise Rejected("oversized", f"message is {len(data):,} bytes; the limit is {MAX_MESSAGE_BYTES:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejected("not_utf8", f"not UTF-8: invalid byte at position {error.start}") from None
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
        )
    except Rejected:
        raise
    except RecursionError:
        raise Rejected("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise Rejected("invalid_json", f"invalid JSON: {error.msg} at {where}") from None
    except ValueError as error:  # e.g. an integer literal with thousands of digits
        raise Rejected("invalid_json", f"invalid JSON: {str(error)[:200]}") from None
    if not _depth_ok(value, MAX_DEPTH):
        raise Rejected("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected("invalid_json", "a \\u escape encodes a lone UTF-16 surrogate (not text)") from None
    if not isinstance(value, dict):
        raise Rejected("not_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def describe_validation(error: ValidationError, limit: int = 5) -> str:
    """Readable field-by-field reason that never quotes the input values."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "event"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    extra = error.error_count() - limit
    return "; ".join(parts) + (f" (+{extra} more)" if extra > 0 else "")


def scrub(data: bytes, key: bytes) -> tuple[bytes, bool]:
    """Original bytes with card numbers removed: a `card_number` field becomes its token, other PANs a marker."""
    changed = False
    try:
        value = json.loads(data)
        if isinstance(value, dict) and "card_number" in value:
            raw = value.pop("card_number")
            digits = pii.normalize_card_number(raw) if isinstance(raw, str) else None
            if digits and "card_token" not in value:
                value["card_token"] = pii.tokenize(digits, key)
            data, changed = json.dumps(value, ensure_ascii=False).encode(), True
    except (ValueError, RecursionError, TypeError):
        pass  # not a JSON object we can rewrite; fall back to the byte-level redaction
    data, found = pii.redact_bytes(data)
    return data, changed or found


def dead_letter(
    data: bytes | None,
    *,
    topic: str,
    error_type: ErrorType,
    reason: str,
    key: bytes,
    partition: int | None = None,
    offset: int | None = None,
    message_key: bytes | None = None,
    stage: str = "decode",
    origin: str | None = None,
) -> DeadLetter:
    """Build the dead-letter record for a payload (scrubbed of card numbers, cut when huge)."""
    original = data or b""
    kept, truncated = original, False
    if len(kept) > MAX_KEPT_BYTES:
        kept, truncated = kept[:MAX_KEPT_BYTES], True
    kept, redacted = scrub(kept, key)
    if partition is not None and offset is not None:
        letter_id = f"{topic}:{partition}:{offset}"
    else:
        digest = hashlib.sha256(f"{origin}|".encode() + original).hexdigest()[:24]
        letter_id = f"{topic}:{digest}"
    reason = pii.redact_text(reason)[0][:MAX_REASON]
    return DeadLetter(
        id=letter_id,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key_b64=base64.b64encode(message_key).decode() if message_key is not None else None,
        original_b64=base64.b64encode(kept).decode(),
        original_size=len(original),
        original_truncated=truncated,
        redacted=redacted,
        error_type=error_type,
        reason=reason or error_type,
        stage=stage,  # type: ignore[arg-type]
        origin=origin,
        received_at=utc_now(),
    )


class Decoder:
    """Decodes messages of the known topics (names from settings) into their event models."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        pii_key: bytes | None = None,
        models: Mapping[str, type[InputEvent]] | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.pii_key = pii_key or pii.resolve_key(settings)
        names = settings.topics
        self.models: dict[str, type[InputEvent]] = {getattr(names, kind): m for kind, m in INPUT_MODELS.items()}
        self.models.update(models or {})

    def decode(
        self,
        value: bytes | None,
        *,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
        model: type[InputEvent] | None = None,
        origin: str | None = None,
        stage: str = "decode",
    ) -> InputEvent | DeadLetter:
        """A validated event, or the DeadLetter saying why not. Never raises."""
        letter = {"topic": topic, "partition": partition, "offset": offset, "message_key": key}
        letter |= {"origin": origin, "stage": stage, "key": self.pii_key}
        try:
            model = model or self.models.get(topic)
            if model is None:
                raise Rejected("unknown_topic", f"no event schema is registered for topic {topic!r}")
            payload = parse_json_object(value or b"")
            try:
                return model.model_validate(payload, context={"pii_key": self.pii_key})
            except ValidationError as error:
                raise Rejected("validation", f"{model.__name__}: {describe_validation(error)}") from None
        except Rejected as rejected:
            return self._letter(value, rejected.error_type, rejected.reason, letter)
        except Exception as error:  # noqa: BLE001 - the boundary must never raise
            return self._letter(value, "internal", f"decoder failure: {type(error).__name__}", letter)

    def _letter(self, value: bytes | None, error_type: ErrorType, reason: str, args: dict[str, Any]) -> DeadLetter:
        """Build the dead letter, with a last-resort fallback so even a broken builder loses nothing."""
        try:
            return dead_letter(value, error_type=error_type, reason=reason, **args)
        except Exception as error:  # noqa: BLE001 - last resort: keep the event whatever failed
            return DeadLetter.model_construct(
                id=f"{args['topic']}:{args['partition']}:{args['offset']}",
                source_topic=str(args["topic"]),
                source_partition=args["partition"],
                source_offset=args["offset"],
                key_b64=None,
                original_b64="",
                original_size=len(value or b""),
                original_truncated=True,
                redacted=True,
                error_type="internal",
                reason=f"{reason} (dead-letter builder failed: {type(error).__name__})",
                stage="decode",
                origin=args["origin"],
                received_at=utc_now(),
            )
