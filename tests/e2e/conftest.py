"""End-to-end tests drive the `lepton` command and the pipeline against the real local stack."""

from __future__ import annotations

import pytest

from tests.integration.conftest import local_stack, unique  # noqa: F401  (fail fast when the stack is down; clean up)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)
