"""The one flow every pipeline deployment runs: extract, transform, load, from a pipeline file."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flowfactory.tasks import run_pipeline


def _run_name() -> str:
    parameters = flow_run.parameters
    partition = parameters.get("partition")
    return f"{parameters['name']}[{partition}]" if partition else str(parameters["name"])


@flow(name="pipeline", flow_run_name=_run_name, log_prints=True)
def pipeline(name: str, partition: str | None = None) -> None:
    """Run the pipeline file called NAME, for one partition (col=value/...) or for all data."""
    run_pipeline(name, partition)


if __name__ == "__main__":
    import sys

    pipeline(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
