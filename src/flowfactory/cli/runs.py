"""Verbs that start work now: run one pipeline in this process, or announce a dataset update
so that its ready consumers run.

User input (partition, version, dataset) is checked before any API is asked, and Prefect is
imported only after ``require_api`` has named the API it must talk to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from flowfactory.cli._shared import (
    PipelineName,
    app,
    check_partition,
    print_error,
    project_of,
    report_errors,
    require_api,
    require_project,
)
from flowfactory.config import find_pipeline
from flowfactory.settings import get_settings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State
    from prefect.flows import Flow

__all__ = ["emit", "run"]


@app.command()
@report_errors
def run(
    name: PipelineName,
    partition: Annotated[
        str | None, typer.Option(help="One partition, e.g. year=2013/month=1.")
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            help="v1 (the transform) or v2 (the canary candidate); default: the live one."
        ),
    ] = None,
) -> None:
    """Run one pipeline now, in this process, tracked by the Prefect API."""
    # flowfactory.canary and flowfactory.data load polars (~0.2 s).
    from flowfactory.canary import parse_version, version_pipeline  # noqa: PLC0415
    from flowfactory.data import (  # noqa: PLC0415
        DataRoot,
        Partition,
        check_plan,
        check_run_partition,
        resolve_transform,
    )

    check_partition(partition)
    settings = get_settings()
    require_project(settings)
    found = find_pipeline(name, settings)
    if version is not None:
        found = version_pipeline(found, parse_version(version))
    require_api(settings)
    from prefect.flows import load_flow_from_entrypoint  # noqa: PLC0415 - loads Prefect (~1.5 s)

    from flowfactory.orchestration import PIPELINE_ENTRYPOINT  # noqa: PLC0415 - loads Prefect
    from flowfactory.orchestration.flows import engine_settings  # noqa: PLC0415 - loads Prefect

    # Config mistakes (including SQL over missing columns) surface here, positioned.
    root, scope = (
        DataRoot(settings.data_root_url),
        Partition.parse(partition) if partition else None,
    )
    check_plan(found, root, scope, resolve_transform(found, settings))
    if scope is not None:
        check_run_partition(found, root, scope)
    pipeline_flow: Flow[..., Any] = load_flow_from_entrypoint(PIPELINE_ENTRYPOINT)
    # Flow.__call__'s overloads do not cover return_state=True.
    with engine_settings(settings):
        state = cast("State[Any]", pipeline_flow(name, partition, None, version, return_state=True))
    if not state.is_completed():
        print_error(f"error: run of {name} ended {state.name}: {state.message or ''}".rstrip(": "))
        raise typer.Exit(1)
    typer.echo(f"{name}: {state.name}")


@app.command()
@report_errors
def emit(
    dataset: Annotated[str, typer.Argument(help="The dataset that was updated.")],
    partition: Annotated[
        str, typer.Option(help="The partition that landed, e.g. year=2013/month=1.")
    ] = "",
) -> None:
    """Tell the system a dataset was updated outside flowfactory; starts ready consumers."""
    # flowfactory.data and flowfactory.scheduling load polars (~0.2 s).
    from flowfactory.data import DataRoot  # noqa: PLC0415
    from flowfactory.scheduling import check_dataset  # noqa: PLC0415

    settings = get_settings()
    project = project_of(settings)
    check_dataset(project, dataset, partition)
    url = require_api(settings)
    from prefect.events.worker import EventsWorker  # noqa: PLC0415 - loads Prefect (~1.5 s)

    from flowfactory.orchestration import announce_update  # noqa: PLC0415 - loads Prefect

    runs = announce_update(
        project,
        DataRoot(settings.data_root_url),
        dataset,
        partition,
        {"source": "flowfactory emit"},
        source="with flowfactory emit",
    )
    EventsWorker.drain_all(timeout=30)  # events are sent in the background; wait for them
    where = f" partition {partition}" if partition else ""
    typer.echo(f"announced dataset.updated for {dataset}{where} to {url}")
    for run in runs:
        typer.echo(f"inputs ready: {run.label}: run {run.outcome.value}")
