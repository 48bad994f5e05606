"""Fixtures of the unit tier. Nothing here starts a server or a process: the unit tier runs on
the library alone, in temporary project folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLOWFACTORY_* variables of the calling shell do not leak into the settings."""
    for name in [n for n in os.environ if n.startswith("FLOWFACTORY_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Path:
    """An empty project folder as the working directory, so problems print relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
