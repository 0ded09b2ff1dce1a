"""Shared fixtures: settings, and a fast, explicit failure when a test needs the local stack and it is down."""

from __future__ import annotations

import uuid

import pytest

from streams.core.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic and index names, so tests never see each other's data."""
    return uuid.uuid4().hex[:10]
