"""Registering a project's deployments, work pools and lineage on the API in PREFECT_API_URL.

Both ``prefect deploy --all`` on the rendered prefect.yaml and ``flowfactory deploy`` start from
the same deployment specs, so they register the same deployments.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from flowfactory.config import Project
from flowfactory.deploy.lineage import lineage, render_mermaid
from flowfactory.deploy.project import project_specs, project_tag
from flowfactory.deploy.specs import MANAGED_TAG
from flowfactory.orchestration import artifact_key
from flowfactory.settings import Settings

__all__ = ["DeployReport", "deploy_project", "lineage_artifact_key"]


@dataclass
class DeployReport:
    """What ``deploy`` registered and removed."""

    deployed: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    work_pools_created: list[str] = field(default_factory=list)


async def _ensure_work_pools(names: set[str]) -> list[str]:
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - `render` stays Prefect-free
    from prefect.client.schemas.actions import WorkPoolCreate  # noqa: PLC0415 - `render` stays Prefect-free
    from prefect.exceptions import ObjectNotFound  # noqa: PLC0415 - `render` stays Prefect-free

    created: list[str] = []
    async with get_client() as client:
        for name in sorted(names):
            try:
                await client.read_work_pool(name)
            except ObjectNotFound:
                await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                created.append(name)
    return created


async def _prune(keep: set[str], project_name: str) -> list[str]:
    from prefect.client.orchestration import get_client  # noqa: PLC0415 - `render` stays Prefect-free
    from prefect.client.schemas.filters import (  # noqa: PLC0415 - `render` stays Prefect-free
        DeploymentFilter,
        DeploymentFilterTags,
    )

    pruned: list[str] = []
    async with get_client() as client:
        deployments = await client.read_deployments(
            deployment_filter=DeploymentFilter(
                tags=DeploymentFilterTags(all_=[MANAGED_TAG, project_tag(project_name)])
            ),
        )
        for deployment in deployments:
            if deployment.name not in keep:
                await client.delete_deployment(deployment.id)
                pruned.append(deployment.name)
    return sorted(pruned)


async def deploy_project(project: Project, settings: Settings, *, prune: bool) -> DeployReport:
    """Register every deployment and its triggers on the API in PREFECT_API_URL."""
    from prefect.events import DeploymentEventTrigger  # noqa: PLC0415 - `render` stays Prefect-free
    from prefect.flows import Flow  # noqa: PLC0415 - `render` stays Prefect-free
    from prefect.schedules import Cron, Interval  # noqa: PLC0415 - `render` stays Prefect-free

    report = DeployReport()
    specs = project_specs(project, project_name=settings.project_name)
    report.work_pools_created = await _ensure_work_pools({s.work_pool for s in specs})
    flows: dict[str, Flow[..., object]] = {}
    for spec in specs:
        if spec.entrypoint not in flows:
            flows[spec.entrypoint] = await Flow.afrom_source(
                source=str(Path(settings.project_dir)), entrypoint=spec.entrypoint
            )
        schedules = [
            Cron(s.cron, timezone=s.timezone, parameters=s.parameters or {})
            if s.cron
            else Interval(s.interval or 0, timezone=s.timezone, parameters=s.parameters or {})
            for s in spec.schedules
        ]
        triggers = [
            DeploymentEventTrigger(**t.model_dump(exclude_none=True, exclude={"type"}))
            for t in spec.triggers
        ]
        deployment = await flows[spec.entrypoint].ato_deployment(
            name=spec.name,
            description=spec.description,
            version=spec.version,
            tags=spec.tags,
            parameters=spec.parameters,
            work_pool_name=spec.work_pool,
            schedules=schedules,
            triggers=triggers,  # type: ignore[arg-type]
        )
        # No `schedules=` here: the list above is sent whole, so an empty one clears a removed
        # schedule, where Prefect 3.9 keeps the old schedules for an empty `schedules=[]`.
        await deployment.aapply()
        report.deployed.append(spec.name)
    if prune:
        report.pruned = await _prune({s.name for s in specs}, settings.project_name)
    await _publish_lineage(project, settings.project_name)
    return report


def lineage_artifact_key(project_name: str) -> str:
    """The artifact key of a project's lineage (keys allow lowercase letters, digits and -)."""
    return artifact_key("lineage", project_name)


async def _publish_lineage(project: Project, project_name: str) -> None:
    """The dataset lineage as a markdown artifact, so the UI shows the graph after a deploy."""
    from prefect.artifacts import acreate_markdown_artifact  # noqa: PLC0415 - `render` stays Prefect-free

    with warnings.catch_warnings():
        # Prefect (3.8, 3.9) warns that artifacts outside a run will go away; the pin keeps them.
        warnings.simplefilter("ignore", FutureWarning)
        await acreate_markdown_artifact(
            markdown="# Dataset lineage\n\n```mermaid\n"
            + render_mermaid(lineage(project))
            + "```\n",
            key=lineage_artifact_key(project_name),
            description="Datasets and the pipelines between them, as of the last deploy.",
        )
