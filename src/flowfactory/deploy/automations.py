"""Pipeline files -> the triggers and SLA automations Prefect evaluates on the server.

A consumer pipeline has no trigger of its own: whoever updates its inputs creates its runs
(``flowfactory.orchestration.fanout``), under keys that an automation's run could not share.
Updates posted from outside reach the router's trigger, and the router creates them the same way.

Pure functions from configs to specs; ``deploy`` registers them and ``render`` writes them into
prefect.yaml, so both paths create the same automations.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from flowfactory.config import PipelineFile, Project
from flowfactory.deploy.specs import DeploymentSpec, ScheduleSpec, TriggerSpec
from flowfactory.orchestration import (
    RECONCILE_ENTRYPOINT,
    ROUTER_ENTRYPOINT,
    SLA_ENTRYPOINT,
    events,
)

__all__ = [
    "ROUTER",
    "SLA",
    "sla_schedules",
    "sla_triggers",
    "system_deployments",
]

# (flow name, deployment name suffix, entrypoint). The deployment is named after the project,
# so that several projects can share one server without replacing each other's.
ROUTER: Final = ("flowfactory-router", "router", ROUTER_ENTRYPOINT)
RECONCILE: Final = ("flowfactory-reconcile", "reconcile", RECONCILE_ENTRYPOINT)
SLA: Final = ("flowfactory-sla", "sla", SLA_ENTRYPOINT)
RECONCILE_EVERY: Final = timedelta(minutes=5)

_TERMINAL_STATES: Final = [
    f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Crashed", "Cancelled")
]
# Templates read labels with .get(...) and a default: a template that touches a missing field
# fails the automation's action, and then no run is created at all.
_PARTITION_TEMPLATE: Final = f"{{{{ event.resource.get('{events.PARTITION_LABEL}', '') }}}}"


def _seconds(delta: timedelta) -> str:
    # Not :g, which keeps 6 digits: 45 days would read 3.888e+06s.
    return f"{delta.total_seconds():.15g}s"


def sla_triggers(pipeline: PipelineFile) -> list[TriggerSpec]:
    """Proactive triggers, on the SLA deployment, for max_duration and freshness."""
    sla = pipeline.config.sla
    if sla is None:
        return []
    found = []
    if sla.max_duration is not None:
        found.append(
            TriggerSpec(
                name=f"{pipeline.name}: run longer than {_seconds(sla.max_duration)}",
                posture="Proactive",
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": pipeline.name,
                },
                after=["prefect.flow-run.Running"],
                expect=_TERMINAL_STATES,
                for_each=["prefect.resource.id"],
                within=sla.max_duration.total_seconds(),
                parameters={
                    "pipeline": pipeline.name,
                    "sla": "max_duration",
                    "expected": _seconds(sla.max_duration),
                    # A label is a LabelDiver in templates; `string` makes it JSON-serialisable.
                    "subject": "{{ labels.prefect.resource.id | string }}",
                },
            )
        )
    if sla.freshness is not None:
        dataset = pipeline.config.destination.dataset
        found.append(
            TriggerSpec(
                name=f"{pipeline.name}: {dataset} not updated for {_seconds(sla.freshness)}",
                posture="Proactive",
                match={"prefect.resource.id": f"dataset.{dataset}"},
                expect=[events.DATASET_UPDATED],
                for_each=["prefect.resource.id"],
                within=sla.freshness.total_seconds(),
                parameters={
                    "pipeline": pipeline.name,
                    "sla": "freshness",
                    "expected": _seconds(sla.freshness),
                    "subject": f"dataset.{dataset}",
                },
            )
        )
    return found


def sla_schedules(pipeline: PipelineFile) -> list[ScheduleSpec]:
    """Deadline checks: a run of the SLA flow at each tick of the deadline's cron."""
    sla = pipeline.config.sla
    if sla is None or sla.deadline is None:
        return []
    return [
        ScheduleSpec(
            cron=sla.deadline.cron,
            timezone=sla.deadline.timezone,
            parameters={
                "pipeline": pipeline.name,
                "sla": "deadline",
                "expected": sla.deadline.cron,
                "subject": "",
            },
        )
    ]


def system_deployments(
    project: Project, *, project_name: str, tags: list[str], work_pool: str, version: str
) -> list[DeploymentSpec]:
    """flowfactory's own deployments, present only when some pipeline needs them."""
    found = []
    if any(p.config.trigger is not None for p in project.pipelines):
        flow_name, suffix, entrypoint = ROUTER
        found.append(
            DeploymentSpec(
                name=f"{project_name}-{suffix}",
                flow_name=flow_name,
                entrypoint=entrypoint,
                description="Evaluates dataset.updated events posted from outside flowfactory "
                f"(label {events.ROUTE_LABEL}=true) and starts the consumers they make ready.",
                version=version,
                tags=tags,
                parameters={},
                work_pool=work_pool,
                triggers=[
                    TriggerSpec(
                        name="external dataset updates",
                        match={"prefect.resource.id": "dataset.*", events.ROUTE_LABEL: "true"},
                        expect=[events.DATASET_UPDATED],
                        parameters={
                            "dataset": "{{ event.resource.id | replace('dataset.', '', 1) }}",
                            "partition": _PARTITION_TEMPLATE,
                        },
                    )
                ],
            )
        )
        flow_name, suffix, entrypoint = RECONCILE
        found.append(
            DeploymentSpec(
                name=f"{project_name}-{suffix}",
                flow_name=flow_name,
                entrypoint=entrypoint,
                description="Re-derives readiness from the data and starts every consumer whose "
                "inputs changed without a run (an event lost while the server was down).",
                version=version,
                tags=tags,
                parameters={},
                work_pool=work_pool,
                schedules=[ScheduleSpec(interval=RECONCILE_EVERY.total_seconds(), timezone="UTC")],
            )
        )
    triggers = [t for p in project.pipelines for t in sla_triggers(p)]
    schedules = [s for p in project.pipelines for s in sla_schedules(p)]
    if triggers or schedules:
        flow_name, suffix, entrypoint = SLA
        found.append(
            DeploymentSpec(
                name=f"{project_name}-{suffix}",
                flow_name=flow_name,
                entrypoint=entrypoint,
                description="Emits sla.missed (and notifies) when a pipeline misses an SLA.",
                version=version,
                tags=tags,
                parameters={},
                work_pool=work_pool,
                schedules=schedules,
                triggers=triggers,
            )
        )
    return found
