"""Fixtures shared by all test tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.breaker_helpers import FakeClock
from tests.helpers import REPO

# The fixtures pipeline authors use (run_transform, prefect_pipeline); our tests use them too.
pytest_plugins = ["flowfactory.testing"]


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def clock() -> FakeClock:
    """A fake monotonic clock for breakers (``BreakerRegistry(clock=clock)``); tests move it."""
    return FakeClock()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers fastest first: the data-diff tier after unit and integration tests."""
    items.sort(key=lambda item: item.get_closest_marker("datadiff") is not None)
