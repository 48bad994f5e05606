"""The Prefect flows that deployments run, shipped with the package.

Deployments name them by module path (``flowfactory.orchestration.flows.pipeline``, see
flowfactory.orchestration.entrypoints), so a project needs no flow files of its own: wherever
flowfactory is installed, a worker imports the flow from it. Each flow is a thin shell around
its body in this layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flowfactory.orchestration.announce import reconcile_project, route_update
from flowfactory.orchestration.canary import canary_run, version_run
from flowfactory.orchestration.pipeline import run_pipeline
from flowfactory.orchestration.slas import check_sla
from flowfactory.settings import Settings

__all__ = [
    "canary",
    "canary_version",
    "dataset_router",
    "engine_settings",
    "pipeline",
    "reconcile",
    "sla_check",
]


@contextlib.contextmanager
def engine_settings(settings: Settings) -> Iterator[None]:
    """The Prefect settings flowfactory's runs go by, around a run's engine (``flowfactory run``
    and the warm executor): no flow-run heartbeats unless ``flow_heartbeats`` asks for them.

    The engine reads the heartbeat setting as a run starts; it cannot be set to none through
    the environment, so it is set here.
    """
    if settings.flow_heartbeats:
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _pipeline_run_name() -> str:
    parameters = flow_run.parameters
    partition = parameters.get("partition")
    return f"{parameters['name']}[{partition}]" if partition else str(parameters["name"])


@flow(name="pipeline", flow_run_name=_pipeline_run_name, log_prints=True)
def pipeline(
    name: str, partition: str | None = None, state: str | None = None, version: str | None = None
) -> State[Any] | None:
    """Run the pipeline file NAME for one partition (col=value/...) or for all of its data.

    Data-aware triggers pass the input ``state`` they start the run for; see flowfactory.scheduling.
    ``version`` (v1 or v2) runs that version instead of the live one (see `flowfactory canary`).
    """
    result = run_pipeline(name, partition or None, state or None, version=version or None)
    return result if isinstance(result, State) else None


def _version_run_name() -> str:
    parameters = flow_run.parameters
    return f"{parameters['name']}-{parameters['version']}"


@flow(name="canary-version", flow_run_name=_version_run_name)
def canary_version(name: str, version: str, area: str) -> int:
    """Run version v1 (the transform) or v2 (the candidate) of NAME on the sampled inputs."""
    return version_run(name, version, area)


def _canary_run_name() -> str:
    parameters = flow_run.parameters
    partition = parameters.get("partition")
    return f"canary-{parameters['name']}" + (f"[{partition}]" if partition else "")


@flow(name="canary", flow_run_name=_canary_run_name, log_prints=True)
def canary(name: str, partition: str | None = None) -> State[Any]:
    """Compare v1 and v2 of pipeline NAME on a sample; promote v2 if they agree."""
    return canary_run(name, partition or None, canary_version)


@flow(name="flowfactory-router", log_prints=True)
def dataset_router(dataset: str, partition: str = "") -> list[str]:
    """Start the consumers that an update of DATASET, posted from outside, makes ready."""
    return route_update(dataset, partition)


@flow(name="flowfactory-reconcile", log_prints=True)
def reconcile() -> list[str]:
    """Start every consumer whose inputs changed without a run, e.g. after a server restart."""
    return reconcile_project()


@flow(name="flowfactory-sla", log_prints=True)
async def sla_check(pipeline: str, sla: str, expected: str, subject: str = "") -> bool:
    """Emit sla.missed (and notify) when PIPELINE misses its SLA; True when it was missed."""
    return await check_sla(pipeline, sla, expected, subject)
