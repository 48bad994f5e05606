"""The `backfill` verb: run a pipeline again over a range or a list of partitions, through its
deployment on the workers, a few runs at a time, with a progress bar and a summary.

Which partitions run and which are skipped is planned by ``flowfactory.scheduling`` before any
API is asked; ``flowfactory.orchestration.backfill`` creates and watches the runs.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from flowfactory.cli._shared import (
    OutputFormat,
    PipelineName,
    app,
    print_error,
    report_errors,
    require_api,
)
from flowfactory.config import find_pipeline
from flowfactory.settings import get_settings

if TYPE_CHECKING:
    from flowfactory.orchestration.backfill import BackfillOutcome, BackfillRun
    from flowfactory.scheduling import BackfillPlan

__all__ = ["backfill"]


def _run_url(ui_url: str, run: BackfillRun) -> str:
    return f"{ui_url}/runs/flow-run/{run.flow_run_id}" if run.flow_run_id else ""


def _summary_json(plan: BackfillPlan, outcome: BackfillOutcome, ui_url: str) -> str:
    from flowfactory.orchestration.backfill import RunStatus  # noqa: PLC0415 - loads Prefect

    return json.dumps(
        {
            "pipeline": plan.pipeline,
            "interrupted": outcome.interrupted,
            **{status.value: outcome.count(status) for status in RunStatus},
            "runs": [
                {
                    "partition": run.partition,
                    "status": run.status.value,
                    "flow_run_id": str(run.flow_run_id) if run.flow_run_id else None,
                    "url": _run_url(ui_url, run) or None,
                    "state": run.state_name,
                    "message": run.message,
                }
                for run in outcome.runs
            ],
        },
        indent=2,
    )


def _print_summary(plan: BackfillPlan, outcome: BackfillOutcome, ui_url: str) -> None:
    from flowfactory.orchestration.backfill import RunStatus  # noqa: PLC0415 - loads Prefect

    counts = ", ".join(
        f"{outcome.count(status)} {status.value}"
        for status in RunStatus
        if outcome.count(status)
        or status in (RunStatus.completed, RunStatus.skipped, RunStatus.failed)
    )
    typer.echo(f"backfill of {plan.pipeline}: {counts}")
    width = max(len(run.partition) for run in outcome.runs)
    for run in outcome.runs:
        detail = _run_url(ui_url, run)
        if run.status is not RunStatus.completed and run.message:
            detail = f"{detail}  {run.message}".strip()
        typer.echo(f"  {run.status.value:<11} {run.partition:<{width}}  {detail}".rstrip())


def _watch_with_progress(plan: BackfillPlan, concurrency: int) -> BackfillOutcome:
    """Run the plan with a progress bar on stderr, so stdout keeps only the summary."""
    from rich.console import Console  # noqa: PLC0415 - rich comes with Prefect
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn  # noqa: PLC0415

    from flowfactory.orchestration.backfill import run_backfill  # noqa: PLC0415 - loads Prefect

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"backfill {plan.pipeline}", total=len(plan.to_run))
        return run_backfill(
            plan, concurrency=concurrency, on_finished=lambda _: progress.advance(task)
        )


@app.command()
@report_errors
def backfill(
    name: PipelineName,
    *,
    first: Annotated[
        str | None,
        typer.Option("--from", help="First partition of the range, e.g. year=2013/month=1."),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--to", help="Last partition of the range (inclusive)."),
    ] = None,
    partitions: Annotated[
        str | None,
        typer.Option(help="Partitions to run, comma-separated, instead of a range."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, help="How many runs may be in flight at once.")
    ] = 4,
    force: Annotated[
        bool, typer.Option(help="Run partitions whose input state was already consumed, too.")
    ] = False,
    output: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
) -> None:
    """Run NAME over a range (--from/--to) or a list (--partitions) of partitions, on the workers.

    Partitions whose input state the pipeline already consumed are skipped unless --force.
    Consumers downstream follow through their triggers, as after any run.
    """
    # flowfactory.data and flowfactory.scheduling load polars (~0.2 s).
    from flowfactory.data import DataRoot  # noqa: PLC0415
    from flowfactory.scheduling import plan_backfill  # noqa: PLC0415

    settings = get_settings()
    pipeline = find_pipeline(name, settings)
    plan = plan_backfill(
        pipeline,
        DataRoot(settings.data_root_url),
        first=first,
        last=last,
        listed=partitions.split(",") if partitions is not None else None,
        force=force,
    )
    ui_url = require_api(settings).removesuffix("/").removesuffix("/api")
    if not force:
        from flowfactory.orchestration.fanout import completed_keys  # noqa: PLC0415 - Prefect

        plan = plan.without_consumed(completed_keys(i.key for i in plan.items if i.key))
    if output is OutputFormat.json:
        from flowfactory.orchestration.backfill import run_backfill  # noqa: PLC0415

        outcome = run_backfill(plan, concurrency=concurrency)
        typer.echo(_summary_json(plan, outcome, ui_url))
    else:
        outcome = _watch_with_progress(plan, concurrency)
        _print_summary(plan, outcome, ui_url)
    if outcome.interrupted:
        print_error(
            "interrupted: cancelled the runs not started yet and created no more; "
            "runs already running go on"
        )
    if outcome.failed:
        raise typer.Exit(1)
