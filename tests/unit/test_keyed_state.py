"""KeyedTable: staged states come before stored ones until they are stored, and a failed batch's are forgotten."""

from __future__ import annotations

from typing import Any

from streams.core.record import Record
from streams.worker.keyed_state import Keyed, KeyedTable


def table() -> tuple[dict[bytes, Any], KeyedTable[int]]:
    raw: dict[bytes, Any] = {}
    return raw, KeyedTable(raw, int, int)


def test_a_staged_state_is_read_before_the_stored_one_until_it_is_stored() -> None:
    raw, states = table()
    states.store("card", Keyed(1, {"t": (0, 10)}))
    staged = states.load("card").advanced(2, Record("t", 0, 11, None, b""))
    states.stage({"card": staged})
    assert states.load("card") is staged and raw[b"card"]["state"] == 1  # staged, not yet written
    states.store("card", staged)
    assert raw[b"card"] == {"state": 2, "positions": {"t": [0, 11]}}
    assert states.load("card").state == 2 and states.load("card").absorbed(Record("t", 0, 11, None, b""))


def test_unstaging_a_failed_batch_keeps_what_a_later_batch_staged() -> None:
    _, states = table()
    failed, later = Keyed(5), Keyed(6)
    states.stage({"a": failed, "b": failed})
    states.stage({"b": later})  # the next batch, prepared on top of the failed one, changed "b" again
    states.unstage({"a": failed, "b": failed})
    assert states.load("a").state is None and states.load("b") is later
