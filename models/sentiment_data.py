"""Reading labelled sentiment CSVs (text,label with 0 bearish, 1 bullish, 2 neutral) and text files to score."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.core.errors import ConfigurationError

TEXT_FIELDS = ("text", "headline", "title")


@dataclass(frozen=True)
class LabelledTexts:
    """Parallel lists of texts and dataset label ids."""

    texts: list[str]
    labels: list[int]


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, recorded in the artifact's meta.json."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_labelled_csv(path: Path) -> LabelledTexts:
    """Rows of a `text,label` CSV; a missing column or a label outside 0/1/2 is a ConfigurationError."""
    if not path.is_file():
        raise ConfigurationError(f"No such data file: {path}")
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ConfigurationError(f"{path} needs the columns text,label (got {reader.fieldnames})")
        for line, row in enumerate(reader, start=2):
            label = (row["label"] or "").strip()
            if label not in ("0", "1", "2"):
                raise ConfigurationError(f"{path}:{line}: label must be 0, 1 or 2, got {label!r}")
            texts.append(row["text"] or "")
            labels.append(int(label))
    if not texts:
        raise ConfigurationError(f"{path} has no rows")
    return LabelledTexts(texts, labels)


def _text_of(record: dict[str, Any], where: str) -> str:
    for field in TEXT_FIELDS:
        value = record.get(field)
        if isinstance(value, str):
            return value
    raise ConfigurationError(f"{where}: no text field (one of {', '.join(TEXT_FIELDS)})")


def iter_records(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """(record, text) pairs from a .csv (header row) or .jsonl file, in file order."""
    if not path.is_file():
        raise ConfigurationError(f"No such input file: {path}")
    suffix = path.suffix.lower()
    with path.open(newline="", encoding="utf-8") as handle:
        if suffix == ".csv":
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield dict(row), _text_of(row, f"{path}:{line}")
        elif suffix in (".jsonl", ".ndjson"):
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as error:
                    raise ConfigurationError(f"{path}:{line}: not JSON ({error.msg})") from error
                if not isinstance(record, dict):
                    raise ConfigurationError(f"{path}:{line}: expected a JSON object")
                yield record, _text_of(record, f"{path}:{line}")
        else:
            raise ConfigurationError(f"{path}: input must be .csv or .jsonl")
