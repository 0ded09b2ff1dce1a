"""A shop's own files for `lepton eval recs`: a catalog and a click log, validated through the decoding boundary.

`CATALOG.jsonl` has one record per line in the `catalog` schema (`infra/schemas/catalog-item.json`); several
records of one item are applied in `updated_at` order (a record without it counts from the start). `CLICKS.jsonl`
has one event per line in the `clicks` schema (`infra/schemas/click-event.json`), in event-time order; it is
streamed, never loaded whole. Invalid lines of either file are skipped and counted; a click earlier than the one
before it stops the run with its line number.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from models.recs_eval import EvalDataError
from streams.core.events import CatalogItem, ClickEvent

if TYPE_CHECKING:
    from streams.core.decoding import Decoder


def _decoder() -> Decoder:
    from streams.core.decoding import Decoder
    from streams.core.settings import get_settings

    return Decoder(get_settings())


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a file, read lazily."""
    if not path.is_file():
        raise EvalDataError(f"{path} is not a readable file")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line.rstrip(b"\r\n")


def read_catalog(path: Path) -> tuple[list[CatalogItem], int]:
    """The valid catalog records of a JSONL file, and the number of invalid lines."""
    decoder = _decoder()
    records: list[CatalogItem] = []
    skipped = 0
    for number, line in _lines(path):
        result = decoder.decode(line, topic="catalog", model=CatalogItem, origin=f"{path.name}:{number}")
        if isinstance(result, CatalogItem):
            records.append(result)
        else:
            skipped += 1
    return records, skipped


class ClickFile:
    """The valid click events of a JSONL file, streamed in order; `skipped` counts invalid lines read so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[ClickEvent]:
        decoder = _decoder()
        last: ClickEvent | None = None
        for number, line in _lines(self.path):
            self.bytes_read += len(line) + 1
            result = decoder.decode(line, topic="clicks", model=ClickEvent, origin=f"{self.path.name}:{number}")
            if not isinstance(result, ClickEvent):
                self.skipped += 1
                continue
            if last is not None and result.ts < last.ts:
                raise EvalDataError(f"{self.path}:{number}: clicks must be in event-time order, but {result.id} at "
                                    f"{result.ts.isoformat()} is earlier than {last.id} at {last.ts.isoformat()} "
                                    "(sort the file by ts first)")
            last = result
            yield result
