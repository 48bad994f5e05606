"""The integration tier of flowfactory.testing: a demo pipeline end to end on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import REPO

from flowfactory.settings import Settings
from flowfactory.stack import LandingZone, LocalStack
from flowfactory.testing import PrefectPipelines, copy_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def flowfactory_stack(stack: LocalStack) -> LocalStack:
    """Reuse the suite's one server instead of the plugin's own (two would compete for CPU)."""
    return stack


def test_ingest_weather_end_to_end_on_real_data(
    tmp_path: Path, prefect_pipeline: PrefectPipelines
) -> None:
    """A copy of the demo project lands January's weather and runs ingest_weather as a
    deployment through the worker; the output passes its contract and has the month's hours."""
    project = copy_project(REPO, tmp_path / "demo_copy")
    assert (project / "contracts" / "weather.json").exists()
    assert not (project / "data").exists()
    zone = LandingZone(Settings(project_dir=project))
    zone.prepare()
    zone.land(1)
    run = prefect_pipeline.run("ingest_weather", project, partition="year=2013/month=1")
    assert run.completed, run.state
    weather = run.output("year=2013/month=1")
    assert weather["month"].unique().to_list() == [1]
    assert sorted(weather["origin"].unique().to_list()) == ["EWR", "JFK", "LGA"]
    assert weather.height > 2000
