"""Schedules on a real Prefect server: the scheduler creates their runs, a redeploy removes them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import Deployment
from tests.helpers import write_project
from tests.integration.conftest import project_settings

from flowfactory.config import load_project
from flowfactory.deploy import deploy_project, render_prefect_yaml
from flowfactory.settings import Settings
from flowfactory.stack import LocalStack

pytestmark = pytest.mark.integration

# The server's recent-deployments scheduler loops every 5 s; a deployment waits at most a loop.
SCHEDULER_TIMEOUT = 60.0


def _pipeline(name: str, pool: str, schedule: str | None) -> str:
    # No worker polls `pool`, so the scheduled runs stay scheduled and start nothing.
    text = (
        f"name: {name}\nsource: {{path: landing/*.csv}}\ndestination: {{dataset: {name}}}\n"
        f"work_pool: {pool}\n"
    )
    return text + (f"schedule: {schedule}\n" if schedule else "")


def _unique(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


@dataclass
class _OnePipeline:
    """A project of one pipeline, on a pool of its own, whose schedule a test rewrites."""

    name: str
    pool: str
    root: Path
    settings: Settings

    @classmethod
    def create(cls, tmp_path: Path, stack: LocalStack, schedule: str) -> _OnePipeline:
        settings = project_settings(tmp_path, stack)
        pipeline = cls(_unique("unscheduled_"), _unique("sched"), tmp_path, settings)
        pipeline.write(schedule)
        return pipeline

    def write(self, schedule: str | None) -> None:
        write_project(
            self.root, {f"deployments/{self.name}.yaml": _pipeline(self.name, self.pool, schedule)}
        )


def _deploy(settings: Settings) -> None:
    project = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(project, settings, prune=False))


async def _read_deployment(name: str) -> Deployment:
    async with get_client() as client:
        return await client.read_deployment_by_name(f"pipeline/{name}")


async def _auto_scheduled_runs(deployment_id: uuid.UUID) -> int:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            limit=10,
        )
    return sum(run.auto_scheduled for run in runs)


async def _create_pool(name: str) -> None:
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


async def _delete(names: list[str]) -> None:
    async with get_client() as client:
        for name in names:
            deployment = await client.read_deployment_by_name(f"pipeline/{name}")
            await client.delete_deployment(deployment.id)


def _prefect_deploy_all(root: Path, api_url: str, extra_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), "deploy", "--all", "--no-prompt"],
        cwd=root,
        env={**os.environ, "PREFECT_API_URL": api_url, **extra_env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cron_and_interval_schedules_create_runs(tmp_path: Path, stack: LocalStack) -> None:
    """The server's scheduler creates the runs of cron and interval schedules within seconds."""
    pool = _unique("sched")
    every_10s, every_minute = _unique("interval_"), _unique("cron_")
    root = write_project(
        tmp_path,
        {
            f"deployments/{every_10s}.yaml": _pipeline(every_10s, pool, "{interval: 10s}"),
            f"deployments/{every_minute}.yaml": _pipeline(
                every_minute, pool, '{cron: "* * * * *", timezone: UTC}'
            ),
        },
    )
    settings = project_settings(root, stack)
    _deploy(settings)
    ids = {name: asyncio.run(_read_deployment(name)).id for name in (every_10s, every_minute)}
    try:
        counts: dict[str, int] = {}
        deadline = time.monotonic() + SCHEDULER_TIMEOUT
        while time.monotonic() < deadline:
            counts = {name: asyncio.run(_auto_scheduled_runs(i)) for name, i in ids.items()}
            if all(counts.values()):
                break
            time.sleep(1)
        assert all(counts.values()), f"no scheduled runs after {SCHEDULER_TIMEOUT:.0f} s: {counts}"
    finally:
        asyncio.run(_delete(list(ids)))


def test_schedule_removed_from_the_file_is_gone_after_flowfactory_deploy(
    tmp_path: Path, stack: LocalStack
) -> None:
    """A pipeline whose schedule was deleted from its file has none on the server after deploy."""
    pipeline = _OnePipeline.create(tmp_path, stack, '{cron: "0 6 * * *"}')
    _deploy(pipeline.settings)
    assert len(asyncio.run(_read_deployment(pipeline.name)).schedules) == 1

    pipeline.write(None)
    _deploy(pipeline.settings)
    deployment = asyncio.run(_read_deployment(pipeline.name))
    try:
        assert deployment.schedules == []
        assert asyncio.run(_auto_scheduled_runs(deployment.id)) == 0
    finally:
        asyncio.run(_delete([pipeline.name]))


def test_schedule_removed_is_gone_after_prefect_deploy_all(
    tmp_path: Path, stack: LocalStack
) -> None:
    """The README's CI command clears a removed schedule: an empty list alone would keep it."""
    pipeline = _OnePipeline.create(tmp_path, stack, "{interval: 1h}")
    settings = pipeline.settings
    ci_env = {"PREFECT_DEPLOYMENTS_CLEAR_SCHEDULES_ON_EMPTY": "true"}
    asyncio.run(_create_pool(pipeline.pool))  # `prefect deploy` refuses a pool that does not exist

    def render_and_deploy() -> None:
        project = load_project(settings.deployments_dir, settings)
        rendered = render_prefect_yaml(project, project_name=settings.project_name)
        (pipeline.root / "prefect.yaml").write_text(rendered)
        _prefect_deploy_all(pipeline.root, stack.api_url, ci_env)

    render_and_deploy()
    try:
        assert len(asyncio.run(_read_deployment(pipeline.name)).schedules) == 1
        pipeline.write(None)
        render_and_deploy()
        assert asyncio.run(_read_deployment(pipeline.name)).schedules == []
    finally:
        asyncio.run(_delete([pipeline.name]))
