"""Fixtures shared by all test tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO

# The fixtures pipeline authors use (run_transform, prefect_pipeline); our tests use them too.
pytest_plugins = ["flowfactory.testing"]


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO
