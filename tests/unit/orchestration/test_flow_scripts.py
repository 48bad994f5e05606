"""The repository's flows/ scripts run the flows that ship in the package, not copies of them."""

from __future__ import annotations

import importlib

import pytest

from flowfactory.orchestration import flows


@pytest.mark.parametrize(
    ("script", "name"),
    [("pipeline", "pipeline"), ("canary", "canary"), ("scheduling", "reconcile")],
)
def test_each_script_runs_the_packaged_flow(script: str, name: str) -> None:
    """Each script's flow is the very object deployments name by module path."""
    module = importlib.import_module(f"flows.{script}")
    assert getattr(module, name) is getattr(flows, name)
