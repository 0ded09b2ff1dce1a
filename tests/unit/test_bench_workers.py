"""`bench --workers`: worker counts parsed with a readable error, and partitions every count divides."""

from __future__ import annotations

import pytest

from streams.core.errors import ConfigurationError
from streams.tools.bench_workers import parse_counts, partitions_for


def test_worker_counts_are_parsed_in_order_without_repeats() -> None:
    assert parse_counts("1,2,3") == [1, 2, 3]
    assert parse_counts(" 3, 1,3 ") == [3, 1]
    for bad in ("", "0,1", "a,b", "1,9"):
        with pytest.raises(ConfigurationError, match="comma-separated"):
            parse_counts(bad)


def test_every_worker_gets_an_equal_share_of_the_partitions() -> None:
    assert partitions_for([1, 2, 3]) == 6
    assert partitions_for([1, 2, 4]) == 4
    assert partitions_for([1]) == 1
