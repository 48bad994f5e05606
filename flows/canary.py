"""The canary flow: v1 and v2 of a pipeline as parallel subflows on one sample, then the verdict."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from flowfactory.orchestration import canary_run, version_run


def _version_run_name() -> str:
    parameters = flow_run.parameters
    return f"{parameters['name']}-{parameters['version']}"


@flow(name="canary-version", flow_run_name=_version_run_name)
def canary_version(name: str, version: str, area: str) -> int:
    """Run version v1 (the transform) or v2 (the candidate) of NAME on the sampled inputs."""
    return version_run(name, version, area)


def _run_name() -> str:
    parameters = flow_run.parameters
    partition = parameters.get("partition")
    return f"canary-{parameters['name']}" + (f"[{partition}]" if partition else "")


@flow(name="canary", flow_run_name=_run_name, log_prints=True)
def canary(name: str, partition: str | None = None) -> State[Any]:
    """Compare v1 and v2 of pipeline NAME on a sample; promote v2 if they agree."""
    return canary_run(name, partition or None, canary_version)


if __name__ == "__main__":
    import sys

    canary(sys.argv[1])
