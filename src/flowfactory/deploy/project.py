"""The deployments a project becomes: one per pipeline, a canary per candidate, and flowfactory's
own (router, reconcile, SLA checks). prefect.yaml and ``flowfactory deploy`` both start here.
"""

from __future__ import annotations

import hashlib

from flowfactory.config import PipelineFile, Project, PythonTransform, Schedule, SqlTransform
from flowfactory.deploy.automations import system_deployments
from flowfactory.deploy.specs import (
    DEFAULT_PROJECT,
    DEFAULT_WORK_POOL,
    MANAGED_TAG,
    DeploymentSpec,
    ScheduleSpec,
)
from flowfactory.orchestration import CANARY_ENTRYPOINT, CANARY_FLOW

__all__ = [
    "canary_deployment_name",
    "canary_deployment_spec",
    "config_version",
    "deployment_spec",
    "project_specs",
    "project_tag",
]


def _schedule_spec(schedule: Schedule) -> ScheduleSpec:
    return ScheduleSpec(
        cron=schedule.cron,
        interval=schedule.interval.total_seconds() if schedule.interval else None,
        timezone=schedule.timezone,
    )


def config_version(pipeline: PipelineFile) -> str:
    """A short fingerprint of the validated config: changes whenever the pipeline does."""
    # Defaults left out: a new optional key in a release does not change every version.
    text = pipeline.config.model_dump_json(exclude_defaults=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def project_tag(project_name: str) -> str:
    """The tag that marks a deployment as belonging to one flowfactory project."""
    return f"project:{project_name}"


def deployment_spec(
    pipeline: PipelineFile, *, project_name: str = DEFAULT_PROJECT
) -> DeploymentSpec:
    """The deployment a pipeline file becomes."""
    config = pipeline.config
    managed = [MANAGED_TAG, project_tag(project_name)]
    tags = [*managed, *(t for t in config.tags if t not in managed)]
    description = config.description or f"flowfactory pipeline {config.name}"
    if config.owner:
        description += f"\n\nOwner: {config.owner}"
    return DeploymentSpec(
        name=config.name,
        description=description,
        version=config_version(pipeline),
        tags=tags,
        parameters={"name": config.name},
        work_pool=config.work_pool,
        schedules=[_schedule_spec(config.schedule)] if config.schedule else [],
    )


def project_specs(project: Project, *, project_name: str = DEFAULT_PROJECT) -> list[DeploymentSpec]:
    """Every deployment of a project: one per pipeline, then flowfactory's own, by name."""
    pipelines = sorted(
        [
            *(deployment_spec(p, project_name=project_name) for p in project.pipelines),
            *_canary_specs(project, project_name),
        ],
        key=lambda spec: spec.name,
    )
    pools = sorted({spec.work_pool for spec in pipelines})
    version = hashlib.sha256("".join(s.version for s in pipelines).encode()).hexdigest()[:12]
    system = system_deployments(
        project,
        project_name=project_name,
        tags=[MANAGED_TAG, project_tag(project_name)],
        work_pool=pools[0] if pools else DEFAULT_WORK_POOL,
        version=version,
    )
    return [*pipelines, *system]


def _canary_specs(project: Project, project_name: str) -> list[DeploymentSpec]:
    """A canary deployment for each pipeline with a candidate transform."""
    specs = (
        canary_deployment_spec(
            p,
            tags=[MANAGED_TAG, project_tag(project_name)],
            version=config_version(p),
        )
        for p in project.pipelines
    )
    return [spec for spec in specs if spec is not None]


def canary_deployment_name(pipeline: str) -> str:
    """The canary deployment of a pipeline (pipeline names cannot contain '-')."""
    return f"{pipeline}-canary"


def canary_deployment_spec(
    pipeline: PipelineFile, *, tags: list[str], version: str, work_pool: str | None = None
) -> DeploymentSpec | None:
    """The deployment that runs a pipeline's canary from the UI; None without a candidate."""
    if pipeline.config.canary is None:
        return None
    kind = "python" if isinstance(pipeline.config.canary.candidate, PythonTransform) else "sql"
    current = pipeline.config.transform
    was = "sql" if isinstance(current, SqlTransform) else "python" if current else "none"
    return DeploymentSpec(
        name=canary_deployment_name(pipeline.name),
        flow_name=CANARY_FLOW,
        entrypoint=CANARY_ENTRYPOINT,
        description=(
            f"Canary of pipeline {pipeline.name}: the {was} transform (v1) against the {kind} "
            "candidate (v2) on a sample; promotes v2 when they agree."
        ),
        version=version,
        tags=[*tags, "canary"],
        parameters={"name": pipeline.name},
        work_pool=work_pool or pipeline.config.work_pool,
    )
