"""Tier 3: monthly_revenue deployed and run through a worker on a real local Prefect server."""

from __future__ import annotations

import shutil
from pathlib import Path

from flowfactory.testing import PrefectPipelines, copy_project


def test_monthly_revenue_end_to_end(tmp_path: Path, prefect_pipeline: PrefectPipelines) -> None:
    project = copy_project(Path(), tmp_path / "project")  # files and contracts, not data
    shutil.copytree("data/landing", project / "data" / "landing")
    run = prefect_pipeline.run("monthly_revenue", project, partition="year=2024/month=1")
    assert run.completed
    assert run.output("year=2024/month=1").height == 3
