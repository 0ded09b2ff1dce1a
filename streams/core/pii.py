"""Card-number handling: keyed HMAC tokens replace card numbers at the boundary, so none is ever written out.

The key comes from `LEPTON_PII_KEY`. In development without one, a random key is generated once and kept in
the state folder (`.lepton/pii.key`), so tokens stay stable across restarts; production refuses to start
without an explicit key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path

from streams.core.errors import ConfigurationError
from streams.core.settings import Settings, get_settings

TOKEN_PREFIX = "tok_"
MIN_KEY_BYTES = 16
REDACTED = "[pan-redacted]"
# 13-19 digits, optionally grouped by spaces or dashes, starting with an issuer digit (2-6); Luhn-checked below.
_PAN_TEXT = re.compile(r"(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")
_PAN_BYTES = re.compile(rb"(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum that every real card number carries."""
    if not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def normalize_card_number(raw: str) -> str | None:
    """The digits of a plausible card number (13-19 digits, Luhn-valid, spaces/dashes allowed), else None."""
    digits = raw.replace(" ", "").replace("-", "")
    if not (13 <= len(digits) <= 19) or not digits.isdigit() or not luhn_ok(digits):
        return None
    return digits


def tokenize(card_number: str, key: bytes) -> str:
    """The stable token of a card number: `tok_` + 24 hex digits of HMAC-SHA256(key, digits)."""
    digits = card_number.replace(" ", "").replace("-", "")
    return TOKEN_PREFIX + hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()[:24]


def redact_text(text: str) -> tuple[str, bool]:
    """Replace anything that looks like a card number in free text; says whether something was replaced."""
    found = False

    def replace(match: re.Match[str]) -> str:
        nonlocal found
        if luhn_ok(re.sub(r"[ -]", "", match.group(0))):
            found = True
            return REDACTED
        return match.group(0)

    return _PAN_TEXT.sub(replace, text), found


def redact_bytes(data: bytes) -> tuple[bytes, bool]:
    """Same as `redact_text` for raw bytes that may not even be UTF-8 (dead-letter originals)."""
    found = False

    def replace(match: re.Match[bytes]) -> bytes:
        nonlocal found
        if luhn_ok(re.sub(rb"[ -]", b"", match.group(0)).decode("ascii")):
            found = True
            return REDACTED.encode()
        return match.group(0)

    return _PAN_BYTES.sub(replace, data), found


def _dev_key(state_dir: Path) -> bytes:
    """Read or create (atomically, mode 0600) the development key kept in the state folder."""
    path = state_dir / "pii.key"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(f"{path} holds a key shorter than {MIN_KEY_BYTES} characters; delete it")
    return key.encode()


def resolve_key(settings: Settings) -> bytes:
    """The HMAC key for card tokens; raises ConfigurationError in production when none is configured."""
    if settings.pii_key is not None:
        key = settings.pii_key.get_secret_value()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(f"LEPTON_PII_KEY must be at least {MIN_KEY_BYTES} characters long")
        return key.encode()
    if settings.mode == "production":
        raise ConfigurationError(
            "production mode needs LEPTON_PII_KEY (card numbers are replaced by keyed tokens); "
            "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return _dev_key(settings.local.state_dir)


@lru_cache(maxsize=1)
def default_key() -> bytes:
    """The process-wide key from the settings, resolved once."""
    return resolve_key(get_settings())
