"""Building blocks shared by every event model: strictness, identifiers, bounded timestamps, finite numbers.

Policy (applies to every input event):
- JSON types are strict: a number must be a JSON number (not a string, not a boolean), a string a string.
  Timestamps are the one exception: an ISO-8601 string with an offset, or Unix epoch seconds/milliseconds.
- Timestamps must carry a timezone (naive ones are ambiguous), are normalised to UTC, and must lie between
  2000-01-01 and one day after the current time. NaN and infinities are rejected everywhere.
- Unknown fields are accepted and dropped: producers may add fields without breaking the pipeline, and
  nothing unvalidated (for example a stray card number) is ever carried into what the pipeline writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)


def utc_now() -> datetime:
    """The current time in UTC (one place, so tests and generators agree)."""
    return datetime.now(UTC)


def _bounded_time(value: datetime) -> datetime:
    """Reject naive, far-past and far-future timestamps; normalise to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp needs a timezone offset (for example 2026-01-31T12:00:00Z)")
    value = value.astimezone(UTC)
    if value < EARLIEST:
        raise ValueError(f"timestamp {value.isoformat()} is before 2000-01-01")
    if value > utc_now() + MAX_AHEAD:
        raise ValueError(f"timestamp {value.isoformat()} is more than one day in the future")
    return value


def _aware_utc(value: datetime) -> datetime:
    """Outputs: any aware time, normalised to UTC (no range check: documents describe already-valid events)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp needs a timezone offset")
    return value.astimezone(UTC)


EventTime = Annotated[
    datetime,
    Strict(False),
    AfterValidator(_bounded_time),
    Field(description="ISO-8601 with offset or Unix epoch (s/ms); 2000-01-01 <= t <= now + 1 day; stored in UTC"),
]
UtcTime = Annotated[datetime, Strict(False), AfterValidator(_aware_utc), Field(description="ISO-8601, UTC")]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"),
    Field(description="1-128 characters: letters, digits, '.', '_', ':', '-' (starts with a letter or digit)"),
]
Ticker = Annotated[
    str,
    BeforeValidator(lambda value: value.strip().upper() if isinstance(value, str) else value),
    StringConstraints(pattern=r"^[A-Z][A-Z0-9.]{0,9}$"),
    Field(description="1-10 characters, upper-cased on input"),
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class InputEvent(BaseModel):
    """Base of the events producers send: strict types, finite numbers, unknown fields dropped, immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False, str_strip_whitespace=True)


class OutputDoc(BaseModel):
    """Base of what the pipeline writes: our own code builds these, so unknown fields are a bug (forbidden)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
