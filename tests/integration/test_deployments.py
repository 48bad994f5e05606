"""Deploy pipeline files to a real Prefect server, run them through a worker, read results back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.objects import Deployment, FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from tests.helpers import read_partition, write_project
from tests.integration.conftest import project_settings

from flowfactory.config import load_project
from flowfactory.deploy import deploy_project, deployment_spec, render_prefect_yaml
from flowfactory.stack import LocalStack, launcher_command

pytestmark = pytest.mark.integration

ORDERS_CSV = {
    "data/landing/orders/2024-01.csv": (
        "id,month,customer,amount\n1,1,ann,10.5\n2,1,bob,4.5\n3,1,ann,1\n"
    ),
    "data/landing/orders/2024-02.csv": "id,month,customer,amount\n4,2,bob,7\n",
}
ORDERS_SQL = "SELECT id, month, customer, CAST(amount AS DOUBLE) AS amount FROM source"


def _pipelines(prefix: str) -> dict[str, str]:
    return {
        "deployments/_defaults.yaml": "retries: {attempts: 1, delay: 1s}\ntags: [itest]\n",
        f"deployments/{prefix}_orders.yaml": f"""\
name: {prefix}_orders
description: Orders from the landing zone.
source: {{path: landing/orders/*.csv}}
transform:
  sql: {ORDERS_SQL}
destination: {{dataset: orders, partition_by: [month], key: [id]}}
schedule: {{cron: "0 6 * * *", timezone: Europe/Paris}}
""",
        f"deployments/{prefix}_totals.yaml": f"""\
name: {prefix}_totals
sources:
  orders: {{dataset: orders}}
transform: {{python: "transforms.totals:per_customer"}}
destination: {{dataset: totals, partition_by: [month], key: [customer]}}
""",
        "transforms/__init__.py": "",
        "transforms/totals.py": """\
import polars as pl


def per_customer(orders: pl.LazyFrame) -> pl.LazyFrame:
    return orders.group_by("month", "customer").agg(pl.col("amount").sum().alias("total"))
""",
        **ORDERS_CSV,
    }


def _prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


async def _run(name: str, partition: str | None) -> FlowRun:
    flow_run: FlowRun = await run_deployment(  # type: ignore[misc]
        name=f"pipeline/{name}",
        parameters={"name": name, "partition": partition},
        timeout=180,
        poll_interval=0.5,
    )
    return flow_run


def _assert_completed(flow_run: FlowRun) -> None:
    assert flow_run.state is not None, flow_run
    assert flow_run.state.is_completed(), flow_run.state


async def _read_deployment(name: str) -> Deployment:
    async with get_client() as client:
        return await client.read_deployment_by_name(f"pipeline/{name}")


async def _latest_artifact_markdown(key: str) -> str:
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    assert artifacts, f"no artifact {key}"
    return str(artifacts[0].data)


async def _pool_command(pool: str) -> object:
    async with get_client() as client:
        work_pool = await client.read_work_pool(pool)
    return work_pool.base_job_template["variables"]["properties"]["command"]["default"]


def test_deploy_then_run_through_the_worker(tmp_path: Path, stack: LocalStack) -> None:
    """Deployed pipelines run on the worker, write their partitions and publish a summary."""
    prefix = _prefix()
    root = write_project(tmp_path, _pipelines(prefix))
    settings = project_settings(root, stack)
    project = load_project(settings.deployments_dir, settings)

    report = asyncio.run(deploy_project(project, settings, prune=False))
    assert sorted(report.deployed) == [f"{prefix}_orders", f"{prefix}_totals"]

    deployment = asyncio.run(_read_deployment(f"{prefix}_orders"))
    assert deployment.parameters == {"name": f"{prefix}_orders"}
    assert deployment.work_pool_name == "flowfactory"
    assert deployment.entrypoint == "flowfactory.orchestration.flows.pipeline"
    assert deployment.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}
    ]
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * *"]  # type: ignore[union-attr]
    assert {"flowfactory", "itest"} <= set(deployment.tags)

    _assert_completed(asyncio.run(_run(f"{prefix}_orders", "month=1")))
    _assert_completed(asyncio.run(_run(f"{prefix}_totals", "month=1")))
    # The local stack's pool starts runs through the warm executor's launcher.
    assert asyncio.run(_pool_command("flowfactory")) == launcher_command()

    orders = read_partition(root / "data", "orders", "month=1")
    assert orders["id"].to_list() == [1, 2, 3]
    assert not (root / "data/orders/month=2").exists()
    totals = read_partition(root / "data", "totals", "month=1")
    assert dict(zip(totals["customer"], totals["total"], strict=True)) == {"ann": 11.5, "bob": 4.5}

    markdown = asyncio.run(_latest_artifact_markdown(f"{prefix}-orders-summary".replace("_", "-")))
    # A CSV source's rows are not counted (that would be a second read); its bytes are.
    landed = sum(f.stat().st_size for f in (root / "data/landing/orders").glob("*.csv"))
    assert "| rows in | — |" in markdown
    assert f"| source | — | {landed:,} |" in markdown
    assert "| rows out | 3 |" in markdown
    assert "month=1" in markdown


def test_prefect_deploy_all_on_the_rendered_file(tmp_path: Path, stack: LocalStack) -> None:
    """`prefect deploy --all --no-prompt` on the rendered prefect.yaml registers runnable twins."""
    prefix = _prefix()
    root = write_project(tmp_path, _pipelines(prefix))
    settings = project_settings(root, stack)
    project = load_project(settings.deployments_dir, settings)
    (root / "prefect.yaml").write_text(
        render_prefect_yaml(project, project_name=settings.project_name)
    )

    result = subprocess.run(
        [str(Path(sys.executable).with_name("prefect")), "deploy", "--all", "--no-prompt"],
        cwd=root,
        env={**os.environ, "PREFECT_API_URL": stack.api_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    for pipeline in project.pipelines:
        spec = deployment_spec(pipeline, project_name=settings.project_name)
        deployment = asyncio.run(_read_deployment(pipeline.name))
        assert deployment.version == spec.version
        assert deployment.parameters == spec.parameters
        assert sorted(deployment.tags) == sorted(spec.tags)
        assert deployment.work_pool_name == spec.work_pool
    _assert_completed(asyncio.run(_run(f"{prefix}_orders", None)))
    assert sorted(p.name for p in (root / "data/orders").iterdir()) == ["month=1", "month=2"]


def test_new_file_appears_and_prune_removes_deleted(tmp_path: Path, stack: LocalStack) -> None:
    """A new file deploys with no code change; --prune deletes the deployment of a removed file."""
    prefix = _prefix()
    root = write_project(tmp_path, _pipelines(prefix))
    settings = project_settings(root, stack)
    first = load_project(settings.deployments_dir, settings)
    asyncio.run(deploy_project(first, settings, prune=False))

    extra = root / "deployments" / f"{prefix}_copy.yaml"
    extra.write_text(
        f"name: {prefix}_copy\nsource: {{dataset: orders}}\ndestination: {{dataset: orders_copy}}\n"
    )
    project = load_project(settings.deployments_dir, settings)
    rendered = yaml.safe_load(render_prefect_yaml(project))
    assert f"{prefix}_copy" in [d["name"] for d in rendered["deployments"]]
    report = asyncio.run(deploy_project(project, settings, prune=False))
    assert f"{prefix}_copy" in report.deployed

    (root / "deployments" / f"{prefix}_totals.yaml").unlink()
    project = load_project(settings.deployments_dir, settings)
    report = asyncio.run(deploy_project(project, settings, prune=True))
    assert report.pruned == [f"{prefix}_totals"]
    assert asyncio.run(_read_deployment(f"{prefix}_copy")).name == f"{prefix}_copy"
    with pytest.raises(ObjectNotFound):
        asyncio.run(_read_deployment(f"{prefix}_totals"))
