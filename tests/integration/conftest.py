"""Integration tests run against the real local stack that `lepton up` (or `make test`) starts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from infra.local import stack
from streams.broker.topics import delete_run
from streams.core.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def local_stack(settings: Settings) -> None:
    """Fail (never skip) when a service is down: the fix is `lepton up`."""
    down = [row for row in stack.status(settings) if row.health != "healthy"]
    if down:
        pytest.fail("local stack not healthy: " + "; ".join(f"{r.name} {r.health}" for r in down)
                    + " — start it with `.venv/bin/lepton up`", pytrace=False)


@pytest.fixture
def unique(settings: Settings) -> Iterator[str]:
    """A short unique suffix for topic and index names; the run's topics and consumer groups are deleted afterwards
    (left there, every `make test` added about 70 topics to the local broker)."""
    run = uuid.uuid4().hex[:10]
    yield run
    delete_run(settings, run)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
