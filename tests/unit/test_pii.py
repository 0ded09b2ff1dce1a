"""Card tokens, key resolution per mode, and card-number redaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.core import pii
from streams.core.errors import ConfigurationError
from streams.core.settings import LocalStackSettings, Settings


def test_luhn() -> None:
    assert pii.luhn_ok("4111111111111111") and pii.luhn_ok("378282246310005")
    assert not pii.luhn_ok("4111111111111112") and not pii.luhn_ok("41a1")


def test_tokens_are_stable_keyed_and_opaque() -> None:
    token = pii.tokenize("4111 1111 1111 1111", b"k" * 32)
    assert token == pii.tokenize("4111111111111111", b"k" * 32) != pii.tokenize("4111111111111111", b"j" * 32)
    assert token.startswith("tok_") and len(token) == 28 and "4111" not in token


def test_development_key_is_generated_once_in_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(local=LocalStackSettings(state_dir=tmp_path / "state"))
    first = pii.resolve_key(settings)
    assert first == pii.resolve_key(settings) and len(first) >= 32
    assert (tmp_path / "state" / "pii.key").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LEPTON_PII_KEY"):
        pii.resolve_key(Settings(mode="production", local=LocalStackSettings(state_dir=tmp_path)))
    assert not (tmp_path / "pii.key").exists()


def test_configured_key_is_used_and_must_be_long_enough() -> None:
    assert pii.resolve_key(Settings(mode="production", pii_key=SecretStr("s" * 20))) == b"s" * 20
    with pytest.raises(ConfigurationError, match="at least"):
        pii.resolve_key(Settings(pii_key=SecretStr("short")))


def test_redaction_finds_grouped_numbers_and_spares_other_digits() -> None:
    text, found = pii.redact_text("card 4111 1111 1111 1111 at 1767225600000, order 4111111111111112")
    assert found and "4111 1111" not in text and "1767225600000" in text and "4111111111111112" in text
    data, found = pii.redact_bytes(b"\xff 5555-5555-5555-4444 \xfe")
    assert found and b"5555" not in data and data.startswith(b"\xff")
