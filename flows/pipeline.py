"""The one flow every pipeline deployment runs: extract, transform, load, from a pipeline file."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from flowfactory.orchestration import run_pipeline


def _run_name() -> str:
    parameters = flow_run.parameters
    partition = parameters.get("partition")
    return f"{parameters['name']}[{partition}]" if partition else str(parameters["name"])


@flow(name="pipeline", flow_run_name=_run_name, log_prints=True)
def pipeline(
    name: str, partition: str | None = None, state: str | None = None, version: str | None = None
) -> State[Any] | None:
    """Run the pipeline file NAME for one partition (col=value/...) or for all of its data.

    Data-aware triggers pass the input ``state`` they start the run for; see flowfactory.scheduling.
    ``version`` (v1 or v2) runs that version instead of the live one (see `flowfactory canary`).
    """
    result = run_pipeline(name, partition or None, state or None, version=version or None)
    return result if isinstance(result, State) else None


if __name__ == "__main__":
    import sys

    pipeline(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
