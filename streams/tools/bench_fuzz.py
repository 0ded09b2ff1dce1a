"""`lepton bench fuzz`: property-based fuzzing of the decoding boundary, which must never raise.

Hypothesis generates Kafka message values for the four input topics (and an unknown one): random bytes, random
JSON documents, valid events with fields replaced, dropped or added, byte-level damage (truncation, inserted
bytes, flipped bytes, a BOM), and the malformed corpus (`streams/generators/malformed.py`). Each goes through
`Decoder.decode`, and its dead letter, if any, through the JSON serialization the publisher does. Anything that
raises is an unhandled exception (must be 0); a dead letter of type `internal` means the decoder caught a bug
of its own (also reported). No services are needed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from streams.core.decoding import Decoder
from streams.core.events import DeadLetter, utc_now
from streams.core.settings import Settings
from streams.generators.malformed import MAKE_VALID, Kind, corpus

KINDS: tuple[Kind, ...] = ("news", "transactions", "clicks", "catalog")
UNKNOWN_TOPIC = "not-a-pipeline-topic"
FUZZ_KEY = b"bench-fuzz-key-0123456789abcdef"


@dataclass
class FuzzReport:
    """What a fuzz run saw."""

    cases: int = 0
    per_topic: Counter[str] = field(default_factory=Counter)
    decoded: int = 0
    dead_lettered: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    unhandled: int = 0
    failures: list[str] = field(default_factory=list)  # the first few unhandled exceptions, for the report

    def as_dict(self, elapsed_s: float, seed_value: int) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "per_topic": dict(sorted(self.per_topic.items())),
            "decoded": self.decoded,
            "dead_lettered": self.dead_lettered,
            "dead_letter_types": dict(self.error_types.most_common()),
            "internal_errors": self.error_types.get("internal", 0),
            "unhandled_exceptions": self.unhandled,
            "first_failures": self.failures,
            "cases_per_s": round(self.cases / max(elapsed_s, 1e-9), 1),
            "elapsed_s": round(elapsed_s, 2),
            "seed": seed_value,
        }


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=40)
# Any JSON value (with awkward numbers and text), nested a few levels; built once (building is the costly part).
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
_KEYS = st.text(max_size=12)


@st.composite
def _mutated_event(draw: st.DrawFn, kind: Kind) -> bytes:
    """A valid event of `kind` with some fields replaced, dropped or added, then serialized."""
    event: dict[str, Any] = MAKE_VALID[kind](utc_now())
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        name = draw(st.sampled_from(sorted(event))) if event else "id"
        if action == "replace":
            event[name] = draw(JSON_VALUES)
        elif action == "drop":
            event.pop(name, None)
        else:
            event[draw(_KEYS)] = draw(JSON_VALUES)
    return json.dumps(event, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@st.composite
def _damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """Byte-level damage: truncation, inserted bytes, a flipped byte, or a leading BOM."""
    how = draw(st.sampled_from(["truncate", "insert", "flip", "bom", "none"]))
    if how == "truncate" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    return data


@st.composite
def fuzz_case(draw: st.DrawFn, seeds: list[bytes]) -> tuple[str, bytes | None]:
    """(topic kind or the unknown topic, message value) — value None is a Kafka tombstone."""
    kind = draw(st.sampled_from([*KINDS, UNKNOWN_TOPIC]))
    shape = draw(st.sampled_from(["bytes", "json", "event", "corpus", "tombstone"]))
    event_kind: Kind = kind if kind in KINDS else "news"  # type: ignore[assignment]
    if shape == "tombstone":
        return kind, None
    if shape == "bytes":
        value = draw(st.binary(max_size=256))
    elif shape == "json":
        value = json.dumps(draw(JSON_VALUES)).encode()
    elif shape == "event":
        value = draw(_mutated_event(event_kind))
    else:
        value = draw(st.sampled_from(seeds))
    return kind, draw(_damaged(value))


def run_fuzz(cases: int, seed_value: int = 0, app_settings: Settings | None = None) -> dict[str, Any]:
    """Decode `cases` generated messages; returns the report (see FuzzReport.as_dict)."""
    app_settings = app_settings or Settings()
    decoder = Decoder(app_settings, pii_key=FUZZ_KEY)
    topic_of = {kind: getattr(app_settings.topics, kind) for kind in KINDS} | {UNKNOWN_TOPIC: UNKNOWN_TOPIC}
    seeds = [sample.payload for sample in corpus()]
    report = FuzzReport()

    @seed(seed_value)
    @settings(max_examples=cases, database=None, deadline=None, derandomize=False, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(fuzz_case(seeds))
    def one(case: tuple[str, bytes | None]) -> None:
        kind, value = case
        report.cases += 1
        report.per_topic[kind] += 1
        try:
            result = decoder.decode(value, topic=topic_of[kind], partition=0, offset=report.cases, key=b"k")
            if isinstance(result, DeadLetter):
                result.model_dump_json(exclude_none=True)  # what the dead-letter publisher does next
                report.dead_lettered += 1
                report.error_types[result.error_type] += 1
            else:
                result.model_dump(mode="json")
                report.decoded += 1
        except Exception as error:  # noqa: BLE001 - counting exactly these is the point of the run
            report.unhandled += 1
            if len(report.failures) < 5:
                report.failures.append(f"{kind}: {type(error).__name__}: {str(error)[:200]} <- {(value or b'')[:80]!r}")

    started = time.perf_counter()
    one()
    return report.as_dict(time.perf_counter() - started, seed_value)
