"""Fixtures shared by all test tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO
