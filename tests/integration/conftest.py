"""Integration tests run against the real local stack that `lepton up` (or `make test`) starts."""

from __future__ import annotations

import pytest

from infra.local import stack
from streams.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def local_stack(settings: Settings) -> None:
    """Fail (never skip) when a service is down: the fix is `lepton up`."""
    down = [row for row in stack.status(settings) if row.health != "healthy"]
    if down:
        pytest.fail("local stack not healthy: " + "; ".join(f"{r.name} {r.health}" for r in down)
                    + " — start it with `.venv/bin/lepton up`", pytrace=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
